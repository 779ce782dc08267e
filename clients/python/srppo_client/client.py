"""HTTP client of srppod (docs/daemon-api.md) over its Unix socket, or a TCP URL, with the standard
library only."""
import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.parse
import uuid

from . import errors

_RETRYABLE_STATUS_CODES = ("busy", "not_ready", "shutting_down")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("srppod", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def new_request_id():
    """A fresh idempotency key (letters, digits and '-', as the API allows)."""
    return str(uuid.uuid4())


class Client:
    """A client of one srppod. Thread-safe; requests of one instance go one at a time over one
    keep-alive connection (make one client per thread for concurrency).

    `address`: the HTTP socket path (`/run/srppod/http.sock`) or a URL `http://127.0.0.1:PORT` of the
    daemon's optional TCP listener. `client_name` is how the daemon's fair scheduler, logs and
    metrics know this client. `timeout`: seconds one attempt may take. `retry_budget`: seconds of
    retrying connection failures, timeouts and the retryable errors (busy, not_ready,
    shutting_down), waiting as the daemon asks (Retry-After) or backing off exponentially. Score
    requests always carry an id, so a retried request is answered from the daemon's store instead of
    being computed twice.
    """

    def __init__(self, address, client_name=None, *, timeout=300.0, retry_budget=30.0):
        self.address = str(address)
        self.client_name = client_name or f"python-{os.getpid()}"
        self.timeout = timeout
        self.retry_budget = retry_budget
        self._lock = threading.Lock()
        self._connection = None
        if self.address.startswith(("http://", "https://")):
            parsed = urllib.parse.urlsplit(self.address)
            if parsed.scheme != "http":
                raise ValueError("srppod speaks plain HTTP: use an http:// URL or a socket path")
            self._tcp = (parsed.hostname, parsed.port or 80)
            self._prefix = parsed.path.rstrip("/")
        else:
            self._tcp = None
            self._prefix = ""

    # -- Operations ---------------------------------------------------------------------------------

    def health(self):
        """`{"status": "ok", "pid", "uptime_s", ...}` while the daemon serves HTTP."""
        return self._call("GET", "/v1/health")

    def ready(self):
        """Readiness (`ready`, `state`, `models`, queue sizes); not ready is an answer, not an error."""
        return self._call("GET", "/v1/ready", accept=(200, 503), retry=False)

    def models(self):
        """The served models (hashes, revisions, configs), the tokenizer and the daemon's limits."""
        return self._call("GET", "/v1/models")

    def metrics(self):
        """The Prometheus exposition text."""
        return self._call("GET", "/metrics")

    def score(self, items, *, request_id=None, deadline_ms=None):
        """Scores items under PT and SFT; returns the whole answer (`results`, `models`, ...).

        Each item is `{"prompt_ids": [...], "response_ids": [...]}`, `{"prompt": str, "response": str}`,
        or `{"messages": [{"role", "content"}, ...], "response": str}` (without `response` the final
        assistant message is the response). Each result has `pt_logprobs`, `sft_logprobs`, `reward`,
        `truncated`, `n` (and the encoded ids of a text item)."""
        body = {"items": list(items), "id": request_id or new_request_id(), "client": self.client_name}
        if deadline_ms is not None:
            body["deadline_ms"] = deadline_ms
        return self._call("POST", "/v1/score", body)

    def score_ids(self, prompt_ids, response_ids, **options):
        """One item given as token ids; returns its result."""
        return self.score([{"prompt_ids": list(prompt_ids), "response_ids": list(response_ids)}], **options)["results"][0]

    def score_text(self, prompt, response, **options):
        """One plain-text item (the daemon appends EOS to the response); returns its result."""
        return self.score([{"prompt": prompt, "response": response}], **options)["results"][0]

    def score_chat(self, messages, response=None, **options):
        """One chat item (rendered with the chat template; the response gets the end-of-turn token)."""
        item = {"messages": list(messages)}
        if response is not None:
            item["response"] = response
        return self.score([item], **options)["results"][0]

    def rewards(self, items, **options):
        """Just the coherent rewards of `items`, in order."""
        return [result["reward"] for result in self.score(items, **options)["results"]]

    def tokenize(self, text=None, *, messages=None, add_generation_prompt=None):
        """Token ids of `text` (special tokens in it become their ids; no BOS/EOS added), or of chat
        `messages` rendered with the chat template; returns `{"ids": [...], "text": rendered or None}`."""
        body = {"text": text} if messages is None else {"messages": list(messages)}
        if add_generation_prompt is not None:
            body["add_generation_prompt"] = add_generation_prompt
        answer = self._call("POST", "/v1/tokenize", body)
        return {"ids": answer["ids"], "text": answer.get("text")}

    def detokenize(self, ids, *, skip_special_tokens=False):
        return self._call("POST", "/v1/detokenize", {"ids": list(ids), "skip_special_tokens": skip_special_tokens})["text"]

    def get_reward(self, query, prompts=None, labels=None):
        """OpenRLHF's remote reward model call: `{"rewards", "scores", "extra_logs"}`."""
        body = {"query": list(query)}
        if prompts is not None:
            body["prompts"] = list(prompts)
        if labels is not None:
            body["labels"] = list(labels)
        return self._call("POST", "/get_reward", body)

    def close(self):
        with self._lock:
            self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- Transport ----------------------------------------------------------------------------------

    def _call(self, method, path, body=None, *, accept=(200,), retry=True):
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        start = time.monotonic()
        attempt = 0
        with self._lock:
            while True:
                attempt += 1
                try:
                    status, headers, payload = self._exchange(method, self._prefix + path, data)
                    answer = self._parse(status, headers, payload)
                    if status in accept:
                        return answer
                    error = errors.api_error(status, answer)
                    if not (retry and error.retryable):
                        raise error
                    wait = error.retry_after if error.retry_after is not None else self._backoff(attempt)
                    if error.code == "shutting_down":
                        self._drop()
                except errors.ConnectionFailed as error_:
                    self._drop()
                    if not retry:
                        raise
                    error, wait = error_, self._backoff(attempt)
                if time.monotonic() - start + wait > self.retry_budget:
                    raise error
                time.sleep(wait)

    @staticmethod
    def _backoff(attempt):
        """50 ms doubling up to 5 s, with jitter."""
        return min(5.0, 0.05 * 2 ** min(attempt - 1, 10)) * (0.5 + random.random() / 2)

    def _exchange(self, method, path, data):
        headers = {"X-SRPPO-Client": self.client_name, "Host": "srppod"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            if self._connection is None:
                if self._tcp:
                    self._connection = http.client.HTTPConnection(*self._tcp, timeout=self.timeout)
                else:
                    self._connection = _UnixHTTPConnection(self.address, self.timeout)
            self._connection.request(method, path, body=data, headers=headers)
            response = self._connection.getresponse()
            payload = response.read()
            if response.will_close:
                self._drop()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
        except socket.timeout as error:
            self._drop()
            raise errors.Timeout(f"{method} {path}: no answer within {self.timeout} s") from error
        except (OSError, http.client.HTTPException) as error:
            self._drop()
            raise errors.ConnectionFailed(f"{method} {path} via {self.address}: {error}") from error

    @staticmethod
    def _parse(status, headers, payload):
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/json"):
            try:
                return json.loads(payload)
            except ValueError as error:
                raise errors.UnexpectedAnswer(f"{status}: invalid JSON: {payload[:200]!r}") from error
        if content_type.startswith("text/plain"):
            return payload.decode()
        raise errors.UnexpectedAnswer(f"{status} with Content-Type {content_type!r}: {payload[:200]!r}")

    def _drop(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None
