#!/usr/bin/env bash
# Where a recommendation's cost goes, from outside, in one run: wrk (1
# thread, installed when missing) and the project's loadgen against the
# release binary on ml-100k in SQLite, for
#   - `GET /health` (the HTTP stack's ceiling on this machine),
#   - hybrid from the recommendation cache,
#   - hybrid uncached with the rules off (`ENABLE_BUSINESS_RULES=false`),
#   - hybrid uncached with the built-in rules on,
# then the ratios the performance goals are stated in (rules on / rules
# off, rules on / health). Users cycle 1..943; the load generator shares
# the machine's cores with the server, as everywhere in the README.
#
#   scripts/loadtest-paths.sh
#   CONNECTIONS=8 SECONDS_=15 scripts/loadtest-paths.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
PORT=${PORT:-18090}
CONNECTIONS=${CONNECTIONS:-8}
SECS=${SECONDS_:-15}
HYBRID="/api/v1/recommendations/user/{user}?algorithm=hybrid"
cargo build --release --locked --bin recengine --example loadgen
source scripts/bench-server.sh
ensure_wrk

WORK=$(mktemp -d)
trap 'kill "${BENCH_SERVER:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export DATABASE_URL="sqlite://$WORK/load.db" RATE_LIMIT_ENABLED=false LOG_LEVEL=warn
target/release/recengine import movielens "$DATA" >/dev/null

# `serve_with ENV=VALUE...`: (re)starts the server with these settings.
serve_with() {
  kill "${BENCH_SERVER:-}" 2>/dev/null && wait "$BENCH_SERVER" 2>/dev/null || true
  env "$@" target/release/recengine serve --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  BENCH_SERVER=$!
  wait_for_health "$PORT" "$WORK/server.log"
}

declare -A WRK LOADGEN
# `measure NAME PATH`: a short warm-up, then wrk, then loadgen.
measure() {
  local name=$1 url="http://127.0.0.1:$PORT$2"
  wrk_run "$url" "$CONNECTIONS" 2 943 >/dev/null
  WRK[$name]=$(wrk_run "$url" "$CONNECTIONS" "$SECS" 943)
  LOADGEN[$name]=$(target/release/examples/loadgen --url "$url" --users 943 \
    --connections "$CONNECTIONS" --seconds "$SECS" | grep -E '^requests' || true)
}

serve_with CACHE_TTL=0
measure health /health
measure rules_on "$HYBRID"
serve_with CACHE_TTL=0 ENABLE_BUSINESS_RULES=false
measure rules_off "$HYBRID"
serve_with CACHE_TTL=3600
measure cached "$HYBRID"

report() {
  local -n lines=$1
  python3 - "$1" "${lines[health]}" "${lines[cached]}" "${lines[rules_off]}" "${lines[rules_on]}" <<'PY'
import re, sys
gen, *lines = sys.argv[1:]
names = ["GET /health", "hybrid, cached", "hybrid, rules off", "hybrid, rules on"]
def parse(line):
    rps = float(re.search(r"req/s\s+([0-9.]+)", line).group(1))
    lat = {k: v for k, v in re.findall(r"(p50|p90|p99)\s+([0-9.]+) ms", line)}
    return rps, lat
rows = [parse(l) for l in lines]
label = "wrk (1 thread)" if gen == "WRK" else "loadgen"
print(f"\n{label}")
print("| route | req/s | p50 | p99 |")
print("| --- | --- | --- | --- |")
for name, (rps, lat) in zip(names, rows):
    print(f"| {name} | {rps:,.0f} | {lat.get('p50', '?')} ms | {lat.get('p99', '?')} ms |")
health, off, on = rows[0][0], rows[2][0], rows[3][0]
print(f"rules on / rules off: {on / off:.2f}x   rules on / health: {on / health:.2f}x")
PY
}
echo "ml-100k, SQLite, $CONNECTIONS connections, ${SECS} s per route"
report WRK
report LOADGEN
