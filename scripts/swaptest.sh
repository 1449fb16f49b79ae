#!/usr/bin/env bash
# Hot swap under load, as in the README: the recommendation endpoint under
# steady load while a rule bundle is activated 50 times. Prints the load
# generator's figures without swaps, then with them; fails on any failed
# request.
#
#   CONNECTIONS=8 SWAPS=50 scripts/swaptest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
PORT=${PORT:-18081}
SWAPS=${SWAPS:-50}
CONNECTIONS=${CONNECTIONS:-8}
cargo build --release --locked --bin recengine --example loadgen
# The bundled rule: the example component, built like any rule.
(cd examples/boost-local-items && CARGO_TARGET_DIR=../../target/example-rules \
  cargo build --release --target wasm32-wasip2 --quiet)
RULE=target/example-rules/wasm32-wasip2/release/boost_local_items.wasm
WORK=$(mktemp -d)
export DATABASE_URL="sqlite://$WORK/swap.db" RATE_LIMIT_ENABLED=false CACHE_TTL=0 LOG_LEVEL=warn
BIN=target/release/recengine
$BIN import movielens "$DATA" >/dev/null
# 50 revisions, alternating the boost factor, packed ahead of time.
mkdir -p "$WORK/src"
cp "$RULE" "$WORK/src/boost.wasm"
for i in $(seq 1 "$SWAPS"); do
  factor=$(( i % 2 + 1 ))
  printf '{"name":"swap","revision":"r%s","rules":[{"component":"boost.wasm","config":{"factor":%s}}]}' \
    "$i" "$factor" >"$WORK/src/manifest.json"
  $BIN rules pack "$WORK/src" --out "$WORK/r$i.tar.gz" >/dev/null
done
# The admin comes after the import (MovieLens keeps its user ids 1..943).
export INITIAL_ADMIN_EMAIL=ops@example.com INITIAL_ADMIN_PASSWORD=swap-test-password
source scripts/bench-server.sh
start_bench_server "$PORT" "$WORK"
TOKEN=$(curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"ops@example.com","password":"swap-test-password"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
URL="http://127.0.0.1:$PORT/api/v1/recommendations/user/{user}?algorithm=hybrid"
echo "without swaps:"
target/release/examples/loadgen --url "$URL" --connections "$CONNECTIONS" --seconds 20
echo "with $SWAPS bundle activations:"
target/release/examples/loadgen --url "$URL" --connections "$CONNECTIONS" --seconds 20 &
LOAD=$!
sleep 4 # past the load generator's warm-up
for i in $(seq 1 "$SWAPS"); do
  curl -fs -o /dev/null -X POST "http://127.0.0.1:$PORT/api/v1/rules/bundles" \
    -H "authorization: Bearer $TOKEN" -H 'content-type: application/gzip' \
    --data-binary "@$WORK/r$i.tar.gz"
  sleep 0.25
done
wait $LOAD
ACTIVE=$(curl -fs "http://127.0.0.1:$PORT/api/v1/rules/bundles/swap" -H "authorization: Bearer $TOKEN" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["active_revision"])')
echo "active revision after the swaps: $ACTIVE"
[ "$ACTIVE" = "r$SWAPS" ]
