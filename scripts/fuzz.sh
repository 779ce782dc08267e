#!/usr/bin/env bash
# Builds srppo-fuzz with libFuzzer + AddressSanitizer and fuzzes each parser target.
#   scripts/fuzz.sh                      short run: 20,000 executions per target (part of the tests)
#   scripts/fuzz.sh --runs 1000000       the documented long run (RELIABILITY.md)
#   scripts/fuzz.sh --seconds 600 gguf   one target for ten minutes
# Seeds come from Fuzz/corpus/<target>; new corpus entries go to .build-fuzz/corpus/<target>; a crash
# is written to Fuzz/regressions/<target>/ (commit it: the test command replays every file there)
# and the script exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-runs=20000)
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) limit=(-runs="$2"); shift 2 ;;
        --seconds) limit=(-max_total_time="$2"); shift 2 ;;
        -h|--help) sed -n 2,8p "$0"; exit 0 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors hf-config jsonl-data image-protocol image-manifest http-request)

# lld: gold fails on the sanitizer's DWARF (internal error in format_file_lineno).
swift build -c release --product srppo-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld 2>&1 | grep -E "error|Compiling|Build complete" | tail -3
fuzzer=.build-fuzz/release/srppo-fuzz
# http-request runs text items and tokenize requests through SmolLM2's tokenizer when it is here.
model_path="${SRPPO_CACHE:-$HOME/.cache/srppo}/smollm2.path"
[ -n "${SRPPO_SMOLLM2:-}" ] || { [ -f "$model_path" ] && export SRPPO_SMOLLM2="$(cat "$model_path")"; } || true

status=0
for target in "${targets[@]}"; do
    work=.build-fuzz/corpus/$target
    crashes=Fuzz/regressions/$target
    mkdir -p "$work" "$crashes"
    log=.build-fuzz/$target.log
    echo "fuzz $target: ${limit[*]}"
    # Swift's backtracer would catch the crash before libFuzzer writes its crash file.
    if SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 "$fuzzer" "$target" "${limit[@]}" -max_len=65536 -timeout=10 \
        -rss_limit_mb=4096 -artifact_prefix="$crashes/" "$work" "Fuzz/corpus/$target" >"$log" 2>&1; then
        grep -E "^Done|#[0-9]+.*DONE" "$log" | tail -1 | sed "s/^/  /"
    else
        echo "  CRASH: see $log; the input is in $crashes/"
        grep -E "ERROR|SUMMARY|Fatal error|==ERROR" "$log" | head -5 | sed "s/^/  /"
        status=1
    fi
done
exit $status
