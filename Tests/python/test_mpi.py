"""Data-parallel `srppo ppo` and `srppo sft` as MPI ranks (`mpirun -np 2`, Open MPI from Debian) against
one process with the same global batch: step 1's rollouts and rewards are the same bits (each sample
has its own seed; scoring and the old log-probs are batch-invariant), and what depends on the summed
gradients agrees to float reduction order (bound below). A rank killed mid-run fails the job, and
`--resume` continues it from the last checkpoint exactly as an uninterrupted 2-rank run goes."""
import json
import os
import signal
import subprocess
import time

import pytest

from srppod_harness import Daemon
from tiny_model import write_tiny_llama

# Root in CI: Open MPI refuses root unless told (--allow-run-as-root); two ranks on two cores.
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "2"]

# Two ranks sum their gradients in another order than one process: the weights after the first
# optimizer step differ in the last bits (~1e-7 relative), and the losses and statistics of the next
# updates by about as much. 1e-4 relative (plus 1e-6 absolute for values near 0) is far above that and
# far below any real difference (a lost or doubled share of a batch changes a loss by tens of percent).
RELATIVE, ABSOLUTE = 1e-4, 1e-6
# Clip fractions count tokens past a threshold: a value that close to it can land on the other side,
# moving the fraction by 1/(tokens of the step's updates), ~140 tokens here.
COUNTED = {"clip_fraction", "value_clip_fraction"}


def metrics(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds") and "per_second" not in k and k != "tokens"}
                for line in f]


def assert_close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], bool) or not isinstance(a[key], (int, float)):
            assert a[key] == b[key], key
        elif key in COUNTED:
            assert abs(a[key] - b[key]) <= 0.015, (key, a[key], b[key])
        else:
            assert abs(a[key] - b[key]) <= ABSOLUTE + RELATIVE * abs(b[key]), (key, a[key], b[key])


@pytest.fixture
def models(tmp_path):
    write_tiny_llama(tmp_path / "pt", seed=0)
    write_tiny_llama(tmp_path / "sft", seed=1)
    (tmp_path / "prompts.jsonl").write_text("".join(f'{{"prompt_ids":[1,{3 + i},{4 + i},{5 + i % 7}]}}\n' for i in range(16)))
    return tmp_path


def ppo_command(srppo_bin, models, out, *extra, ranks=1, steps=3, frozen=None):
    """`srppo ppo` on the tiny models (in-process PT and SFT unless `frozen` names others), under
    mpirun with two ranks when `ranks` is 2."""
    frozen = frozen or ["--pt", str(models / "pt"), "--sft", str(models / "sft")]
    command = [srppo_bin, "ppo", *frozen, "--prompts", str(models / "prompts.jsonl"), "--steps", str(steps), "--prompts-per-step", "4",
               "--samples-per-prompt", "2", "--max-new-tokens", "10", "--mini-batch-size", "4", "--seed", "7", "--threads", "1",
               "--out", str(out), *extra]
    return (MPIRUN if ranks == 2 else []) + command


def ppo(srppo_bin, models, out, *extra, ranks=1, steps=3, check=True):
    return subprocess.run(ppo_command(srppo_bin, models, out, *extra, ranks=ranks, steps=steps), capture_output=True, text=True,
                          check=check, timeout=300)


@pytest.mark.parametrize("networks", [[], ["--actor-lora-rank", "4", "--critic-lora-rank", "4"]], ids=["full", "lora"])
def test_two_ranks_train_ppo_as_one_process(models, srppo_bin, networks):
    ppo(srppo_bin, models, models / "one", *networks)
    two = ppo(srppo_bin, models, models / "two", *networks, ranks=2)
    assert "data-parallel over 2 MPI ranks" in two.stderr
    single, ranks = metrics(models / "one"), metrics(models / "two")
    assert len(single) == len(ranks) == 3
    # Step 1: the same rollouts, rewards and KL (exact); its first minibatch's losses too.
    for key in ["reward", "reward_per_token", "score", "kl_sft", "kl_pt", "response_length", "eos_rate", "return_mean", "value_mean"]:
        assert ranks[0][key] == single[0][key], key
    for a, b in zip(ranks, single):
        assert_close(a, b)
    # One writer: rank 0's run folder is a complete run.
    assert sorted(os.listdir(models / "two" / "checkpoints")) == sorted(os.listdir(models / "one" / "checkpoints"))
    assert (models / "two" / "model" / "model.safetensors").exists()


def test_ranks_score_through_their_nodes_daemon_as_in_process(models, srppo_bin):
    """Each rank scores through the srppod of its node (here both ranks' node) and starts from its SFT
    image: the run is the in-process 2-rank run, bit for bit (the daemon's scores are the engine's)."""
    ppo(srppo_bin, models, models / "embedded", ranks=2)
    path = str(models / "http.sock")
    daemon = Daemon(models / "pt", models / "sft", socket_path=path, image_socket=models / "images.sock")
    try:
        served = subprocess.run(ppo_command(srppo_bin, models, models / "served", ranks=2, frozen=["--daemon", path]),
                                capture_output=True, text=True, timeout=300)
        assert served.returncode == 0, served.stderr
        assert served.stderr.count("actor and critic from image 'sft'") == 2
    finally:
        assert daemon.stop() == 0
    assert metrics(models / "served") == metrics(models / "embedded")


def test_two_ranks_train_sft_as_one_process(models, srppo_bin):
    demos = models / "demos.jsonl"
    demos.write_text("".join(json.dumps({"prompt_ids": [1, 3 + i % 9, 4 + i % 5], "response_ids": [5 + i % 11, 6 + i % 3, 2]}) + "\n"
                             for i in range(40)))
    def sft(out, ranks):
        command = [srppo_bin, "sft", "--model", str(models / "pt"), "--data", str(demos), "--out", str(out), "--epochs", "2",
                   "--batch-size", "8", "--micro-batch-size", "2", "--lr", "1e-3", "--eval-every", "2", "--threads", "1"]
        return subprocess.run((MPIRUN if ranks == 2 else []) + command, capture_output=True, text=True, check=True, timeout=300)
    sft(models / "sft-one", 1)
    sft(models / "sft-two", 2)
    single, ranks = metrics(models / "sft-one"), metrics(models / "sft-two")
    assert len(single) == len(ranks) > 5 and any("eval_loss" in m for m in single[1:])
    for a, b in zip(ranks, single):
        assert_close(a, b)


def rank_pid(mpirun, rank):
    """The pid of the rank `rank` that `mpirun` started (a child carrying OMPI_COMM_WORLD_RANK)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as f:
                environment = f.read().split(b"\0")
        except OSError:
            continue
        if parent == mpirun.pid and f"OMPI_COMM_WORLD_RANK={rank}".encode() in environment:
            return int(entry)
    return None


def test_a_killed_rank_fails_the_job_and_resume_continues_it(models, srppo_bin):
    settings = ["--checkpoint-every", "2"]
    ppo(srppo_bin, models, models / "straight", *settings, ranks=2, steps=10)
    command = ppo_command(srppo_bin, models, models / "killed", *settings, ranks=2, steps=10)
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        log = models / "killed" / "metrics.jsonl"
        while not (log.exists() and len(log.read_text().splitlines()) >= 3):
            assert time.monotonic() < deadline and job.poll() is None, "the job did not get going"
            time.sleep(0.01)
        victim = rank_pid(job, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        output, _ = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert "exited on signal 9" in output, output
    done = len(metrics(models / "killed"))
    assert 3 <= done < 10, "the rank was killed after the run had finished"
    resumed = subprocess.run(MPIRUN + [srppo_bin, "ppo", "--out", str(models / "killed"), "--resume", "--threads", "1"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(models / "killed") == metrics(models / "straight")
