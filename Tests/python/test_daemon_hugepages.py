"""srppod on huge pages, its default policy (`--hugepages try`), with a real reserved pool.

As root the test reserves 2 MiB huge pages through /proc/sys/vm/nr_hugepages (the pool is put back
as it was afterwards), starts srppod with SmolLM2 as PT and SFT, and checks that its image lives in
huge pages (the ready event, and Shared_Hugetlb in a client process that attaches it), that scores
are bit-identical to the same daemon on 4 KiB pages, that a restart takes the huge-page image back
from the fd store, and the documented fallback when the pool is too small: `try` serves from
ordinary pages and says why, `require` refuses to start with one line. CI runs as root; under CI a
skip fails (conftest.py)."""
import os

import pytest

from srppod_harness import Daemon, Holder, NotifySocket, listening_socket, score, smaps_rollup

HUGE_PAGE = 2 << 20
POOL = f"/sys/kernel/mm/hugepages/hugepages-{HUGE_PAGE // 1024}kB/"
CONTROL = "/proc/sys/vm/nr_hugepages"
ITEMS = [{"prompt_ids": [1, 9690, 28, 2641, 314], "response_ids": [253, 1345, 30, 2]},
         {"prompt_ids": [1], "response_ids": [504, 3458, 282, 4649, 314, 2]}]
# SmolLM2-135M's fp32 image: 538 MB of data in 2 MiB pages, plus a page of slack.
PAGES_NEEDED = 258


def pool():
    return {k: int(open(POOL + k).read()) for k in ("nr_hugepages", "free_hugepages", "resv_hugepages")}


def set_pool(pages):
    with open(CONTROL, "w") as f:
        f.write(str(pages))


@pytest.fixture
def reserved_pool():
    """Yields a function that sets the pool's size; the original size is restored afterwards."""
    if os.geteuid() != 0:
        pytest.skip(f"not root: cannot reserve huge pages through {CONTROL}")
    original = int(open(CONTROL).read())
    try:
        yield set_pool
    finally:
        set_pool(original)


def test_srppod_serves_from_huge_pages_restarts_from_the_fd_store_and_falls_back(smollm2, srppo_bin, tmp_path, reserved_pool):
    http_path, image_path = str(tmp_path / "http.sock"), str(tmp_path / "images.sock")
    # The reference: the same daemon on ordinary pages.
    plain = Daemon(smollm2, smollm2, "--hugepages", "off", socket_path=http_path)
    try:
        reference = score(http_path, ITEMS)["results"]
    finally:
        plain.stop()
    assert not os.path.exists(http_path), "srppod removes the socket file it bound"

    reserved_pool(pool()["nr_hugepages"] + PAGES_NEEDED)
    free = pool()
    assert free["free_hugepages"] - free["resv_hugepages"] >= PAGES_NEEDED, f"the kernel reserved only {free}"

    notify = NotifySocket(tmp_path)
    http_socket, image_socket = listening_socket(http_path), listening_socket(image_path)
    sockets = [("http", http_socket.fileno()), ("images", image_socket.fileno())]
    try:
        # The default policy, `try`, on a pool that fits the image: huge pages.
        first = Daemon(smollm2, smollm2, "--hugepages", "try", notify=notify, passed=sockets)
        ready = first.events[-1]
        assert all(m["backing"].startswith("hugetlb, 2048 KiB pages") for m in ready["models"]), ready
        assert pool()["free_hugepages"] <= free["free_hugepages"] - (PAGES_NEEDED - 1)
        assert score(http_path, ITEMS)["results"] == reference, "huge pages must not change a single bit"
        holder = Holder(srppo_bin, image_path, "pt")
        try:
            assert holder.report["backing"]["kind"] == "hugetlb"
            mapped = smaps_rollup(holder.pid)["Shared_Hugetlb"]
            data = holder.report["data_bytes"]
            assert mapped % HUGE_PAGE == 0 and data <= mapped <= data + 2 * HUGE_PAGE, (mapped, data)
        finally:
            holder.release()
        assert first.stop() == 0
        sha = ready["models"][0]["sha256"]

        # Restart: the huge-page image comes back from the fd store, unchanged.
        stored = [(name, fds[0]) for name, fds in sorted(notify.store.items())]
        second = Daemon(smollm2, smollm2, "--hugepages", "try", notify=notify, passed=sockets + stored)
        again = second.events[-1]
        assert [(m["loaded_from"], m["sha256"]) for m in again["models"]] == [("fd-store", sha), ("fd-store", sha)]
        assert all(m["backing"].startswith("hugetlb") for m in again["models"])
        assert score(http_path, ITEMS)["results"] == reference
        assert second.stop() == 0
    finally:
        http_socket.close()
        image_socket.close()
        notify.close()
    for path in (http_path, image_path):
        if os.path.exists(path):
            os.unlink(path)

    # A pool too small for the image: `try` falls back to ordinary pages and says why ...
    reserved_pool(max(pool()["nr_hugepages"] - pool()["free_hugepages"], 0) + 10)
    short = Daemon(smollm2, smollm2, "--hugepages", "try", socket_path=http_path)
    try:
        backing = short.events[-1]["models"][0]["backing"]
        assert backing.startswith("normal, 4 KiB pages") and "huge pages not used" in backing, backing
        assert score(http_path, ITEMS)["results"] == reference
    finally:
        short.stop()
    # ... and `require` refuses to start, in one line.
    refused = Daemon(smollm2, smollm2, "--hugepages", "require", socket_path=str(tmp_path / "other.sock"), wait_ready=False)
    assert refused.process.wait(timeout=120) == 1
    message = "".join(refused.stderr_lines) + refused.process.stderr.read()
    assert "huge pages required but unavailable" in message, message
    assert not os.path.exists(tmp_path / "other.sock"), "a failed start leaves no socket file"
