#!/usr/bin/env bash
# Protocol conformance test: tests/conformance/conformance.py, a client written from
# docs/PROTOCOL.md alone with an independent WebRTC stack (aiortc), runs a class against a real
# server: lobby and class_start, the instructor's audio and video to two students, a presenter on
# stage, a late joiner during the presentation, leave, keepalive.
#
# Builds target/debug/lectern (in $CARGO_TARGET_DIR when set), makes a Python venv under
# target/conformance-venv with the pinned packages of tests/conformance/requirements.txt (PyPI),
# starts the server on 127.0.0.1 (any port) with a temporary data dir, no demo course, the
# lobby on (room.auto_start = false), a known HS256 secret for the test's tokens and short
# keepalive times (Ping after 1 s of silence, idle close after 5 s), runs the test, stops the
# server. Exits non-zero if a step fails, the server panics, or the run exceeds
# CONFORMANCE_TIMEOUT seconds (default 120; the test bounds itself to 90). CONFORMANCE_LOG sets the
# server's log filter (default warn); CONFORMANCE_SERVER_LOG=FILE keeps the server's log there.
set -euo pipefail

TIME_LIMIT="${CONFORMANCE_TIMEOUT:-120}"
PING_INTERVAL=1
IDLE_TIMEOUT=5

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/target/conformance-venv"
requirements="$root/tests/conformance/requirements.txt"

cargo build --quiet -p lectern-server --bin lectern
lectern="$target_dir/debug/lectern"

# Reuse the venv while it was made from this requirements file.
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

source "$root/scripts/lib-server.sh"
work_dir

# Inherited LECTERN_* settings would change the test.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^LECTERN_' || true)
secret="conformance-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export LECTERN_SERVER_DATA_DIR="$work/data"
export LECTERN_SERVER_LISTEN=127.0.0.1:0
export LECTERN_MEDIA_BIND=127.0.0.1:0
export LECTERN_DEMO_ENABLED=false
export LECTERN_ROOM_AUTO_START=false
export LECTERN_AUTH_HS256_SECRET="$secret"
export LECTERN_WEBSOCKET_PING_INTERVAL_SECS="$PING_INTERVAL"
export LECTERN_WEBSOCKET_IDLE_TIMEOUT_SECS="$IDLE_TIMEOUT"
export LECTERN_LOG_FILTER="${CONFORMANCE_LOG:-warn}"

start_lectern conformance.sh "$lectern"
echo "conformance.sh: lectern at $base"

status=0
timeout --signal=INT --kill-after=10 "$TIME_LIMIT" \
    "$venv/bin/python" "$root/tests/conformance/conformance.py" \
    --url "$base" --secret "$secret" \
    --ping-interval "$PING_INTERVAL" --idle-timeout "$IDLE_TIMEOUT" || status=$?

if server_panicked conformance.sh; then
    status=1
fi
if [[ "$status" -eq 124 ]]; then
    echo "conformance.sh: the test did not finish within ${TIME_LIMIT}s" >&2
fi
if [[ "$status" -ne 0 && -s "$work/server.err" ]]; then
    echo "conformance.sh: the server's log (last 40 lines):" >&2
    tail -n 40 "$work/server.err" >&2
fi
if [[ -n "${CONFORMANCE_SERVER_LOG:-}" ]]; then
    cp "$work/server.err" "$CONFORMANCE_SERVER_LOG"
fi
exit "$status"
