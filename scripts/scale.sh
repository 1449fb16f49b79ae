#!/usr/bin/env bash
# How the service grows with its data, from outside, in one run: for each
# size, a fresh database, the import, a start, a retrain and a load, with
# the release binary on the same 2 cores as everything else:
#   - import: wall time and the importer's peak RSS;
#   - listening: start -> /health 200 (the server listens before training);
#   - ready: start -> /ready 200 (first models trained), and the server's
#     peak RSS by then (VmHWM);
#   - retrain: POST /api/v1/models/retrain, its load and train times, the
#     peak RSS of the training itself (its report) and of the server after it;
#   - restart: stop, start again, start -> /ready: the models now come from
#     the snapshot the retrain stored (MODEL_SNAPSHOTS), not from training;
#   - load: wrk (1 thread, CONNECTIONS) on uncached hybrid recommendations
#     with the built-in rules on, served by the restarted server, users cycling over all of them: req/s, p99,
#     and the steady RSS after it.
#
# Sizes: ml-100k (the real data set), and synthetic shops from
# `recengine import synthetic` (seed 42): 1m (10k users, 10k items, 1M
# interactions), 3m (50k, 25k, 3M), 10m (100k, 40k, 10M).
#
#   scripts/scale.sh                          # ml-100k and 1m on SQLite
#   SIZES="ml-100k 1m 10m" scripts/scale.sh
#   DB=postgres SIZES="1m" scripts/scale.sh   # on the local PostgreSQL
#                                             # (PG_URL, default postgres://postgres@127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"ml-100k 1m"}
DB=${DB:-sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18093}
CONNECTIONS=${CONNECTIONS:-8}
SECS=${SECONDS_:-15}
READY_TIMEOUT=${READY_TIMEOUT:-900}
DATA=${DATA:-../shared/data/ml-100k}
cargo build --release --locked --bin recengine
source scripts/bench-server.sh
ensure_wrk

WORK=$(mktemp -d)
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export RATE_LIMIT_ENABLED=false LOG_LEVEL=warn CACHE_TTL=0 JOBS_ENABLED=false \
  INITIAL_ADMIN_EMAIL=scale@example.com INITIAL_ADMIN_PASSWORD=scale-admin-password
BASE="http://127.0.0.1:$PORT"

ms_now() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mb() { echo $((($1 + 512) / 1024)); }

# `fresh_database NAME`: prints the DATABASE_URL of an empty database.
fresh_database() {
  if [ "$DB" = postgres ]; then
    local name="recengine_scale_$1"
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS \"$name\"" >/dev/null
    psql "$PG_URL/postgres" -qc "CREATE DATABASE \"$name\"" >/dev/null
    echo "$PG_URL/$name"
  else
    echo "sqlite://$WORK/$1.db"
  fi
}

# `start_server`: starts the server on $DATABASE_URL, waits for /ready;
# sets SERVER, listening_ms (start -> /health) and ready_ms (start -> /ready).
start_server() {
  local started
  started=$(ms_now)
  target/release/recengine serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  listening_ms=
  ready_ms=
  while [ $(($(ms_now) - started)) -lt $((READY_TIMEOUT * 1000)) ]; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    if [ -z "$listening_ms" ] && curl -fs -o /dev/null "$BASE/health"; then
      listening_ms=$(($(ms_now) - started))
    fi
    if curl -fs -o /dev/null "$BASE/ready"; then
      ready_ms=$(($(ms_now) - started))
      break
    fi
    sleep 0.05
  done
  [ -n "$ready_ms" ] || { echo "not ready after $READY_TIMEOUT s" >&2; exit 1; }
}

stop_server() {
  kill "$SERVER"
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}

ROWS=()
for size in $SIZES; do
  case $size in
    ml-100k) users=943 import=(movielens "$DATA") ;;
    1m) users=10000 import=(synthetic --users 10000 --items 10000 --interactions 1000000) ;;
    3m) users=50000 import=(synthetic --users 50000 --items 25000 --interactions 3000000) ;;
    10m) users=100000 import=(synthetic --users 100000 --items 40000 --interactions 10000000) ;;
    *) echo "unknown size $size (ml-100k, 1m, 3m, 10m)" >&2; exit 2 ;;
  esac
  export DATABASE_URL
  DATABASE_URL=$(fresh_database "${size//-/_}")
  echo "== $size: importing" >&2
  /usr/bin/time -f "%e %M" -o "$WORK/import.time" target/release/recengine import "${import[@]}" >/dev/null
  read -r import_s import_kb <"$WORK/import.time"

  echo "== $size: starting" >&2
  start_server
  first_listening_ms=$listening_ms first_ready_ms=$ready_ms
  ready_peak=$(rss_kb "$SERVER" VmHWM)

  echo "== $size: retraining" >&2
  token=$(bench_admin_token "$BASE/api/v1")
  report=$(curl -fs -X POST "$BASE/api/v1/models/retrain" -H "Authorization: Bearer $token")
  read -r load_ms train_ms train_peak < <(echo "$report" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["load_ms"]), round(r["train_ms"]), round(r.get("peak_rss_mb") or 0))')
  retrain_peak=$(rss_kb "$SERVER" VmHWM)

  echo "== $size: restarting (from the stored snapshot)" >&2
  stop_server
  start_server
  restart_ready_ms=$ready_ms
  source=$(curl -fs "$BASE/api/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"]["source"])')
  [ "$source" = snapshot ] || { echo "the restart trained instead of loading the snapshot" >&2; exit 1; }

  echo "== $size: load" >&2
  url="$BASE/api/v1/recommendations/user/{user}?algorithm=hybrid"
  wrk_run "$url" "$CONNECTIONS" 2 "$users" >/dev/null
  load=$(wrk_run "$url" "$CONNECTIONS" "$SECS" "$users")
  steady=$(rss_kb "$SERVER" VmRSS)
  stop_server
  ROWS+=("$size|$import_s|$(mb "$import_kb")|$first_listening_ms|$first_ready_ms|$(mb "$ready_peak")|$load_ms|$train_ms|$train_peak|$(mb "$retrain_peak")|$restart_ready_ms|$(mb "$steady")|$load")
done

python3 - "$DB" "$CONNECTIONS" "${ROWS[@]}" <<'PY'
import re, sys
db, conns, *rows = sys.argv[1:]
print(f"\n{db}, release build, uncached hybrid with the built-in rules on, {conns} connections (wrk, 1 thread)")
print("| data | import | import peak RSS | listening | ready (trained) | peak RSS at ready | retrain (load + train) | training peak RSS | peak RSS after retrain | ready after a restart (stored snapshot) | req/s | p99 | steady RSS |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
first = None
for row in rows:
    (size, imp, imp_mb, listen, ready, ready_mb, load, train, train_mb, peak_mb, restart,
     steady_mb, line) = row.split("|")
    rps = float(re.search(r"req/s ([0-9.]+)", line).group(1))
    p99 = re.search(r"p99 ([0-9.]+) ms", line).group(1)
    first = first or rps
    print(f"| {size} | {float(imp):.1f} s | {imp_mb} MB | {int(listen)/1000:.2f} s | {int(ready)/1000:.2f} s "
          f"| {ready_mb} MB | {int(load)/1000:.2f} + {int(train)/1000:.2f} s | {train_mb} MB | {peak_mb} MB "
          f"| {int(restart)/1000:.2f} s | {rps:,.0f} ({rps / first:.2f}x) | {p99} ms | {steady_mb} MB |")
PY
