#!/usr/bin/env bash
# Property-based tests of the admin REST API (/api/v1) and the member API (/course/v1, the course
# board) with schemathesis, each against its own OpenAPI document: no 5xx for any generated input,
# and every response matches the documented schema.
#
# Builds target/debug/lectern (in $CARGO_TARGET_DIR when set), makes a Python venv under
# target/schemathesis-venv with a pinned schemathesis, starts the server on 127.0.0.1 (any port)
# with a temporary data dir and an API key created by `lectern apikey create` on that data dir,
# runs schemathesis, stops the server. The member API is called with an instructor's join token
# minted by `lectern link`; its event stream (which never ends by itself) is left out. Exits non-zero if schemathesis finds a failure.
#
# Bounded: SCHEMATHESIS_MAX_EXAMPLES cases per operation (default 20), the whole run killed after
# SCHEMATHESIS_TIMEOUT seconds (default 600). Extra arguments are passed to `schemathesis run`.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-20}"
TIME_LIMIT="${SCHEMATHESIS_TIMEOUT:-600}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$root/target/schemathesis-venv"

cargo build --quiet -p lectern-server --bin lectern
lectern="$target_dir/debug/lectern"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

source "$root/scripts/lib-server.sh"
work_dir

export LECTERN_SERVER_DATA_DIR="$work/data"
export LECTERN_SERVER_LISTEN=127.0.0.1:0
export LECTERN_DEMO_ENABLED=false
export LECTERN_MEDIA_ENABLED=false
export LECTERN_AUTH_HS256_SECRET="schemathesis-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export RUST_LOG="${RUST_LOG:-warn}"

key="$("$lectern" apikey create --name ci 2>/dev/null | tail -n 1)"
[[ "$key" == lectern_* ]] || { echo "schemathesis.sh: could not create an API key" >&2; exit 1; }

start_lectern schemathesis.sh "$lectern"
echo "schemathesis.sh: lectern at $base, schemathesis $SCHEMATHESIS_VERSION"

# A course with a roster and daily sessions (yesterday's is the one tested), so that the second
# pass reaches the handlers' logic instead of answering 404 for random ids.
"$lectern" course create --id algebra --title Algebra --timezone UTC >/dev/null
printf 'member_id,name,role\nada,Ada Lovelace,student\nalan,Alan Turing,student\ngrace,Grace Hopper,instructor\n' \
    >"$work/roster.csv"
"$lectern" roster import --course algebra "$work/roster.csv" >/dev/null
"$lectern" schedule add --course algebra --days mon,tue,wed,thu,fri,sat,sun --start 10:00 \
    --minutes 60 --from "$(date -u -d '-30 days' +%F)" --to "$(date -u -d '+30 days' +%F)" >/dev/null
# A published quiz (id 1) for the quiz routes.
printf 'Capital of Norway? {=Oslo ~Bergen}\n\nThe Earth is flat. {F}\n' >"$work/quiz.gift"
"$lectern" quiz import --course algebra --publish "$work/quiz.gift" >/dev/null 2>&1
cat >"$work/seeded.toml" <<TOML
[parameters]
"path.id" = "algebra"
"path.member" = "ada"
"path.session_key" = "$(date -u -d yesterday +%F)T10:00"
"path.course" = "algebra"
"path.quiz" = "1"
TOML
# The member API: an instructor's join token (the first line `lectern link` prints).
# (Read whole, not through `head`: a closed pipe would make the CLI fail under pipefail.)
link_output="$("$lectern" link --course algebra --member grace 2>/dev/null)"
member_token="${link_output%%$'\n'*}"
[[ -n "$member_token" ]] || { echo "schemathesis.sh: could not mint a join token" >&2; exit 1; }

run() {
    local api="$1" auth="$2"
    shift 2
    # From the temporary dir: schemathesis keeps a cache (.schemathesis/) in its working dir.
    (cd "$work" && timeout --signal=INT --kill-after=30 "$TIME_LIMIT" \
        "$venv/bin/schemathesis" "$@" run "$base/$api/openapi.json" \
        --url "$base/$api" \
        --header "Authorization: Bearer $auth" \
        --exclude-path-regex '/board/events$' \
        --checks not_a_server_error,response_schema_conformance \
        --max-examples "$MAX_EXAMPLES" \
        --request-timeout 10 \
        --seed "${SCHEMATHESIS_SEED:-1}" \
        --no-color \
        "${extra[@]}")
}
extra=("$@")
status=0
echo "schemathesis.sh: pass 1 of 4: admin API, generated path parameters"
run api/v1 "$key" || status=$?
if [[ "$status" -eq 0 ]]; then
    echo "schemathesis.sh: pass 2 of 4: admin API, path parameters of the seeded course (algebra, ada)"
    run api/v1 "$key" --config-file "$work/seeded.toml" || status=$?
fi
if [[ "$status" -eq 0 ]]; then
    echo "schemathesis.sh: pass 3 of 4: member API, generated path parameters"
    run course/v1 "$member_token" || status=$?
fi
if [[ "$status" -eq 0 ]]; then
    echo "schemathesis.sh: pass 4 of 4: member API, the seeded course's board (as grace)"
    run course/v1 "$member_token" --config-file "$work/seeded.toml" || status=$?
fi

if server_panicked schemathesis.sh; then
    status=1
fi
if [[ "$status" -eq 124 ]]; then
    echo "schemathesis.sh: schemathesis did not finish within ${TIME_LIMIT}s" >&2
fi
exit "$status"
