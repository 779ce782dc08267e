"""Every GGUF tensor type the engine reads, dequantized by `srppo inspect --dump` and by the `gguf`
PyPI package's NumPy code, on random blocks (random bytes exercise every bit pattern; the fp16
scale fields are set to finite random values)."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q, GGUFReader, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

from conftest import run_srppo

# Byte offsets of the fp16 scale fields inside one block, per type.
SCALE_OFFSETS = {
    Q.Q8_0: [0], Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2],
    Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}
TYPES = [Q.F32, Q.F16, Q.BF16, *SCALE_OFFSETS]


def random_tensor(qtype, rng, rows=3):
    block, size = GGML_QUANT_SIZES[qtype]
    cols = 512  # a multiple of every block size
    if qtype == Q.F32:
        return rng.standard_normal((rows, cols)).astype(np.float32), None
    if qtype == Q.F16:
        return rng.standard_normal((rows, cols)).astype(np.float16), None
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == Q.BF16:
        values = rng.standard_normal(rows * cols).astype(np.float32)
        raw = (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(n_blocks, size)
    for off in SCALE_OFFSETS.get(qtype, []):
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size), qtype


@pytest.mark.parametrize("qtype", TYPES, ids=lambda t: t.name)
def test_dequantize_matches_gguf_package(qtype, tmp_path, srppo_bin):
    rng = np.random.default_rng(int(qtype))
    data, raw_dtype = random_tensor(qtype, rng)
    path = tmp_path / "t.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("t", data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    tensor = GGUFReader(str(path)).tensors[0]
    expected = dequantize(tensor.data, tensor.tensor_type).astype(np.float32).ravel()
    out = tmp_path / "t.f32"
    run_srppo(srppo_bin, "inspect", str(path), "--dump", "t", "--output", str(out))
    got = np.fromfile(out, dtype=np.float32)
    assert got.shape == expected.shape
    # Both compute each value as a product of a few fp32 factors; orders of operations may differ.
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=1e-30)
