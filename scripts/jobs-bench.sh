#!/usr/bin/env bash
# Runs each job once on MovieLens 100K (943 users, 1,682 items, 100,000
# ratings) through the API of a release build, and prints each run's
# status, duration and result, as in the README.
#
#   scripts/jobs-bench.sh                                   # SQLite
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/EMPTY_DB scripts/jobs-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
PORT=${PORT:-18081}
cargo build --release --locked --bin recengine
WORK=$(mktemp -d)
export DATABASE_URL=${DATABASE_URL:-"sqlite://$WORK/jobs.db"} RATE_LIMIT_ENABLED=false \
  LOG_LEVEL=warn JOBS_ENABLED=false
target/release/recengine import movielens "$DATA" >/dev/null
# After the import: MovieLens keeps its ids, and the admin takes the next.
export INITIAL_ADMIN_EMAIL=bench@example.com INITIAL_ADMIN_PASSWORD=bench-password-123
source scripts/bench-server.sh
start_bench_server "$PORT" "$WORK"
BASE="http://127.0.0.1:$PORT/api/v1"
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TOKEN=$(bench_admin_token "$BASE")
for job in update_metrics cleanup_old_cache retrain_collaborative_model update_item_features generate_batch_recommendations; do
  id=$(curl -fs -X POST -H "Authorization: Bearer $TOKEN" "$BASE/jobs/$job/trigger" | json 'd["run_id"]')
  while :; do
    run=$(curl -fs -H "Authorization: Bearer $TOKEN" "$BASE/jobs/runs/$id")
    status=$(echo "$run" | json 'd["status"]')
    case $status in SUCCESS|FAILURE) break ;; esac
    sleep 0.1
  done
  echo "$run" | json '"%-32s %-8s %7s ms  %s" % (d["job"], d["status"], d["duration_ms"], json.dumps(d["result"] or d["error"])[:150])'
done
