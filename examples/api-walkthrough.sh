#!/usr/bin/env bash
# The newcomer's tour: the product as a client and as an operator sees it,
# against the demo (start it first with scripts/demo.sh). Each step prints
# one line saying what to notice; any unexpected HTTP status stops the tour
# with the request, the status and the body, and a non-zero exit.
#
#   BASE_URL      the service (default http://localhost:8000)
#   OPS_EMAIL     the demo's ops account (default ops@example.com)
#   OPS_PASSWORD  its password (default demo-password)
#   RECENGINE     the recengine command for `rules keygen/pack/sign`
#                 (default target/release/recengine, which scripts/demo.sh
#                 builds, else `cargo run --release --`)
#   RULE_WASM     the example rule's component; default: built from
#                 examples/boost-local-items for wasm32-wasip2 if missing
#   MERCH_WASM    the folder of the example bundle's components; default:
#                 built from examples/merchandising if missing
#
# Needs curl and python3. It leaves in the demo: one new user, its
# interactions, the bundle `tour` (two revisions, the first active: see the
# console's Bundles tab; the `merchandising` bundle it tries is deleted
# again) and one job run.
set -euo pipefail

BASE_URL=${BASE_URL:-http://localhost:8000}
BASE_URL=${BASE_URL%/}
API="$BASE_URL/api/v1"
OPS_EMAIL=${OPS_EMAIL:-ops@example.com}
OPS_PASSWORD=${OPS_PASSWORD:-demo-password}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
# Rules this tour switched off are switched back on even when it stops early.
RESTORE=()
cleanup() {
  for rule in "${RESTORE[@]+"${RESTORE[@]}"}"; do
    curl -s -o /dev/null -X PUT "$API/rules/$rule" -H "Authorization: Bearer $OPS" \
      -H 'content-type: application/json' -d '{"enabled": true}' || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "api-walkthrough: needs $tool" >&2; exit 2; }
done

TOUR=api-walkthrough
# shellcheck source=examples/walkthrough-lib.sh
source "$ROOT/examples/walkthrough-lib.sh"
body() { printf '%s' "$1"; }
# The ids a recommendation response lists, and what one rule did in its trace.
ids='[r["item_id"] for r in d["recommendations"]]'
dropped_by() { printf '[i for t in d["rule_trace"] if t["rule"] == "%s" for i in t["dropped"]]' "$1"; }

# ---------------------------------------------------------------- a client
health=$(curl -s "$BASE_URL/health") || fail "no answer from $BASE_URL/health (is scripts/demo.sh running?)"
notice "GET /health: $health (the demo needs no Redis: \"not configured\" is expected)."

suffix="$(date +%s)$$"
user=$(call 201 POST /auth/register "" -H 'content-type: application/json' -d "{
  \"username\": \"tourist_$suffix\", \"email\": \"tourist_$suffix@example.com\",
  \"password\": \"a-long-password\",
  \"preferences\": {\"age\": 30, \"country\": \"FR\", \"favorite_categories\": [\"books\"]}}")
uid=$(json "$user" 'd["id"]')
tokens=$(call 200 POST /auth/login "" -H 'content-type: application/json' \
  -d "{\"email\": \"tourist_$suffix@example.com\", \"password\": \"a-long-password\"}")
TOKEN=$(json "$tokens" 'd["access_token"]')
me=$(call 200 GET /auth/me "$TOKEN")
notice "Registered and signed in as $(json "$me" 'd["username"]') (user $uid, role $(json "$me" 'd["role"]')): every call below sends \"Authorization: Bearer <access_token>\"."

cold=$(call 200 GET "/recommendations/user/$uid?top_n=5" "$TOKEN")
check "$cold" 'd.get("fallback") == "popularity"' "a user with no interactions should get popular items"
books=$(call 200 GET "/items/?category=books&limit=4" "$TOKEN")
liked=$(json "$books" '[i["id"] for i in d]')
for item in $(json "$books" '" ".join(str(i["id"]) for i in d)'); do
  call 201 POST /interactions/ "$TOKEN" -H 'content-type: application/json' \
    -d "{\"user_id\": $uid, \"item_id\": $item, \"interaction_type\": \"purchase\"}" >/dev/null
done
warm=$(call 200 GET "/recommendations/user/$uid?top_n=5" "$TOKEN")
check "$warm" '"fallback" not in d' "after four purchases the models should know the user"
check "$warm" "d['model_version'] == $(json "$cold" 'd["model_version"]')" "no retrain should have happened"
check "$warm" "$ids != $(json "$cold" "$ids")" "the list should change after the purchases"
notice "Before any interaction: popular items $(json "$cold" "$ids") (\"fallback\": \"popularity\"); after buying books $liked the next list is $(json "$warm" "$ids"), categories $(json "$warm" '[r["category"] for r in d["recommendations"]]'), from the same model_version $(json "$warm" 'd["model_version"]'): no retrain needed."

explained=$(call 200 GET "/recommendations/user/$uid?top_n=5&explain=true" "$TOKEN")
check "$explained" 'len(d["rule_trace"]) >= 8' "explain=true should trace every rule"
notice "explain=true adds rule_trace, one entry per rule in priority order (promote rules run after the others): $(json "$explained" '", ".join("%s %s (%d dropped, %d boosted, %d moved)" % (t["rule"], t["status"], len(t["dropped"]), len(t["boosted"]), len(t["moved"])) for t in d["rule_trace"])')."

# top_n=100 makes every item a candidate, so the geo rule sees the whole
# catalogue's country lists.
us=$(call 200 GET "/recommendations/user/$uid?top_n=100&explain=true&country=US&device=mobile" "$TOKEN")
de=$(call 200 GET "/recommendations/user/$uid?top_n=100&explain=true&country=DE&device=desktop" "$TOKEN")
us_dropped=$(json "$us" "$(dropped_by filter_geo_restricted)")
de_dropped=$(json "$de" "$(dropped_by filter_geo_restricted)")
check "$de" "len($(dropped_by filter_geo_restricted)) > len($us_dropped)" \
  "filter_geo_restricted should let less through for DE than for US"
notice "The request's context beats the profile's country (FR): with country=US&device=mobile filter_geo_restricted drops $us_dropped, with country=DE&device=desktop $de_dropped (US/CA-only items, and items blocked in DE); device reaches the rules too, though no built-in rule reads it."

first=$(json "$books" 'd[0]["id"]')
similar=$(call 200 GET "/recommendations/similar-items/$first?top_n=5" "$TOKEN")
notice "Items similar to $(json "$similar" 'd["source_item_title"]') (co-interactions blended with content): $(json "$similar" '", ".join("%d %s %.2f" % (s["item_id"], s["category"], s["similarity_score"]) for s in d["similar_items"])')."

trending=$(call 200 GET "/recommendations/trending?limit=5&time_window=604800" "$TOKEN")
notice "Trending over the last 7 days (most interactions in the window first): $(json "$trending" '", ".join("%d (%d interactions)" % (t["item_id"], t["interaction_count"]) for t in d["trending_items"])')."

# --------------------------------------------------------------- an operator
ops_tokens=$(call 200 POST /auth/login "" -H 'content-type: application/json' \
  -d "{\"email\": \"$OPS_EMAIL\", \"password\": \"$OPS_PASSWORD\"}")
OPS=$(json "$ops_tokens" 'd["access_token"]')
features=$(call 200 GET "/features/users/$uid" "$OPS")
check "$features" 'd["total_interactions"] == 4' "the feature store should count the four purchases"
item_features=$(call 200 GET "/features/items/$first" "$OPS")
notice "Signed in as $OPS_EMAIL (ops). The feature store already has your four purchases: total_interactions $(json "$features" 'd["total_interactions"]'), favorite_categories $(json "$features" 'd["favorite_categories"]'), purchased_item_ids $(json "$features" 'sorted(d["purchased_item_ids"])'); item $first: purchase_count $(json "$item_features" 'd["purchase_count"]'), popularity_score $(json "$item_features" 'round(d["popularity_score"], 3)')."

rules=$(call 200 GET /rules/ "$OPS")
notice "The rules, in the order they run (priority, highest first): $(json "$rules" '", ".join("%s %d" % (r["name"], r["priority"]) for r in d["rules"])')."

before=$(call 200 GET "/recommendations/user/$uid?top_n=100&explain=true" "$TOKEN")
out_of_stock=$(json "$before" "$(dropped_by filter_out_of_stock)")
check "$before" "len($out_of_stock) > 0" "filter_out_of_stock should drop something from the whole catalogue"
RESTORE+=(filter_out_of_stock)
call 200 PUT /rules/filter_out_of_stock "$OPS" -H 'content-type: application/json' \
  -d '{"enabled": false}' >/dev/null
rules_off=$(call 200 GET /rules/ "$OPS")
check "$rules_off" '[r["enabled"] for r in d["rules"] if r["name"] == "filter_out_of_stock"] == [False]' \
  "the rule list should show filter_out_of_stock switched off"
after=$(call 200 GET "/recommendations/user/$uid?top_n=100" "$TOKEN")
back=$(json "$after" "sorted(set($ids) & set($out_of_stock))")
check "$after" "len($back) > 0" "with filter_out_of_stock off, out-of-stock items should come back"
call 200 PUT /rules/filter_out_of_stock "$OPS" -H 'content-type: application/json' \
  -d '{"enabled": true}' >/dev/null
RESTORE=()
again=$(call 200 GET "/recommendations/user/$uid?top_n=100" "$TOKEN")
check "$again" "not set($ids) & set($out_of_stock)" "switched back on, the rule should drop them again"
notice "filter_out_of_stock switched off (rule_set_version $(json "$rules" 'd["rule_set_version"]') -> $(json "$rules_off" 'd["rule_set_version"]'), \"enabled\": false): out-of-stock items $back are back in the list at once; switched on again, they are gone."

# A bundle: the example rule, packed, signed, uploaded, replaced, rolled back.
if [ -n "${RECENGINE:-}" ]; then
  read -r -a recengine <<<"$RECENGINE"
elif [ -x "$ROOT/target/release/recengine" ]; then
  recengine=("$ROOT/target/release/recengine")
else
  recengine=(cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" --)
fi
rule_wasm=${RULE_WASM:-$ROOT/examples/boost-local-items/target/wasm32-wasip2/release/boost_local_items.wasm}
if [ ! -f "$rule_wasm" ]; then
  echo "    (building the example rule for wasm32-wasip2 once)"
  (cd "$ROOT/examples/boost-local-items" && cargo build --quiet --release --target wasm32-wasip2)
fi
revision="tour-$suffix"
for n in 1 2; do
  mkdir -p "$WORK/tour-$n/rules"
  cp "$rule_wasm" "$WORK/tour-$n/rules/boost_local_items.wasm"
  factor=$([ "$n" = 1 ] && echo 1.5 || echo 3.0)
  cat >"$WORK/tour-$n/manifest.json" <<EOF
{"name": "tour", "revision": "$revision.$n",
 "rules": [{"component": "rules/boost_local_items.wasm", "name": "boost_local_items",
            "priority": 55, "config": {"factor": $factor}}]}
EOF
done
rec() {
  LOG_LEVEL=error "${recengine[@]}" "$@" || fail "recengine $*: failed (RECENGINE=${recengine[*]})"
}
rec rules keygen "$WORK/tour" --key-id tour >/dev/null
for n in 1 2; do
  rec rules pack "$WORK/tour-$n" --out "$WORK/tour-$n.tar.gz" >/dev/null
  rec rules sign "$WORK/tour-$n.tar.gz" --key "$WORK/tour.key" --key-id tour >/dev/null
  verified=$(rec rules verify "$WORK/tour-$n.tar.gz" --keys "tour:$(cat "$WORK/tour.pub")")
done
notice "Packed and signed two revisions ($revision.1 and .2, factor 1.5 and 3.0) of examples/boost-local-items with recengine rules keygen/pack/sign; verify says \"${verified#"$WORK/"}\" (BUNDLE_PUBLIC_KEYS=tour:<tour.pub> on the service would refuse unsigned ones)."

for n in 1 2; do
  call 201 POST /rules/bundles "$OPS" -H 'content-type: application/gzip' \
    --data-binary "@$WORK/tour-$n.tar.gz" >/dev/null
done
factor_of='[(r["config"]["factor"], r["source"]) for r in d["rules"] if r["name"] == "boost_local_items"][0]'
uploaded=$(call 200 GET /rules/ "$OPS")
check "$uploaded" "$factor_of[0] == 3.0" "revision 2 (factor 3.0) should be active after its upload"
call 200 POST /rules/bundles/tour/rollback "$OPS" -H 'content-type: application/json' \
  -d "{\"revision\": \"$revision.1\"}" >/dev/null
rolled=$(call 200 GET /rules/ "$OPS")
check "$rolled" "$factor_of[0] == 1.5" "the rollback should bring factor 1.5 back"
history=$(call 200 GET /rules/bundles/tour/history "$OPS")
notice "Uploaded both revisions: boost_local_items ran as $(json "$uploaded" "$factor_of"), rolled back to $(json "$rolled" "$factor_of") without a restart; the bundle's history: $(json "$history" '[h["action"] for h in d][:3]')."

# The example bundle: rules that read the shop's own data (prices against
# the page's budget, brands, margins, ratings, the user's plan).
merch=${MERCH_WASM:-$ROOT/examples/merchandising/target/wasm32-wasip2/release}
if [ ! -f "$merch/within_budget.wasm" ]; then
  echo "    (building the example bundle's rules for wasm32-wasip2 once)"
  (cd "$ROOT/examples/merchandising" && cargo build --quiet --release)
fi
mkdir -p "$WORK/merchandising"
cp "$ROOT/examples/merchandising/manifest.json" "$WORK/merchandising/"
cp "$merch"/*.wasm "$WORK/merchandising/"
rec rules pack "$WORK/merchandising" --out "$WORK/merchandising.tar.gz" >/dev/null
ask='{"user_id": '"$uid"', "top_n": 10, "explain": true, "context": {"extra": {"budget": "150"}}}'
plain=$(call 200 POST /recommendations/ "$TOKEN" -H 'content-type: application/json' -d "$ask")
call 201 POST /rules/bundles "$OPS" -H 'content-type: application/gzip' \
  --data-binary "@$WORK/merchandising.tar.gz" >/dev/null
shopped=$(call 200 POST /recommendations/ "$TOKEN" -H 'content-type: application/json' -d "$ask")
over=$(json "$shopped" "$(dropped_by within_budget)")
check "$shopped" "not set($ids) & set($over)" "within_budget should drop the items above the budget"
check "$shopped" "[t['inputs'] for t in d['rule_trace'] if t['rule'] == 'within_budget'] == [['item.price', 'context.budget']]" \
  "the trace should say which inputs within_budget read"
call 204 DELETE /rules/bundles/merchandising "$OPS" >/dev/null
notice "Uploaded examples/merchandising (rules reading price, brand, margin, ratings, the user's plan): with context.extra.budget=\"150\" the list went from $(json "$plain" "$ids") to $(json "$shopped" "$ids"); within_budget read $(json "$shopped" "[t['inputs'] for t in d['rule_trace'] if t['rule'] == 'within_budget'][0]") and dropped $over; the bundle is deleted again."

triggered=$(call 202 POST /jobs/generate_batch_recommendations/trigger "$OPS")
run_id=$(json "$triggered" 'd["run_id"]')
for _ in $(seq 1 240); do
  run=$(call 200 GET "/jobs/runs/$run_id" "$OPS")
  status=$(json "$run" 'd["status"]')
  case $status in SUCCESS | FAILURE) break ;; esac
  sleep 0.5
done
[ "$status" = SUCCESS ] || fail "job run $run_id ended $status: $(json "$run" 'd.get("error")')"
batch=$(call 200 GET "/recommendations/user/$uid/batch" "$TOKEN")
notice "Triggered generate_batch_recommendations (202, run $run_id): it ran $(json "$run" 'd["duration_ms"]') ms to $status, result $(json "$run" 'd["result"]'); your stored list starts $(json "$batch" '[r["item_id"] for r in d["recommendations"]][:5]')."

missing=$(call 404 GET /items/999999999 "$TOKEN")
invalid=$(call 422 GET "/recommendations/user/$uid?top_n=0" "$TOKEN")
check "$missing" '"detail" in d' "an error should carry detail"
notice "Errors always answer {\"detail\": ...}: 404 $missing, 422 $invalid."

echo "The tour is over: open $BASE_URL/console/ as $OPS_EMAIL to see the same rules, bundles and jobs."
