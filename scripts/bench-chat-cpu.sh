#!/usr/bin/env bash
# Instructions per chat delivery in the server's user space (issue 15, point 5), counted by
# callgrind, which counts the same on a busy machine.
#
# Starts the release `lectern` under `valgrind --tool=callgrind` with instrumentation off,
# loads it with `lectern-bench chat --url ...` and, once every client is welcomed and the
# bench's steady window has begun, counts instructions for SECONDS seconds only
# (`callgrind_control -i on/off`), so the joins (and the leaves at the end) are not counted.
# Deliveries are the server's own `lectern_messages_out_total` read just before and just after
# the counted span. Prints the instructions per delivery and the top inclusive functions.
#
#   scripts/bench-chat-cpu.sh [CLIENTS] [RATE] [SECONDS]     # default: 200 5 10
#
# Under valgrind the server runs on one core at ~1/50 of its speed: keep CLIENTS x RATE at a
# few thousand deliveries a second or less, so it keeps up (as the native server does at
# 1,000 x 20) and writes one message at a time. Needs a release build with line tables (the
# workspace's release profile has them):
#   cargo build --release -p lectern-server -p lectern-bench
# Environment: CARGO_TARGET_DIR; LECTERN_BIN (another server binary, e.g. a copy of an earlier
# build to compare); KEEP=1 keeps the callgrind file (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "bench-chat-cpu: needs valgrind (apt-get install valgrind)"; exit 1; }
clients=${1:-200}
rate=${2:-5}
seconds=${3:-10}
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/release"
for b in lectern lectern-bench; do
    [ -x "$bin/$b" ] || { echo "bench-chat-cpu: no $bin/$b; cargo build --release -p lectern-server -p lectern-bench"; exit 1; }
done
work=$(mktemp -d)
server_pid=""
bench_pid=""
cleanup() {
    [ -n "$bench_pid" ] && kill "$bench_pid" 2>/dev/null || true
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
secret=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')

LECTERN_SERVER_LISTEN=127.0.0.1:0 \
LECTERN_STORE_URL="sqlite://$work/bench.db" \
LECTERN_AUTH_HS256_SECRET="$secret" \
LECTERN_DEMO_ENABLED=false \
LECTERN_ROOM_AUTO_START=true \
LECTERN_SERVER_DATA_DIR="$work" \
LECTERN_ROOM_MAX_PARTICIPANTS=$((clients + 10)) \
NO_COLOR=1 \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
    "${LECTERN_BIN:-$bin/lectern}" serve >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.out" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err"; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "bench-chat-cpu: the server did not start"; exit 1; }

sent_total() {
    curl -sf "http://127.0.0.1:$port/metrics" | awk '/^lectern_messages_out_total / {print $2}'
}

# The steady window outlasts the counted span by a few seconds on each side.
"$bin/lectern-bench" chat --url "ws://127.0.0.1:$port/ws" --secret "$secret" \
    --server-pid "$server_pid" --clients "$clients" --rate "$rate" \
    --warmup 3 --duration $((seconds + 6)) --drain 10 --connect-concurrency 16 \
    >"$work/bench.out" 2>"$work/bench.err" &
bench_pid=$!
until grep -q "steady window" "$work/bench.err"; do
    kill -0 "$bench_pid" 2>/dev/null || { cat "$work/bench.err"; exit 1; }
    sleep 0.2
done
sleep 2
before=$(sent_total)
callgrind_control -i on "$server_pid" >/dev/null
sleep "$seconds"
callgrind_control -i off "$server_pid" >/dev/null
after=$(sent_total)
wait "$bench_pid" || { cat "$work/bench.err"; exit 1; }
bench_pid=""
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""

deliveries=$((after - before))
ir=$(callgrind_annotate "$work/cg.out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
echo "clients $clients, rate $rate/s, counted $seconds s: $deliveries deliveries, $ir instructions"
awk -v ir="$ir" -v d="$deliveries" 'BEGIN { printf "instructions per delivery: %.0f\n", ir / d }'
grep -E "slow|missing|p99" "$work/bench.out" | head -5 || true
echo "--- top inclusive (Ir, function) ---"
callgrind_annotate --inclusive=yes --threshold=99 "$work/cg.out" 2>/dev/null \
    | sed -n '/^Ir/,$p' | sed -n '3,45p'
[ "${KEEP:-0}" = 1 ] && echo "callgrind file: $work/cg.out"
exit 0
