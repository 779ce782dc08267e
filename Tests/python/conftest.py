"""Shared fixtures: where the built `srppo` binary and the real SmolLM2 model are, and pairs of tiny
random models for the daemon tests.

The model comes from scripts/setup.sh. Under CI (CI=true) nothing skips: a test that skips there
(a missing model, browser or tool, not root, no huge pages) is reported as a failure with its reason,
because CI runs as root on a machine with everything scripts/setup.sh installs.
"""
import os
import pathlib
import subprocess

import pytest

from tiny_model import write_tiny_llama

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _model_path():
    env = os.environ.get("SRPPO_SMOLLM2")
    if env:
        return pathlib.Path(env)
    cache = pathlib.Path(os.environ.get("SRPPO_CACHE", pathlib.Path.home() / ".cache" / "srppo"))
    marker = cache / "smollm2.path"
    return pathlib.Path(marker.read_text().strip()) if marker.exists() else None


@pytest.fixture(scope="session")
def smollm2():
    path = _model_path()
    if path is None or not path.exists():
        if os.environ.get("CI"):
            pytest.fail("SmolLM2 model missing: scripts/setup.sh should have downloaded it")
        pytest.skip("SmolLM2 model not downloaded (run scripts/setup.sh)")
    return str(path)


@pytest.fixture(scope="session")
def srppo_bin():
    path = pathlib.Path(os.environ.get("SRPPO_BIN", ROOT / ".build" / "release" / "srppo"))
    if not path.exists():
        pytest.fail(f"{path} not built: run `swift build -c release`")
    return str(path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {reason}"


def run_srppo(binary, *args, input=None, check=True):
    """Runs srppo; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([binary, *args], input=input, capture_output=True, text=True, check=check)


@pytest.fixture
def tiny(tmp_path):
    """Two tiny random models in tmp_path: PT (pt/, seed 0) and SFT (sft/, seed 1)."""
    write_tiny_llama(tmp_path / "pt", seed=0)
    write_tiny_llama(tmp_path / "sft", seed=1)
    return tmp_path


@pytest.fixture
def tiny_revisions(tmp_path):
    """PT (pt/) and two SFT revisions (sft-a/, sft-b/); sft is a symlink to sft-a, so a test can point
    it at sft-b and send the daemon SIGHUP."""
    write_tiny_llama(tmp_path / "pt", seed=0)
    write_tiny_llama(tmp_path / "sft-a", seed=1)
    write_tiny_llama(tmp_path / "sft-b", seed=2)
    (tmp_path / "sft").symlink_to(tmp_path / "sft-a")
    return tmp_path


@pytest.fixture
def tiny_text(tmp_path):
    """The same with SmolLM2's vocabulary: text requests can use its tokenizer (--tokenizer)."""
    write_tiny_llama(tmp_path / "pt", vocab=49152, seed=0)
    write_tiny_llama(tmp_path / "sft", vocab=49152, seed=1)
    return tmp_path
