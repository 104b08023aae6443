# Sourced by the test scripts that run the `lectern` binary as a black box (schemathesis.sh,
# conformance.sh): one temporary work dir, the server started from it and stopped on exit.
#
#   work_dir                   makes $work (removed on exit, with the server stopped)
#   start_lectern NAME BINARY  starts `BINARY serve` with the LECTERN_* settings already
#                              exported, waits for its "listening on" line and sets $base (its
#                              URL, no trailing slash) and $server_pid; NAME prefixes messages.
#   server_panicked NAME       true (after printing it) when the server's log has a panic.

server_pid=""
work=""

work_dir() {
    work="$(mktemp -d)"
    trap stop_lectern EXIT
}

stop_lectern() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [[ -n "$work" ]] && rm -rf "$work"
}

start_lectern() {
    local name="$1" lectern="$2"
    "$lectern" serve >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    base=""
    for _ in $(seq 1 200); do
        base="$(sed -n 's/^lectern listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/server.out" | head -n 1)"
        [[ -n "$base" ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
        sleep 0.05
    done
    [[ -n "$base" ]] || { echo "$name: the server did not start" >&2; cat "$work/server.err" >&2; exit 1; }
    base="${base%/}"
}

server_panicked() {
    local name="$1"
    if grep -q "panicked" "$work/server.err"; then
        echo "$name: the server panicked:" >&2
        grep -A5 "panicked" "$work/server.err" >&2
        return 0
    fi
    return 1
}
