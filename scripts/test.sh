#!/usr/bin/env bash
# Every test of Lectern: the Rust workspace (unit, property, protocol-doc, store durability,
# full-server integration with real WebSockets and real WebRTC peers) and the real-browser
# end-to-end tests (Debian Chromium driven by playwright-core, tests/e2e: the live class,
# run.mjs, the seminar tools of issue 16, seminar.mjs, the live polls of issue 13, polls.mjs,
# then a class recorded and replayed, replay.mjs, the course board of issue 13, course.mjs, its
# quizzes, quiz.mjs, a class on two nodes surviving kill -9 of its host, cluster.mjs, which
# needs PostgreSQL, Redis and psql, and a student on a 400 kbit/s link, poor-link.mjs, which needs
# root for a network namespace and tc, and skips, saying so, without).
#
# Before them, the browser client's JSDoc types are checked with TypeScript (web-client/package.json:
# `tsc -p .`, strict, no emit); a type error fails the script. Then the client's unit tests
# (`npm test`: node:test, the replay page's model) and the replay page's own browser test
# against a fixture API (web-client/test/replay-page.mjs). The browser test needs
# /usr/bin/chromium, coturn's turnserver (media through a TURN relay) and Node.js with npm. As
# root on Debian/Ubuntu this script installs Chromium and coturn if missing; elsewhere it stops
# and says what to install.
# LECTERN_SKIP_E2E=1 skips the browser tests (and the client's checks above); LECTERN_SKIP_SCHEMATHESIS=1 skips the API fuzzing
# and LECTERN_SKIP_CONFORMANCE=1 the aiortc conformance test (both need python3 with venv and
# pip, and PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The recording tests read what the recorder wrote back with ffprobe and ffmpeg (Debian's
# ffmpeg package, a test tool only: Lectern itself never runs it).
if ! command -v ffprobe >/dev/null || ! command -v ffmpeg >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "== installing Debian's ffmpeg (ffprobe) for the recording tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
    else
        echo "The recording tests need ffprobe and ffmpeg (apt-get install ffmpeg)."
        exit 1
    fi
fi

cargo test --workspace 2>&1 | tee "$log"

# The REST API against its own OpenAPI document (schemathesis from PyPI, in a venv under
# target/): no 5xx for generated input, responses match the schema.
if [ "${LECTERN_SKIP_SCHEMATHESIS:-0}" != 1 ]; then
    echo "== schemathesis against /api/v1/openapi.json"
    ./scripts/schemathesis.sh
fi

# An independent client written from docs/PROTOCOL.md alone (aiortc, websockets and PyJWT from
# PyPI, in a venv under target/): a whole class over real WebRTC, as a school's own client would.
if [ "${LECTERN_SKIP_CONFORMANCE:-0}" != 1 ]; then
    echo "== protocol conformance (aiortc client written from docs/PROTOCOL.md)"
    ./scripts/conformance.sh 2>&1 | tee -a "$log"
fi

if [ "${LECTERN_SKIP_E2E:-0}" != 1 ]; then
    # An emoji font as every desktop has: the reaction buttons are emoji, and without one
    # Chromium searches every font for each of them (and screenshots show boxes).
    emoji_font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
    if [ ! -x /usr/bin/chromium ] || ! command -v turnserver >/dev/null || [ ! -f "$emoji_font" ] \
        || ! command -v psql >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "== installing Debian's chromium, coturn, emoji font and psql for the browser test"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium coturn fonts-noto-color-emoji \
                postgresql-client >/dev/null
        else
            echo "The browser test needs Debian's chromium at /usr/bin/chromium, coturn's"
            echo "turnserver, an emoji font and psql (apt-get install chromium coturn"
            echo "fonts-noto-color-emoji postgresql-client)."
            echo "Install them, or run with LECTERN_SKIP_E2E=1 to run only the Rust tests."
            exit 1
        fi
    fi
    command -v npm >/dev/null || { echo "The browser test needs Node.js and npm."; exit 1; }
    # The client's JSDoc types (TypeScript, dev-only); a type error stops the script here.
    echo "== type check of the browser client (web-client, tsc --noEmit --checkJs)"
    (cd web-client && npm ci --no-audit --no-fund --loglevel=error && npx --no-install tsc -p .)
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
    echo "== unit tests of the browser client (web-client, node --test)"
    (cd web-client && npm test) 2>&1 | tee -a "$log"
    echo "== the replay page against a fixture API (web-client/test/replay-page.mjs)"
    node web-client/test/replay-page.mjs 2>&1 | tee -a "$log"
    echo "== browser end-to-end tests (tests/e2e: run.mjs, seminar.mjs, polls.mjs, replay.mjs, course.mjs, quiz.mjs, cluster.mjs, poor-link.mjs)"
    cargo build -p lectern-server
    bin="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/lectern"
    # With the SFU's debug lines (no names, addresses or tokens): printed if a check fails.
    (cd tests/e2e && LECTERN_BIN="$bin" RUST_LOG="${RUST_LOG:-info,lectern_sfu=debug}" node run.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node seminar.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node polls.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node replay.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node course.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node quiz.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node cluster.mjs) 2>&1 | tee -a "$log"
    (cd tests/e2e && LECTERN_BIN="$bin" node poor-link.mjs) 2>&1 | tee -a "$log"
fi

# One closing line for the whole run: cargo prints one per test binary (the last often a
# doc-test binary with nothing in it), node --test `# pass N` and `# fail N` (TAP), and the
# browser tests their own `N passed, N failed`.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     /^# pass [0-9]+$/ { p += $3 }
     /^# fail [0-9]+$/ { f += $3 }
     /^[0-9]+ passed, [0-9]+ failed$/ { p += $1; f += $3 }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
