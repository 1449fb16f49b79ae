#!/usr/bin/env bash
# Schema fuzzing: schemathesis reads /openapi.json and sends what it
# describes (valid and invalid requests, then sequences of them) to a real
# server, with all its checks: no 5xx, every status and body as documented,
# invalid input refused, valid input accepted, auth not ignored. Exits
# non-zero on any failure.
#
#   scripts/schemathesis.sh              # SQLite
#   scripts/schemathesis.sh --postgres   # a fresh database on the machine's
#                                        # PostgreSQL (created, then dropped)
#
# Each backend is fuzzed twice: anonymously, then as an admin. Bounded for
# CI: SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default 15),
# and a hard SCHEMATHESIS_TIMEOUT per run (default 300 s); a fixed
# SCHEMATHESIS_SEED (default 1) so CI is reproducible.
# Environment: RECENGINE_BIN (default: the debug build, built if missing),
# POSTGRES_SERVER_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# SCHEMATHESIS_VENV (where schemathesis is installed).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
backend=sqlite
for arg in "$@"; do
  case $arg in
    --postgres) backend=postgres ;;
    --sqlite) backend=sqlite ;;
    *) echo "usage: $0 [--sqlite|--postgres]" >&2; exit 2 ;;
  esac
done
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-15}
run_timeout=${SCHEMATHESIS_TIMEOUT:-300}
seed=${SCHEMATHESIS_SEED:-1}

# A pinned schemathesis in its own venv, installed once.
venv=${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/recengine/schemathesis-$ST_VERSION}
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

bin=${RECENGINE_BIN:-target/debug/recengine}
if [[ -z ${RECENGINE_BIN:-} ]]; then
  cargo build --locked -p recengine --bin recengine
fi

work=$(mktemp -d)
server=
pg_db=
pg_server=${POSTGRES_SERVER_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [[ -n $pg_db ]]; then
    psql -q "$pg_server" -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [[ $backend == postgres ]]; then
  # Its own database with a unique name: nothing else on the server is
  # touched (the test harness owns recengine_t_*; this is recengine_st_*).
  pg_db="recengine_st_$(date +%s)_$$"
  psql -q "$pg_server" -c "CREATE DATABASE \"$pg_db\"" >/dev/null
  export DATABASE_URL="${pg_server%/*}/$pg_db"
else
  export DATABASE_URL="sqlite://$work/fuzz.db"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export INITIAL_ADMIN_EMAIL=fuzz-admin@example.com INITIAL_ADMIN_PASSWORD=fuzz-admin-password
# The fuzzer sends thousands of requests a minute from one address: with
# limits on, most would be 429 and the run would test the limiter, not the
# API (the limiter has its own tests). No Redis, no scheduled jobs: the run
# is about the HTTP surface, and stays the same from one run to the next.
export RATE_LIMIT_ENABLED=false JOBS_ENABLED=false LOG_LEVEL=warn LOG_FORMAT=json
unset REDIS_URL
"$bin" serve --addr "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -fs "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.2
done
if ! curl -fs "$base/health" >/dev/null 2>&1; then
  echo "the server did not start; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

token=$(curl -fs -X POST "$base/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$INITIAL_ADMIN_EMAIL\",\"password\":\"$INITIAL_ADMIN_PASSWORD\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# `run NAME ARGS...`: one schemathesis run; its failures are counted, not
# fatal at once, so both runs report.
failed=0
run() {
  local name=$1
  shift
  echo "== schemathesis ($backend, $name): up to $max_examples examples per operation"
  local started=$SECONDS status=0
  timeout "$run_timeout" "$venv/bin/st" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
    --checks all --max-examples "$max_examples" --seed "$seed" --workers 1 \
    --request-timeout 20 --generation-database none --no-color "$@" || status=$?
  echo "== schemathesis ($backend, $name): exit $status after $((SECONDS - started)) s"
  [[ $status -eq 0 ]] || failed=1
}

run anonymous
# As the admin, the operations that would end the run's own session are
# left out: deleting or demoting the admin, changing its password, logging
# it out. The anonymous run still covers them (401 without a token).
run admin -H "Authorization: Bearer $token" \
  --exclude-operation-id delete_user --exclude-operation-id set_role \
  --exclude-operation-id update_user --exclude-operation-id logout

if [[ $failed -ne 0 ]]; then
  echo "schemathesis found failures ($backend); the server log is below" >&2
  tail -n 50 "$work/server.log" >&2
  exit 1
fi
echo "schemathesis: no failures ($backend)"
