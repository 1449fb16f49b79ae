#!/usr/bin/env bash
# Load test of the recommendation endpoint, as in the README: ml-100k
# imported into a fresh SQLite database, business rules on, recommendation
# cache off, users cycling 1..943, the load generator on the same machine.
#
#   scripts/loadtest.sh [URL path and query]   (default: hybrid)
#   CONNECTIONS=32 SECONDS_=20 scripts/loadtest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
QUERY=${1:-"/api/v1/recommendations/user/{user}?algorithm=hybrid"}
PORT=${PORT:-18080}
cargo build --release --locked --bin recengine --example loadgen
WORK=$(mktemp -d)
export DATABASE_URL="sqlite://$WORK/load.db" RATE_LIMIT_ENABLED=false CACHE_TTL=0 LOG_LEVEL=warn
target/release/recengine import movielens "$DATA" >/dev/null
source scripts/bench-server.sh
start_bench_server "$PORT" "$WORK"
target/release/examples/loadgen --url "http://127.0.0.1:$PORT$QUERY" --users 943 \
  --connections "${CONNECTIONS:-32}" --seconds "${SECONDS_:-20}"
