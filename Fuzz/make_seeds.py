"""Writes the seed corpus of each fuzz target into Fuzz/corpus/<target>/ (small valid inputs the
fuzzer mutates). Run from the repository root with the project's venv; the outputs are committed."""
import json
import pathlib
import struct
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as Q, GGUFWriter
from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "Tests" / "python"))
from tiny_model import write_tiny_llama  # noqa: E402


def corpus(target):
    path = ROOT / "corpus" / target
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(srppo):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        model = write_tiny_llama(tmp / "m", vocab=16, hidden=8, intermediate=16, layers=1, heads=2, kv_heads=1)
        # safetensors and config.json straight from the tiny model.
        (corpus("safetensors") / "tiny-model.safetensors").write_bytes((model / "model.safetensors").read_bytes())
        save_file({"a": np.arange(6, dtype=np.float16).reshape(2, 3)}, str(corpus("safetensors") / "f16.safetensors"))
        (corpus("hf-config") / "llama.json").write_text((model / "config.json").read_text())
        qwen = json.loads((model / "config.json").read_text())
        qwen.update({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                     "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})
        (corpus("hf-config") / "qwen2.json").write_text(json.dumps(qwen))
        # GGUF: the tiny model exported by srppo, and one tensor of each quantized type.
        subprocess.run([srppo, "export", "--model", str(model), "--out", str(corpus("gguf") / "tiny-model.gguf")], check=True)
        rng = np.random.default_rng(0)
        for qtype in [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
            from gguf.constants import GGML_QUANT_SIZES
            block, size = GGML_QUANT_SIZES[qtype]
            raw = rng.integers(0, 256, size=(1, size), dtype=np.uint8)
            raw[:, :2] = np.array([0.01], dtype=np.float16).view(np.uint8)
            writer = GGUFWriter(str(corpus("gguf") / f"{qtype.name}.gguf"), "llama")
            writer.add_tensor("t", raw, raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
    (corpus("jsonl-data") / "ids.jsonl").write_text(
        '{"prompt_ids":[1,5,6],"response_ids":[7,2]}\n\n{"prompt_ids":[1],"response_ids":[3,4,2],"extra":"x"}\n')
    (corpus("jsonl-data") / "text.jsonl").write_text(
        '{"prompt":"Hi","response":"Hello"}\n{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}\n')
    for name, request in [("list", {"version": 1, "op": "list"}), ("attach", {"version": 1, "op": "attach", "name": "tiny"}),
                          ("attach-hash", {"version": 1, "op": "attach", "name": "tiny", "sha256": "00" * 32})]:
        body = json.dumps(request).encode()
        (corpus("image-protocol") / name).write_bytes(struct.pack(">I", len(body)) + body)
    fuzzer = str(pathlib.Path(srppo).parent / "srppo-fuzz")
    for dtype, name in (("f32", "tiny.json"), ("bf16", "tiny-bf16.json")):
        subprocess.run([fuzzer, "--write-manifest-seed", str(corpus("image-manifest") / name), dtype], check=True)
    two = [json.dumps({"version": 1, "op": "list"}).encode()] * 2
    (corpus("image-protocol") / "two-requests").write_bytes(b"".join(struct.pack(">I", len(b)) + b for b in two))

    write_http_seeds()


def http_request(path, body, extra=b""):
    data = json.dumps(body).encode()
    return (b"POST %s HTTP/1.1\r\nHost: srppod\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), extra, len(data), data))


def write_http_seeds():
    """srppod requests as a client sends them: every endpoint, pipelined, chunked."""
    score = {"id": "r1", "client": "fuzz", "deadline_ms": 1000,
             "items": [{"prompt_ids": [1, 504, 3458], "response_ids": [314, 2]}, {"prompt": "Hi", "response": "Hello"},
                       {"messages": [{"role": "user", "content": "Hi"}], "response": "Yo"}]}
    seeds = {
        "score": http_request("/v1/score", score),
        "get-reward": http_request("/get_reward", {"query": ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>"],
                                                   "prompts": ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"], "labels": [""]}),
        "tokenize": http_request("/v1/tokenize", {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": True}),
        "detokenize": http_request("/v1/detokenize", {"ids": [19556, 905, 2], "skip_special_tokens": True}),
        "pipelined": http_request("/v1/score", score) + http_request("/v1/tokenize", {"text": "a b"}),
        "chunked": (b"POST /v1/score HTTP/1.1\r\nHost: srppod\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"10\r\n{\"items\":[{\"prom\r\n" + b"%x\r\n" % len(b'pt_ids":[1],"response_ids":[2]}]}') +
                    b'pt_ids":[1],"response_ids":[2]}]}\r\n0\r\n\r\n'),
        "health": b"GET /v1/health HTTP/1.1\r\nHost: srppod\r\n\r\n",
    }
    for name, data in seeds.items():
        (corpus("http-request") / name).write_bytes(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / ".build" / "release" / "srppo"))
