"""The Python client's typed errors, each raised by a real daemon condition (not a canned answer):
limits (body, tokens, nesting), the allow-list, a full queue, a passed deadline, models still
loading, a daemon stopping; and the retryable ones retried after the Retry-After the daemon asked for.

What the client cannot send by construction (malformed HTTP, invalid JSON, a request that arrives too
slowly) is sent raw, and the daemon's real answer goes through the client's error mapping. The one
code no test raises is `internal`: no input reaches it by design (it answers a bug or a failed
allocation)."""
import os
import pathlib
import random
import shutil
import signal
import tempfile
import threading
import time
import types

import pytest

import srppo_client
from srppo_client import Client
from srppo_client import client as client_module
from srppod_harness import Daemon, call, raw_exchange
from tiny_model import write_tiny_llama


@pytest.fixture
def recorded_waits(monkeypatch):
    """The seconds each retrying client slept between attempts, in order (the client's module sees
    a `time` whose sleep records; the rest of the process keeps the real one)."""
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    return waits


def raises(cls, call_):
    with pytest.raises(cls) as caught:
        call_()
    error = caught.value
    assert type(error) is cls and error.code == cls.code and error.message and error.status >= 400
    return error


def test_limits_raise_their_typed_errors(tiny):
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", "--max-body-bytes", "2048", "--max-request-tokens", "16", "--request-read-timeout",
                    "0.5", socket_path=path)
    try:
        with Client(path, retry_budget=0) as client:
            big = [{"prompt_ids": [1, 2, 3], "response_ids": [4, 5]}] * 80    # ~3 kB of JSON, 400 tokens
            assert raises(srppo_client.BodyTooLarge, lambda: client.score(big)).status == 413
            error = raises(srppo_client.TooManyTokens, lambda: client.score_ids([1] * 10, [2] * 10))
            assert error.status == 413 and "16" in error.message
            nested = [{"prompt_ids": [[[[[[[[[[1]]]]]]]]]], "response_ids": [2]}]
            assert raises(srppo_client.TooDeep, lambda: client.score(nested)).status == 400
            assert client.score_ids([1, 4], [5, 2])["n"] == 2   # the same client goes on after each error

        # Malformed HTTP, invalid JSON and a stalled request, sent raw: the daemon's real answers map
        # to their classes.
        body = b'{"items": ['
        for payload, cls, pause in [
                (b"GET /v1/health HTTP/9.9 nonsense\r\n\r\n", srppo_client.BadHTTP, None),
                (b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), srppo_client.BadJSON, None),
                ([b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{", b"}"], srppo_client.RequestTimeout, 2.0)]:
            status, answer, raw = raw_exchange(path, payload, pause=pause)
            error = srppo_client.errors.api_error(status, answer)
            assert type(error) is cls and error.status == status, raw[:300]
    finally:
        assert daemon.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the daemon as another user")
def test_a_peer_off_the_allow_list_gets_permission_denied(tmp_path):
    """The daemon runs as nobody with an allow-list; this process (root) is another uid, not on it."""
    public = pathlib.Path(tempfile.mkdtemp(prefix="srppod-denied-", dir="/tmp"))
    try:
        public.chmod(0o755)
        write_tiny_llama(public / "pt", seed=0)
        write_tiny_llama(public / "sft", seed=1)
        nobody = 65534
        for folder, _, files in os.walk(public):     # the daemon reads the models and binds its socket here
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.chown(name, nobody, nobody)
        path = str(public / "http.sock")
        daemon = Daemon(public / "pt", public / "sft", "--allow-uid", "4242", "--socket-mode", "0666", socket_path=path,
                        user=nobody)
        try:
            with Client(path, retry_budget=0) as client:
                assert client.health()["status"] == "ok"      # probes stay open to every peer
                error = raises(srppo_client.PermissionDenied, lambda: client.score_ids([1, 4], [5, 2]))
                assert error.status == 403 and "uid 0" in error.message
        finally:
            assert daemon.stop() == 0
    finally:
        shutil.rmtree(public)


def test_not_ready_is_retried_after_the_daemons_retry_after(tmp_path, smollm2, recorded_waits):
    """Between 'listening' and 'ready' (SmolLM2 loading) a request gets NotReady with Retry-After 1;
    a retrying client waits exactly that and is answered once the models are in."""
    path = str(tmp_path / "http.sock")
    daemon = Daemon(smollm2, smollm2, "--dtype", "bf16", socket_path=path, wait_ready=False)
    try:
        daemon.wait_event("listening")
        error = raises(srppo_client.NotReady, lambda: Client(path, retry_budget=0).score_ids([1, 4], [5, 2]))
        assert error.status == 503 and error.retry_after == 1 and error.retryable
        assert recorded_waits == []
        result = Client(path, retry_budget=60).score_ids([1, 4], [5, 2])
        assert result["n"] == 2
        assert recorded_waits and all(wait == 1 for wait in recorded_waits), recorded_waits
        daemon.wait_event("ready")
    finally:
        assert daemon.stop() == 0


def test_busy_deadline_and_shutting_down_under_a_long_batch(tmp_path, smollm2, recorded_waits):
    """One 2048-token SmolLM2 request keeps the scheduler busy for seconds while the client meets a full
    queue (Busy with Retry-After, then answered after waiting what the daemon asked), a deadline that
    passes while queued (DeadlineExceeded, not retried), and a daemon stopping (ShuttingDown)."""
    path = str(tmp_path / "http.sock")
    daemon = Daemon(smollm2, smollm2, "--max-queue-tokens", "2048", "--max-request-tokens", "2048", socket_path=path)
    rng = random.Random(7)
    tokens = lambda n: [rng.randrange(1, 49152) for _ in range(n)]
    long_request = {"items": [{"prompt_ids": tokens(1024), "response_ids": tokens(1024)}], "client": "long"}
    answers = []

    def keep_busy():
        answers.append(call(path, "POST", "/v1/score", long_request)[0])

    def wait_running():
        deadline = time.monotonic() + 60
        while call(path, "GET", "/v1/ready")[2]["running_tokens"] != 2048:
            assert time.monotonic() < deadline, "the long request never started"
            time.sleep(0.01)

    try:
        long_one = threading.Thread(target=keep_busy)
        long_one.start()
        wait_running()
        queued = threading.Thread(target=lambda: answers.append(
            call(path, "POST", "/v1/score", {"items": [{"prompt_ids": tokens(150), "response_ids": tokens(150)}]})[0]))
        queued.start()
        while call(path, "GET", "/v1/ready")[2]["queue_tokens"] < 300:
            time.sleep(0.01)
        # 300 queued + 2040 > 2048 (the running batch is out of the queue).
        busy = raises(srppo_client.Busy, lambda: Client(path, retry_budget=0).score(
            [{"prompt_ids": tokens(1000), "response_ids": tokens(1000)}, {"prompt_ids": tokens(20), "response_ids": tokens(20)}]))
        assert busy.status == 503 and busy.retryable and busy.retry_after >= 1
        late = raises(srppo_client.DeadlineExceeded, lambda: Client(path, retry_budget=30).score_ids([1, 2], [3], deadline_ms=50))
        assert late.status == 504 and not late.retryable
        assert recorded_waits == []    # neither error was retried

        # The same overflowing request from a retrying client: refused while the long batch runs, then
        # answered; every wait is the daemon's Retry-After (whole seconds), not the client's backoff.
        result = Client(path, retry_budget=120).score(
            [{"prompt_ids": tokens(1000), "response_ids": tokens(1000)}, {"prompt_ids": tokens(20), "response_ids": tokens(20)}])
        assert len(result["results"]) == 2
        assert recorded_waits and all(wait >= 1 and float(wait).is_integer() for wait in recorded_waits), recorded_waits
        long_one.join()
        queued.join()
        assert answers == [200, 200]
        assert daemon.metric(path, 'srppod_errors_total{code="busy"}') == 1 + len(recorded_waits)
        assert daemon.metric(path, 'srppod_errors_total{code="deadline_exceeded"}') == 1

        # Stopping: the long batch finishes (stop grace) while a request on an open connection is refused.
        with Client(path, retry_budget=0) as client:
            assert client.health()["status"] == "ok"     # the keep-alive connection is open before SIGTERM
            long_one = threading.Thread(target=keep_busy)
            long_one.start()
            wait_running()
            daemon.signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while not any("stopping" in line for line in daemon.stderr_lines):
                assert time.monotonic() < deadline, "no 'stopping' log line after SIGTERM"
                time.sleep(0.01)
            stopping = raises(srppo_client.ShuttingDown, lambda: client.score_ids([1, 4], [5, 2]))
            assert stopping.status == 503 and stopping.retryable
        long_one.join()
        assert answers == [200, 200, 200]
    finally:
        assert daemon.stop() == 0
