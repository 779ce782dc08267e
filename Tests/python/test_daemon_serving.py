"""srppod serving real clients over its Unix socket (separate processes, the Python standard library
as the client): concurrent clients get answers equal to scoring each request alone; malformed
requests each get their typed error while the daemon stays healthy; the queue refuses with 503 and
Retry-After when full, deadlines and disconnected clients drop their work; repeated request ids are
answered from the store; access control; the TCP listener; the metrics text; and the coherent reward
of one image as both models is exactly 0.

References: `srppo reward` and `srppo score` loading the checkpoints in their own process, compared as
float32 bit patterns."""
import concurrent.futures
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

from srppod_harness import Daemon, call, raw_exchange, reward_in_process, score

VOCAB = 48   # tiny_model's vocabulary; EOS is 2, context 128


def bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32)


def same(result, reference):
    return (np.array_equal(bits(result["pt_logprobs"]), bits(reference["pt_logprobs"]))
            and np.array_equal(bits(result["sft_logprobs"]), bits(reference["sft_logprobs"]))
            and result["reward"] == reference["reward"] and result["truncated"] == (not reference["ends_with_eos"]))


def random_items(count, seed):
    rng = random.Random(seed)
    items = []
    for i in range(count):
        response = [rng.randrange(3, VOCAB) for _ in range(rng.randrange(0, 12))]
        if i % 3 == 0:
            response.append(2)
        items.append({"prompt_ids": [1] + [rng.randrange(0, VOCAB) for _ in range(rng.randrange(0, 20))], "response_ids": response})
    return items


def test_sixteen_clients_each_get_what_scoring_alone_gives(tiny, srppo_bin):
    """16 clients × 50 requests at once. Each answer equals (bit for bit) the same request scored
    alone through the idle daemon, and `srppo reward` in its own process."""
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    items = random_items(16 * 50, seed=3)
    try:
        alone = [score(path, [item])["results"][0] for item in items]
        answers = [None] * len(items)

        def client(number):
            for i in range(number, len(items), 16):
                answers[i] = score(path, [items[i]], client=f"client-{number}", id=f"r{i}")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(client, range(16)))
        batch_items = daemon.metric(path, "srppod_batch_items_sum") / daemon.metric(path, "srppod_batch_items_count")
    finally:
        assert daemon.stop() == 0
    reference = reward_in_process(srppo_bin, tiny / "pt", tiny / "sft", items, tiny)
    for i, item in enumerate(items):
        assert answers[i]["client"] == f"client-{i % 16}" and answers[i]["id"] == f"r{i}"
        assert answers[i]["results"][0] == alone[i], f"request {i}"
        assert same(answers[i]["results"][0], reference[i]), f"request {i}"
    assert batch_items > 1, "requests of different clients shared forward passes"


# --- Malformed requests ---------------------------------------------------------------------------

def http(body, method="POST", path="/v1/score", headers=()):
    data = body if isinstance(body, bytes) else body.encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: srppod", f"Content-Length: {len(data)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + data


def item(prompt=(1, 4), response=(5, 2)):
    return {"prompt_ids": list(prompt), "response_ids": list(response)}


def body(**fields):
    return json.dumps({"items": [item()], **fields})


def malformed_cases():
    """(name, payload, expected code, seconds between payload pieces or None)."""
    valid = body()
    cases = []
    add = lambda name, payload, code, pause=None: cases.append((name, payload, code, pause))
    # Not JSON, or cut off.
    for i, text in enumerate(["", "{", "}", "[", "nul", "nonsense", "{'items': []}", '{"items": [1 2]}',
                              '{"items": [{"prompt_ids": [NaN]}]}', "NaN",
                              '{"items": [{"prompt_ids": [1e999]}]}', valid + " trailing", '{"items": [] ]']):
        add(f"bad json {i}", http(text), "bad_json")
    add("bad json bytes", http(b"\xff\xfe\x00"), "bad_json")
    for cut in range(1, len(valid), max(1, len(valid) // 12)):
        add(f"truncated json at {cut}", http(valid[:cut]), "bad_json")
    # Valid JSON of the wrong shape (Foundation's parser also takes trailing commas).
    wrong = ['{"a":1,}', '{"items": [{"prompt_ids": [1,]}]}', '[]', '"items"', '42', 'null', '{}', '{"items": "x"}', '{"items": 3}', '{"items": null}', '{"items": {"a": 1}}',
             '{"items": true}', '{"items": ["x"]}', '{"items": [null]}', '{"items": [[1, 2]]}',
             '{"items": [{"prompt_ids": "1 2", "response_ids": []}]}', '{"items": [{"prompt_ids": {"a": 1}, "response_ids": []}]}',
             '{"items": [{"prompt_ids": [[1]], "response_ids": []}]}', '{"items": [{"prompt_ids": [true], "response_ids": []}]}',
             '{"items": [{"prompt_ids": [null], "response_ids": []}]}', '{"items": [{"prompt_ids": ["1"], "response_ids": []}]}',
             '{"items": [{"prompt_ids": [1.5], "response_ids": []}]}', '{"items": [{"prompt_ids": [1], "response_ids": null}]}',
             '{"items": [{"prompt_ids": [1]}]}', '{"items": [{"response_ids": [1]}]}',
             '{"items": [{"prompt_ids": [9223372036854775807], "response_ids": []}]}',
             body(id=5), body(id="has space"), body(id="x" * 200), body(id=""), body(client=["a"]), body(client="naïve"),
             body(deadline_ms="soon"), body(deadline_ms=0), body(deadline_ms=-5), body(deadline_ms=10**12)]
    for i, text in enumerate(wrong):
        add(f"wrong shape {i}", http(text), "bad_request")
    add("bad client header", http(valid, headers=["X-SRPPO-Client: has space"]), "bad_request")
    # Token ids outside the vocabulary, negative ones included.
    for i, token in enumerate([-1, -2, -100, -2**31, VOCAB, VOCAB + 1, 1000, 2**31, 2**40, 2**53]):
        add(f"token {token} in prompt", http(json.dumps({"items": [item(prompt=(1, token))]})), "invalid_token")
        if i < 4:
            add(f"token {token} in response", http(json.dumps({"items": [item(response=(3, token))]})), "invalid_token")
    # Empty.
    add("no items", http('{"items": []}'), "no_items")
    add("empty prompt", http(json.dumps({"items": [item(prompt=())]})), "empty_prompt")
    add("empty prompt second item", http(json.dumps({"items": [item(), item(prompt=())]})), "empty_prompt")
    # Sizes: items, tokens, context, body.
    add("9 items", http(json.dumps({"items": [item()] * 9})), "too_many_items")
    add("100 items", http(json.dumps({"items": [item()] * 100})), "too_many_items")
    add("300 tokens", http(json.dumps({"items": [item(prompt=[1] * 100)] * 3})), "too_many_tokens")
    add("longer than the context", http(json.dumps({"items": [item(prompt=[1] * 100, response=[3] * 40)]})), "too_long")
    add("declared 10 MB body", b"POST /v1/score HTTP/1.1\r\nHost: srppod\r\nContent-Length: 10000000\r\n\r\n", "body_too_large")
    add("70 kB body", http('{"items": [' + ",".join([json.dumps(item())] * 3000) + "]}"), "body_too_large")
    chunk = b'{"items": [' + b" " * 70000
    add("chunked 70 kB body",
        b"POST /v1/score HTTP/1.1\r\nHost: srppod\r\nTransfer-Encoding: chunked\r\n\r\n" + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n",
        "body_too_large")
    # Nesting.
    for depth in [9, 20, 100, 1000, 30000]:
        add(f"nested {depth}", http("[" * depth + "]" * depth), "too_deep")
    add("nested objects", http('{"a":' * 12 + "1" + "}" * 12), "too_deep")
    add("nested token list", http('{"items": [{"prompt_ids": [[[[[[[[1]]]]]]]], "response_ids": []}]}'), "too_deep")
    add("unterminated nesting", http("[" * 5000), "too_deep")
    # Text items wait for the tokenizer.
    add("text item", http(json.dumps({"items": [{"prompt": "Hi", "response": "Hello"}]})), "text_unsupported")
    add("chat item", http(json.dumps({"items": [{"messages": [{"role": "user", "content": "Hi"}], "response": "Hello"}]})),
        "text_unsupported")
    # The tokenizer endpoints and OpenRLHF's: this daemon (tiny random models) has no tokenizer.
    add("tokenize without a tokenizer", http('{"text": "Hi"}', path="/v1/tokenize"), "text_unsupported")
    add("detokenize without a tokenizer", http('{"ids": [1]}', path="/v1/detokenize"), "text_unsupported")
    add("get_reward without a tokenizer", http('{"query": ["a"], "prompts": ["a"], "labels": [""]}', path="/get_reward"),
        "text_unsupported")
    add("get_reward bad json", http('{"query": [', path="/get_reward"), "bad_json")
    add("get_reward wrong type", http('{"query": "a"}', path="/get_reward"), "bad_request")
    add("get_reward nested", http("[" * 50 + "]" * 50, path="/get_reward"), "too_deep")
    add("GET get_reward", http("", method="GET", path="/get_reward"), "method_not_allowed")
    add("GET tokenize", http("", method="GET", path="/v1/tokenize"), "method_not_allowed")
    # Not HTTP/1.1.
    for i, raw in enumerate([b"GARBAGE\r\n\r\n", b"POST /v1/score HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                             b"POST /v1/score HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
                             b"POST /v1/score HTTP/1.1\r\nNo colon here\r\n\r\n",
                             b"POST /v1/score HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                             b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 100_000 + b"\r\n\r\n",
                             b"GET /v1/he alth HTTP/1.1\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n"]):
        add(f"bad http {i}", raw, "bad_http")
    # Paths and methods.
    add("GET score", http("", method="GET"), "method_not_allowed")
    add("POST models", http("{}", path="/v1/models"), "method_not_allowed")
    add("DELETE health", http("", method="DELETE", path="/v1/health"), "method_not_allowed")
    add("unknown path", http("", method="GET", path="/nope"), "not_found")
    add("score sub-path", http(valid, path="/v1/score/x"), "not_found")
    # Slow or stalled senders (the daemon runs with --request-read-timeout 1).
    raw = http(valid)
    add("slow header", [raw[i:i + 1] for i in range(0, 40)], "request_timeout", 0.1)
    add("stalled header", raw[:30], "request_timeout")
    add("stalled body", raw[:-5], "request_timeout")
    add("slow body", [raw[:-20]] + [raw[i:i + 1] for i in range(len(raw) - 20, len(raw))], "request_timeout", 0.1)
    return cases


def test_malformed_requests_get_typed_errors_and_the_daemon_stays_healthy(tiny, srppo_bin):
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", "--max-items", "8", "--max-request-tokens", "256", "--max-body-bytes", "65536",
                    "--request-read-timeout", "1", socket_path=path)
    cases = malformed_cases()
    assert len(cases) >= 100
    try:
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            outcomes = list(pool.map(lambda case: raw_exchange(path, case[1], pause=case[3]), cases))
        # A reused id is an error too (id_conflict).
        score(path, [item()], id="dup", client="c")
        status, _, conflict = call(path, "POST", "/v1/score", {"items": [item(prompt=(1, 9))], "id": "dup", "client": "c"})
        outcomes.append((status, conflict, b""))
        cases.append(("reused id", b"", "id_conflict", None))

        failures = []
        for (name, _, expected, _), (status, answer, raw) in zip(cases, outcomes):
            code = answer["error"]["code"] if answer and "error" in answer else None
            if code != expected or status != STATUS[expected] or not answer["error"]["message"]:
                failures.append((name, expected, status, answer, raw[:200]))
        assert failures == [], "\n".join(map(str, failures))

        # Still healthy: alive, ready, and scoring exactly as before.
        assert daemon.process.poll() is None
        assert call(path, "GET", "/v1/health")[0] == 200
        assert call(path, "GET", "/v1/ready")[0] == 200
        items = random_items(5, seed=9)
        reference = reward_in_process(srppo_bin, tiny / "pt", tiny / "sft", items, tiny)
        assert all(same(r, ref) for r, ref in zip(score(path, items)["results"], reference))
        _, _, metrics = call(path, "GET", "/metrics")
        counted = {re.search(r'code="(\w+)"', line)[1]: int(float(line.rsplit(" ", 1)[1]))
                   for line in metrics.splitlines() if line.startswith("srppod_errors_total{")}
        expected = {code: sum(1 for case in cases if case[2] == code) for code in counted}
        assert counted == expected
    finally:
        assert daemon.stop() == 0


STATUS = {"bad_http": 400, "bad_json": 400, "bad_request": 400, "too_deep": 400, "no_items": 400, "empty_prompt": 400,
          "invalid_token": 400, "too_long": 400, "text_unsupported": 400, "permission_denied": 403, "not_found": 404,
          "method_not_allowed": 405, "request_timeout": 408, "id_conflict": 409, "body_too_large": 413,
          "too_many_items": 413, "too_many_tokens": 413, "busy": 503, "deadline_exceeded": 504}


# --- Back-pressure, deadlines, disconnected clients -----------------------------------------------

def test_full_queue_deadlines_and_disconnected_clients(tmp_path, smollm2):
    """One long request keeps the scheduler busy (SmolLM2, 2048 tokens: seconds of work even on an
    idle machine) while others queue behind it:
    a request that would overflow the queue gets 503 busy with Retry-After; one whose deadline passes
    while queued gets 504 deadline_exceeded; the items of a client that hangs up are dropped unscored.
    Every other request is answered."""
    path = str(tmp_path / "http.sock")
    daemon = Daemon(smollm2, smollm2, "--max-queue-tokens", "2048", "--max-request-tokens", "2048", socket_path=path)
    rng = random.Random(5)
    tokens = lambda n: [rng.randrange(1, 49152) for _ in range(n)]
    long_request = {"items": [{"prompt_ids": tokens(1024), "response_ids": tokens(1024)}], "client": "long"}
    queued = {"items": [{"prompt_ids": tokens(150), "response_ids": tokens(150)}], "client": "queued"}
    results = {}

    def send(name, request):
        results[name] = call(path, "POST", "/v1/score", request)

    try:
        first = threading.Thread(target=send, args=("long", long_request))
        first.start()
        while call(path, "GET", "/v1/ready")[2]["running_tokens"] != 2048:
            time.sleep(0.02)   # until the long request is being computed
        second = threading.Thread(target=send, args=("queued", queued))
        second.start()
        while call(path, "GET", "/v1/ready")[2]["queue_tokens"] < 300:
            time.sleep(0.02)
        # 300 queued + 1800 > 2048.
        status, headers, busy = call(path, "POST", "/v1/score", {"items": [{"prompt_ids": tokens(450), "response_ids": tokens(450)}] * 2})
        assert status == 503 and busy["error"]["code"] == "busy"
        assert int(headers["retry-after"]) >= 1 and busy["error"]["retry_after_s"] >= 1

        # A client that sends 10 items and hangs up before the answer.
        gone = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        gone.connect(path)
        payload = json.dumps({"items": [{"prompt_ids": [1, 2, 3, 4], "response_ids": [5, 6, 7, 8]}] * 10, "client": "gone"}).encode()
        gone.sendall(b"POST /v1/score HTTP/1.1\r\nHost: srppod\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload)
        while call(path, "GET", "/v1/ready")[2]["queue_items"] < 11:
            time.sleep(0.02)
        gone.close()

        status, _, late = call(path, "POST", "/v1/score", {"items": [{"prompt_ids": [1, 2], "response_ids": [3]}], "deadline_ms": 50})
        assert status == 504 and late["error"]["code"] == "deadline_exceeded"
        first.join()
        second.join()
        assert results["long"][0] == 200 and results["queued"][0] == 200
        assert daemon.metric(path, "srppod_cancelled_items_total") == 11   # 10 of the client gone, 1 past its deadline
        assert daemon.metric(path, 'srppod_errors_total{code="busy"}') == 1
    finally:
        assert daemon.stop() == 0


def test_repeated_request_ids_are_answered_from_the_store(tiny):
    """A client that retries with the same id (as after a lost connection) gets the first answer,
    marked replayed, and nothing is computed twice; another client's equal id is its own request."""
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    try:
        items = random_items(4, seed=1)
        first = score(path, items, id="ppo-step-7", client="trainer-a")
        scored = daemon.metric(path, "srppod_tokens_scored_total")
        again = score(path, items, id="ppo-step-7", client="trainer-a")
        assert not first["replayed"] and again["replayed"]
        assert again["results"] == first["results"] and again["models"] == first["models"]
        assert daemon.metric(path, "srppod_tokens_scored_total") == scored
        assert daemon.metric(path, "srppod_replayed_total") == 1
        assert not score(path, items, id="ppo-step-7", client="trainer-b")["replayed"]
    finally:
        assert daemon.stop() == 0


# --- Access -----------------------------------------------------------------------------------------

CLIENT_SCRIPT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
body = json.dumps({"items": [{"prompt_ids": [1, 4], "response_ids": [5, 2]}]}).encode()
s.sendall(b"POST /v1/score HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.split(b"\\r\\n", 1)[0].split(b" ")[1].decode(), data.split(b"\\r\\n\\r\\n", 1)[1].decode())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_socket_mode_group_and_the_peer_allow_list(tiny):
    """The socket file gets the mode and group asked for; a peer of another uid is refused with 403
    permission_denied unless its uid is on the allow-list, and its credentials are logged."""
    # A folder the other user can reach (pytest's own temporary folders are private to this user).
    public = tempfile.mkdtemp(prefix="srppod-access-", dir="/tmp")
    os.chmod(public, 0o755)
    path = os.path.join(public, "http.sock")
    nobody = 65534

    def as_nobody():
        # The client script needs only the standard library: the system Python, which another user can run
        # (the test's own interpreter may live under a home folder that user cannot enter).
        python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
        out = subprocess.run([python, "-c", CLIENT_SCRIPT, path], user=nobody, group=nobody, extra_groups=[], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        status, body = out.stdout.split(" ", 1)
        return int(status), json.loads(body)

    daemon = Daemon(tiny / "pt", tiny / "sft", "--socket-mode", "0666", "--socket-group", str(nobody), "--allow-uid", "4242",
                    socket_path=path)
    try:
        info = os.stat(path)
        assert (info.st_mode & 0o777, info.st_gid) == (0o666, nobody)
        status, answer = as_nobody()
        assert status == 403 and answer["error"]["code"] == "permission_denied"
        assert call(path, "GET", "/v1/health")[0] == 200   # probes stay open; this process is root, the daemon's own uid
    finally:
        assert daemon.stop() == 0
    assert any("refused a peer" in line and f"uid {nobody}" in line for line in daemon.stderr_lines)

    daemon = Daemon(tiny / "pt", tiny / "sft", "--socket-mode", "0660", "--socket-group", str(nobody), "--allow-uid", str(nobody),
                    socket_path=path)
    try:
        assert os.stat(path).st_mode & 0o777 == 0o660
        status, answer = as_nobody()   # allowed by the group's socket permissions and the allow-list
        assert status == 200 and len(answer["results"]) == 1
    finally:
        assert daemon.stop() == 0
    assert any("new client" in line and f"uid={nobody}" in line for line in daemon.stderr_lines)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tcp_only_when_configured_and_on_loopback(tiny):
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    try:
        assert set(daemon.events[0]["sockets"]) == {"http"}
    finally:
        assert daemon.stop() == 0
    port = free_port()
    daemon = Daemon(tiny / "pt", tiny / "sft", "--tcp-port", str(port), socket_path=path)
    try:
        assert daemon.events[0]["sockets"]["tcp"] == f"127.0.0.1:{port}"
        listening = [line.split() for line in open("/proc/net/tcp").read().splitlines()[1:]]
        assert [row[1] for row in listening if row[1].endswith(f":{port:04X}") and row[3] == "0A"] == [f"0100007F:{port:04X}"]
        import http.client
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/v1/score", body=json.dumps({"items": [item()]}))
        answer = json.loads(connection.getresponse().read())
        assert answer["client"] == "tcp" and len(answer["results"]) == 1
    finally:
        assert daemon.stop() == 0


# --- Observability ------------------------------------------------------------------------------------

def test_metrics_are_valid_prometheus_text(tiny):
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    try:
        for i in range(3):
            score(path, random_items(3, seed=i), client=f"m{i}")
        call(path, "POST", "/v1/score", {"items": []})
        status, headers, text = call(path, "GET", "/metrics")
    finally:
        assert daemon.stop() == 0
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    sample = re.compile(r'^([a-z_][a-z0-9_]*)(\{([a-z_][a-z0-9_]*="[^"]*",?)+\})? (-?[0-9.e+-]+|\+Inf)$')
    families, values = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            families[name] = kind
        elif not line.startswith("# HELP "):
            match = sample.match(line)
            assert match, line
            values[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    for name in ["srppod_requests_total", "srppod_errors_total", "srppod_score_request_seconds", "srppod_batch_items",
                 "srppod_batch_tokens", "srppod_tokens_per_second", "srppod_queue_items", "srppod_queue_tokens", "srppod_model_info"]:
        assert name in families
    assert values['srppod_requests_total{endpoint="/v1/score",status="200"}'] == 3
    assert values['srppod_errors_total{code="no_items"}'] == 1
    assert values['srppod_score_request_seconds_bucket{le="+Inf"}'] == values["srppod_score_request_seconds_count"] == 3
    buckets = [v for k, v in values.items() if k.startswith("srppod_batch_items_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == values["srppod_batch_items_count"] >= 1
    assert values["srppod_tokens_scored_total"] > 0 and values["srppod_tokens_per_second"] > 0


# --- End to end with the real model -------------------------------------------------------------------

def test_srppo_reward_through_the_daemon_equals_in_process_and_one_image_gives_zero(tmp_path, smollm2, srppo_bin):
    """SmolLM2 as both PT and SFT: srppod serves one image, and `srppo reward --daemon` writes the same
    bytes as `srppo reward` loading the models itself; every reward is exactly 0, and the log-probs
    are `srppo score`'s."""
    path = str(tmp_path / "http.sock")
    pairs = [{"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]},
             {"prompt_ids": [1], "response_ids": [504, 3458, 282, 4649, 314, 2]},
             {"prompt_ids": [1, 504, 3458, 282, 4649, 314, 253, 1345, 30], "response_ids": [2]},
             {"prompt_ids": [1, 504], "response_ids": [3458, 282]}]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    daemon = Daemon(smollm2, smollm2, socket_path=path)
    try:
        ready = daemon.events[-1]
        assert ready["models"][0]["sha256"] == ready["models"][1]["sha256"]
        through = subprocess.run([srppo_bin, "reward", "--daemon", path, "--input", str(tmp_path / "pairs.jsonl")],
                                 capture_output=True, text=True, check=True).stdout
    finally:
        assert daemon.stop() == 0
    local = subprocess.run([srppo_bin, "reward", "--pt", smollm2, "--sft", smollm2, "--input", str(tmp_path / "pairs.jsonl")],
                           capture_output=True, text=True, check=True).stdout
    assert through == local
    scored = subprocess.run([srppo_bin, "score", "--model", smollm2, "--input", str(tmp_path / "pairs.jsonl")],
                            capture_output=True, text=True, check=True).stdout
    for line, single in zip(through.splitlines(), scored.splitlines()):
        row, reference = json.loads(line), json.loads(single)
        assert row["reward"] == 0.0
        assert row["pt_logprobs"] == row["sft_logprobs"] == reference["logprobs"]
    assert [json.loads(line)["ends_with_eos"] for line in through.splitlines()] == [True, True, True, False]
