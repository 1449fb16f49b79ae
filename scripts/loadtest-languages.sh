#!/usr/bin/env bash
# What the rules written in Python and JavaScript cost the service, from
# outside, in one run, on ml-100k in SQLite with the recommendation cache
# off (`CACHE_TTL=0`):
#   - builds examples/python-margin-boost (componentize-py) and
#     examples/javascript-margin-boost (componentize-js, renamed
#     `boost_high_margin_js` so both can be active) from source, packs them
#     in one bundle and signs it (`recengine rules pack`, `keygen`, `sign`);
#   - starts `recengine serve` (fresh database, COMPILED_RULES_DIR and keys
#     in a temp dir) and loads hybrid uncached with wrk (1 thread, users
#     cycling 1..943) with the built-in rules only, then uploads the bundle
#     and loads it again with the built-ins, Python and JavaScript active
#     (ml-100k's items have no `margin`: the two rules change no score, so
#     what shows is the cost of calling them);
#     for each: req/s, p99, rule deadline misses during the run (the delta
#     of `rule_failures_total{cause="timeout"}`, by rule) and the server's
#     VmRSS / VmHWM before and after the load;
#   - restarts the server on the same database and COMPILED_RULES_DIR,
#     times start -> /ready 200 (its rules loaded and its models trained)
#     and checks from its log that every
#     component was "loaded precompiled" and none "compiled" again: exits 1
#     if anything was recompiled.
# Ends with one table of every figure. The load generator shares the
# machine's cores with the server, as everywhere in the README.
#
#   scripts/loadtest-languages.sh
#   RECENGINE_BIN=path/to/recengine SECONDS_=10 scripts/loadtest-languages.sh
#   (RECENGINE_BIN: use that binary instead of `cargo build --release`;
#   CONNECTIONS (8), SECONDS_ (15), PORT (18190), DATA as the other scripts)
set -euo pipefail
COMMAND=
for v in RECENGINE_BIN SECONDS_ CONNECTIONS PORT DATA; do
  if [[ -n "${!v:-}" ]]; then COMMAND+="$v=$(printf %q "${!v}") "; fi
done
COMMAND+=scripts/loadtest-languages.sh
# A relative RECENGINE_BIN is taken from where the script was started.
if [[ -n "${RECENGINE_BIN:-}" ]]; then RECENGINE_BIN=$(realpath "$RECENGINE_BIN"); fi
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${DATA:-../shared/data/ml-100k}
PORT=${PORT:-18190}
CONNECTIONS=${CONNECTIONS:-8}
SECS=${SECONDS_:-15}
BASE="http://127.0.0.1:$PORT"
HYBRID="/api/v1/recommendations/user/{user}?algorithm=hybrid"
if [[ -n "${RECENGINE_BIN:-}" ]]; then
  BIN=$RECENGINE_BIN
else
  cargo build --release --locked --bin recengine
  BIN=$PWD/target/release/recengine
fi
[[ -x "$BIN" ]] || { echo "no recengine binary at $BIN" >&2; exit 1; }
# shellcheck source=scripts/bench-server.sh disable=SC1091
source scripts/bench-server.sh
ensure_wrk
if curl -fs -o /dev/null "$BASE/health"; then
  echo "something already answers on port $PORT: set PORT" >&2
  exit 1
fi

WORK=$(mktemp -d)
SERVER=
# `stop_server`: SIGTERM to the server this script started, then waits for
# it (SIGKILL after 20 s).
stop_server() {
  [[ -n "$SERVER" ]] || return 0
  kill "$SERVER" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.2
  done
  kill -9 "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=
}
# On exit: the server stopped, the temp dir removed; on a failure, the end
# of the server's logs first.
on_exit() {
  local status=$? log
  stop_server
  if ((status != 0)); then
    for log in "$WORK"/server-*.log; do
      [[ -f "$log" ]] || continue
      echo "== the end of $(basename "$log"):" >&2
      tail -n 20 "$log" >&2
    done
  fi
  rm -rf "$WORK"
}
trap on_exit EXIT

mkdir -p "$WORK/keys" "$WORK/rules" "$WORK/bundle/rules" "$WORK/js"
# Logs as JSON, at info for the rule engine only (its "compiled" and
# "loaded precompiled" lines), warn elsewhere: no per-request logging.
export DATABASE_URL="sqlite://$WORK/load.db" COMPILED_RULES_DIR="$WORK/compiled-rules" \
  RULES_DIR="$WORK/rules" RATE_LIMIT_ENABLED=false CACHE_TTL=0 LOG_FORMAT=json \
  RUST_LOG="warn,recengine::rules::engine=info" \
  INITIAL_ADMIN_EMAIL=ops@example.com INITIAL_ADMIN_PASSWORD=languages-load-password
# The key the bundle is signed with; the server requires its signature.
BUNDLE_PUBLIC_KEYS=$("$BIN" rules keygen "$WORK/keys/ops" --key-id ops | sed -n 's/^BUNDLE_PUBLIC_KEYS=//p')
export BUNDLE_PUBLIC_KEYS

# The two rules from source, one after the other (as the API tests build
# them: lang-toolchains.sh's pinned tools, the contract in wit/rules.wit).
ROOT=$PWD
echo "building the Python rule (componentize-py)" >&2
(cd examples/python-margin-boost &&
  "$ROOT/.tools/python/bin/componentize-py" -d "$ROOT/wit/rules.wit" -w rule \
    componentize app -o "$WORK/bundle/rules/boost_high_margin_py.wasm" >/dev/null)
echo "building the JavaScript rule (componentize-js)" >&2
cp examples/javascript-margin-boost/{rule.js,margin-boost.js} "$WORK/js/"
sed -i 's/name: "boost_high_margin"/name: "boost_high_margin_js"/' "$WORK/js/rule.js"
grep -q 'name: "boost_high_margin_js"' "$WORK/js/rule.js"
(cd "$WORK/js" &&
  "$ROOT/examples/javascript-margin-boost/node_modules/.bin/componentize-js" \
    --wit "$ROOT/wit/rules.wit" --world-name rule \
    -d stdio -d random -d clocks -d http -d fetch-event \
    -o "$WORK/bundle/rules/boost_high_margin_js.wasm" rule.js >/dev/null)
cat >"$WORK/bundle/manifest.json" <<'JSON'
{"name": "languages", "revision": "1", "rules": [
  {"component": "rules/boost_high_margin_py.wasm", "name": "boost_high_margin",
   "config": {"weight": 0.5}},
  {"component": "rules/boost_high_margin_js.wasm", "name": "boost_high_margin_js",
   "config": {"weight": 0.5}}]}
JSON
"$BIN" rules pack "$WORK/bundle" --out "$WORK/languages.tar.gz" >/dev/null
"$BIN" rules sign "$WORK/languages.tar.gz" --key "$WORK/keys/ops.key" --key-id ops >/dev/null
"$BIN" rules verify "$WORK/languages.tar.gz" >/dev/null
PY_SHA=$(sha256sum "$WORK/bundle/rules/boost_high_margin_py.wasm" | cut -d' ' -f1)
JS_SHA=$(sha256sum "$WORK/bundle/rules/boost_high_margin_js.wasm" | cut -d' ' -f1)

"$BIN" import movielens "$DATA" >/dev/null

# `start_server LOG`: starts the server in the background (SERVER) and
# sets STARTUP_MS, the milliseconds from start to /ready 200 (polled every
# 20 ms, 60 s at most).
start_server() {
  local log=$1 started
  started=$(date +%s%N)
  "$BIN" serve --addr "127.0.0.1:$PORT" >"$log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 3000); do
    if curl -fs "$BASE/ready" >/dev/null 2>&1; then
      STARTUP_MS=$((($(date +%s%N) - started) / 1000000))
      return 0
    fi
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.02
  done
  echo "the server did not start; its log:" >&2
  cat "$log" >&2
  return 1
}

# `memory PHASE WHEN`: the server's VmRSS and VmHWM, kept for the report.
memory() {
  grep -E '^Vm(RSS|HWM):' "/proc/$SERVER/status" >"$WORK/mem-$1-$2"
}

declare -A WRK
# `measure PHASE`: memory, a 2 s warm-up, /metrics, wrk, /metrics, memory.
measure() {
  local url="$BASE$HYBRID"
  memory "$1" before
  wrk_run "$url" "$CONNECTIONS" 2 943 >/dev/null
  curl -fs "$BASE/metrics" >"$WORK/metrics-$1-before"
  WRK[$1]=$(wrk_run "$url" "$CONNECTIONS" "$SECS" 943)
  curl -fs "$BASE/metrics" >"$WORK/metrics-$1-after"
  memory "$1" after
}

start_server "$WORK/server-1.log"
measure builtins

echo "uploading the signed bundle (compiles both components)" >&2
TOKEN=$(bench_admin_token "$BASE/api/v1")
started=$(date +%s%N)
STATUS=$(curl -s -o "$WORK/upload.json" -w '%{http_code}' --max-time 900 \
  -X POST "$BASE/api/v1/rules/bundles" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/gzip' --data-binary "@$WORK/languages.tar.gz")
UPLOAD_MS=$((($(date +%s%N) - started) / 1000000))
if [[ "$STATUS" != 201 ]]; then
  echo "the bundle upload answered $STATUS:" >&2
  cat "$WORK/upload.json" >&2
  exit 1
fi
measure languages

echo "restarting on the same database and COMPILED_RULES_DIR" >&2
stop_server
start_server "$WORK/server-2.log"
RESTART_MS=$STARTUP_MS
# A few requests, so the restarted server shows it runs both rules.
for user in 1 2 3 4 5; do
  curl -fs -o /dev/null "$BASE/api/v1/recommendations/user/$user?algorithm=hybrid"
done
curl -fs "$BASE/metrics" >"$WORK/metrics-restart"
memory restart after

python3 - "$WORK" "$COMMAND" "$CONNECTIONS" "$SECS" "$UPLOAD_MS" "$RESTART_MS" \
  "$PY_SHA" "$JS_SHA" "${WRK[builtins]}" "${WRK[languages]}" <<'PY'
import json, re, sys
work, command, connections, secs, upload_ms, restart_ms, py_sha, js_sha, *lines = sys.argv[1:]
RULES = {"boost_high_margin": "Python", "boost_high_margin_js": "JavaScript"}

def counters(path, name, **want):
    """{rule: value} of the counter `name` whose labels include `want`."""
    out = {}
    for line in open(path):
        m = re.match(name + r"\{([^}]*)\}\s+([0-9.eE+-]+)$", line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(labels.get(k) == v for k, v in want.items()):
            rule = labels.get("rule", "?")
            out[rule] = out.get(rule, 0) + float(m.group(2))
    return out

def delta(phase, name, **want):
    a = counters(f"{work}/metrics-{phase}-before", name, **want)
    b = counters(f"{work}/metrics-{phase}-after", name, **want)
    return {r: b[r] - a.get(r, 0) for r in b if b[r] - a.get(r, 0)}

def mem(phase, when):
    text = open(f"{work}/mem-{phase}-{when}").read()
    kb = dict(re.findall(r"^(Vm\w+):\s+(\d+) kB", text, re.M))
    return {k: int(v) / 1024 for k, v in kb.items()}

def parse(line):
    rps = float(re.search(r"req/s\s+([0-9.]+)", line).group(1))
    lat = dict(re.findall(r"(p50|p99)\s+([0-9.]+) ms", line))
    non2xx = int(re.search(r"non-2xx\s+(\d+)", line).group(1))
    return rps, lat, non2xx

def log(path):
    events = []
    for line in open(path):
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return events

phases = ["builtins", "languages"]
wrk = dict(zip(phases, map(parse, lines)))
misses = {p: delta(p, "rule_failures_total", cause="timeout") for p in phases}
failures = {p: delta(p, "rule_failures_total") for p in phases}
calls = {p: delta(p, "rule_calls_total") for p in phases}
before = {p: mem(p, "before") for p in phases}
after = {p: mem(p, "after") for p in phases}

first = log(f"{work}/server-1.log")
second = log(f"{work}/server-2.log")
compiled_first = [e for e in first if e.get("message") == "rule component compiled"]
compiled_again = [e for e in second if e.get("message") == "rule component compiled"]
precompiled = [e for e in second if e.get("message") == "rule component loaded precompiled"]
refused = [e for e in second if str(e.get("message", "")).startswith("a stored compiled rule component was refused")]
loaded = {e.get("digest") for e in precompiled}
restart_calls = counters(f"{work}/metrics-restart", "rule_calls_total")
restart_mem = mem("restart", "after")

def misses_text(phase):
    total = sum(misses[phase].values())
    by_rule = ", ".join(f"{r} {v:.0f}" for r, v in sorted(misses[phase].items()))
    return f"{total:.0f}" + (f" ({by_rule})" if by_rule else "")

def other_failures(phase):
    rest = sum(failures[phase].values()) - sum(misses[phase].values())
    return f"{rest:.0f}"

def rule_calls(phase):
    return ", ".join(f"{RULES[r]} {calls[phase].get(r, 0):,.0f}" for r in RULES)

b, l = wrk["builtins"], wrk["languages"]
rows = [
    ("req/s", f"{b[0]:,.0f}", f"{l[0]:,.0f}"),
    ("p50 / p99", f"{b[1]['p50']} / {b[1]['p99']} ms", f"{l[1]['p50']} / {l[1]['p99']} ms"),
    ("non-2xx responses", f"{b[2]}", f"{l[2]}"),
    ("Python / JavaScript rule calls", rule_calls("builtins"), rule_calls("languages")),
    ("rule deadline misses (timeout)", misses_text("builtins"), misses_text("languages")),
    ("other rule failures", other_failures("builtins"), other_failures("languages")),
    ("VmRSS before -> after load", *(f"{before[p]['VmRSS']:.0f} -> {after[p]['VmRSS']:.0f} MiB" for p in phases)),
    ("VmHWM before -> after load", *(f"{before[p]['VmHWM']:.0f} -> {after[p]['VmHWM']:.0f} MiB" for p in phases)),
]
ok_restart = (not compiled_again and py_sha in loaded and js_sha in loaded
              and all(restart_calls.get(r, 0) > 0 for r in RULES))
restart = [
    ("bundle upload (compiles Python + JavaScript)", f"{int(upload_ms) / 1000:.1f} s"),
    ("components compiled by the first server", f"{len(compiled_first)}"),
    ("restart: start -> /ready 200 (target 3 s)", f"{int(restart_ms) / 1000:.2f} s"),
    ("restart: loaded precompiled / compiled again",
     f"{len(precompiled)} / {len(compiled_again)}"
     f" (Python {'yes' if py_sha in loaded else 'NO'}, JavaScript {'yes' if js_sha in loaded else 'NO'})"),
    ("restart: Python / JavaScript rule calls on 5 requests",
     ", ".join(f"{restart_calls.get(r, 0):.0f}" for r in RULES)),
    ("restart: VmRSS / VmHWM after 5 requests",
     f"{restart_mem['VmRSS']:.0f} / {restart_mem['VmHWM']:.0f} MiB"),
]
print(f"\nml-100k, SQLite, hybrid uncached, wrk 1 thread, {connections} connections, {secs} s")
print(f"command: {command}")
print("| figure | built-in rules only | built-ins + Python + JavaScript |")
print("| --- | --- | --- |")
for name, x, y in rows:
    print(f"| {name} | {x} | {y} |")
print(f"| req/s ratio (with / without the two interpreted rules) | | {l[0] / b[0]:.2f}x |")
for name, y in restart:
    print(f"| {name} | | {y} |")
if refused:
    print(f"stored compiled components refused at the restart: {[e.get('path') for e in refused]}")
if not ok_restart:
    print("FAIL: the restart compiled a component again, or did not load or run both rules")
    sys.exit(1)
PY
