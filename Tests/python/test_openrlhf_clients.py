"""srppod's `/get_reward` against what OpenRLHF's trainers actually send and do with the answer, and
a C client (examples/score.c, libcurl over the Unix socket), all against real srppod processes.

The OpenRLHF client code paths are reproduced here (written from reading OpenRLHF's source; none of
it is copied, and OpenRLHF itself, Ray and torch are not installed):

- v0.9 (`openrlhf/utils/remote_rm_utils.py`, `RemoteRewardModel.get_rewards`): the whole rollout
  batch's queries are cut into ceil(n / servers) slices, one per reward URL; each slice is POSTed
  with `requests.post(url, json={"query", "prompts", "labels"}, timeout=180)`, `raise_for_status()`,
  `.json()`, up to five tries 1 s apart, then an exception. The calls run concurrently (Ray tasks:
  threads here). `update_samples_with_rewards` then joins `torch.as_tensor(answer["rewards"])` of all
  answers with `torch.cat`, and the same for `scores` and each `extra_logs` key, taking the keys from
  the first answer.
- v0.11 (`openrlhf/utils/agent.py`, `SingleTurnAgentExecutor`): one sample per call; prompt ids are
  cut from the left to the prompt budget (`prompt_token_ids[-max_prompt_length:]`) before generating;
  the query is `decode(prompt_ids + action_ids, skip_special_tokens=False)`, the prompt the full,
  uncut prompt text; `_fetch_rewards_via_http` slices the one-query list across all reward URLs with
  aiohttp (one `ClientSession` per try, `raise_for_status()`, five tries 1 s apart, then
  RuntimeError) and keeps the first answer; the sample's reward is `torch.tensor([answer["rewards"]])`.
- torch is emulated by `emulated_tensor` (dtype inference of `torch.tensor`/`torch.as_tensor` for
  Python lists: all bools → bool, all ints → int64, any float → float32, empty → float32;
  `torch.cat` promotes bool < int64 < float32 over the non-empty parts) and `group_baseline` (the
  group-normalized advantage `(r - r.mean(-1)) / (r.std(-1) + 1e-9)` over `n_samples_per_prompt`
  samples, which torch refuses for an integer tensor: "mean(): could not infer output dtype ... Got:
  Long").

The daemon is scored with tiny random models that share SmolLM2's vocabulary and use its tokenizer
(--tokenizer), so every value can be checked against `/v1/score` of the same prompt and response.
"""
import asyncio
import json
import math
import os
import pathlib
import socket
import subprocess
import threading
import time

import aiohttp
import pytest
import requests

from srppo_client import Client
from srppod_harness import ROOT, Daemon, srppod_bin

VOCAB = 49152


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- torch, emulated ------------------------------------------------------------------------------

class EmulatedTensor:
    """A 1-D tensor's values and the dtype torch would give them."""

    def __init__(self, values, dtype):
        self.values, self.dtype = list(values), dtype

    def __len__(self):
        return len(self.values)


def _flatten(values):
    for v in values:
        if isinstance(v, list):
            yield from _flatten(v)
        else:
            yield v


def emulated_tensor(values):
    """torch.tensor(values) / torch.as_tensor(values) for a (nested) Python list."""
    flat = list(_flatten(values))
    if not flat:
        return EmulatedTensor(flat, "float32")
    if all(type(v) is bool for v in flat):
        return EmulatedTensor(flat, "bool")
    if any(type(v) is float for v in flat):
        return EmulatedTensor([float(v) for v in flat], "float32")
    assert all(type(v) is int for v in flat), flat
    return EmulatedTensor(flat, "int64")


def emulated_cat(tensors):
    rank = {"bool": 0, "int64": 1, "float32": 2}
    parts = [t for t in tensors if len(t)]
    dtype = max((t.dtype for t in parts), key=rank.get, default="float32")
    return EmulatedTensor([v for t in parts for v in t.values], dtype)


def group_baseline(rewards, n_samples_per_prompt):
    """OpenRLHF's group_norm shaping; torch refuses mean/std of an integer tensor."""
    if rewards.dtype != "float32":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point or complex "
                           f"dtype. Got: {'Long' if rewards.dtype == 'int64' else 'Bool'}")
    out = []
    for g in range(0, len(rewards), n_samples_per_prompt):
        group = rewards.values[g:g + n_samples_per_prompt]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((r - mean) ** 2 for r in group) / (len(group) - 1))
        out += [(r - mean) / (std + 1e-9) for r in group]
    return out


# --- OpenRLHF's clients, reproduced ---------------------------------------------------------------

def v09_post(url, data, tries=5):
    for _ in range(tries):
        try:
            response = requests.post(url=url, json=data, headers={"Content-Type": "application/json"}, timeout=180)
            response.raise_for_status()
            return response.json()
        except Exception:   # OpenRLHF logs and retries every failure
            time.sleep(1)
    raise Exception(f"Request error for {tries} times")


def v09_get_rewards(urls, queries, prompts, labels):
    """RemoteRewardModel.get_rewards: slices across URLs, posted concurrently; answers in URL order."""
    size = (len(queries) + len(urls) - 1) // len(urls)
    answers, errors = [None] * len(urls), []

    def call(i):
        try:
            part = slice(i * size, min((i + 1) * size, len(queries)))
            answers[i] = v09_post(urls[i], {"query": queries[part], "prompts": prompts[part], "labels": labels[part]})
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return answers


def v09_update_samples(answers):
    """update_samples_with_rewards: rewards, scores and each extra_logs key joined across answers."""
    rewards = emulated_cat([emulated_tensor(a["rewards"]) for a in answers])
    scores = emulated_cat([emulated_tensor(a["scores"]) for a in answers])
    logs = {key: emulated_cat([emulated_tensor(a["extra_logs"][key]) for a in answers]) for key in answers[0]["extra_logs"]}
    return rewards, scores, logs


async def v011_fetch_rewards_via_http(urls, queries, prompts, labels):
    size = (len(queries) + len(urls) - 1) // len(urls)
    timeout = aiohttp.ClientTimeout(total=180)

    async def post(url, data, tries=5):
        for _ in range(tries):
            try:
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    async with session.post(url, json=data) as response:
                        response.raise_for_status()
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
        raise RuntimeError(f"Request error for {tries} times")

    tasks = []
    for i, url in enumerate(urls):
        part = slice(i * size, min((i + 1) * size, len(queries)))
        tasks.append(asyncio.create_task(post(url, {"query": queries[part], "prompts": prompts[part], "labels": labels[part]})))
    return await asyncio.gather(*tasks)


async def v011_reward_of_one_sample(urls, query, prompt, label):
    """SingleTurnAgentExecutor.execute's reward step; None when the fetch failed (logged and dropped)."""
    try:
        answers = await v011_fetch_rewards_via_http(urls, [query], [prompt], [label])
    except Exception:
        return None, None
    info = answers[0]
    return emulated_tensor([info.get("rewards")]), info.get("extra_logs") or {}


# --- fixtures and helpers -------------------------------------------------------------------------

def chat_prompt(client, question):
    return client.tokenize(messages=[{"role": "user", "content": question}], add_generation_prompt=True)["text"]


def reference(client, pairs):
    """/v1/score of (prompt text, response text) pairs, by ids: the values /get_reward must give."""
    return client.score([{"prompt_ids": client.tokenize(p)["ids"], "response_ids": client.tokenize(r)["ids"]} for p, r in pairs])["results"]


def batch(client, count, salt=""):
    """`count` OpenRLHF queries: chat prompts and responses, one in five cut off before <|im_end|>."""
    prompts = [chat_prompt(client, f"Question {salt}{i}: what is {i} plus {i}?") for i in range(count)]
    responses = [f"It is {2 * i}." + ("" if i % 5 == 4 else "<|im_end|>") for i in range(count)]
    return prompts, responses, [p + r for p, r in zip(prompts, responses)]


# --- 1. several reward URLs: empty slices --------------------------------------------------------

def test_v011_two_reward_urls_one_sample_per_call(tiny_text, smollm2):
    """v0.11 with two reward URLs and one sample per call: the second URL gets an empty slice and
    must answer 200 with empty lists (same extra_logs keys); each sample's reward is then the first
    answer's, equal to /v1/score of its prompt and response, a float32 tensor the group baseline takes."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        client = Client(path)
        prompts, responses, queries = batch(client, 4)
        urls = [f"http://127.0.0.1:{port}/get_reward", f"http://localhost:{port}/get_reward"]

        async def rollout():
            answers = await asyncio.gather(*[v011_fetch_rewards_via_http(urls, [q], [p], [None]) for q, p in zip(queries, prompts)])
            samples = await asyncio.gather(*[v011_reward_of_one_sample(urls, q, p, None) for q, p in zip(queries, prompts)])
            return answers, samples

        answers, samples = asyncio.run(rollout())
        expected = reference(client, zip(prompts, responses))
    finally:
        assert daemon.stop() == 0
    for first, second in answers:
        assert second == {"rewards": [], "scores": [], "extra_logs": {k: [] for k in first["extra_logs"]}}
        assert len(first["rewards"]) == 1
    assert [a[0]["scores"][0] for a in answers] == [r["reward"] for r in expected]
    rewards = [tensor for tensor, _ in samples]
    assert all(t is not None and t.dtype == "float32" for t in rewards)
    assert [t.values[0] for t in rewards] == [(-1.0 if r["truncated"] else r["reward"]) for r in expected]
    assert [logs["truncated"] for _, logs in samples] == [[1.0 if r["truncated"] else 0.0] for r in expected]
    shaped = group_baseline(emulated_cat(rewards), n_samples_per_prompt=2)
    assert len(shaped) == 4 and all(math.isfinite(v) for v in shaped)


# --- 2. whole-number rewards are floats -----------------------------------------------------------

def test_whole_number_rewards_decode_as_floats(tiny_text, smollm2):
    """PT = SFT: every coherent reward is exactly 0 and a cut-off response gets -1 (the penalty), all
    whole numbers. The body writes them 0.0 and -1.0, Python decodes floats, the emulated torch
    tensors of v0.9 (batch, torch.cat) and v0.11 (one sample) are float32, and the group baseline runs."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "pt", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        client = Client(path)
        prompts = [chat_prompt(client, q) for q in ["Hi", "Hello", "Hey", "Yo"]]
        queries = [prompts[0] + "Hi!<|im_end|>", prompts[1] + "Hello there", prompts[2] + "Hey.<|im_end|>", prompts[3] + "Yo"]
        url = f"http://127.0.0.1:{port}/get_reward"
        raw = requests.post(url, json={"query": queries, "prompts": prompts, "labels": [""] * 4}, timeout=60)
        answers = v09_get_rewards([url, url], queries, prompts, [""] * 4)
        single, _ = asyncio.run(v011_reward_of_one_sample([url], queries[1], prompts[1], ""))
    finally:
        assert daemon.stop() == 0
    assert raw.status_code == 200
    assert '"rewards":[0.0,-1.0,0.0,-1.0]' in raw.text and '"scores":[0.0,0.0,0.0,0.0]' in raw.text
    decoded = raw.json()
    assert all(type(v) is float for key in ("rewards", "scores") for v in decoded[key])
    assert all(type(v) is float for values in decoded["extra_logs"].values() for v in values)
    rewards, scores, logs = v09_update_samples(answers)
    assert rewards.dtype == scores.dtype == "float32" and rewards.values == [0.0, -1.0, 0.0, -1.0]
    assert logs["truncated"].values == [0.0, 1.0, 0.0, 1.0] and logs["prompt_truncated"].values == [0.0] * 4
    assert group_baseline(rewards, n_samples_per_prompt=2) == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)] * 2, abs=1e-6)
    assert single.dtype == "float32" and single.values == [-1.0]
    # What the old answer (`0`, `-1`) would have become: an int64 tensor the baseline refuses.
    with pytest.raises(RuntimeError, match="Got: Long"):
        group_baseline(emulated_tensor([0, -1, 0, -1]), n_samples_per_prompt=2)


# --- 3. whole rollout batches beyond the per-request limits --------------------------------------

def test_v09_rollout_batch_over_the_default_limits(tiny_text, smollm2):
    """A v0.9 rollout batch of 1100 queries over two URLs (550 per request, over the default
    max_items of 512) with default limits: both answered, every reward equal to /v1/score."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        client = Client(path)
        assert client.models()["limits"]["max_items"] == 512
        prompts, responses, queries = batch(client, 1100)
        url = f"http://127.0.0.1:{port}/get_reward"
        answers = v09_get_rewards([url, url], queries, prompts, [None] * 1100)
        expected = []
        for start in range(0, 1100, 500):
            expected += reference(client, list(zip(prompts, responses))[start:start + 500])
    finally:
        assert daemon.stop() == 0
    rewards, scores, logs = v09_update_samples(answers)
    assert [len(a["rewards"]) for a in answers] == [550, 550]
    assert rewards.dtype == "float32" and scores.values == [r["reward"] for r in expected]
    assert rewards.values == [(-1.0 if r["truncated"] else r["reward"]) for r in expected]
    assert logs["response_tokens"].values == [float(r["n"]) for r in expected]


def test_v09_batch_streams_through_a_full_queue_in_pieces(tiny_text, smollm2):
    """Tiny limits (8 items, 300 tokens per piece, a queue of 300 tokens) and two concurrent v0.9
    requests of 30 queries each: every piece of one request waits while the other's fills the queue
    instead of answering busy; both answers equal /v1/score. Past --max-reward-queries: 413
    too_many_items (OpenRLHF gives up after five tries)."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), "--max-items", "8",
                    "--max-request-tokens", "300", "--max-queue-tokens", "300", "--max-reward-queries", "40",
                    "--batch-tokens", "64", socket_path=path)
    try:
        client = Client(path)
        prompts, responses, queries = batch(client, 60, salt="streamed ")
        url = f"http://127.0.0.1:{port}/get_reward"
        answers = v09_get_rewards([url, url], queries, prompts, [None] * 60)
        too_many = requests.post(url, json={"query": queries[:41], "prompts": prompts[:41]}, timeout=60)
        expected = []
        for start in range(0, 60, 4):   # /v1/score requests within the tiny limits
            expected += reference(client, list(zip(prompts, responses))[start:start + 4])
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=60).text
    finally:
        assert daemon.stop() == 0
    rewards, scores, _ = v09_update_samples(answers)
    assert scores.values == [r["reward"] for r in expected]
    assert rewards.values == [(-1.0 if r["truncated"] else r["reward"]) for r in expected]
    assert too_many.status_code == 413 and too_many.json()["error"]["code"] == "too_many_items"
    assert 'srppod_errors_total{code="busy"} 0\n' in metrics   # no piece was refused for a full queue


# --- 4. left-truncated prompts --------------------------------------------------------------------

def test_v011_left_truncated_prompt_is_scored_and_logged(tiny_text, smollm2):
    """v0.11 cuts a long prompt from the left before generating; the query then lacks the prompt's
    start. The daemon scores the query as given, split after the chat template's generation prompt:
    the reward equals /v1/score of that cut prompt text and the response, and
    extra_logs.prompt_truncated is 1.0 (0.0 for an uncut query). A query with neither its prompt nor
    a generation prompt is still a 400 bad_request."""
    path, port = str(tiny_text / "http.sock"), free_port()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        client = Client(path)
        prompt = chat_prompt(client, "Summarise this: " + " ".join(f"word{i}" for i in range(200)))
        prompt_ids = client.tokenize(prompt)["ids"]
        max_prompt_length = 40
        cut_ids = prompt_ids[-max_prompt_length:]                        # OpenRLHF: prompt_token_ids[-max_prompt_length:]
        action_ids = client.tokenize("A list of words.<|im_end|>")["ids"]
        query = client.detokenize(cut_ids + action_ids)                  # decode(..., skip_special_tokens=False)
        cut_prompt = client.detokenize(cut_ids)
        assert not query.startswith(prompt) and prompt.endswith(cut_prompt)
        url = f"http://127.0.0.1:{port}/get_reward"
        reward, logs = asyncio.run(v011_reward_of_one_sample([url, url], query, prompt, None))
        short = chat_prompt(client, "Hi")
        uncut, uncut_logs = asyncio.run(v011_reward_of_one_sample([url], short + "Hello!<|im_end|>", short, None))
        refused = requests.post(url, json={"query": ["plain text, no template"], "prompts": ["something else"]}, timeout=60)
        expected = reference(client, [(cut_prompt, "A list of words.<|im_end|>"), (short, "Hello!<|im_end|>")])
    finally:
        assert daemon.stop() == 0
    assert reward is not None and reward.dtype == "float32" and reward.values == [expected[0]["reward"]]
    assert logs["prompt_truncated"] == [1.0] and logs["response_tokens"] == [float(expected[0]["n"])]
    assert uncut.values == [expected[1]["reward"]] and uncut_logs["prompt_truncated"] == [0.0]
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_request"


# --- 5. restarts on the same port; failed starts clean up -----------------------------------------

def time_wait_on(port):
    """Sockets in TIME_WAIT whose local port is `port` (/proc/net/tcp and tcp6, state 06)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in pathlib.Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "06":
                count += 1
    return count


def test_restart_on_the_same_tcp_port_binds_at_once(tiny_text, smollm2):
    """The daemon closes a `Connection: close` exchange itself, leaving TIME_WAIT on its port; a new
    daemon on the same --tcp-port starts at once (SO_REUSEADDR) and answers /get_reward."""
    path, port = str(tiny_text / "http.sock"), free_port()
    first = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        # Read until the daemon closes (EOF), then close: the daemon's side closed first.
        with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
            connection.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        assert first.stop() == 0
    assert time_wait_on(port) >= 1
    started = time.monotonic()
    second = Daemon(tiny_text / "pt", tiny_text / "sft", "--tokenizer", smollm2, "--tcp-port", str(port), socket_path=path)
    try:
        seconds = time.monotonic() - started
        answer = requests.post(f"http://127.0.0.1:{port}/get_reward", json={"query": []}, timeout=60)
    finally:
        assert second.stop() == 0
    assert seconds < 30 and answer.status_code == 200 and answer.json()["rewards"] == []


def test_failed_start_removes_its_socket_files(tiny_text, smollm2):
    """A daemon whose --tcp-port is taken exits 1 naming the problem, and leaves neither its HTTP nor
    its image socket file behind (a later start with the same paths works)."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    sock, images = tiny_text / "http.sock", tiny_text / "images.sock"
    try:
        out = subprocess.run([srppod_bin(), "--pt", str(tiny_text / "pt"), "--sft", str(tiny_text / "sft"), "--hugepages", "off",
                              "--log", "stderr", "--socket", str(sock), "--image-socket", str(images), "--tcp-port", str(port)],
                             capture_output=True, text=True, timeout=60)
    finally:
        busy.close()
    assert out.returncode == 1 and "Address already in use" in out.stderr, out.stderr
    assert not sock.exists() and not images.exists()
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", socket_path=sock, image_socket=images)
    assert daemon.stop() == 0


# --- the C example --------------------------------------------------------------------------------

def test_c_example_scores_over_the_unix_socket(tiny_text, tmp_path):
    """examples/score.c builds with libcurl and scores through CURLOPT_UNIX_SOCKET_PATH: the same
    results as the Python client; a daemon error exits 1 with the typed code on stderr."""
    binary = tmp_path / "score"
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", str(ROOT / "examples" / "score.c"), "-lcurl", "-o", str(binary)],
                   check=True, capture_output=True, text=True)
    path = str(tiny_text / "http.sock")
    items = [{"prompt_ids": [1, 4, 7], "response_ids": [5, 9, 2]}, {"prompt_ids": [1, 3], "response_ids": [8, 8]}]
    daemon = Daemon(tiny_text / "pt", tiny_text / "sft", socket_path=path)
    try:
        scored = subprocess.run([str(binary), path], input=json.dumps({"items": items}), capture_output=True, text=True, timeout=60)
        wrong = subprocess.run([str(binary), path], input=json.dumps({"items": [{"prompt_ids": [1], "response_ids": [VOCAB]}]}),
                               capture_output=True, text=True, timeout=60)
        other_path = subprocess.run([str(binary), path, "/v1/health"], input="{}", capture_output=True, text=True, timeout=60)
        direct = Client(path).score(items)["results"]
    finally:
        assert daemon.stop() == 0
    assert scored.returncode == 0, scored.stderr
    results = json.loads(scored.stdout)["results"]
    assert [r["reward"] for r in results] == [d["reward"] for d in direct] and [r["truncated"] for r in results] == [False, True]
    assert [r["pt_logprobs"] for r in results] == [d["pt_logprobs"] for d in direct]
    assert wrong.returncode == 1 and '"code":"invalid_token"' in wrong.stderr
    assert other_path.returncode == 1 and '"code":"method_not_allowed"' in other_path.stderr   # PATH is used; GET only there
    usage = subprocess.run([str(binary)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
