#!/usr/bin/env bash
# A short, bounded run of every cargo-fuzz target (fuzz/README.md), for CI.
#
# Installs cargo-fuzz if `cargo fuzz` is missing (a pinned version that builds on the project's
# stable toolchain; a few minutes on 2 cores, once per machine), builds the targets with
# `-s none` (stable Rust: no AddressSanitizer) into their own target directory, then runs each
# target for FUZZ_SECONDS from its corpus plus its committed seeds. Any crash, leak, OOM or
# slow input fails the script, which prints the panic and the artifact path.
#
# Environment:
#   FUZZ_SECONDS        fuzzing time per target (default 30)
#   FUZZ_TARGET_DIR     CARGO_TARGET_DIR for the instrumented build (default target/fuzz; keep it
#                       apart from the workspace's target dir, the flags differ)
#   FUZZ_INPUT_TIMEOUT  seconds one input may take before libFuzzer calls it a hang (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo_fuzz_version=0.13.2
seconds=${FUZZ_SECONDS:-30}
input_timeout=${FUZZ_INPUT_TIMEOUT:-20}
target_dir=${FUZZ_TARGET_DIR:-target/fuzz}
mkdir -p "$target_dir"
export CARGO_TARGET_DIR
CARGO_TARGET_DIR=$(realpath "$target_dir")
targets=(decode_client room_inputs)
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $cargo_fuzz_version (once per machine)"
    # The install builds in its own temporary directory, not in CARGO_TARGET_DIR.
    env -u CARGO_TARGET_DIR timeout 1800 cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi
echo "== $(cargo fuzz --version) ($(elapsed))"

echo "== cargo fuzz build -s none into $CARGO_TARGET_DIR ($(elapsed))"
timeout 1800 cargo fuzz build -s none

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
failed=0
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    artifacts=fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"
    dirs=("$corpus")
    [ -d "fuzz/seeds/$target" ] && dirs+=("fuzz/seeds/$target")
    marker="$log_dir/$target.start"
    touch "$marker"
    log="$log_dir/$target.log"
    echo "== $target for $seconds s (corpus ${dirs[*]}) ($(elapsed))"
    # libFuzzer stops itself after -max_total_time; the outer timeout only catches a run that
    # never gets there (a build, or an input stuck in a way -timeout does not see).
    status=0
    timeout --kill-after=30 $(( seconds + input_timeout + 300 )) \
        cargo fuzz run -s none "$target" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout="$input_timeout" -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # New crash-*, leak-*, oom-*, timeout-* or slow-unit-* files written by this run.
    mapfile -t found < <(find "$artifacts" -type f -newer "$marker")
    if [ "$status" -ne 0 ] || [ "${#found[@]}" -gt 0 ]; then
        failed=1
        echo "!! $target failed (exit $status)"
        for artifact in "${found[@]}"; do echo "!! artifact: $artifact"; done
        # From the panic (or libFuzzer's error) to cargo-fuzz's "Reproduce with" hint; the
        # log's end when there is neither (a build failure, a kill).
        if grep -q -E "panicked at|ERROR: libFuzzer" "$log"; then
            awk '/panicked at|ERROR: libFuzzer/ { on = 1 } on { print } /^Minimize test case with/ { exit }' "$log" | head -n 150
        else
            tail -n 40 "$log"
        fi
        [ "$status" -eq 124 ] && echo "!! the run did not stop by itself: killed by the outer timeout"
    else
        grep -E "^Done [0-9]+ runs|stat::number_of_executed_units|stat::new_units_added" "$log" || tail -n 3 "$log"
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "== fuzz smoke FAILED ($(elapsed)); see fuzz/README.md to reproduce and minimize"
    exit 1
fi
echo "== fuzz smoke passed: ${targets[*]}, $seconds s each ($(elapsed))"
