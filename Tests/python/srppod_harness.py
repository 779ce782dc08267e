"""Helpers for the srppod tests: HTTP over a Unix socket with the standard library (independent of
the Swift client), srppod processes, and a stand-in for systemd's side of the notification protocol
(a datagram NOTIFY_SOCKET that records every message and keeps the descriptors sent with FDSTORE=1,
as systemd's fd store does)."""
import http.client
import json
import os
import pathlib
import socket
import subprocess
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def srppod_bin():
    return str(pathlib.Path(os.environ.get("SRPPOD_BIN", ROOT / ".build" / "release" / "srppod")))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("srppod", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def call(path, method, url, body=None, headers=None, timeout=120):
    """One request on a new connection; returns (status, headers dict, parsed JSON or text)."""
    connection = UnixHTTPConnection(path, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        connection.request(method, url, body=data, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        parsed = json.loads(raw) if content_type.startswith("application/json") else raw.decode()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
    finally:
        connection.close()


def score(path, items, **fields):
    status, _, body = call(path, "POST", "/v1/score", {"items": items, **fields})
    assert status == 200, body
    return body


def raw_exchange(path, payload, timeout=30, pause=None):
    """Sends raw bytes (in pieces with `pause` seconds between them when payload is a list) and reads
    until the daemon closes or a complete answer is in; returns (status, JSON body or None, raw bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        pieces = payload if isinstance(payload, list) else [payload]
        for i, piece in enumerate(pieces):
            try:
                s.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause and i + 1 < len(pieces):
                time.sleep(pause)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(rest) >= length[0]:
                break
        if not data:
            return None, None, data
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1])
        try:
            body = json.loads(rest)
        except ValueError:
            body = None
        return status, body, data
    finally:
        s.close()


class NotifySocket:
    """systemd's end of sd_notify: records each datagram's assignments and keeps descriptors sent with
    FDSTORE=1 under their FDNAME (FDSTOREREMOVE=1 drops them), like the service manager's fd store."""

    def __init__(self, folder):
        self.path = str(pathlib.Path(folder) / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []          # list of dicts, in arrival order
        self.store = {}             # FDNAME -> [fd, ...]
        self.condition = threading.Condition()
        self.closed = False
        threading.Thread(target=self._receive, daemon=True).start()

    def _receive(self):
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 65536, 16)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.condition:
                if fields.get("FDSTORE") == "1":
                    self.store.setdefault(fields.get("FDNAME", "stored"), []).extend(fds)
                else:
                    for fd in fds:
                        os.close(fd)
                if fields.get("FDSTOREREMOVE") == "1":
                    for fd in self.store.pop(fields.get("FDNAME", ""), []):
                        os.close(fd)
                self.messages.append(fields)
                self.condition.notify_all()

    def wait_for(self, key, value=None, after=0, timeout=60):
        """Index of the first message at or after `after` that sets `key` (to `value`, if given)."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                for i in range(after, len(self.messages)):
                    if key in self.messages[i] and (value is None or self.messages[i][key] == value):
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {key}={value} after message {after}: {self.messages}")
                self.condition.wait(remaining)

    def close(self):
        self.sock.close()
        for fds in self.store.values():
            for fd in fds:
                os.close(fd)
        self.store = {}


def listening_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(64)
    return s


class Daemon:
    """srppod in its own process. With `passed` (a list of (name, fd)), they become LISTEN_FDS at 3..
    with LISTEN_FDNAMES, LISTEN_PID set to the daemon's own pid through a shell `exec`, as systemd does."""

    def __init__(self, pt, sft, *args, socket_path=None, image_socket=None, notify=None, passed=None, env=None,
                 wait_ready=True, user=None, cwd=None):
        command = [srppod_bin(), "--pt", str(pt), "--sft", str(sft), "--hugepages", "off", "--log", "stderr", *args]
        if socket_path:
            command += ["--socket", str(socket_path)]
        if image_socket:
            command += ["--image-socket", str(image_socket)]
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_", "WATCHDOG_"))}
        if notify:
            environment["NOTIFY_SOCKET"] = notify.path
        environment.update(env or {})
        preexec = None
        if passed:
            environment["LISTEN_FDS"] = str(len(passed))
            environment["LISTEN_FDNAMES"] = ":".join(name for name, _ in passed)
            command = ["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$0" "$@"', *command]
            fds = [fd for _, fd in passed]

            def preexec():
                # Move the descriptors out of the way, then to 3, 4, ... (inheritable).
                high = [os.dup2(fd, 200 + i, inheritable=True) for i, fd in enumerate(fds)]
                for i, fd in enumerate(high):
                    os.dup2(fd, 3 + i, inheritable=True)
                for fd in high:
                    os.close(fd)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                                        preexec_fn=preexec, close_fds=not passed, user=user, cwd=cwd)
        self.events = []
        self.stderr_lines = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        if wait_ready:
            self.wait_event("ready")

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def wait_event(self, name):
        while True:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(timeout=30)
                raise RuntimeError(f"srppod exited {self.process.returncode} before '{name}': {''.join(self.stderr_lines)}")
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == name:
                return event

    def signal(self, number):
        self.process.send_signal(number)

    def stop(self, timeout=60):
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout=timeout)
        rest = self.process.stdout.read()
        for line in rest.splitlines():
            if line.strip():
                self.events.append(json.loads(line))
        return code

    def metric(self, socket_path, name):
        _, _, text = call(socket_path, "GET", "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)


def reward_in_process(srppo, pt, sft, items, folder):
    """`srppo reward` with the models loaded in its own process: the reference answers."""
    path = pathlib.Path(folder) / f"reference-{time.monotonic_ns()}.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    out = subprocess.run([srppo, "reward", "--pt", str(pt), "--sft", str(sft), "--input", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


class Holder:
    """`srppo image attach --populate --hold`: a client process keeping the image mapped."""

    def __init__(self, binary, socket_path, name, mode="shared"):
        self.process = subprocess.Popen(
            [binary, "image", "attach", "--socket", socket_path, "--name", name, "--mode", mode, "--populate", "--hold"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = self.process.stdout.readline()
        if not first:
            raise AssertionError(f"srppo image attach failed: {self.process.stderr.read()}")
        self.report = json.loads(first)
        assert json.loads(self.process.stdout.readline())["event"] == "holding"
        self.pid = self.process.pid

    def release(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0, self.process.stderr.read()


def smaps_rollup(pid):
    """/proc/PID/smaps_rollup as {field: bytes}."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return values


def score_while(path, items, action, clients=8, timeout=60):
    """`clients` threads score `items` one per request without pause and without retries; after 100
    answers `action()` runs, then 100 more answers are awaited (each wait with a deadline). Returns
    (answers, failures): (item index, status, body) each, failures also (index, None, error) for a
    request that did not get through."""
    answers, failures = [], []
    stop = threading.Event()
    lock = threading.Lock()

    def client(number):
        i = number
        while not stop.is_set():
            try:
                status, _, body = call(path, "POST", "/v1/score", {"items": [items[i % len(items)]], "client": f"load-{number}"},
                                       timeout=timeout)
                with lock:
                    (answers if status == 200 else failures).append((i % len(items), status, body))
            except OSError as error:
                with lock:
                    failures.append((i, None, repr(error)))
            i += clients

    def wait_for(count, what):
        deadline = time.monotonic() + timeout
        while len(answers) < count and not failures:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        wait_for(100, "100 answers before the action")
        action()
        wait_for(len(answers) + 100, "100 answers after the action")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=2 * timeout)
    return answers, failures
