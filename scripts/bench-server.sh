# Sourced by the load scripts: `start_bench_server PORT WORKDIR` starts the
# release binary in the background (killed, and WORKDIR removed, on exit)
# and waits until /ready answers (models trained); `bench_admin_token`
# signs in.
start_bench_server() {
  local port=$1 work=$2
  target/release/recengine serve --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  BENCH_SERVER=$!
  trap 'kill $BENCH_SERVER 2>/dev/null || true; rm -rf "'"$work"'"' EXIT
  wait_for_health "$port" "$work/server.log"
}

# `wait_for_health PORT LOG`: waits up to 30 s for /ready to answer 200
# (the server listens at once and trains its first models in the
# background); prints LOG (the server's output) if it never does.
wait_for_health() {
  for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  cat "$2" >&2
  return 1
}

# `bench_admin_token BASE`: signs in as the admin the bench scripts create
# (INITIAL_ADMIN_EMAIL / INITIAL_ADMIN_PASSWORD) and prints the access token.
bench_admin_token() {
  curl -fs -X POST "$1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$INITIAL_ADMIN_EMAIL\",\"password\":\"$INITIAL_ADMIN_PASSWORD\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# `ensure_wrk`: the independent load generator (Debian's `wrk`), installed
# when missing.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; }
  fi
  command -v wrk >/dev/null 2>&1 || { echo "wrk is missing and could not be installed" >&2; return 1; }
}

# `wrk_run URL CONNECTIONS SECONDS USERS`: wrk (1 thread) against URL, whose
# `{user}` cycles 1..USERS; prints one line as loadgen does:
# `req/s N  p50 X ms  p90 Y ms  p99 Z ms`.
wrk_run() {
  local url=$1 connections=$2 secs=$3 users=$4
  local lua
  lua=$(mktemp --suffix .lua)
  local path=${url#http://*/}
  cat >"$lua" <<LUA
local n = 0
request = function()
  n = n % $users + 1
  return wrk.format("GET", "/" .. string.gsub("$path", "{user}", tostring(n)))
end
LUA
  local out
  out=$(wrk -t1 -c"$connections" -d"${secs}s" --latency -s "$lua" "${url%%\{*}")
  rm -f "$lua"
  echo "$out" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    n, unit = re.match(r"([0-9.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
lat = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
p50, p90, p99 = (ms(lat[k]) for k in ("50", "90", "99"))
failed = errors.group(1) if errors else 0
print(f"req/s {rps:.0f}  p50 {p50:.2f} ms  p90 {p90:.2f} ms  p99 {p99:.2f} ms  non-2xx {failed}")
'
}
