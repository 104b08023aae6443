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
# Environment: SHORT and LONG (simulated seconds, default 1 and 3), BATCH (on or off: hand the
# SFU each simulated instant's datagrams as one batch, as the media worker does; default on),
# CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench-forward: needs valgrind (apt-get install valgrind)"; exit 1; }
short=${SHORT:-1}
long=${LONG:-3}
batch=${BATCH:-on}
subscribers=("$@")
[ ${#subscribers[@]} -gt 0 ] || subscribers=(10 50 200)

cargo build -q --release -p lectern-sfu --example forward_cost
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release/examples/forward_cost"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "<instructions> <forwarded packets>". Callgrind counts the whole program and
# the SFU's share is the inclusive cost of its entry points, read with callgrind_annotate: they
# never call each other, so their sum is exact. (Valgrind 3.19 honours only the first
# --toggle-collect given, so counting only inside several entry points with toggles would
# silently count just one of them.)
run() {
    local n=$1 seconds=$2 out="$work/cg.$1.$2"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$bin" --subscribers "$n" --seconds "$seconds" --batch "$batch" >"$out.stdout" 2>"$out.stderr" \
        || { cat "$out.stderr"; exit 1; }
    local ir forwarded
    ir=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | awk '
        /Sfu>?::(handle_receive|handle_timeout|end_batch|poll_transmit|poll_event|poll_timeout) \[/ \
            && !/=>/ { gsub(",", "", $1); sum += $1 }
        END { printf "%.0f", sum }')
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
