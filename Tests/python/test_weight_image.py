"""Weight images across real processes: `srppo image serve` hands the sealed memfd of SmolLM2's
weights over a Unix socket to separate client processes.

The Python client here follows docs/weight-image-protocol.md (stdlib only), so it checks the wire
format independently of the Swift client. Independent references: hashlib's SHA-256 of the mapped
bytes, the `gguf` package's tensor values, the kernel's own accounting in /proc/PID/smaps_rollup,
and `srppo score` on the GGUF in a process of its own.
"""
import fcntl
import hashlib
import json
import math
import mmap
import os
import signal
import socket
import struct
import subprocess
import warnings

import numpy as np
import pytest
from gguf import GGUFReader

from conftest import run_srppo
from srppod_harness import Holder, smaps_rollup

ALL_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
HUGE_PAGE = 2 << 20
PAIRS = [
    {"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]},
    {"prompt_ids": [1], "response_ids": [504, 3458, 282, 4649, 314, 2]},
    {"prompt_ids": [1, 504, 3458, 282, 4649, 314, 253, 1345, 30], "response_ids": [2]},
]


# --- The wire protocol, from the document ------------------------------------------------------

def exchange(path, request):
    """Sends one request; returns (reply, descriptors)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        body = json.dumps(request).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        data, fds = b"", []
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk, got, _, _ = socket.recv_fds(s, 1 << 16, 4)
            fds += got
            if not chunk:
                raise ConnectionError(f"server closed the connection after {len(data)} bytes")
            data += chunk
        return json.loads(data[4:]), fds


def wire_attach(path, name, **extra):
    reply, fds = exchange(path, {"version": 1, "op": "attach", "name": name, **extra})
    assert reply["ok"], reply
    assert len(fds) == 1, fds
    return fds[0], reply


# --- Processes ---------------------------------------------------------------------------------

class Server:
    """`srppo image serve` in its own process; stopped with SIGTERM, which must exit 0."""

    def __init__(self, binary, socket_path, models, hugepages="off", dtype=None):
        args = [binary, "image", "serve", "--socket", socket_path, "--hugepages", hugepages]
        if dtype:
            args += ["--dtype", dtype]
        for name, path in models.items():
            args += ["--model", f"{name}={path}"]
        self.socket_path = socket_path
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.images = {}
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait()
                raise RuntimeError(f"server exited {self.process.returncode}: {self.process.stderr.read()}")
            event = json.loads(line)
            if event["event"] == "listening":
                break
            self.images[event["name"]] = event

    def stop(self, signal_number=signal.SIGTERM):
        self.process.send_signal(signal_number)
        assert self.process.wait(timeout=30) == 0, self.process.stderr.read()
        assert not os.path.exists(self.socket_path), "the server removes its socket"


@pytest.fixture(scope="module")
def server(srppo_bin, smollm2, tmp_path_factory):
    s = Server(srppo_bin, str(tmp_path_factory.mktemp("wi") / "weights.sock"), {"smollm2": smollm2})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bf16_server(srppo_bin, smollm2, tmp_path_factory):
    s = Server(srppo_bin, str(tmp_path_factory.mktemp("wi-bf16") / "weights.sock"), {"smollm2": smollm2}, dtype="bf16")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return str(path)


@pytest.fixture(scope="module")
def in_process_scores(srppo_bin, smollm2, pairs_file):
    """`srppo score` on the GGUF: the in-process engine, in a process of its own."""
    return run_srppo(srppo_bin, "score", "--model", smollm2, "--input", pairs_file, "--threads", "2").stdout


# --- Tests -------------------------------------------------------------------------------------

def test_list_describes_the_served_image(server):
    reply, fds = exchange(server.socket_path, {"version": 1, "op": "list"})
    assert fds == []
    assert reply["ok"] and reply["version"] == 1
    [image] = reply["images"]
    assert image["name"] == "smollm2"
    assert image["sha256"] == server.images["smollm2"]["sha256"]
    assert image["dtype"] == "f32"
    assert image["backing"]["kind"] == "normal"


def test_descriptor_is_sealed_and_holds_the_bytes_the_manifest_describes(server, smollm2):
    fd, reply = wire_attach(server.socket_path, "smollm2")
    try:
        manifest = reply["manifest"]
        size = os.fstat(fd).st_size
        assert size >= manifest["data_bytes"] and size % mmap.PAGESIZE == 0
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & ALL_SEALS == ALL_SEALS
        weights = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        assert hashlib.sha256(weights[:manifest["data_bytes"]]).hexdigest() == manifest["sha256"]

        # Tensor values against the gguf package: the F32 norms exactly, the Q8_0 embedding as
        # dequantized by the reference implementation.
        reader = GGUFReader(smollm2)
        from gguf.quants import dequantize
        gguf_tensors = {t.name: t for t in reader.tensors}
        table = {t["name"]: t for t in manifest["tensors"]}
        for image_name, gguf_name in [("model.norm.weight", "output_norm.weight"),
                                      ("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"),
                                      ("model.layers.29.post_attention_layernorm.weight", "blk.29.ffn_norm.weight"),
                                      ("model.embed_tokens.weight", "token_embd.weight")]:
            entry, tensor = table[image_name], gguf_tensors[gguf_name]
            count = math.prod(entry["shape"])
            mine = np.frombuffer(weights, dtype="<f4", count=count, offset=entry["offset"]).reshape(entry["shape"])
            expected = dequantize(tensor.data, tensor.tensor_type).reshape(entry["shape"])
            np.testing.assert_array_equal(mine, expected, err_msg=image_name)
        assert "lm_head.weight" not in table, "SmolLM2 ties its LM head to the embedding"
    finally:
        os.close(fd)


def test_writable_shared_mapping_write_and_resize_are_refused(server):
    fd, _ = wire_attach(server.socket_path, "smollm2")
    try:
        size = os.fstat(fd).st_size
        with pytest.raises(PermissionError):
            mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"\0", 0)
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def test_private_mapping_is_writable_and_leaves_the_image_unchanged(server):
    fd, reply = wire_attach(server.socket_path, "smollm2")
    manifest = reply["manifest"]
    size = os.fstat(fd).st_size
    private = mmap.mmap(fd, size, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
    private[:1 << 20] = bytes(1 << 20)
    private[size - 8:] = b"scribble"
    assert private[:1 << 20] == bytes(1 << 20) and private[size - 8:] == b"scribble"

    fresh_fd, _ = wire_attach(server.socket_path, "smollm2")
    fresh = mmap.mmap(fresh_fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    os.close(fresh_fd)
    assert hashlib.sha256(fresh[:manifest["data_bytes"]]).hexdigest() == manifest["sha256"]
    assert fresh[:1 << 20] != bytes(1 << 20)
    assert private[:1 << 20] == bytes(1 << 20), "the private copy keeps its own writes"
    private.close()
    fresh.close()


@pytest.mark.parametrize("served", ["server", "bf16_server"])
def test_four_client_processes_share_one_physical_copy(srppo_bin, served, request):
    server = request.getfixturevalue(served)
    memory_bytes = server.images["smollm2"]["memory_bytes"]
    holders = [Holder(srppo_bin, server.socket_path, "smollm2") for _ in range(4)]
    try:
        rollups = [smaps_rollup(h.pid) for h in holders]
        for holder, rollup in zip(holders, rollups):
            assert holder.report["populated"] and holder.report["mode"] == "shared"
            # Each maps all of it...
            assert rollup["Rss"] >= memory_bytes
            # ...and is charged a quarter: PSS divides shared pages among the processes mapping them.
            assert rollup["Pss_Shmem"] == pytest.approx(memory_bytes / 4, rel=0.01), rollup
        assert sum(r["Pss_Shmem"] for r in rollups) == pytest.approx(memory_bytes, rel=0.01)
        # The server keeps no mapping of its own: only the descriptor.
        assert smaps_rollup(server.process.pid)["Pss_Shmem"] < memory_bytes / 100
    finally:
        for holder in holders:
            holder.release()


@pytest.mark.parametrize("mode", ["shared", "private"])
def test_attached_image_scores_bit_for_bit_like_the_engine(srppo_bin, server, pairs_file, in_process_scores, mode):
    attached = run_srppo(srppo_bin, "image", "attach", "--socket", server.socket_path, "--name", "smollm2",
                         "--mode", mode, "--score", "--input", pairs_file, "--threads", "2")
    assert attached.stdout == in_process_scores
    report = json.loads(attached.stderr)
    assert report["event"] == "attached" and report["mode"] == mode
    lines = [json.loads(line) for line in attached.stdout.splitlines()]
    assert [line["n"] for line in lines] == [len(p["response_ids"]) for p in PAIRS]
    assert all(math.isfinite(v) and v < 0 for line in lines for v in line["logprobs"])


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_on_a_signal_right_after_listening(srppo_bin, smollm2, tmp_path, signal_number):
    # The handlers are installed before "listening" is printed: a signal sent at once is not lost.
    Server(srppo_bin, str(tmp_path / "quick.sock"), {"smollm2": smollm2}).stop(signal_number)


def test_pinned_hash_and_unknown_names_are_refused(srppo_bin, server):
    reply, fds = exchange(server.socket_path, {"version": 1, "op": "attach", "name": "smollm2", "sha256": "0" * 64})
    assert fds == [] and reply["error"]["code"] == "hash_mismatch"
    result = run_srppo(srppo_bin, "image", "attach", "--socket", server.socket_path, "--name", "other", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("srppo: server refused (unknown_image): no image named 'other'")
    assert result.stderr.count("\n") == 1


def test_image_files_are_deterministic_and_serve_the_same_image(srppo_bin, smollm2, server, tmp_path):
    first, second = tmp_path / "a.srppo-image", tmp_path / "b.srppo-image"
    built = [json.loads(run_srppo(srppo_bin, "image", "build", "--model", smollm2, "--out", str(path),
                                  "--hugepages", "off").stdout) for path in (first, second)]
    sha = server.images["smollm2"]["sha256"]
    assert [b["sha256"] for b in built] == [sha, sha]
    assert first.read_bytes() == second.read_bytes()

    from_file = Server(srppo_bin, str(tmp_path / "file.sock"), {"fromfile": str(first)})
    try:
        assert from_file.images["fromfile"]["sha256"] == sha
        fd, reply = wire_attach(from_file.socket_path, "fromfile")
        assert reply["manifest"]["source"] == {"format": "gguf", "path": smollm2}
        os.close(fd)
    finally:
        from_file.stop()


def test_huge_page_backed_image(srppo_bin, smollm2, server, pairs_file, in_process_scores, tmp_path):
    """Reserves huge pages (root only), serves from them, attaches from several processes, restores the pool."""
    control = "/proc/sys/vm/nr_hugepages"
    data_bytes = server.images["smollm2"]["data_bytes"]
    needed = -(-data_bytes // HUGE_PAGE)

    def pool():
        base = f"/sys/kernel/mm/hugepages/hugepages-{HUGE_PAGE // 1024}kB/"
        return {k: int(open(base + k).read()) for k in ("nr_hugepages", "free_hugepages", "resv_hugepages")}

    before = pool()
    if before["free_hugepages"] - before["resv_hugepages"] < needed:
        # With a short pool, requiring huge pages must fail with one clear line.
        refused = run_srppo(srppo_bin, "image", "build", "--model", smollm2, "--hugepages", "require", check=False)
        assert refused.returncode == 1
        assert refused.stderr.startswith("srppo: huge pages required but unavailable"), refused.stderr
    if os.geteuid() != 0:
        pytest.skip(f"not root: cannot reserve {needed} huge pages of 2 MiB (write {control} as root to run this test)")
    original = int(open(control).read())
    try:
        try:
            with open(control, "w") as f:
                f.write(str(original + needed + 1))
        except OSError as error:
            pytest.skip(f"cannot reserve huge pages through {control}: {error}")
        reserved = pool()
        if reserved["free_hugepages"] - reserved["resv_hugepages"] < needed:
            pytest.skip(f"the kernel reserved only {reserved['free_hugepages']} free huge pages, {needed} needed")

        hugetlb = Server(srppo_bin, str(tmp_path / "huge.sock"), {"smollm2": smollm2}, hugepages="require")
        try:
            image = hugetlb.images["smollm2"]
            assert image["backing"]["kind"] == "hugetlb" and image["backing"]["page_size"] == HUGE_PAGE
            assert image["sha256"] == server.images["smollm2"]["sha256"], "same bytes whatever the backing"
            assert pool()["free_hugepages"] <= reserved["free_hugepages"] - needed
            holders = [Holder(srppo_bin, hugetlb.socket_path, "smollm2") for _ in range(2)]
            try:
                for holder in holders:
                    rollup = smaps_rollup(holder.pid)
                    assert holder.report["backing"]["kind"] == "hugetlb"
                    assert rollup["Shared_Hugetlb"] == image["memory_bytes"], rollup
                    assert rollup["Pss_Shmem"] < data_bytes / 100, "huge pages are outside Rss/Pss"
            finally:
                for holder in holders:
                    holder.release()
            attached = run_srppo(srppo_bin, "image", "attach", "--socket", hugetlb.socket_path, "--name", "smollm2",
                                 "--score", "--input", pairs_file, "--threads", "2")
            assert attached.stdout == in_process_scores

            # Copy-on-write of a huge page image: the kernel reserves pool pages for every page the
            # mapping might copy, so with one spare page it is refused up front, clearly...
            private = ["image", "attach", "--socket", hugetlb.socket_path, "--name", "smollm2", "--mode", "private",
                       "--score", "--input", pairs_file, "--threads", "2"]
            refused = run_srppo(srppo_bin, *private, check=False)
            assert refused.returncode == 1
            assert f"a private (copy-on-write) mapping reserves {needed} more" in refused.stderr, refused.stderr
            # ...and works once the pool can hold a full copy.
            with open(control, "w") as f:
                f.write(str(original + 2 * needed + 1))
            spare = pool()["free_hugepages"] - pool()["resv_hugepages"]
            if spare >= needed:
                assert run_srppo(srppo_bin, *private).stdout == in_process_scores
            else:
                warnings.warn(f"private huge page mapping not checked: the kernel left {spare} spare pages, {needed} needed")
        finally:
            hugetlb.stop()
    finally:
        with open(control, "w") as f:
            f.write(str(original))
        assert int(open(control).read()) == original, "huge page pool restored"


# --- bf16 images ---------------------------------------------------------------------------------

def round_to_bf16(values):
    """fp32 → bf16 → fp32 the way the engine packs: nearest even; below the smallest normal → signed zero."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint32) << 16
    tiny = (bits & 0x7F800000) == 0
    rounded[tiny] = (bits[tiny].astype(np.uint32) & 0x80000000)
    return rounded.astype(np.uint32).view(np.float32)


def test_bf16_image_is_half_the_size_and_holds_the_gguf_weights_rounded_to_bf16(server, bf16_server, smollm2):
    from srppo_client.images import attach
    from gguf.quants import dequantize
    f32, bf16 = server.images["smollm2"], bf16_server.images["smollm2"]
    assert bf16["dtype"] == "bf16"
    assert bf16["data_bytes"] / f32["data_bytes"] == pytest.approx(0.5, abs=0.01)
    with attach(bf16_server.socket_path, "smollm2") as image:
        assert hashlib.sha256(image.data()).hexdigest() == bf16["sha256"]
        table = {t["name"]: t for t in image.manifest["tensors"]}
        assert {t.get("encoding") for t in table.values()} == {"f32", "bf16-panels"}
        gguf_tensors = {t.name: t for t in GGUFReader(smollm2).tensors}
        # Matrices whose rows the engine keeps in GGUF order (q/k are permuted for RoPE), fused groups
        # stacked as the engine multiplies them; norms exactly in fp32.
        groups = {"model.embed_tokens.weight": ["token_embd.weight"],
                  "model.layers.0.self_attn.o_proj.weight": ["blk.0.attn_output.weight"],
                  "model.layers.7.mlp.gate_up_proj.weight": ["blk.7.ffn_gate.weight", "blk.7.ffn_up.weight"],
                  "model.layers.29.mlp.down_proj.weight": ["blk.29.ffn_down.weight"],
                  "model.norm.weight": ["output_norm.weight"],
                  "model.layers.3.input_layernorm.weight": ["blk.3.attn_norm.weight"]}
        for name, parts in groups.items():
            entry = table[name]
            reference = np.concatenate([dequantize(gguf_tensors[p].data, gguf_tensors[p].tensor_type)
                                        .reshape(-1, entry["shape"][-1]) for p in parts]).reshape(entry["shape"])
            mine = image.array(name)
            if entry["encoding"] == "bf16-panels":
                np.testing.assert_array_equal(mine, round_to_bf16(reference), err_msg=name)
            else:
                np.testing.assert_array_equal(mine, reference, err_msg=name)
        with pytest.raises(ValueError, match="use array"):
            image.tensor("model.layers.0.self_attn.o_proj.weight")


@pytest.fixture(scope="module")
def in_process_bf16_scores(srppo_bin, smollm2, pairs_file):
    return run_srppo(srppo_bin, "score", "--model", smollm2, "--dtype", "bf16", "--input", pairs_file, "--threads", "2").stdout


@pytest.mark.parametrize("mode", ["shared", "private"])
def test_bf16_attached_image_scores_bit_for_bit_like_score_dtype_bf16(srppo_bin, bf16_server, pairs_file, in_process_scores,
                                                                     in_process_bf16_scores, mode):
    expected = in_process_bf16_scores
    attached = run_srppo(srppo_bin, "image", "attach", "--socket", bf16_server.socket_path, "--name", "smollm2",
                         "--mode", mode, "--score", "--input", pairs_file, "--threads", "2")
    assert attached.stdout == expected
    assert attached.stdout != in_process_scores, "bf16 rounds: the fp32 scores differ"
    assert json.loads(attached.stderr)["dtype"] == "bf16"


def test_bf16_image_files_are_deterministic(srppo_bin, smollm2, bf16_server, tmp_path):
    built = [json.loads(run_srppo(srppo_bin, "image", "build", "--model", smollm2, "--dtype", "bf16", "--out", str(tmp_path / f"{i}.img"),
                                  "--hugepages", "off").stdout) for i in range(2)]
    assert [b["sha256"] for b in built] == [bf16_server.images["smollm2"]["sha256"]] * 2
    assert (tmp_path / "0.img").read_bytes() == (tmp_path / "1.img").read_bytes()
    refused = run_srppo(srppo_bin, "image", "build", "--model", str(tmp_path / "0.img"), "--dtype", "f32", check=False)
    assert refused.returncode == 1 and "it holds bf16 weights, not f32" in refused.stderr
