#!/usr/bin/env bash
# What a Redis outage and a PostgreSQL outage cost two replicas under load.
# Starts its own PostgreSQL cluster and Redis on spare ports (never the
# machine's), imports ml-100k, runs two replicas sharing both, and prints:
#   - Redis: req/s and p99 before and during a 20 s Redis stop (8
#     connections spread over both replicas), /health during and how soon
#     after the restart both replicas say healthy, and whether an item
#     purchased during the outage is recommended afterwards (it must not be);
#   - PostgreSQL: how long requests that need the database take to get
#     their 503 while it is down, whether cached answers are still served,
#     and how soon after its restart requests succeed again.
#
#   scripts/outage.sh            (OUTAGE_SECONDS=20 CONNECTIONS=8 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
SECS=${OUTAGE_SECONDS:-20}
CONNECTIONS=${CONNECTIONS:-8}
PG_PORT=${PG_PORT:-55433}
REDIS_PORT=${REDIS_PORT:-16390}
A_PORT=18091
B_PORT=18092
cargo build --release --locked --bin recengine --example loadgen
RELEASE=${CARGO_TARGET_DIR:-target}/release

source scripts/own-services.sh
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  own_services_cleanup "$WORK" "$PG_PORT" "$REDIS_PORT"
  rm -rf "$WORK"
}
trap cleanup EXIT
own_postgres_start "$WORK" "$PG_PORT"
own_redis_start "$WORK" "$REDIS_PORT"

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" LOG_LEVEL=error JOBS_ENABLED=false
# Limits on, shared through Redis, but far above what the load sends.
export RATE_LIMIT_ENABLED=true RATE_LIMIT_DEFAULT=10000000/minute
"$RELEASE"/recengine import movielens "$DATA" >/dev/null
export INITIAL_ADMIN_EMAIL=outage-admin@example.com INITIAL_ADMIN_PASSWORD=outage-password-123
health() { curl -s "http://127.0.0.1:$1/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo down; }
for port in $A_PORT $B_PORT; do
  "$RELEASE"/recengine serve --addr "127.0.0.1:$port" >"$WORK/server-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do [ "$(health "$port")" = healthy ] && break; sleep 0.2; done
done

load() {
  "$RELEASE"/examples/loadgen --users 943 --connections "$CONNECTIONS" --warmup 1 --seconds "$1" \
    --url "http://127.0.0.1:$A_PORT/api/v1/recommendations/user/{user}?top_n=10" \
    --url "http://127.0.0.1:$B_PORT/api/v1/recommendations/user/{user}?top_n=10"
}
field() { sed -E "s|.*$1 ([0-9.]+).*|\1|"; }

echo "== Redis outage (two replicas, $CONNECTIONS connections, ${SECS} s per phase)"
before=$(load "$SECS")
echo "before:  $before"

# A user, and an item at the top of their list on both replicas.
TOKEN=$(curl -fs -X POST "http://127.0.0.1:$A_PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$INITIAL_ADMIN_EMAIL\",\"password\":\"$INITIAL_ADMIN_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
first_item() { curl -fs "http://127.0.0.1:$1/api/v1/recommendations/user/7?top_n=10" | python3 -c 'import json,sys; print(json.load(sys.stdin)["recommendations"][0]["item_id"])'; }
contains() { curl -fs "http://127.0.0.1:$1/api/v1/recommendations/user/7?top_n=10" | python3 -c "import json,sys; print(any(r['item_id'] == $2 for r in json.load(sys.stdin)['recommendations']))"; }
ITEM=$(first_item $A_PORT)
first_item $B_PORT >/dev/null

own_redis_stop "$REDIS_PORT"
load "$SECS" >"$WORK/during.txt" &
LOAD=$!
sleep 2
echo "health during: A $(health $A_PORT), B $(health $B_PORT)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$A_PORT/api/v1/interactions/" \
  -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d "{\"user_id\":7,\"item_id\":$ITEM,\"interaction_type\":\"purchase\"}")
echo "purchase of item $ITEM by user 7 during the outage: HTTP $code"
wait $LOAD || true
during=$(cat "$WORK/during.txt")
echo "during:  $during"
own_redis_start "$WORK" "$REDIS_PORT"
restarted=$(date +%s.%N)
for port in $A_PORT $B_PORT; do
  until [ "$(health "$port")" = healthy ]; do sleep 0.05; done
done
healthy_after=$(python3 -c "import time; print(f'{time.time() - $restarted:.2f}')")
echo "both replicas healthy ${healthy_after} s after Redis restarted"
seen=0
for _ in $(seq 1 20); do
  for port in $A_PORT $B_PORT; do
    [ "$(contains "$port" "$ITEM")" = True ] && seen=$((seen + 1))
  done
  sleep 0.25
done
echo "purchased item recommended afterwards: $seen times in 40 requests (must be 0)"
ratio=$(python3 -c "print(f'{$(echo "$during" | field 'req/s') / $(echo "$before" | field 'req/s'):.2f}')")
echo "RESULT redis: before $(echo "$before" | field 'req/s') req/s p99 $(echo "$before" | field p99) ms;" \
  "during $(echo "$during" | field 'req/s') req/s p99 $(echo "$during" | field p99) ms (ratio $ratio);" \
  "healthy ${healthy_after} s after; purchased item seen $seen times"

echo "== PostgreSQL outage"
# The list for user 7 is cached now; the items list needs the database.
curl -fs "http://127.0.0.1:$A_PORT/api/v1/recommendations/user/8?top_n=10" >/dev/null
own_postgres_stop "$WORK"
times=()
for _ in $(seq 1 20); do
  t=$(curl -s -o "$WORK/503.json" -w '%{http_code} %{time_total}' "http://127.0.0.1:$A_PORT/api/v1/items/?limit=5")
  times+=("$t")
done
echo "items list while down (status seconds): ${times[*]}"
echo "a 503's body: $(cat "$WORK/503.json")"
cached=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$A_PORT/api/v1/recommendations/user/8?top_n=10")
echo "cached recommendation while down: $cached"
own_postgres_resume "$WORK" "$PG_PORT"
restarted=$(date +%s.%N)
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A_PORT/api/v1/items/?limit=5")" = 200 ]; do sleep 0.05; done
back_after=$(python3 -c "import time; print(f'{time.time() - $restarted:.2f}')")
slowest=$(printf '%s\n' "${times[@]}" | awk '{print $2}' | sort -n | tail -1)
first=$(printf '%s\n' "${times[@]}" | head -1 | awk '{print $2}')
rest=$(printf '%s\n' "${times[@]}" | tail -n +2 | awk '{print $2}' | sort -n | tail -1)
echo "RESULT postgres: first 503 after ${first} s, the next 19 within ${rest} s (slowest ${slowest} s);" \
  "cached answer: $cached; requests succeed ${back_after} s after the restart"
