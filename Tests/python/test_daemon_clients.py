"""Clients of srppod in other languages, against a real daemon process: the Python package
(clients/python: typed errors, retries with idempotent ids, timeouts, text/chat scoring, tokenize,
weight images received by fd and read without copying), agreement with the Swift client
(`srppo reward --daemon`), OpenRLHF's remote reward request sent exactly as OpenRLHF sends it, the
unit files under `systemd-analyze`, and the example scripts."""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

import srppo_client
from srppo_client import Client
from srppod_harness import ROOT, Daemon, srppod_bin

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


VOCAB = 49152   # SmolLM2's, so the tiny random models can use its tokenizer (--tokenizer)


def bits(values):
    return np.asarray(values, dtype=np.float32).view(np.uint32).tolist()


def test_python_client_scores_and_raises_typed_errors(tiny):
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", "--max-items", "4", socket_path=path)
    try:
        with Client(path, client_name="py-test", retry_budget=2) as client:
            assert client.health()["status"] == "ok"
            assert client.ready()["ready"] is True
            models = client.models()
            assert [m["role"] for m in models["models"]] == ["pt", "sft"] and "tokenizer" not in models
            result = client.score_ids([1, 4, 7], [5, 9, 2])
            assert result["n"] == 3 and result["truncated"] is False
            ratios = np.float32(result["sft_logprobs"]).astype(np.float64) - np.float32(result["pt_logprobs"]).astype(np.float64)
            assert result["reward"] == sum(ratios.tolist())
            first = client.score([{"prompt_ids": [1, 3], "response_ids": [4]}], request_id="step-1")
            again = client.score([{"prompt_ids": [1, 3], "response_ids": [4]}], request_id="step-1")
            assert not first["replayed"] and again["replayed"] and again["results"] == first["results"]
            assert first["client"] == "py-test"
            assert "srppod_requests_total" in client.metrics()

            expected = [
                (lambda: client.score_ids([1, 99], [2]), srppo_client.InvalidToken, "items.0.prompt_ids.1"),
                (lambda: client.score_ids([1], [-1]), srppo_client.InvalidToken, "items.0.response_ids.0"),
                (lambda: client.score_ids([], [2]), srppo_client.EmptyPrompt, "items.0.prompt_ids"),
                (lambda: client.score([]), srppo_client.NoItems, "items"),
                (lambda: client.score([{"prompt_ids": [1], "response_ids": [2]}] * 5), srppo_client.TooManyItems, "items"),
                (lambda: client.score_ids([1] * 100, [3] * 40), srppo_client.TooLong, "items.0"),
                (lambda: client.score_text("Hi", "Hello"), srppo_client.TextUnsupported, "items.0"),
                (lambda: client.tokenize("Hi"), srppo_client.TextUnsupported, None),
                (lambda: client.score([{"prompt_ids": [1, 3], "response_ids": [5]}], request_id="step-1"),
                 srppo_client.IdConflict, "id"),
                (lambda: client.score([{"prompt_ids": "1"}]), srppo_client.BadRequest, "items.0.prompt_ids"),
                (lambda: client.score([{"prompt_ids": [1], "response_ids": [2]}], request_id="no spaces"),
                 srppo_client.BadRequest, "id"),
                (lambda: client.score([{"prompt_ids": [1], "response_ids": [2]}], deadline_ms=0), srppo_client.BadRequest,
                 "deadline_ms"),
                (lambda: client._call("GET", "/v1/nothing"), srppo_client.NotFound, None),
                (lambda: client._call("GET", "/v1/score"), srppo_client.MethodNotAllowed, None),
            ]
            for call, cls, field in expected:
                with pytest.raises(cls) as caught:
                    call()
                assert isinstance(caught.value, srppo_client.ApiError) and caught.value.code == cls.code
                assert caught.value.field == field and caught.value.message and caught.value.status >= 400
            assert set(srppo_client.ERRORS) == {"bad_http", "bad_json", "bad_request", "too_deep", "no_items", "empty_prompt",
                                                "invalid_token", "too_long", "text_unsupported", "body_too_large",
                                                "too_many_items", "too_many_tokens", "permission_denied", "not_found",
                                                "method_not_allowed", "request_timeout", "id_conflict", "busy", "not_ready",
                                                "shutting_down", "deadline_exceeded", "internal"}
            # Still the same connection-level health after every error.
            assert client.score_ids([1, 4, 7], [5, 9, 2]) == result
    finally:
        assert daemon.stop() == 0


def test_error_codes_match_the_swift_definition():
    """Every code in WireProtocol's ErrorCode has its exception class, and no other."""
    source = (ROOT / "Sources/WireProtocol/ErrorMessages.swift").read_text()
    cases = re.search(r"enum ErrorCode[^{]*\{(.*?)\n    public var httpStatus", source, re.S)[1]
    codes = set()
    for name, raw in re.findall(r"case `?(\w+)`?(?: = \"(\w+)\")?", cases):
        codes.add(raw or name)
    assert codes == set(srppo_client.ERRORS)


def test_retries_timeouts_and_idempotent_ids(tiny):
    """A daemon that is not there yet is retried until it is; a daemon that never answers raises
    Timeout; a request sent again with its id (what a retry does) is answered from the daemon's store,
    not computed again."""
    path = str(tiny / "http.sock")
    started = {}
    starter = threading.Timer(1.0, lambda: started.setdefault("daemon", Daemon(tiny / "pt", tiny / "sft", socket_path=path)))
    starter.start()
    try:
        client = Client(path, client_name="retrier", retry_budget=60)
        begin = time.monotonic()
        result = client.score_ids([1, 4], [5, 2])
        assert result["n"] == 2 and time.monotonic() - begin >= 0.9
        starter.join()
        daemon = started["daemon"]
        scored = daemon.metric(path, "srppod_tokens_scored_total")
        answer = client.score([{"prompt_ids": [1, 4, 4], "response_ids": [6]}], request_id="lost-1")
        retried = client.score([{"prompt_ids": [1, 4, 4], "response_ids": [6]}], request_id="lost-1")
        assert retried["replayed"] and retried["results"] == answer["results"]
        assert daemon.metric(path, "srppod_tokens_scored_total") == scored + 4
    finally:
        starter.join()
        if "daemon" in started:
            assert started["daemon"].stop() == 0

    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(tiny / "silent.sock"))
    silent.listen(8)     # accepts connections (backlog) and never answers
    try:
        client = Client(str(tiny / "silent.sock"), timeout=0.3, retry_budget=0)
        begin = time.monotonic()
        with pytest.raises(srppo_client.Timeout):
            client.health()
        assert time.monotonic() - begin < 5
        with pytest.raises(srppo_client.ConnectionFailed):
            Client(str(tiny / "absent.sock"), retry_budget=0).health()
    finally:
        silent.close()


def test_image_by_fd_equals_the_daemons_tensors(tiny):
    """The Python client receives the SFT image's sealed memfd by SCM_RIGHTS; its bytes hash to the
    sha256 the daemon scores with, and every tensor, as a memoryview and as a NumPy array over the
    same shared mapping (no copy), equals the checkpoint's values."""
    path, images = str(tiny / "http.sock"), str(tiny / "images.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path, image_socket=images)
    try:
        served = {m["role"]: m["identity"]["sha256"] for m in Client(path).models()["models"]}
        listed = srppo_client.list_images(images)
        assert {image["name"]: image["sha256"] for image in listed} == served
        for role in ["pt", "sft"]:
            reference = load_file(str(tiny / role / "model.safetensors"))
            with srppo_client.attach(images, role, sha256=served[role]) as image:
                assert image.sha256 == served[role]
                assert hashlib.sha256(image.data()).hexdigest() == served[role]
                assert image.seals & srppo_client.images.F_SEAL_WRITE
                names = image.tensor_names
                assert set(names) == set(reference)
                for name in names:
                    array = image.array(name)
                    view = image.tensor(name)
                    assert view.format == "f" and view.readonly and list(view.shape) == list(reference[name].shape)
                    assert not array.flags.writeable and not array.flags.owndata
                    assert np.array_equal(array, reference[name]) and np.array_equal(np.asarray(view), reference[name])
                with pytest.raises(TypeError):
                    view[(0,) * view.ndim] = 1.0
                del array, view
        with pytest.raises(srppo_client.ImageError) as caught:
            srppo_client.attach(images, "sft", sha256="0" * 64)
        assert caught.value.code == "hash_mismatch"
        with pytest.raises(srppo_client.ImageError) as caught:
            srppo_client.attach(images, "nope")
        assert caught.value.code == "unknown_image"
    finally:
        assert daemon.stop() == 0


TEXT_ITEMS = [
    {"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]},
    {"prompt_ids": [1, 504], "response_ids": [3458, 282]},
    {"prompt": "What is the capital of France?", "response": "Paris."},
    {"messages": [{"role": "user", "content": "Say hi"}], "response": "Hi there!"},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                  {"role": "assistant", "content": "4"}]},
]


def test_python_and_swift_clients_get_identical_rewards(tiny_text, smollm2, srppo_bin):
    """The same requests (ids, plain text, chat) through the Python client and through the Swift
    client (`srppo reward --daemon`) get identical log-probs (float32 bits), rewards and truncation."""
    path = str(tiny_text / "http.sock")
    (tiny_text / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in TEXT_ITEMS))
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, socket_path=path)
    try:
        python = Client(path, client_name="python").score(TEXT_ITEMS)["results"]
        swift = subprocess.run([srppo_bin, "reward", "--daemon", path, "--client", "swift", "--input", str(tiny_text / "items.jsonl")],
                               capture_output=True, text=True, check=True).stdout
    finally:
        assert daemon.stop() == 0
    swift = [json.loads(line) for line in swift.splitlines()]
    assert len(python) == len(swift) == len(TEXT_ITEMS)
    for p, s in zip(python, swift):
        assert bits(p["pt_logprobs"]) == bits(s["pt_logprobs"]) and bits(p["sft_logprobs"]) == bits(s["sft_logprobs"])
        assert p["reward"] == s["reward"] and p["truncated"] == (not s["ends_with_eos"]) and p["n"] == s["n"]
    assert any(p["reward"] != 0 for p in python)
    # Text items come back with the ids the daemon encoded them to.
    assert python[2]["response_ids"][-1] == 2 and "response_ids" not in python[0]


def test_text_requests_use_the_rule_of_srppo_score(tmp_path, smollm2, srppo_bin):
    """SmolLM2 as PT and SFT: text and chat items scored by the daemon give the log-probs (and ids)
    that `srppo reward` loading the model in-process gives for the same lines; /v1/tokenize and
    /v1/detokenize agree with `srppo tokenize`."""
    path = str(tmp_path / "http.sock")
    items = TEXT_ITEMS[2:]
    (tmp_path / "items.jsonl").write_text("".join(json.dumps(item) + "\n" for item in items))
    daemon = Daemon(smollm2, smollm2, socket_path=path)
    try:
        client = Client(path)
        assert client.models()["tokenizer"]["chat_template"] is True
        served = client.score(items)["results"]
        tokens = client.tokenize("Hello world<|im_end|>")
        chat = client.tokenize(messages=[{"role": "user", "content": "Hi"}], add_generation_prompt=True)
        text = client.detokenize([19556, 905, 2])
        with pytest.raises(srppo_client.InvalidToken):
            client.detokenize([VOCAB])
        with pytest.raises(srppo_client.BadRequest):
            client.score([{"prompt": "a", "messages": [{"role": "user", "content": "b"}], "response": "c"}])
        with pytest.raises(srppo_client.BadRequest):
            client.score([{"messages": [{"role": "user", "content": "b"}]}])   # no response, no final assistant message
    finally:
        assert daemon.stop() == 0
    local = subprocess.run([srppo_bin, "reward", "--pt", smollm2, "--sft", smollm2, "--input", str(tmp_path / "items.jsonl")],
                           capture_output=True, text=True, check=True).stdout
    for result, line in zip(served, local.splitlines()):
        reference = json.loads(line)
        assert bits(result["pt_logprobs"]) == bits(reference["pt_logprobs"]) and result["reward"] == 0.0
    reference = subprocess.run([srppo_bin, "tokenize", "--model", smollm2], input="Hello world<|im_end|>\n",
                               capture_output=True, text=True, check=True).stdout
    assert tokens["ids"] == json.loads(reference)["ids"]
    assert chat["text"].endswith("<|im_start|>assistant\n") and text == "Hello world<|im_end|>"


def openrlhf_request_api(url, data, score_key="rewards"):
    """OpenRLHF's openrlhf/utils/remote_rm_utils.py `request_api_wrapper`, as trainers call it."""
    import requests
    headers = {"Content-Type": "application/json"}
    response = requests.post(url=url, json=data, headers=headers, timeout=180)
    response.raise_for_status()
    response = response.json()
    assert score_key in response, f"{score_key} not in {response}"
    return response


def test_openrlhf_get_reward_over_loopback_tcp(tiny_text, smollm2):
    """`POST /get_reward` with exactly the body OpenRLHF's remote reward client sends
    ({"query", "prompts", "labels"}, queries decoded with special tokens and padding), over the
    optional loopback TCP listener: rewards are the coherent rewards of the responses split from the
    queries (minus the truncation penalty for responses cut off before EOS), equal to /v1/score of
    the same prompt and response."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port),
                    "--truncation-penalty", "2.5", socket_path=path)
    try:
        client = Client(path)
        prompts = [client.tokenize(messages=[{"role": "user", "content": question}], add_generation_prompt=True)["text"]
                   for question in ["What is 2+2?", "Name a colour.", "Say something."]]
        responses = ["4<|im_end|>", "Blue.<|im_end|><|im_end|><|im_end|>", "Something that goes on and on"]
        queries = ["<|im_end|><|im_end|>" + prompts[0] + responses[0], prompts[1] + responses[1], prompts[2] + responses[2]]
        labels = ["4", "", None]
        answer = openrlhf_request_api(f"http://127.0.0.1:{port}/get_reward",
                                      {"query": queries, "prompts": prompts, "labels": labels})
        reference = client.score([{"prompt_ids": client.tokenize(p)["ids"],
                                   "response_ids": client.tokenize(r.replace("<|im_end|><|im_end|><|im_end|>", "<|im_end|>"))["ids"]}
                                  for p, r in zip(prompts, responses)])["results"]
        # Without "prompts": split at the chat template's assistant generation prompt.
        unprompted = Client(f"http://127.0.0.1:{port}").get_reward(queries[1:2])
        with pytest.raises(srppo_client.BadRequest):
            client.get_reward(["no prompt in here"], prompts=["<|im_start|>user"])
        with pytest.raises(srppo_client.BadRequest):
            client.get_reward(queries, prompts=prompts[:2])
    finally:
        assert daemon.stop() == 0
    assert set(answer) == {"rewards", "scores", "extra_logs"}
    assert answer["scores"] == [r["reward"] for r in reference]
    assert answer["rewards"] == [reference[0]["reward"], reference[1]["reward"], -2.5]
    assert answer["extra_logs"]["truncated"] == [0, 0, 1]
    assert answer["extra_logs"]["response_tokens"] == [r["n"] for r in reference]
    assert unprompted["scores"] == [reference[1]["reward"]]


def test_tcp_listener_is_loopback_only_unless_allowed(tiny):
    out = subprocess.run([srppod_bin(), "--pt", str(tiny / "pt"), "--sft", str(tiny / "sft"), "--socket", str(tiny / "x.sock"),
                          "--tcp-port", "8700", "--tcp-host", "0.0.0.0"], capture_output=True, text=True)
    assert out.returncode == 2 and "not a loopback address" in out.stderr


# --- Unit files ---------------------------------------------------------------------------------------

def test_unit_files_pass_systemd_analyze_verify_and_security(tmp_path):
    """`systemd-analyze verify` accepts the units (ExecStart pointed at the built daemon) and
    `systemd-analyze security --offline=yes` rates srppod.service's exposure at most 2.0."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing: scripts/setup.sh installs systemd")
        pytest.skip("systemd-analyze not installed")
    for unit in ["srppod.service", "srppod.socket", "srppod-images.socket"]:
        text = (ROOT / "systemd" / unit).read_text().replace("/usr/local/bin/srppod", srppod_bin())
        (tmp_path / unit).write_text(text)
    verify = subprocess.run(["systemd-analyze", "verify", "srppod.service", "srppod.socket", "srppod-images.socket"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", "srppod.service"],
                              cwd=tmp_path, capture_output=True, text=True)
    assert security.returncode == 0, security.stderr
    exposure = float(re.search(r"Overall exposure level for srppod.service: ([0-9.]+)", security.stdout)[1])
    assert exposure <= 2.0, security.stdout


# --- Examples -------------------------------------------------------------------------------------------

def test_examples_score_a_jsonl_file_and_serve_as_a_reward_function(tiny, tmp_path):
    path = str(tiny / "http.sock")
    rows = [{"prompt_ids": [1, 4, 7], "response_ids": [5, 9, 2]}, {"prompt_ids": [1, 3], "response_ids": [8, 8]}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    try:
        subprocess.run([sys.executable, str(ROOT / "examples/score_jsonl.py"), "--socket", path, str(tmp_path / "in.jsonl"),
                        str(tmp_path / "out.jsonl")], check=True, capture_output=True, text=True)
        out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        direct = Client(path).score(rows)["results"]
        assert [o["reward"] for o in out] == [d["reward"] for d in direct]
        assert [o["truncated"] for o in out] == [False, True]
        sys.path.insert(0, str(ROOT / "examples"))
        try:
            import reward_function
            function = reward_function.CoherentRewardFunction(path, truncation_penalty=1.0)
            rewards = function.from_ids([r["prompt_ids"] for r in rows], [r["response_ids"] for r in rows])
        finally:
            sys.path.remove(str(ROOT / "examples"))
        assert rewards == [direct[0]["reward"], -1.0]
    finally:
        assert daemon.stop() == 0
