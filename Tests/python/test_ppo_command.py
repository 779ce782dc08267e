"""`srppo ppo` on SmolLM2 as a process: a tiny run end to end (progress line, metrics, checkpoints
with tokenizer files, final model), kill -9 then --resume continuing identically, and two trainers
sharing one srppod giving what the embedded run gives for the same seed."""
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import run_srppo
from srppod_harness import Daemon

# A tiny config: 2 prompts x 2 samples per step, LoRA actor and critic to keep the test quick
# (full fine-tuning is covered by the Swift PPO tests). Same thread count everywhere: it decides how
# GEMMs split, hence the last bits.
SETTINGS = ["--steps", "4", "--prompts-per-step", "2", "--samples-per-prompt", "2", "--max-new-tokens", "12",
            "--mini-batch-size", "4", "--epochs", "1", "--actor-lora-rank", "4", "--critic-lora-rank", "4",
            "--actor-lr", "1e-4", "--critic-lr", "1e-3", "--checkpoint-every", "2", "--keep", "2", "--seed", "3"]
THREADS = ["--threads", "2"]

# Every metric the issue lists, by the name metrics.jsonl uses.
METRICS = ["reward", "reward_per_token", "kl_sft", "kl_pt", "approx_kl", "clip_fraction", "value_clip_fraction", "entropy",
           "value_loss", "explained_variance", "response_length", "eos_rate", "truncation_rate", "tokens_per_second",
           "generated_tokens_per_second", "seconds_generate", "seconds_score", "seconds_train", "seconds_step",
           "kl_coefficient", "policy_loss", "score"]


def metrics(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.endswith("\n")]


def deterministic(records):
    """The metrics without wall-clock ones."""
    return [{k: v for k, v in r.items() if not k.startswith("seconds_") and not k.endswith("tokens_per_second")} for r in records]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, smollm2, srppo_bin):
    root = tmp_path_factory.mktemp("ppo")
    demos = root / "demos.jsonl"
    pairs = [("Name a primary color.", "Red."), ("What is 2+2?", "4."), ("Say hello.", "Hello!"), ("Name a fruit.", "An apple."),
             ("What color is the sky?", "Blue."), ("Name an animal.", "A cat."), ("Capital of France?", "Paris."),
             ("Say goodbye.", "Goodbye!")]
    demos.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in pairs))
    chat = root / "chat_prompts.jsonl"
    chat.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p}]}) + "\n"
                            for p in ["Name a vegetable.", "What is 3+3?", "Say thanks.", "Name a planet."]))
    # A small SFT so that SFT differs from PT and the coherent reward is not zero.
    sft = root / "sft"
    run_srppo(srppo_bin, "sft", "--model", smollm2, "--data", str(demos), "--out", str(sft), "--epochs", "2", "--batch-size", "4",
              "--lr", "1e-4", "--eval-fraction", "0", "--checkpoint-every", "100", *THREADS)
    straight = root / "straight"
    result = run_srppo(srppo_bin, "ppo", "--pt", smollm2, "--sft", str(sft / "model"), "--prompts", str(demos),
                       "--prompts", str(chat), "--out", str(straight), *SETTINGS, "--save-policy-at", "2", *THREADS)
    yield dict(root=root, pt=smollm2, sft=str(sft / "model"), prompts=[str(demos), str(chat)], straight=str(straight),
               stderr=result.stderr)
    shutil.rmtree(root, ignore_errors=True)  # ~5 GB of checkpoints


def test_tiny_run_end_to_end(setup):
    run = setup["straight"]
    assert "ppo: 12 prompts, 4 steps of 4 responses" in setup["stderr"]
    assert "ppo step 4/4 reward" in setup["stderr"] and "kl_sft" in setup["stderr"]
    records = metrics(run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for r in records:
        for name in METRICS:
            assert isinstance(r[name], (int, float)), name
        assert r["reward_per_token"] == pytest.approx(r["reward_per_token"])
        assert r["eos_rate"] + r["truncation_rate"] == pytest.approx(1)
        assert 1 <= r["response_length"] <= 12
        assert r["seconds_step"] >= r["seconds_generate"] + r["seconds_score"] + r["seconds_train"] - 1e-6
    # The actor starts at SFT: the first step's KL to SFT is zero, and SFT differs from PT.
    assert records[0]["kl_sft"] == 0
    assert records[0]["kl_pt"] != 0 and records[0]["reward"] != 0
    config = json.load(open(os.path.join(run, "run-config.json")))
    assert config["command"] == "ppo" and config["ppo"]["steps"] == 4 and config["ppo"]["actorLoRA"]["rank"] == 4
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == ["step-000002", "step-000004"]
    for folder in [os.path.join(run, "checkpoints", "step-000004"), os.path.join(run, "model")]:
        for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]:
            assert os.path.exists(os.path.join(folder, name)), (folder, name)
    state = os.path.join(run, "checkpoints", "step-000004", "training-state")
    assert {"trainer.json", "actor-adapters", "critic-adapters", "value-head.safetensors"} <= set(os.listdir(state))


def test_save_policy_at_writes_the_policy_a_shorter_run_ends_with(setup, srppo_bin, tmp_path):
    """--save-policy-at 2 keeps the policy after step 2: the final policy of the same run stopped at 2
    steps, bit for bit (the pipeline's data-scarcity point at N = demos relies on it)."""
    saved = os.path.join(setup["straight"], "policy-step-2")
    assert sorted(n for n in os.listdir(setup["straight"]) if n.startswith("policy-")) == ["policy-step-2"]
    for name in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]:
        assert os.path.exists(os.path.join(saved, name)), name
    short = tmp_path / "short"
    run_srppo(srppo_bin, "ppo", "--pt", setup["pt"], "--sft", setup["sft"], "--prompts", setup["prompts"][0],
              "--prompts", setup["prompts"][1], "--out", str(short), *SETTINGS, "--steps", "2", *THREADS)
    assert deterministic(metrics(short)) == deterministic(metrics(setup["straight"]))[:2]
    with open(os.path.join(saved, "model.safetensors"), "rb") as a, open(short / "model" / "model.safetensors", "rb") as b:
        assert a.read() == b.read()
    refused = run_srppo(srppo_bin, "ppo", "--pt", setup["pt"], "--sft", setup["sft"], "--prompts", setup["prompts"][0],
                        "--out", str(tmp_path / "refused"), *SETTINGS, "--save-policy-at", "9", check=False)
    assert refused.returncode != 0 and "save-policy-at 9: the run has steps 1 to 4" in refused.stderr


def test_share_prefixes_changes_scores_by_rounding_only(setup, srppo_bin, tmp_path):
    """--share-prefixes runs each prompt once for its samples: the same rollouts, and rewards equal to
    the plain run's up to float rounding (the GEMMs split differently)."""
    run = tmp_path / "shared"
    run_srppo(srppo_bin, "ppo", "--pt", setup["pt"], "--sft", setup["sft"], "--prompts", setup["prompts"][0],
              "--prompts", setup["prompts"][1], "--out", str(run), *SETTINGS, "--max-steps", "1", "--share-prefixes", *THREADS)
    shared, plain = metrics(run)[0], metrics(setup["straight"])[0]
    assert shared["response_length"] == plain["response_length"] and shared["eos_rate"] == plain["eos_rate"]
    assert shared["reward"] == pytest.approx(plain["reward"], rel=1e-4, abs=1e-3)
    result = run_srppo(srppo_bin, "ppo", "--daemon", str(tmp_path / "none.sock"), "--sft", setup["sft"], "--prompts",
                       setup["prompts"][0], "--out", str(tmp_path / "x"), "--share-prefixes", check=False)
    assert result.returncode == 2 and "--share-prefixes applies to in-process scoring" in result.stderr


def test_kill_9_then_resume_continues_identically(setup, srppo_bin):
    killed = str(setup["root"] / "killed")
    command = [srppo_bin, "ppo", "--pt", setup["pt"], "--sft", setup["sft"], "--prompts", setup["prompts"][0],
               "--prompts", setup["prompts"][1], "--out", killed, *SETTINGS, *THREADS]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(metrics(killed)) < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(metrics(killed)) == 3  # step 3 was logged, its checkpoint never written

    # A resume must not change settings.
    refused = run_srppo(srppo_bin, "ppo", "--out", killed, "--resume", "--steps", "9", check=False)
    assert refused.returncode == 1 and "saved settings" in refused.stderr

    resumed = run_srppo(srppo_bin, "ppo", "--out", killed, "--resume", *THREADS)
    assert "resuming" in resumed.stderr and "at step 2/4" in resumed.stderr
    assert deterministic(metrics(killed)) == deterministic(metrics(setup["straight"]))
    assert sorted(os.listdir(os.path.join(killed, "checkpoints"))) == ["step-000002", "step-000004"]


def test_two_trainers_share_one_daemon_and_equal_the_embedded_run(setup, srppo_bin, tmp_path):
    socket_path, images = str(tmp_path / "srppod.sock"), str(tmp_path / "srppod-images.sock")
    daemon = Daemon(setup["pt"], setup["sft"], socket_path=socket_path, image_socket=images)
    try:
        runs = [str(tmp_path / f"daemon-{i}") for i in range(2)]
        procs = [subprocess.Popen([srppo_bin, "ppo", "--daemon", socket_path, "--sft", setup["sft"],
                                   "--prompts", setup["prompts"][0], "--prompts", setup["prompts"][1], "--out", run,
                                   "--client", f"ppo-trainer-{i}", "--max-steps", "2", *SETTINGS, *THREADS],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i, run in enumerate(runs)]
        outputs = [p.communicate(timeout=300) for p in procs]
        for p, (_, err) in zip(procs, outputs):
            assert p.returncode == 0, err
        for i, (_, err) in enumerate(outputs):
            assert f"as client ppo-trainer-{i}" in err
            assert f"actor and critic from image 'sft' of {images}" in err    # found through /v1/models
        expected = deterministic(metrics(setup["straight"]))[:2]
        for run in runs:
            assert deterministic(metrics(run)) == expected, run
        log = "".join(daemon.stderr_lines)
        assert "ppo-trainer-0" in log and "ppo-trainer-1" in log

        # The daemon must serve the SFT the actor starts from.
        wrong = run_srppo(srppo_bin, "ppo", "--daemon", socket_path, "--sft", setup["pt"], "--prompts", setup["prompts"][0],
                          "--out", str(tmp_path / "wrong"), "--steps", "1", check=False)
        assert wrong.returncode == 1 and "the actor must start from the reward's SFT" in wrong.stderr
    finally:
        daemon.stop()
        for i in range(2):
            shutil.rmtree(tmp_path / f"daemon-{i}", ignore_errors=True)


def test_bench_ppo_reports_the_phase_split(tmp_path, srppo_bin):
    from tiny_model import write_tiny_llama
    model = write_tiny_llama(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt_ids": [1, 3 + i, 4 + i, 5]}) + "\n" for i in range(6)))
    result = run_srppo(srppo_bin, "bench", "ppo", "--pt", str(model), "--prompts", str(prompts), "--steps", "2", "--warmup", "0",
                       "--max-new-tokens", "6", "--threads", "1")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["step"] for line in lines[:2]] == [1, 2]
    summary = lines[2]
    assert summary["threads"] == 1 and summary["responses_per_step"] == 8 and summary["training"] == "full fine-tuning"
    shares = [summary[f"share_{p}"] for p in ["generate", "score", "prepare", "train"]]
    # Each share is rounded to 3 decimals: the sum may be off by 4 half-units.
    assert all(0 < s < 1 for s in shares) and 0.95 <= sum(shares) <= 1.002
    assert summary["seconds_step"] > 0 and 1 <= summary["response_tokens_per_step"] <= 8 * 6
