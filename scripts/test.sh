#!/usr/bin/env bash
# Runs every test: Swift unit and integration tests (XCTest), then the Python reference tests
# (NumPy/gguf/tokenizers parity against the real SmolLM2 model). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SRPPO_SMOLLM2="${SRPPO_SMOLLM2:-$(cat "${SRPPO_CACHE:-$HOME/.cache/srppo}/smollm2.path")}"
swift build -c release
swift test -c release
.venv/bin/python -m pytest -q Tests/python
