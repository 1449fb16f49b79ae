#!/usr/bin/env bash
# What a running job costs the requests being served: the recommendation
# load test (ml-100k on SQLite, rules on, cache off, 8 connections) once
# alone and once while generate_batch_recommendations runs back to back,
# as in the README.
#
#   scripts/jobs-under-load.sh            JOB=retrain_collaborative_model scripts/jobs-under-load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
PORT=${PORT:-18082}
JOB=${JOB:-generate_batch_recommendations}
cargo build --release --locked --bin recengine --example loadgen
WORK=$(mktemp -d)
export DATABASE_URL="sqlite://$WORK/load.db" RATE_LIMIT_ENABLED=false CACHE_TTL=0 \
  LOG_LEVEL=warn JOBS_ENABLED=false
target/release/recengine import movielens "$DATA" >/dev/null
export INITIAL_ADMIN_EMAIL=bench@example.com INITIAL_ADMIN_PASSWORD=bench-password-123
source scripts/bench-server.sh
start_bench_server "$PORT" "$WORK"
BASE="http://127.0.0.1:$PORT/api/v1"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TOKEN=$(bench_admin_token "$BASE")
load() {
  target/release/examples/loadgen --url "$BASE/recommendations/user/{user}?algorithm=hybrid" \
    --users 943 --connections 8 --seconds 20
}
echo "== alone"
load
echo "== while $JOB runs back to back"
(
  end=$((SECONDS + 22))
  while [ $SECONDS -lt $end ]; do
    id=$(curl -fs -X POST -H "Authorization: Bearer $TOKEN" "$BASE/jobs/$JOB/trigger" | json 'd["run_id"]') || { sleep 0.2; continue; }
    until curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/jobs/runs/$id" | json 'd["status"]' | grep -qE 'SUCCESS|FAILURE'; do sleep 0.1; done
  done
) &
JOBS_LOOP=$!
load
wait $JOBS_LOOP
runs=$(curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/jobs/runs?job=$JOB&status=SUCCESS&limit=500" | json 'len(d)')
echo "$JOB succeeded $runs times during the run"
