"""`srppo sft` as a process: kill -9 mid-run and --resume gives the uninterrupted loss trajectory;
bad data fails before training; checkpoints are Hugging Face LLaMA checkpoints."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import run_srppo
from tiny_model import write_reversal_demos, write_tiny_llama

SETTINGS = ["--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--checkpoint-every", "3", "--eval-every", "5",
            "--keep", "2", "--threads", "1"]


def losses(run):
    out = {}
    for line in open(os.path.join(run, "metrics.jsonl")):
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    model = write_tiny_llama(root / "tiny")
    data = write_reversal_demos(root / "demos.jsonl", 160)
    return root, str(model), str(data)


def test_kill_9_then_resume_continues_the_same_trajectory(tiny, srppo_bin):
    root, model, data = tiny
    straight = str(root / "straight")
    run_srppo(srppo_bin, "sft", "--model", model, "--data", data, "--out", straight, *SETTINGS)
    expected = losses(straight)
    assert len(expected) == 72

    killed = str(root / "killed")
    proc = subprocess.Popen([srppo_bin, "sft", "--model", model, "--data", data, "--out", killed, *SETTINGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = os.path.join(killed, "metrics.jsonl")
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(metrics) and len(losses(killed)) >= 40:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = len(losses(killed))
    assert 40 <= done < 72, done

    # Bit-for-bit continuation needs the same thread count (it decides how GEMMs are split).
    resumed = run_srppo(srppo_bin, "sft", "--out", killed, "--resume", "--threads", "1")
    assert "resuming" in resumed.stderr
    got = losses(killed)
    assert sorted(got) == sorted(expected)
    assert all(got[s] == expected[s] for s in expected), "the resumed trajectory differs"
    # No temporary checkpoint folders left behind, only the newest two.
    assert sorted(os.listdir(os.path.join(killed, "checkpoints"))) == ["step-000069", "step-000072"]


def test_checkpoint_is_a_hugging_face_llama_checkpoint(tiny, srppo_bin):
    root, model, data = tiny
    run = str(root / "straight")
    final = os.path.join(run, "model")
    config = json.load(open(os.path.join(final, "config.json")))
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    for key in ["hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
                "rms_norm_eps", "rope_theta", "vocab_size", "tie_word_embeddings", "max_position_embeddings"]:
        assert key in config, key
    tensors = load_file(os.path.join(final, "model.safetensors"))
    original = load_file(os.path.join(model, "model.safetensors"))
    assert set(tensors) == set(original)
    for name, value in original.items():
        assert tensors[name].shape == value.shape and tensors[name].dtype == np.float32
    assert not np.allclose(tensors["model.layers.0.mlp.up_proj.weight"], original["model.layers.0.mlp.up_proj.weight"])


def test_bad_data_fails_before_training(tiny, srppo_bin, tmp_path):
    root, model, _ = tiny
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_ids":[1,2],"response_ids":[3,2]}\n{"prompt_ids":[1,2]}\n')
    result = run_srppo(srppo_bin, "sft", "--model", model, "--data", str(bad), "--out", str(tmp_path / "run"), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"srppo: {bad}:2: missing field: needs \"prompt\" and \"response\", \"messages\", or \"prompt_ids\" and \"response_ids\""
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
