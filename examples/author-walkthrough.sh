#!/usr/bin/env bash
# The rule author's path, from `recengine rules new` to a signed bundle live
# on a server and back: the commands of "From your laptop to production" in
# examples/README.md, run in order against the demo (start it first with
# scripts/demo.sh). Each step prints one line saying what to notice; any
# unexpected HTTP status or failing command stops it with the status and
# the body (or the command's output), and a non-zero exit.
#
#   BASE_URL           the service (default http://localhost:8000)
#   OPS_EMAIL          the demo's ops account (default ops@example.com)
#   OPS_PASSWORD       its password (default demo-password)
#   RECENGINE          the recengine command (default target/release/recengine,
#                      which scripts/demo.sh builds, else `cargo run --release --`)
#   SDK_PATH           the SDK for `rules new --sdk-path` (default this
#                      checkout's rules-sdk)
#   CARGO_TARGET_DIR   where `cargo build --release` puts the component (default
#                      the project's target/); the component is then copied to
#                      target/wasm32-wasip2/release/, where manifest.json names it
#   NATIVE_TARGET_DIR  where the native `cargo test` builds (default
#                      CARGO_TARGET_DIR)
#
# Needs cargo (with the wasm32-wasip2 target), curl and python3. The project,
# keys and bundles live in a temporary folder, removed at the end. It leaves
# in the demo: the bundle `boost-brands`, deleted (no rule of it runs; its two
# revisions and its history stay stored, as every bundle's do), and the rule
# set as it found it. Each run uses new revision names (a revision, once
# uploaded, is never replaced), so it can run again.
set -euo pipefail

BASE_URL=${BASE_URL:-http://localhost:8000}
BASE_URL=${BASE_URL%/}
API="$BASE_URL/api/v1"
OPS_EMAIL=${OPS_EMAIL:-ops@example.com}
OPS_PASSWORD=${OPS_PASSWORD:-demo-password}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SDK_PATH=${SDK_PATH:-$ROOT/rules-sdk}
RULE=boost_brands
BUNDLE=boost-brands
WORK=$(mktemp -d)
PROJECT="$WORK/$BUNDLE"
OPS=""
# What to undo if the walkthrough stops early: a shadow, a live bundle.
SHADOWING=false
LIVE=false
cleanup() {
  if [ -n "$OPS" ]; then
    if $SHADOWING; then
      curl -s -o /dev/null -X DELETE "$API/rules/bundles/shadow" -H "Authorization: Bearer $OPS" || true
    fi
    if $LIVE; then
      curl -s -o /dev/null -X DELETE "$API/rules/bundles/$BUNDLE" -H "Authorization: Bearer $OPS" || true
    fi
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in cargo curl python3 rustc; do
  command -v "$tool" >/dev/null || { echo "author-walkthrough: needs $tool" >&2; exit 2; }
done
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "author-walkthrough: needs the wasm32-wasip2 target: rustup target add wasm32-wasip2" >&2
  exit 2
fi

TOUR=author-walkthrough
# shellcheck source=examples/walkthrough-lib.sh
source "$ROOT/examples/walkthrough-lib.sh"
# run WHAT COMMAND...: runs a command quietly, keeping its output in
# $WORK/out; on failure stops with the output's end.
run() {
  local what=$1
  shift
  "$@" >"$WORK/out" 2>&1 || fail "$what failed: $* (in $PWD)
$(tail -n 40 "$WORK/out")"
}

if [ -n "${RECENGINE:-}" ]; then
  read -r -a recengine <<<"$RECENGINE"
elif [ -x "$ROOT/target/release/recengine" ]; then
  recengine=("$ROOT/target/release/recengine")
else
  recengine=(cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" --)
fi
rec() { LOG_LEVEL=error "${recengine[@]}" "$@"; }

curl -s -o /dev/null "$BASE_URL/health" || fail "no answer from $BASE_URL/health (is scripts/demo.sh running?)"

# ------------------------------------------------------------ on the laptop
cd "$WORK"
run "recengine rules new" rec rules new "$RULE" --kind boost --sdk-path "$SDK_PATH"
cd "$PROJECT"
notice "recengine rules new $RULE --kind boost wrote $BUNDLE/: $(cd "$PROJECT" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')(the SDK by path: $(grep -o 'recengine-rules-sdk = .*' Cargo.toml))."

host=$(rustc -vV | sed -n 's/^host: //p')
run "the native tests" env CARGO_TARGET_DIR="${NATIVE_TARGET_DIR:-${CARGO_TARGET_DIR:-target}}" \
  cargo test --lib --target "$host"
notice "cargo test --lib --target $host: $(grep -m1 -o 'test result: ok\. [0-9]* passed' "$WORK/out") (natively: no Wasm, no service)."

run "the component's build" cargo build --release
built="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/$RULE.wasm"
[ -f "$built" ] || fail "cargo build --release made no $built"
component="target/wasm32-wasip2/release/$RULE.wasm"
if [ "$(cd "$(dirname "$built")" && pwd)" != "$PROJECT/target/wasm32-wasip2/release" ]; then
  # CARGO_TARGET_DIR points elsewhere: put the component where manifest.json
  # names it.
  mkdir -p "$(dirname "$component")"
  cp "$built" "$component"
fi
notice "cargo build --release (.cargo/config.toml targets wasm32-wasip2): $component, $(($(wc -c <"$component") / 1024)) KiB, the file manifest.json names."

# The bundle's settings: the brands the demo sells, and a revision of its
# own per run.
suffix="$(date +%s)$$"
revision="$suffix.1"
python3 - "$revision" <<'EOF'
import json, sys
m = json.load(open("manifest.json"))
m["revision"] = sys.argv[1]
m["rules"][0]["config"] = {"brands": ["Acme", "Zenith"], "factor": 2.0}
json.dump(m, open("manifest.json", "w"), indent=2)
EOF
cat >items.json <<'EOF'
[{"item_id": 1, "score": 0.9, "features": {"brand": "Orbis"}},
 {"item_id": 2, "score": 0.8, "features": {"brand": "Acme"}},
 {"item_id": 3, "score": 0.7}]
EOF
run "recengine rules test ." rec rules test .
sample=$(grep -E "^ +$RULE " "$WORK/out" | tr -s ' ' | sed 's/^ //')
run "recengine rules test . --items-file items.json" rec rules test . --items-file items.json
notice "recengine rules test . loads the bundle as an upload would, beside the built-in rules: \"$sample\"; over items.json: $(grep '^result:' "$WORK/out") (Acme's item 2 doubled and on top)."

run "recengine rules keygen" rec rules keygen "$WORK/ops" --key-id ops
notice "recengine rules keygen (once): $WORK/ops.key (secret: keep it out of the project) and ops.pub; it prints $(cut -c1-30 "$WORK/out")..., which on a server makes signatures mandatory."

run "recengine rules pack ." rec rules pack .
packed=$(cat "$WORK/out")
file="$BUNDLE-$revision.tar.gz"
run "recengine rules sign" rec rules sign "$file" --key "$WORK/ops.key" --key-id ops
run "recengine rules verify" rec rules verify "$file" --keys "ops:$(cat "$WORK/ops.pub")"
notice "recengine rules pack . then sign: ${packed%%, sha256*}; verify says \"$(cat "$WORK/out")\"."

# ------------------------------------------------------------- on the server
tokens=$(call 200 POST /auth/login "" -H 'content-type: application/json' \
  -d "{\"email\": \"$OPS_EMAIL\", \"password\": \"$OPS_PASSWORD\"}")
OPS=$(json "$tokens" 'd["access_token"]')
me=$(call 200 GET /auth/me "$OPS")
notice "POST /api/v1/auth/login as $OPS_EMAIL (role $(json "$me" 'd["role"]')): its access_token is OPS_TOKEN for every call below."

before=$(call 200 GET /rules/ "$OPS")
check "$before" "'$RULE' not in [r['name'] for r in d['rules']]" "$RULE is already active: delete the bundle $BUNDLE first"
SHADOWING=true
shadow=$(call 201 POST /rules/bundles/shadow "$OPS" -H 'content-type: application/gzip' --data-binary "@$file")
still=$(call 200 GET /rules/ "$OPS")
check "$still" "'$RULE' not in [r['name'] for r in d['rules']]" "a bundle in shadow should not serve"
notice "POST /api/v1/rules/bundles/shadow: $(json "$shadow" 'd["name"]')@$(json "$shadow" 'd["revision"]') runs in shadow, checked like an upload but not served: GET /rules/ still lists $(json "$still" 'len(d["rules"])') rules, none of them $RULE."

users="1 2 3 4 5 6 7 8"
for u in $users; do
  call 200 GET "/recommendations/user/$u?top_n=10&explain=true" "" >/dev/null
done
for _ in $(seq 1 100); do
  report=$(call 200 GET /rules/bundles/shadow "$OPS")
  [ "$(json "$report" 'd["compared"] + d["skipped"]')" -ge 8 ] && break
  sleep 0.1
done
check "$report" 'd["compared"] > 0' "the shadow should have compared live requests"
notice "8 live requests later (explain=true: never answered from the cache), GET /rules/bundles/shadow: compared $(json "$report" 'd["compared"]'), identical $(json "$report" 'd["identical"]'), mean_overlap $(json "$report" 'round(d["mean_overlap"], 2)'), mean_rank_correlation $(json "$report" 'round(d["mean_rank_correlation"], 2)'), items_added $(json "$report" 'd["items_added"]'), errors $(json "$report" 'd["errors"]')$(json "$report" '"; e.g. user %d: live %s, shadow %s" % (d["examples"][0]["user_id"], d["examples"][0]["live"], d["examples"][0]["shadow"]) if d["examples"] else ""')."

LIVE=true
promoted=$(call 200 POST /rules/bundles/shadow/promote "$OPS")
SHADOWING=false
call 404 GET /rules/bundles/shadow "$OPS" >/dev/null
live=$(call 200 GET /rules/ "$OPS")
check "$live" "'$RULE' in [r['name'] for r in d['rules']]" "$RULE should be live after the promotion"
view="[r for r in d['rules'] if r['name'] == '$RULE'][0]"
notice "POST /rules/bundles/shadow/promote: revision $(json "$promoted" 'd["revision"]') is live on every replica ($(json "$promoted" '"signed by " + d["signed_by"] if d["signed_by"] else "signed_by null: this server has no BUNDLE_PUBLIC_KEYS, so it checks no signature"')); GET /rules/ lists $RULE in the order the rules run, between $(json "$live" "[r['name'] for r in d['rules']][[r['name'] for r in d['rules']].index('$RULE') - 1]") and $(json "$live" "[r['name'] for r in d['rules']][[r['name'] for r in d['rules']].index('$RULE') + 1]"): priority $(json "$live" "$view['priority']"), source $(json "$live" "$view['source']"), config $(json "$live" "$view['config']"), contract $(json "$live" "$view['contract']")."

entry="[t for t in d['rule_trace'] if t['rule'] == '$RULE'][0]"
explained=""
for u in $users; do
  explained=$(call 200 GET "/recommendations/user/$u?top_n=10&explain=true" "")
  [ "$(json "$explained" "len($entry['boosted'])")" -gt 0 ] && break
done
check "$explained" "$entry['status'] == 'applied'" "$RULE should have applied"
check "$explained" "$entry['boosted']" "$RULE should have boosted an Acme or Zenith item"
notice "GET /recommendations/user/$(json "$explained" 'd["user_id"]')?top_n=10&explain=true: $RULE $(json "$explained" "$entry['status']"), read $(json "$explained" "$entry['inputs']"), boosted $(json "$explained" "', '.join('%d %.3f->%.3f (%s)' % (b['item_id'], b['before'], b['after'], 'response_rank %d' % b['response_rank'] if b['response_rank'] else 'not shown') for b in $entry['boosted'])")."

revision2="$suffix.2"
python3 - "$revision2" <<'EOF'
import json, sys
m = json.load(open("manifest.json"))
m["revision"] = sys.argv[1]
m["rules"][0]["config"]["factor"] = 3.0
json.dump(m, open("manifest.json", "w"), indent=2)
EOF
run "recengine rules pack ." rec rules pack .
run "recengine rules sign" rec rules sign "$BUNDLE-$revision2.tar.gz" --key "$WORK/ops.key" --key-id ops
call 201 POST /rules/bundles "$OPS" -H 'content-type: application/gzip' \
  --data-binary "@$BUNDLE-$revision2.tar.gz" >/dev/null
factor="[r['config']['factor'] for r in d['rules'] if r['name'] == '$RULE'][0]"
second=$(call 200 GET /rules/ "$OPS")
check "$second" "$factor == 3.0" "revision $revision2 (factor 3.0) should be live"
notice "Revision $revision2 (factor 3.0), packed, signed and uploaded straight to live with POST /rules/bundles: $RULE runs with factor $(json "$second" "$factor")."

call 200 POST "/rules/bundles/$BUNDLE/rollback" "$OPS" -H 'content-type: application/json' \
  -d "{\"revision\": \"$revision\"}" >/dev/null
rolled=$(call 200 GET /rules/ "$OPS")
check "$rolled" "$factor == 2.0" "the rollback should bring factor 2.0 back"
history=$(call 200 GET "/rules/bundles/$BUNDLE/history" "$OPS")
notice "POST /rules/bundles/$BUNDLE/rollback {\"revision\": \"$revision\"}: factor $(json "$rolled" "$factor") again, without a restart; the history, newest first: $(json "$history" '", ".join("%s %s" % (h["action"], h["revision"]) for h in d[:4])') (the promotion is recorded as a rollback to the shadowed revision)."

call 204 DELETE "/rules/bundles/$BUNDLE" "$OPS" >/dev/null
LIVE=false
after=$(call 200 GET /rules/ "$OPS")
check "$after" "[r['name'] for r in d['rules']] == $(json "$before" "[r['name'] for r in d['rules']]")" \
  "after the deletion the rule set should be the one found"
notice "DELETE /rules/bundles/$BUNDLE: $RULE is gone, GET /rules/ lists the $(json "$after" 'len(d["rules"])') rules it found; the bundle's revisions and history stay stored for a later rollback."

echo "From rules new to production and back: see examples/README.md, \"From your laptop to production\", for the same commands one by one."
