#!/usr/bin/env python3
"""Memory of srppod plus N concurrent PPO trainers on one host (BENCHMARKS.md, "Many trainers on one
host"): each process's Pss and private memory from /proc/PID/smaps_rollup, sampled once every
trainer has finished a step (optimizer state allocated), each trainer's peak Rss (VmHWM), and the
total Pss against one image set (the daemon's PT and SFT images): Pss counts a shared page once over
all the processes that map it, so the total is what the host really spends. Trainers run `srppo
ppo`'s default step (4 prompts × 4 samples, ≤ 64 new tokens, minibatch 8) with one thread each.

    python3 scripts/trainers_memory.py --model "$(cat ~/.cache/srppo/smollm2.path)" --trainers 1,4,8 --lora-rank 8
    python3 scripts/trainers_memory.py --model ... --trainers 1 --full     # full fine-tuning, for contrast
    python3 scripts/trainers_memory.py --model ... --trainers 1,8 --dtype bf16 --recompute   # LoRA on bf16 images
    python3 scripts/trainers_memory.py --model ... --startup                # start-up: image vs checkpoint on disk

--sft names the SFT checkpoint the daemon serves (default: --model itself, so PT and SFT are the
same weights and the daemon keeps one image; give a real SFT run's model/ for two images).

Needs `swift build -c release` (srppo, srppod). Prints a Markdown table.
"""
import argparse
import http.client
import json
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = ROOT / ".build" / "release"
MIB = 1024 * 1024
sys.path.insert(0, str(ROOT / "Tests" / "python"))
from srppod_harness import smaps_rollup  # noqa: E402  (the tests' reading of /proc/PID/smaps_rollup)


def memory_of(pid):
    """smaps_rollup's fields plus Private, Shared and the peak Rss (VmHWM), in bytes."""
    values = smaps_rollup(pid)
    values["Private"] = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0) + values.get("Private_Hugetlb", 0)
    values["Shared"] = values.get("Shared_Clean", 0) + values.get("Shared_Dirty", 0) + values.get("Shared_Hugetlb", 0)
    with open(f"/proc/{pid}/status") as f:
        values["VmHWM"] = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return values


def wait_for_line(process, event, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"srppod exited: {process.stderr.read()}")
        if json.loads(line).get("event") == event:
            return json.loads(line)
    raise SystemExit(f"srppod: no '{event}' within {timeout} s")


def image_set_bytes(http_socket):
    """Bytes of the distinct images the daemon serves (GET /v1/models: data_bytes per image)."""
    class Connection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(http_socket))
    connection = Connection("srppod")
    connection.request("GET", "/v1/models")
    models = json.loads(connection.getresponse().read())["models"]
    return sum({m["identity"]["sha256"]: m["data_bytes"] for m in models}.values())


def start_daemon(model, sft, work, dtype="f32"):
    http, images = work / "http.sock", work / "images.sock"
    daemon = subprocess.Popen([BIN / "srppod", "--pt", model, "--sft", str(sft), "--socket", str(http), "--image-socket", str(images),
                               "--dtype", dtype, "--hugepages", "off", "--log", "stderr"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = wait_for_line(daemon, "ready")
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}]})
                               + "\n" for i in range(64)))
    return daemon, http, images, prompts, ready


def startup(model, sft, work, runs=3):
    """Seconds from command start to the first rollout, from the daemon's image and from --sft on disk."""
    daemon, http, images, prompts, _ = start_daemon(model, sft, work)
    try:
        print("| start of actor and critic | start-up, median of 3 (s) | runs (s) |")
        print("| --- | --- | --- |")
        for label, extra in [("daemon's image", ["--daemon-images", str(images)]), ("--sft from disk", ["--sft", str(sft), "--sft-from-disk"])]:
            seconds = []
            for i in range(runs):
                out = work / f"startup-{len(seconds)}-{label[0]}"
                shutil.rmtree(out, ignore_errors=True)
                run = subprocess.run([BIN / "srppo", "ppo", "--daemon", str(http), *extra, "--prompts", str(prompts), "--steps", "1",
                                      "--prompts-per-step", "1", "--samples-per-prompt", "1", "--max-new-tokens", "1", "--out", str(out)],
                                     capture_output=True, text=True)
                if run.returncode != 0:
                    raise SystemExit(f"srppo ppo failed: {run.stderr}")
                line = next(l for l in run.stderr.splitlines() if "start-up" in l)
                seconds.append(float(line.split("start-up ")[1].split(" s")[0]))
            print(f"| {label} | {sorted(seconds)[len(seconds) // 2]:.3f} | {', '.join(f'{s:.3f}' for s in seconds)} |", flush=True)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def measure(model, sft, trainers, networks, work, dtype, steps_before_sampling=1):
    daemon, http, images, prompts, ready = start_daemon(model, sft, work, dtype)
    processes = []
    try:
        image_bytes = image_set_bytes(http)
        for n in range(trainers):
            out = work / f"run-{len(networks)}-{trainers}-{n}"
            shutil.rmtree(out, ignore_errors=True)
            processes.append((out, subprocess.Popen(
                [BIN / "srppo", "ppo", "--daemon", str(http), "--daemon-images", str(images), "--prompts", str(prompts),
                 "--steps", "1000", "--threads", "1", "--client", f"mem-{n}", "--out", str(out), *networks],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
        deadline = time.monotonic() + 1800
        for out, process in processes:
            metrics = out / "metrics.jsonl"
            while not (metrics.exists() and len(metrics.read_text().splitlines()) >= steps_before_sampling):
                if process.poll() is not None:
                    raise SystemExit(f"trainer {out} exited {process.returncode}: {process.stderr.read()}")
                if time.monotonic() > deadline:
                    raise SystemExit("trainers too slow")
                time.sleep(0.2)
        rows = [("srppod", memory_of(daemon.pid))] + [(f"trainer {i + 1}", memory_of(p.pid)) for i, (_, p) in enumerate(processes)]
        return rows, image_bytes
    finally:
        for _, process in processes:
            process.kill()
            process.wait()
        daemon.terminate()
        daemon.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--trainers", default="1,4,8", help="comma-separated counts")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--sft", help="SFT checkpoint the daemon serves (default: --model itself)")
    parser.add_argument("--recompute", action="store_true", help="trainers recompute activations in the backward (srppo ppo --recompute)")
    parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                        help="the daemon's images (srppod --dtype); bf16 is a LoRA base only")
    parser.add_argument("--startup", action="store_true", help="measure start-up instead of memory")
    args = parser.parse_args()
    if args.dtype == "bf16" and args.full:
        parser.error("a bf16 image is a LoRA base only: leave out --full")
    networks = [] if args.full else ["--actor-lora-rank", str(args.lora_rank), "--critic-lora-rank", str(args.lora_rank)]
    kind = "full fine-tuning" if args.full else f"LoRA rank {args.lora_rank} (actor and critic)"
    if args.recompute:
        networks.append("--recompute")
        kind += ", --recompute"
    if args.dtype == "bf16":
        kind += ", bf16 images"
    with tempfile.TemporaryDirectory(prefix="srppo-trainers-memory-") as folder:
        work = pathlib.Path(folder)
        sft = pathlib.Path(args.sft or args.model)
        if args.startup:
            return startup(args.model, sft, work)
        print(f"| trainers ({kind}) | srppod Pss | trainer private (mean, max) | trainer peak Rss (max) | total Pss "
              "| one image set | (total Pss − image set) / trainers |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for count in [int(c) for c in args.trainers.split(",")]:
            rows, image_bytes = measure(args.model, sft, count, networks, work, args.dtype)
            trainers = [r for name, r in rows if name.startswith("trainer")]
            total_pss = sum(r["Pss"] for _, r in rows)
            private = [r["Private"] for r in trainers]
            print(f"| {count} | {rows[0][1]['Pss'] / MIB:.0f} MiB | {sum(private) / len(private) / MIB:.0f} MiB, {max(private) / MIB:.0f} MiB "
                  f"| {max(r['VmHWM'] for r in trainers) / MIB:.0f} MiB | {total_pss / MIB:.0f} MiB | {image_bytes / MIB:.0f} MiB "
                  f"| {(total_pss - image_bytes) / count / MIB:.0f} MiB |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
