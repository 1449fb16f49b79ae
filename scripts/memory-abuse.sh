#!/usr/bin/env bash
# Can anonymous callers grow the server's memory? Serves ml-100k (SQLite,
# release build, caches on) and sends 10,000 anonymous recommendation POSTs
# twice, each time to a freshly started server: once all identical, once
# each with its own context (30 `extra` keys of 200 characters, a unique
# device). Prints the server's RSS after each; the second must stay under
# 1.5x the first.
#
#   scripts/memory-abuse.sh            (REQUESTS=10000 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
REQUESTS=${REQUESTS:-10000}
PORT=${PORT:-18093}
cargo build --release --locked --bin recengine --example loadgen
RELEASE=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
# The server runs inside a command substitution (a subshell): its pid goes
# through a file so the EXIT trap can stop it if the script is interrupted.
trap 'kill "$(cat "$WORK/server.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export DATABASE_URL="sqlite://$WORK/abuse.db" RATE_LIMIT_ENABLED=false LOG_LEVEL=error JOBS_ENABLED=false
"$RELEASE"/recengine import movielens "$DATA" >/dev/null

rss_after() {
  local body=$1
  "$RELEASE"/recengine serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  echo "$SERVER" >"$WORK/server.pid"
  for _ in $(seq 1 150); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  "$RELEASE"/examples/loadgen --users 943 --connections 8 --warmup 0 --seconds 600 \
    --requests "$REQUESTS" --url "http://127.0.0.1:$PORT/api/v1/recommendations/" --body "$body" >&2
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  echo "$rss"
}

pad=$(printf 'x%.0s' $(seq 1 190))
extra=$(python3 -c "import json; print(json.dumps({f'k{i}': f'{{n}}-$pad' for i in range(30)}))")
same=$(rss_after '{"user_id": {user}, "top_n": 10, "context": {"device": "web"}}')
unique=$(rss_after "{\"user_id\": {user}, \"top_n\": 10, \"context\": {\"device\": \"d{n}\", \"extra\": $extra}}")
ratio=$(python3 -c "print(f'{$unique / $same:.2f}')")
echo "RESULT RSS after $REQUESTS identical requests: $((same / 1024)) MB; after $REQUESTS unique contexts: $((unique / 1024)) MB; ratio $ratio (must be < 1.5)"
python3 -c "import sys; sys.exit(0 if $unique < 1.5 * $same else 1)"
