#!/usr/bin/env bash
# The main job on the embedded default: installs what is needed, builds, fetches SmolLM2 and scores
# a few responses with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
model="$(cat "${SRPPO_CACHE:-$HOME/.cache/srppo}/smollm2.path")"
swift build -c release
echo "Scoring responses under $model:"
.build/release/srppo score --model "$model" <<'JSONL'
{"prompt_ids":[1,504,3458,314],"response_ids":[260,1463,30,216,2]}
{"prompt_ids":[1,504,3458,314],"response_ids":[260,3217,30,216,2]}
JSONL
