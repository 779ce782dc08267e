#!/usr/bin/env bash
# The main job, end to end on the embedded default: installs what is needed, builds, fetches
# SmolLM2-135M-Instruct (the pretrained model PT) and runs the whole method at the small size
# (about 20 minutes on 2 cores): generated instruction tasks → SFT → PPO with the coherent reward
# (EOS and token-wise placement) → evaluation of PT, SFT and SRPPO on the same out-of-domain set →
# runs/demo/report.html.
#   scripts/demo.sh                  the small preset into runs/demo
#   scripts/demo.sh --preset large   any `srppo pipeline` flags (see `srppo pipeline --help`)
# Running it again continues an interrupted run (finished stages are skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
model="$(cat "${SRPPO_CACHE:-$HOME/.cache/srppo}/smollm2.path")"
swift build -c release
out=runs/demo
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" = --out ] && out="${args[i + 1]}"; done
[ "$out" = runs/demo ] && args+=(--out runs/demo)
.build/release/srppo pipeline --model "$model" "${args[@]}"
echo "Report: $out/report.html"
