#!/usr/bin/env python3
"""Step time of data-parallel PPO on N nodes, on paper (BENCHMARKS.md, "Several hosts"): the
measured compute of one step on one node divided by N, plus a ring all-reduce of the step's
gradients, 2(N−1)/N × bytes / bandwidth (latency ignored: a few all-reduces of megabytes to
gigabytes per step). Bytes per step = (actor + critic) trainable parameters × 4 B × optimizer updates
per step (epochs × minibatches). Compute of another model is scaled by its parameter count (the
FLOPs of forward and backward are ~6 × parameters per token); a node is this 2-core machine.

    python3 scripts/allreduce_estimate.py --step-seconds 21.9 --updates 2

--step-seconds: `srppo bench ppo` on one node (median seconds per step) for SmolLM2-135M.
"""
import argparse

# (layers, hidden, key/value width, MLP width, parameters)
MODELS = {
    "SmolLM2-135M": (30, 576, 192, 1536, 134_515_008),
    "Llama-3.2-1B": (16, 2048, 512, 8192, 1_235_814_400),
}


def lora_parameters(layers, hidden, kv, mlp, rank=8):
    """Adapters on every projection: rank × (in + out) each."""
    per_layer = rank * ((hidden + hidden) * 2 + (hidden + kv) * 2 + (hidden + mlp) * 3)
    return layers * per_layer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-seconds", type=float, required=True, help="one node's seconds per step for SmolLM2-135M")
    parser.add_argument("--updates", type=int, default=2, help="optimizer updates per step (epochs × minibatches)")
    parser.add_argument("--nodes", default="2,4,8,16")
    parser.add_argument("--gbits", default="25,100", help="network bandwidths in Gb/s")
    args = parser.parse_args()
    nodes = [int(n) for n in args.nodes.split(",")]
    bandwidths = [float(b) for b in args.gbits.split(",")]
    base = MODELS["SmolLM2-135M"][4]
    print("| model | training | MB per rank per step | nodes | compute / N (s) | "
          + " | ".join(f"all-reduce at {b:g} Gb/s (s) | step (s) | all-reduce share" for b in bandwidths) + " |")
    print("|---|---|---:|---:|---:|" + "---:|---:|---:|" * len(bandwidths))
    for name, (layers, hidden, kv, mlp, parameters) in MODELS.items():
        compute = args.step_seconds * parameters / base
        for training, trainable in [("full", parameters), ("LoRA r8", lora_parameters(layers, hidden, kv, mlp))]:
            # Actor and critic (the value head's 1 + hidden floats are negligible).
            step_bytes = 2 * trainable * 4 * args.updates
            for n in nodes:
                cells = []
                for gbits in bandwidths:
                    seconds = 2 * (n - 1) / n * step_bytes / (gbits * 1e9 / 8)
                    step = compute / n + seconds
                    cells.append(f"{seconds:.2f} | {step:.1f} | {seconds / step:.0%}")
                print(f"| {name} | {training} | {step_bytes / 1e6:.0f} | {n} | {compute / n:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
