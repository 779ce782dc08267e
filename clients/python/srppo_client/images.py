"""The weight-image socket (docs/weight-image-protocol.md): receive a sealed memfd with SCM_RIGHTS,
map it read-only and shared, and expose its tensors without copying: as memoryviews (standard
library) or NumPy arrays (when NumPy is installed) over the one physical copy every process shares."""
import fcntl
import json
import mmap
import os
import socket
import struct

from .errors import ConnectionFailed, ImageError, UnexpectedAnswer

F_GET_SEALS = 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8
_MAX_REPLY = 16 << 20


def _request(sock, body):
    data = json.dumps({"version": 1, **body}).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)
    received, fds = b"", []
    try:
        while len(received) < 4 or len(received) < 4 + struct.unpack(">I", received[:4])[0]:
            if len(received) >= 4 and struct.unpack(">I", received[:4])[0] > _MAX_REPLY:
                raise UnexpectedAnswer("weight-image reply longer than 16 MiB")
            chunk, got, _, _ = socket.recv_fds(sock, 1 << 16, 4)
            fds += got
            if not chunk:
                raise ConnectionFailed("the weight-image server closed the connection")
            received += chunk
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    reply = json.loads(received[4:4 + struct.unpack(">I", received[:4])[0]])
    if not reply.get("ok"):
        for fd in fds:
            os.close(fd)
        error = reply.get("error", {})
        raise ImageError(error.get("code", "unknown"), error.get("message", str(reply)))
    return reply, fds


def _connect(path, timeout):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError as error:
        sock.close()
        raise ConnectionFailed(f"cannot connect to {path}: {error}") from error
    return sock


def list_images(path, timeout=30.0):
    """The images a weight-image socket offers: `[{"name", "sha256", "dtype", "data_bytes", "backing"}]`."""
    with _connect(path, timeout) as sock:
        return _request(sock, {"op": "list"})[0]["images"]


def attach(path, name, sha256=None, timeout=30.0):
    """Attaches the image `name` ("pt" or "sft" on srppod's image socket); with `sha256`, only that
    exact revision. Returns a `WeightImage` (close it, or use it as a context manager)."""
    request = {"op": "attach", "name": name}
    if sha256:
        request["sha256"] = sha256
    with _connect(path, timeout) as sock:
        reply, fds = _request(sock, request)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise UnexpectedAnswer(f"attach reply carried {len(fds)} descriptors, expected 1")
    # WeightImage closes the descriptor, whether mapping it works or not.
    return WeightImage(fds[0], reply["manifest"], reply.get("backing", {}))


class WeightImage:
    """A mapped weight image. `manifest` is the server's description (config, dtype, tensors, sha256);
    `tensor(name)` is a read-only float32 memoryview of the tensor's shape, `array(name)` a NumPy
    array: views of the shared mapping (no copy), except for the packed matrices of a bf16 image,
    which `array` unpacks. The descriptor is closed once mapped."""

    def __init__(self, fd, manifest, backing):
        self.manifest = manifest
        self.backing = backing
        try:
            self.seals = fcntl.fcntl(fd, F_GET_SEALS)
            if not self.seals & F_SEAL_WRITE or not self.seals & F_SEAL_SHRINK:
                raise UnexpectedAnswer(f"the image descriptor is not sealed against writes (seals {self.seals})")
            if manifest.get("dtype") not in ("f32", "bf16"):
                raise UnexpectedAnswer(f"unsupported image dtype {manifest.get('dtype')!r}")
            self.size = os.fstat(fd).st_size
            if self.size < manifest["data_bytes"]:
                raise UnexpectedAnswer(f"the memory ({self.size} bytes) is smaller than data_bytes {manifest['data_bytes']}")
            self._mmap = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self._view = memoryview(self._mmap)
        self._tensors = {t["name"]: t for t in manifest["tensors"]}

    @property
    def name(self):
        return self.manifest["name"]

    @property
    def sha256(self):
        return self.manifest["sha256"]

    @property
    def tensor_names(self):
        return list(self._tensors)

    def data(self):
        """The whole data region (`data_bytes` bytes) as a read-only byte memoryview."""
        return self._view[:self.manifest["data_bytes"]]

    def tensor(self, name):
        """Read-only float32 memoryview (format 'f', the tensor's shape) into the shared mapping.
        Packed bf16 matrices of a bf16 image have no such view: use `array`."""
        entry = self._tensors[name]
        if entry.get("encoding", "f32") != "f32":
            raise ValueError(f"{name} is stored as {entry['encoding']}, not fp32 rows: use array(), which unpacks it")
        count = 1
        for n in entry["shape"]:
            count *= n
        flat = self._view[entry["offset"]:entry["offset"] + 4 * count]
        return flat.cast("f", entry["shape"]) if entry["shape"] else flat.cast("f")

    def array(self, name):
        """NumPy float32 array of the tensor (needs NumPy): a read-only view into the mapping for fp32
        tensors, an unpacked copy (exact bf16 values) for the packed matrices of a bf16 image."""
        import numpy as np
        entry = self._tensors[name]
        if entry.get("encoding") == "bf16-panels":
            return unpack_bf16_panels(np.frombuffer(self._mmap, dtype="<u2", count=bf16_panels_count(*entry["shape"]),
                                                    offset=entry["offset"]), *entry["shape"])
        count = int(np.prod(entry["shape"], dtype=np.int64))
        return np.frombuffer(self._mmap, dtype="<f4", count=count, offset=entry["offset"]).reshape(entry["shape"])

    def close(self):
        """Unmaps the image. Views still held elsewhere keep it mapped (BufferError is swallowed; the
        mapping goes when they do)."""
        self._view.release()
        try:
            self._mmap.close()
        except BufferError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


BF16_PANEL = 32


def bf16_panels_count(rows, columns):
    """uint16 values in the packed form of a [rows, columns] matrix (docs/weight-image-protocol.md)."""
    return -(-rows // BF16_PANEL) * BF16_PANEL * (columns + columns % 2)


def unpack_bf16_panels(packed, rows, columns):
    """W[rows, columns] as float32 from its packed bf16 panels: panels of 32 rows one after another;
    inside a panel, for each pair of columns, the 32 rows' two values side by side."""
    import numpy as np
    even = columns + columns % 2
    panels = -(-rows // BF16_PANEL)
    grid = np.asarray(packed, dtype=np.uint16).reshape(panels, even // 2, BF16_PANEL, 2)
    bits = grid.transpose(0, 2, 1, 3).reshape(panels * BF16_PANEL, even)[:rows, :columns]
    return (bits.astype(np.uint32) << 16).view(np.float32)
