"""srppod under systemd's protocols, with real processes and sockets: socket activation through
`systemd-socket-activate` (both sockets named), the sd_notify sequence captured on a test
NOTIFY_SOCKET (STATUS, EXTEND_TIMEOUT_USEC, FDSTORE, READY, WATCHDOG, RELOADING, STOPPING), reload
of a new SFT revision under load with no failed request, and a restart that re-maps the images kept
in the (simulated) fd store instead of loading the checkpoints.

References: answers are compared with `srppo reward` loading the same checkpoints in its own
process, as float32 bit patterns; image descriptors are checked with hashlib over the mapped bytes."""
import hashlib
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import numpy as np
import pytest

import srppo_client
from srppod_harness import (Daemon, NotifySocket, call, listening_socket, reward_in_process, score, score_while, srppod_bin)
from tiny_model import write_tiny_llama

ITEMS = [{"prompt_ids": [1, 5, 9, 13], "response_ids": [7, 21, 2]},
         {"prompt_ids": [1], "response_ids": [30, 31, 32, 33, 34]},
         {"prompt_ids": [1, 4], "response_ids": [2]}]


def f32(values):
    return np.asarray(values, dtype=np.float32)


def assert_same_scores(results, reference):
    assert len(results) == len(reference)
    for got, want in zip(results, reference):
        assert np.array_equal(f32(got["pt_logprobs"]).view(np.uint32), f32(want["pt_logprobs"]).view(np.uint32))
        assert np.array_equal(f32(got["sft_logprobs"]).view(np.uint32), f32(want["sft_logprobs"]).view(np.uint32))
        assert got["reward"] == want["reward"]
        assert got["truncated"] == (not want["ends_with_eos"])


def attach(path, name):
    """The weight image protocol (docs/weight-image-protocol.md): returns (manifest, sha256 of the bytes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        body = json.dumps({"version": 1, "op": "attach", "name": name}).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        data, fds = b"", []
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk, got, _, _ = socket.recv_fds(s, 1 << 16, 4)
            fds += got
            assert chunk, "server closed the connection"
            data += chunk
    reply = json.loads(data[4:])
    assert reply["ok"], reply
    manifest = reply["manifest"]
    with mmap.mmap(fds[0], manifest["data_bytes"], prot=mmap.PROT_READ) as mapped:
        digest = hashlib.sha256(mapped).hexdigest()
    os.close(fds[0])
    return manifest, digest


@pytest.fixture
def tiny(tiny_revisions):
    return tiny_revisions


def test_socket_activation_and_the_notify_sequence(tiny, srppo_bin):
    """systemd-socket-activate binds both sockets, names them http and images, and starts srppod on
    the first connection; the daemon reports loading, stores its image, becomes ready, pings the
    watchdog, reloads on SIGHUP and reports stopping on SIGTERM."""
    notify = NotifySocket(tiny)
    http_path, image_path = str(tiny / "http.sock"), str(tiny / "images.sock")
    # systemd-socket-activate passes a clean environment; OpenBLAS settings must reach srppod as they
    # reach the reference `srppo reward` (OPENBLAS_CORETYPE picks kernels that round differently).
    blas = [arg for key, value in os.environ.items() if key.startswith("OPENBLAS_") for arg in ("-E", f"{key}={value}")]
    activator = subprocess.Popen(
        ["systemd-socket-activate", "-l", http_path, "-l", image_path, "--fdname=http:images", *blas,
         "-E", f"NOTIFY_SOCKET={notify.path}", "-E", "WATCHDOG_USEC=400000",
         srppod_bin(), "--pt", str(tiny / "pt"), "--sft", str(tiny / "sft"), "--hugepages", "off", "--log", "stderr"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(image_path):
            assert time.monotonic() < deadline, "systemd-socket-activate did not bind"
            time.sleep(0.05)
        # The first connection starts srppod (the activator execs it, keeping its pid). It answers at
        # once: ready, or not yet (the models are loading).
        status, _, readiness = call(http_path, "GET", "/v1/ready")
        assert (status, readiness["ready"], readiness["state"]) in [(200, True, "serving"), (503, False, "loading")]
        listening = json.loads(activator.stdout.readline())
        assert listening["event"] == "listening" and listening["pid"] == activator.pid
        assert listening["sockets"] == {"http": "systemd:http", "images": "systemd:images"}
        ready = json.loads(activator.stdout.readline())
        assert ready["event"] == "ready"
        status, _, body = call(http_path, "POST", "/v1/score", {"items": ITEMS, "client": "first"})
        assert status == 200, body

        reference = reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-a", ITEMS, tiny)
        assert_same_scores(body["results"], reference)
        sha = {m["role"]: m["sha256"] for m in ready["models"]}
        assert body["models"]["sft"] == {"image": "sft", "sha256": sha["sft"], "revision": 1}

        # The image socket hands out the same bytes the daemon scores with.
        manifest, digest = attach(image_path, "sft")
        assert manifest["sha256"] == digest == sha["sft"]

        ready_at = notify.wait_for("READY", "1")
        first = notify.messages[notify.wait_for("STATUS")]
        assert first["STATUS"] == "Loading models" and int(first["EXTEND_TIMEOUT_USEC"]) > 0
        loading = [m for m in notify.messages[:ready_at] if m.get("STATUS", "").startswith("Loading PT")]
        assert loading and int(loading[0]["EXTEND_TIMEOUT_USEC"]) > 0
        assert sorted(notify.store) == sorted(["srppod-state", f"image-{sha['pt'][:16]}", f"image-{sha['sft'][:16]}"])
        assert notify.messages[ready_at]["STATUS"].startswith("Serving PT")
        pings = notify.wait_for("WATCHDOG", "1", after=ready_at)
        notify.wait_for("WATCHDOG", "1", after=pings + 1)

        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again, revision 2 of the new SFT.
        (tiny / "sft").unlink()
        (tiny / "sft").symlink_to(tiny / "sft-b")
        activator.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1", after=ready_at + 1)
        assert int(notify.messages[reloading]["MONOTONIC_USEC"]) > 0
        notify.wait_for("READY", "1", after=reloading)
        after = score(http_path, ITEMS)
        assert after["models"]["sft"]["revision"] == 2
        assert_same_scores(after["results"], reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-b", ITEMS, tiny))
        # The fd store now holds the new SFT image, not the old one.
        new_sha = after["models"]["sft"]["sha256"]
        assert f"image-{new_sha[:16]}" in notify.store and f"image-{sha['sft'][:16]}" not in notify.store

        activator.send_signal(signal.SIGTERM)
        assert activator.wait(timeout=60) == 0
        notify.wait_for("STOPPING", "1", after=reloading)
        assert json.loads(activator.stdout.readline())["event"] == "stopped"
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait()
        notify.close()


def test_reload_under_load_fails_no_request(tiny, srppo_bin):
    """Eight clients score without pause while the SFT symlink is switched and SIGHUP sent: every
    request succeeds, each answer is entirely revision 1 or entirely revision 2, and equals the
    in-process reference of that revision."""
    notify = NotifySocket(tiny)
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path, notify=notify)
    items = [{"prompt_ids": [1, 3 + i % 40, 4], "response_ids": [5 + i % 30, 6, 2 if i % 2 else 7]} for i in range(40)]
    references = {1: reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-a", items, tiny),
                  2: reward_in_process(srppo_bin, tiny / "pt", tiny / "sft-b", items, tiny)}

    def reload():
        (tiny / "sft").unlink()
        (tiny / "sft").symlink_to(tiny / "sft-b")
        daemon.signal(signal.SIGHUP)
        reloaded = notify.wait_for("RELOADING", "1")
        notify.wait_for("READY", "1", after=reloaded)
    try:
        answers, failures = score_while(path, items, reload)
    finally:
        assert daemon.stop() == 0
        notify.close()
    assert failures == []
    revisions = [body["models"]["sft"]["revision"] for _, _, body in answers]
    assert set(revisions) == {1, 2}
    assert revisions[-1] == 2
    for index, _, body in answers:
        revision = body["models"]["sft"]["revision"]
        assert_same_scores(body["results"], [references[revision][index]])


def test_restart_remaps_the_images_kept_in_the_fd_store(tmp_path, smollm2, srppo_bin):
    """A stand-in for systemd keeps the sockets and the descriptors sent with FDSTORE=1 and passes
    them back on restart (LISTEN_FDS, LISTEN_FDNAMES). With the checkpoint gone, the restarted daemon
    serves the same image (same hash, same answers, loaded_from fd-store). Start-up times of both runs
    are printed (with -s) for BENCHMARKS.md."""
    notify = NotifySocket(tmp_path)
    model = tmp_path / "model.gguf"
    model.symlink_to(smollm2)
    http_socket = listening_socket(str(tmp_path / "http.sock"))
    image_socket = listening_socket(str(tmp_path / "images.sock"))
    sockets = [("http", http_socket.fileno()), ("images", image_socket.fileno())]
    items = [{"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]}]
    try:
        started = time.monotonic()
        cold = Daemon(model, model, notify=notify, passed=sockets)
        cold_wall = time.monotonic() - started
        cold_ready = cold.events[-1]
        assert [m["loaded_from"] for m in cold_ready["models"]] == ["file", "file"]
        before = score(str(tmp_path / "http.sock"), items)
        assert before["results"][0]["reward"] == 0.0
        # The image socket systemd passed is named by its path (trainers find it there).
        assert srppo_client.Client(str(tmp_path / "http.sock")).models()["image_socket"] == str(tmp_path / "images.sock")
        assert cold.stop() == 0
        sha = cold_ready["models"][0]["sha256"]
        assert sorted(notify.store) == ["image-" + sha[:16], "srppod-state"]

        model.unlink()   # only the fd store has the weights now
        stored = [(name, fds[0]) for name, fds in sorted(notify.store.items())]
        started = time.monotonic()
        warm = Daemon(model, model, notify=notify, passed=sockets + stored)
        warm_wall = time.monotonic() - started
        warm_ready = warm.events[-1]
        assert [(m["loaded_from"], m["sha256"]) for m in warm_ready["models"]] == [("fd-store", sha), ("fd-store", sha)]
        after = score(str(tmp_path / "http.sock"), items)
        assert after["results"] == before["results"]
        assert after["models"] == before["models"]
        assert warm.stop() == 0
        print(f"\nstart-up: cold load {cold_ready['startup_seconds']:.3f} s (process to ready {cold_wall:.3f} s), "
              f"from the fd store {warm_ready['startup_seconds']:.3f} s (process to ready {warm_wall:.3f} s)")
    finally:
        http_socket.close()
        image_socket.close()
        notify.close()


def test_a_changed_checkpoint_is_loaded_again_after_restart(tiny):
    """The fd store's image is only used while the configured path still names the checkpoint it was
    built from: a rewritten SFT checkpoint is loaded from disk (new hash, revision 1 of the new run)."""
    notify = NotifySocket(tiny)
    http_socket = listening_socket(str(tiny / "http.sock"))
    sockets = [("http", http_socket.fileno())]
    try:
        first = Daemon(tiny / "pt", tiny / "sft-a", notify=notify, passed=sockets)
        old = {m["role"]: m["sha256"] for m in first.events[-1]["models"]}
        assert first.stop() == 0
        shutil.rmtree(tiny / "sft-a")
        write_tiny_llama(tiny / "sft-a", seed=7)
        stored = [(name, fds[0]) for name, fds in sorted(notify.store.items())]
        second = Daemon(tiny / "pt", tiny / "sft-a", notify=notify, passed=sockets + stored)
        models = {m["role"]: m for m in second.events[-1]["models"]}
        assert models["pt"]["loaded_from"] == "fd-store" and models["pt"]["sha256"] == old["pt"]
        assert models["sft"]["loaded_from"] == "file" and models["sft"]["sha256"] != old["sft"]
        assert second.stop() == 0
        assert any("stale" in line for line in second.stderr_lines)
    finally:
        http_socket.close()
        notify.close()
