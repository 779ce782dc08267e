#!/usr/bin/env bash
# Runs every test: Swift unit and integration tests (XCTest), the Python reference tests
# (NumPy/gguf/tokenizers parity against the real SmolLM2 model, processes, sockets), and the
# fuzz targets (corpus and regression replay, then a short libFuzzer run of each), and the Swift
# suite again under ThreadSanitizer and AddressSanitizer.
# Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SRPPO_SMOLLM2="${SRPPO_SMOLLM2:-$(cat "${SRPPO_CACHE:-$HOME/.cache/srppo}/smollm2.path")}"
# One release build of the products (the Python tests run them) and the XCTest bundle: building
# them apart compiles every module twice (with and without testability), ~2 minutes more.
swift build -c release --build-tests
# OpenBLAS picks its kernels for the CPU it finds, unless OPENBLAS_CORETYPE names them (some hosts
# set Haswell, the AVX2 kernels). Their last bits differ, so the Swift suite (~15 s) runs under both
# families on every host: OpenBLAS's own pick for this CPU, then the Haswell kernels.
# Under CI a skipped XCTest fails the run, as a skipped pytest does (CI has everything they need).
xctest() {
    local log
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    if [ -n "${CI:-}" ] && grep -E "with [0-9]+ tests? skipped" "$log"; then
        echo "test.sh: XCTest skipped tests under CI (see the skip messages above)" >&2
        exit 1
    fi
}
xctest env -u OPENBLAS_CORETYPE swift test -c release --skip-build
xctest env OPENBLAS_CORETYPE=Haswell swift test -c release --skip-build
# -rs lists any skip with its reason (under CI a skip fails: Tests/python/conftest.py); a test that
# hangs fails after --timeout seconds instead of stalling CI (the slowest takes ~80 s).
.venv/bin/python -m pytest -q -rs --timeout 600 --durations=15 Tests/python

for corpus in Fuzz/corpus/*; do
    target=$(basename "$corpus")
    .build/release/srppo-fuzz "$target" "$corpus" $(ls -d "Fuzz/regressions/$target" 2>/dev/null)
done
bash scripts/fuzz.sh --runs 20000
bash scripts/sanitizers.sh
