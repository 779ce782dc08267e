"""Disk full while writing a checkpoint: `srppo sft` stops with one line naming the file and the
reason, the previous checkpoint stays intact and loadable, no temporary folder is left, and after
space is freed `--resume` finishes the run on the uninterrupted trajectory.

The full disk is a real one: a small tmpfs mounted for the test (needs root, as the test command
runs in CI; elsewhere the test says why it cannot run)."""
import json
import os
import subprocess

import pytest
from safetensors.numpy import load_file

from conftest import run_srppo
from tiny_model import write_reversal_demos, write_tiny_llama

SETTINGS = ["--epochs", "1", "--batch-size", "8", "--checkpoint-every", "3", "--threads", "1"]


def losses(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return {r["step"]: r["loss"] for r in map(json.loads, f) if "loss" in r}


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the CI test command runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    # One tiny-model checkpoint is ~250 kB: the first fits, the second runs out of space.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_disk_full_keeps_the_previous_checkpoint_and_resumes(tmp_path, small_disk, srppo_bin):
    model = str(write_tiny_llama(tmp_path / "tiny"))
    data = str(write_reversal_demos(tmp_path / "demos.jsonl", 160))
    straight = str(tmp_path / "straight")
    run_srppo(srppo_bin, "sft", "--model", model, "--data", data, "--out", straight, *SETTINGS, "--keep", "10")
    expected = losses(straight)

    run = str(small_disk / "run")
    failed = run_srppo(srppo_bin, "sft", "--model", model, "--data", data, "--out", run, *SETTINGS, "--keep", "1",
                        check=False)
    assert failed.returncode == 1
    error = failed.stderr.strip().splitlines()[-1]
    assert error.startswith("srppo: ") and "No space left on device" in error and "step-000006" in error, error

    # The previous checkpoint is whole: same tensors as the uninterrupted run's step 3.
    assert os.listdir(os.path.join(run, "checkpoints")) == ["step-000003"]
    kept, reference = (os.path.join(r, "checkpoints", "step-000003") for r in (run, straight))
    for name in ["model.safetensors", "training-state/optimizer.safetensors"]:
        a, b = load_file(os.path.join(kept, name)), load_file(os.path.join(reference, name))
        assert set(a) == set(b) and all((a[k] == b[k]).all() for k in a), name

    # Space comes back; the run resumes from step 3 and ends where the uninterrupted one did.
    subprocess.run(["mount", "-o", "remount,size=4m", str(small_disk)], check=True)
    resumed = run_srppo(srppo_bin, "sft", "--out", run, "--resume", "--threads", "1")
    assert "resuming" in resumed.stderr
    got = losses(run)
    assert sorted(got) == sorted(expected)
    assert all(got[s] == expected[s] for s in expected), "the resumed trajectory differs"
