"""`srppo ppo --daemon` starts actor and critic from the daemon's SFT weight image (received by
descriptor) instead of loading --sft: the same trajectory as a run that loads the checkpoint, for LoRA
(the base is the daemon's memory, mapped read-only) and full fine-tuning (copy-on-write); the
trainer's mappings are the daemon's image; a reload of the SFT under a running trainer leaves its
base alone, stops the run at its next score with a clear error, and its --resume is refused."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest

import srppo_client
from srppod_harness import Daemon, NotifySocket


@pytest.fixture
def tiny(tiny_revisions):
    (tiny_revisions / "prompts.jsonl").write_text("".join(f'{{"prompt_ids":[1,{3 + i},{4 + i},{5 + i % 7}]}}\n' for i in range(16)))
    return tiny_revisions


def settings(tiny, steps=6):
    return ["--prompts", str(tiny / "prompts.jsonl"), "--steps", str(steps), "--prompts-per-step", "4", "--samples-per-prompt", "2",
            "--max-new-tokens", "10", "--seed", "7", "--threads", "1"]


def trajectory(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds_") and "per_second" not in k}
                for line in f]


LORA = ["--actor-lora-rank", "4", "--critic-lora-rank", "4"]


@pytest.mark.parametrize("networks", [LORA, []], ids=["lora", "full"])
def test_a_trainer_on_the_daemons_image_trains_as_one_that_loads_the_checkpoint(tiny, srppo_bin, networks):
    path, images = str(tiny / "http.sock"), str(tiny / "images.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path, image_socket=images)
    try:
        daemon_args = ["--daemon", path, "--daemon-images", images]
        on_image = subprocess.run([srppo_bin, "ppo", *daemon_args, *settings(tiny), *networks, "--out", str(tiny / "image")],
                                  capture_output=True, text=True)
        assert on_image.returncode == 0, on_image.stderr
        assert f"actor and critic from image 'sft' of {images}" in on_image.stderr
        from_disk = subprocess.run([srppo_bin, "ppo", "--daemon", path, "--sft", str(tiny / "sft"), "--sft-from-disk",
                                    *settings(tiny), *networks, "--out", str(tiny / "disk")], capture_output=True, text=True)
        assert from_disk.returncode == 0, from_disk.stderr
        assert f"actor and critic from {tiny / 'sft'};" in from_disk.stderr
        assert len(trajectory(tiny / "image")) == 6
        assert trajectory(tiny / "image") == trajectory(tiny / "disk")
        # The final policies are the same bytes.
        with open(tiny / "image" / "model" / "model.safetensors", "rb") as a, open(tiny / "disk" / "model" / "model.safetensors", "rb") as b:
            assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()
    finally:
        assert daemon.stop() == 0


def test_a_checkpoint_other_than_the_daemons_sft_is_refused(tiny, srppo_bin):
    path, images = str(tiny / "http.sock"), str(tiny / "images.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path, image_socket=images)
    try:
        run = subprocess.run([srppo_bin, "ppo", "--daemon", path, "--sft", str(tiny / "sft-b"), *settings(tiny),
                              "--out", str(tiny / "other")], capture_output=True, text=True)
        assert run.returncode == 1
        assert "the actor must start from the reward's SFT" in run.stderr
        missing = subprocess.run([srppo_bin, "ppo", "--daemon", path, "--daemon-images", str(tiny / "absent.sock"), *settings(tiny),
                                  "--out", str(tiny / "absent")], capture_output=True, text=True)
        assert missing.returncode == 1 and "absent.sock" in missing.stderr
    finally:
        assert daemon.stop() == 0


def test_the_image_socket_is_found_through_the_daemon_or_the_trainer_starts_from_disk(tiny, srppo_bin):
    """/v1/models names the image socket by its absolute path (here bound by a relative one), and a
    trainer uses it without a flag; a daemon without one gets a trainer that starts from --sft on disk
    (and says so), or, without --sft, a one-line error naming both ways out."""
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", "--image-socket", "images.sock", socket_path=path, cwd=tiny)
    try:
        assert srppo_client.Client(path).models()["image_socket"] == str(tiny / "images.sock")
        run = subprocess.run([srppo_bin, "ppo", "--daemon", path, *settings(tiny, steps=1), *LORA, "--out", str(tiny / "found")],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert f"actor and critic from image 'sft' of {tiny / 'images.sock'}" in run.stderr
    finally:
        assert daemon.stop() == 0
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path)
    try:
        assert "image_socket" not in srppo_client.Client(path).models()
        run = subprocess.run([srppo_bin, "ppo", "--daemon", path, "--sft", str(tiny / "sft"), *settings(tiny, steps=1),
                              "--out", str(tiny / "disk")], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert f"the daemon hands out no weight images: actor and critic start from --sft {tiny / 'sft'} on disk" in run.stderr
        no_sft = subprocess.run([srppo_bin, "ppo", "--daemon", path, *settings(tiny, steps=1), "--out", str(tiny / "none")],
                                capture_output=True, text=True)
        assert no_sft.returncode == 1
        assert "hands out no weight images (srppod --image-socket PATH): give --sft PATH" in no_sft.stderr, no_sft.stderr
    finally:
        assert daemon.stop() == 0


def test_lora_trainers_train_over_a_bf16_image_and_full_fine_tuning_is_refused(tiny, srppo_bin):
    """srppod --dtype bf16 serves half-size images; a LoRA trainer's base is that image (mapped
    read-only, multiplied in bf16 in rollouts, old log-probs and updates alike), its policy is exported
    (the bf16 base plus the adapters, in fp32), and a full fine-tuning trainer gets a one-line refusal."""
    path = str(tiny / "http.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", "--dtype", "bf16", socket_path=path, image_socket=tiny / "images.sock")
    try:
        run = subprocess.run([srppo_bin, "ppo", "--daemon", path, *settings(tiny, steps=3), *LORA, "--out", str(tiny / "bf16")],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "actor and critic from image 'sft'" in run.stderr
        steps = trajectory(tiny / "bf16")
        assert len(steps) == 3 and all(isinstance(v, (int, float)) and v == v for step in steps for v in step.values())
        # At step 1 the actor is the SFT in the same bf16 the daemon scores with: the KL to it is 0.
        assert abs(steps[0]["kl_sft"]) < 1e-5, steps[0]
        assert (tiny / "bf16" / "model" / "model.safetensors").stat().st_size > 0
        full = subprocess.run([srppo_bin, "ppo", "--daemon", path, *settings(tiny, steps=1), "--out", str(tiny / "full")],
                              capture_output=True, text=True)
        assert full.returncode == 1
        assert "holds bf16 weights, which serve as a LoRA base only" in full.stderr, full.stderr
    finally:
        assert daemon.stop() == 0


def maps_of(pid):
    with open(f"/proc/{pid}/maps") as f:
        return f.read()


def test_a_reload_leaves_a_running_trainers_base_alone_and_stops_its_run(tiny, srppo_bin):
    """A LoRA trainer maps the daemon's SFT image (a memfd) read-only. SIGHUP with a new SFT revision:
    the old image stays what it was for whoever maps it, the trainer stops at its next score (its
    reward would come from another model) and its --resume is refused for the same reason."""
    notify = NotifySocket(tiny)
    path, images = str(tiny / "http.sock"), str(tiny / "images.sock")
    daemon = Daemon(tiny / "pt", tiny / "sft", socket_path=path, image_socket=images, notify=notify)
    try:
        old = {image["name"]: image["sha256"] for image in srppo_client.list_images(images)}["sft"]
        held = srppo_client.attach(images, "sft", sha256=old)     # another process's view of the old image
        # No --daemon-images: the trainer finds the image socket in the daemon's /v1/models.
        trainer = subprocess.Popen([srppo_bin, "ppo", "--daemon", path, *settings(tiny, steps=400),
                                    *LORA, "--checkpoint-every", "2", "--out", str(tiny / "run")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        metrics = tiny / "run" / "metrics.jsonl"
        deadline = time.monotonic() + 60
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
            assert time.monotonic() < deadline and trainer.poll() is None, "the trainer did not get going"
            time.sleep(0.01)
        # Its base is the daemon's image memfd, mapped shared and read-only ("r--s").
        image_maps = [line for line in maps_of(trainer.pid).splitlines() if "memfd:" in line]
        assert any(line.split()[1] == "r--s" for line in image_maps), image_maps
        assert not any(line.split()[1][1] == "w" and line.split()[1][3] == "s" for line in image_maps), image_maps

        (tiny / "sft").unlink()
        (tiny / "sft").symlink_to(tiny / "sft-b")
        daemon.signal(signal.SIGHUP)
        reloaded = notify.wait_for("RELOADING", "1")
        notify.wait_for("READY", "1", after=reloaded)
        new = {image["name"]: image["sha256"] for image in srppo_client.list_images(images)}["sft"]
        assert new != old
        _, err = trainer.communicate(timeout=120)
        assert trainer.returncode == 1, err
        assert "srppod now serves" in err and old[:12] in err and new[:12] in err, err
        # The old image is unchanged for those who map it.
        assert hashlib.sha256(held.data()).hexdigest() == old
        held.close()

        resumed = subprocess.run([srppo_bin, "ppo", "--out", str(tiny / "run"), "--resume", "--daemon", path],
                                 capture_output=True, text=True)
        assert resumed.returncode == 1
        assert "trained against" in resumed.stderr and old[:12] in resumed.stderr and new[:12] in resumed.stderr, resumed.stderr
    finally:
        assert daemon.stop() == 0
        notify.close()
