# Sourced by the load scripts: `start_bench_server PORT WORKDIR` starts the
# release binary in the background (killed, and WORKDIR removed, on exit)
# and waits until /health answers; `bench_admin_token` signs in.
start_bench_server() {
  local port=$1 work=$2
  target/release/recengine serve --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
  BENCH_SERVER=$!
  trap 'kill $BENCH_SERVER 2>/dev/null || true; rm -rf "'"$work"'"' EXIT
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the server did not start; its log:" >&2
  cat "$work/server.log" >&2
  return 1
}

# `bench_admin_token BASE`: signs in as the admin the bench scripts create
# (INITIAL_ADMIN_EMAIL / INITIAL_ADMIN_PASSWORD) and prints the access token.
bench_admin_token() {
  curl -fs -X POST "$1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$INITIAL_ADMIN_EMAIL\",\"password\":\"$INITIAL_ADMIN_PASSWORD\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
