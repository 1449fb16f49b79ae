#!/usr/bin/env bash
# Two (or more) builds of the server compared in one run, served in turn on
# the same ml-100k SQLite file, so the machine's noise falls on all of
# them alike: wrk (1 thread, 8 connections) on the uncached hybrid route,
# users cycling 1..943, ROUNDS rounds of SECS seconds each.
#
#   cp target/release/recengine /tmp/before/   # build, change, build again
#   scripts/loadtest-ab.sh /tmp/before/recengine target/release/recengine
#   RULES=false ROUNDS=3 scripts/loadtest-ab.sh A B
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-server.sh
ensure_wrk
PORT=${PORT:-18190}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-2}
RULES=${RULES:-true}
DATA=${DATA:-../shared/data/ml-100k}
WORK=$(mktemp -d)
SERVER=
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
export RATE_LIMIT_ENABLED=false LOG_LEVEL=warn CACHE_TTL=0 DATABASE_URL="sqlite://$WORK/ab.db"
HYBRID="/api/v1/recommendations/user/{user}?algorithm=hybrid"
"$1" import movielens "$DATA" >/dev/null
for _ in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    ENABLE_BUSINESS_RULES=$RULES "$bin" serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    wait_for_health "$PORT" "$WORK/server.log"
    wrk_run "http://127.0.0.1:$PORT$HYBRID" 8 2 943 >/dev/null
    echo "$bin rules=$RULES $(wrk_run "http://127.0.0.1:$PORT$HYBRID" 8 "$SECS" 943)"
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
  done
done
