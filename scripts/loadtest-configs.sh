#!/usr/bin/env bash
# The recommendation endpoint under load in each deployment configuration,
# one after the other in one run so the machine's noise cancels in the
# ratios: SQLite alone (the embedded default), PostgreSQL, and PostgreSQL +
# Redis (the production setup: shared limits and caches). ml-100k, rules
# on, the recommendation cache off (CACHE_TTL=0, so every request computes;
# the feature caches stay on), rate limits on but far above the load,
# users cycling 1..943. PostgreSQL and Redis are the script's own, on spare
# ports. Each server is loaded by two generators in turn: wrk (independent
# of this project, installed from Debian when missing) and `loadgen`.
#
#   scripts/loadtest-configs.sh        (CONNECTIONS=8 SECONDS_=20 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
CONNECTIONS=${CONNECTIONS:-8}
SECS=${SECONDS_:-20}
PG_PORT=${PG_PORT:-55434}
REDIS_PORT=${REDIS_PORT:-16391}
PORT=18094
cargo build --release --locked --bin recengine --example loadgen
RELEASE=${CARGO_TARGET_DIR:-target}/release
source scripts/own-services.sh
source scripts/bench-server.sh
ensure_wrk
WORK=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  own_services_cleanup "$WORK" "$PG_PORT" "$REDIS_PORT"
  rm -rf "$WORK"
}
trap cleanup EXIT
own_postgres_start "$WORK" "$PG_PORT"
own_redis_start "$WORK" "$REDIS_PORT"
export CACHE_TTL=0 LOG_LEVEL=error JOBS_ENABLED=false
export RATE_LIMIT_ENABLED=true RATE_LIMIT_DEFAULT=10000000/minute

SQLITE_URL="sqlite://$WORK/load.db"
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
DATABASE_URL=$SQLITE_URL "$RELEASE"/recengine import movielens "$DATA" >/dev/null
DATABASE_URL=$PG_URL "$RELEASE"/recengine import movielens "$DATA" >/dev/null

URL="http://127.0.0.1:$PORT/api/v1/recommendations/user/{user}?algorithm=hybrid"
run() {
  local name=$1
  "$RELEASE"/recengine serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.2; done
  local by_wrk by_loadgen
  by_wrk=$(wrk_run "$URL" "$CONNECTIONS" "$SECS" 943)
  by_loadgen=$("$RELEASE"/examples/loadgen --users 943 --connections "$CONNECTIONS" --seconds "$SECS" --url "$URL")
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
  echo "$name|$by_wrk|$by_loadgen"
}
results=()
results+=("$(DATABASE_URL=$SQLITE_URL run 'SQLite')")
results+=("$(DATABASE_URL=$PG_URL run 'PostgreSQL')")
results+=("$(DATABASE_URL=$PG_URL REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" run 'PostgreSQL + Redis')")

field() { sed -E "s|.*$1 ([0-9.]+).*|\1|"; }
table() {
  local column=$1 generator=$2
  local first=${results[0]#*|}
  [ "$column" = 2 ] && first=${first#*|}
  local base base_p99
  base=$(echo "${first%%|*}" | field 'req/s')
  base_p99=$(echo "${first%%|*}" | field p99)
  echo
  echo "$generator, $CONNECTIONS connections, $SECS s each:"
  echo
  echo "| configuration | req/s | p50 | p99 | vs SQLite (req/s, p99) |"
  echo "| --- | --- | --- | --- | --- |"
  for r in "${results[@]}"; do
    local name=${r%%|*} out=${r#*|}
    [ "$column" = 2 ] && out=${out#*|}
    out=${out%%|*}
    local rps p50 p99
    rps=$(echo "$out" | field 'req/s'); p50=$(echo "$out" | field p50); p99=$(echo "$out" | field p99)
    echo "| $name | $rps | $p50 ms | $p99 ms | $(python3 -c "print(f'{$rps / $base:.2f}x, {$p99 / $base_p99:.2f}x')") |"
  done
}
table 1 "wrk (1 thread)"
table 2 loadgen
