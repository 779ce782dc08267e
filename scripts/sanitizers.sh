#!/usr/bin/env bash
# Runs the Swift test suite under ThreadSanitizer and AddressSanitizer (debug builds in
# .build-tsan and .build-asan). Exits non-zero on any sanitizer report or test failure.
#   scripts/sanitizers.sh [thread|address]...
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(thread address)
for kind in "${kinds[@]}"; do
    scratch=.build-${kind/thread/tsan}
    scratch=${scratch/address/asan}
    echo "sanitizer $kind: building"
    swift build --build-tests --sanitize="$kind" --scratch-path "$scratch" 2>&1 | grep -E "error|Build complete" | tail -2
    log=$scratch/test.log
    # XCTest itself leaks at exit; leak reports would fail every run (see PLATFORM-NOTES).
    if ! ASAN_OPTIONS=detect_leaks=0 TSAN_OPTIONS=halt_on_error=1 \
        "$scratch"/x86_64-unknown-linux-gnu/debug/SRPPOPackageTests.xctest >"$log" 2>&1; then
        echo "sanitizer $kind: FAILED (see $log)"
        grep -E "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|error:" "$log" | head -10
        exit 1
    fi
    if grep -qE "WARNING: ThreadSanitizer|ERROR: AddressSanitizer" "$log"; then
        echo "sanitizer $kind: reports in $log"
        exit 1
    fi
    grep -E "Executed [0-9]+ tests" "$log" | tail -1 | sed "s/^/sanitizer $kind:/"
done
