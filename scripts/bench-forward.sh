#!/usr/bin/env bash
# Instructions per forwarded packet in the SFU's sans-IO forwarding path (issue 15, point 2),
# counted by callgrind, which counts the same on a busy machine. Runs the example
# crates/lectern-sfu/examples/forward_cost.rs twice under `valgrind --tool=callgrind`, counting
# only inside the SFU's entry points (not the simulated browsers), for a short and a long
# window; the difference in instructions over the difference in forwarded packets is the cost
# of one more forwarded packet (the set-up cancels out).
#
#   scripts/bench-forward.sh [SUBSCRIBERS...]      # default: 10 50 200
#
# Environment: SHORT and LONG (simulated seconds, default 1 and 3), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench-forward: needs valgrind (apt-get install valgrind)"; exit 1; }
short=${SHORT:-1}
long=${LONG:-3}
subscribers=("$@")
[ ${#subscribers[@]} -gt 0 ] || subscribers=(10 50 200)

cargo build -q --release -p lectern-sfu --example forward_cost
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/forward_cost"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "<instructions> <forwarded packets>".
run() {
    local n=$1 seconds=$2 out="$work/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=no \
        --toggle-collect='*Sfu*::handle_receive*' --toggle-collect='*Sfu*::handle_timeout*' \
        --toggle-collect='*Sfu*::poll_transmit*' --toggle-collect='*Sfu*::poll_event*' \
        --toggle-collect='*Sfu*::poll_timeout*' \
        "$bin" --subscribers "$n" --seconds "$seconds" >"$out.stdout" 2>"$out.stderr" \
        || { cat "$out.stderr"; exit 1; }
    local ir forwarded
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
    forwarded=$(awk '/^rtp_forwarded / {print $2}' "$out.stdout")
    echo "$ir $forwarded"
}

echo "subscribers | forwarded packets (long - short window) | instructions per forwarded packet"
echo "---|---|---"
for n in "${subscribers[@]}"; do
    read -r ir_a fw_a < <(run "$n" "$short")
    read -r ir_b fw_b < <(run "$n" "$long")
    [ "$fw_b" -gt "$fw_a" ] || { echo "bench-forward: nothing more forwarded in the long window ($fw_a, $fw_b)"; exit 1; }
    awk -v n="$n" -v a="$ir_a" -v b="$ir_b" -v fa="$fw_a" -v fb="$fw_b" \
        'BEGIN { printf "%d | %d | %.0f\n", n, fb - fa, (b - a) / (fb - fa) }'
done
