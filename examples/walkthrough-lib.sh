# Shared by the walkthroughs (examples/api-walkthrough.sh and
# examples/author-walkthrough.sh): numbered steps, HTTP calls that stop the
# tour on an unexpected status, and JSON checks. The sourcing script sets
# TOUR (its name, for messages), WORK, API and BASE_URL first.

STEP=0
# One line per step: what to notice.
notice() { STEP=$((STEP + 1)); printf '%2d. %s\n' "$STEP" "$*"; }
fail() { echo "$TOUR: $*" >&2; exit 1; }

# call EXPECTED METHOD PATH [TOKEN] [curl args...]: prints the body; stops the
# tour when the status is not EXPECTED.
call() {
  local expected=$1 method=$2 path=$3 token=${4:-}
  shift 4 || shift $#
  local auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  local status
  status=$(curl -s -o "$WORK/body" -w '%{http_code}' -X "$method" "${auth[@]+"${auth[@]}"}" \
    "$@" "$API$path") || fail "$method $path: no answer from $BASE_URL (is scripts/demo.sh running?)"
  if [ "$status" != "$expected" ]; then
    fail "$method $path answered $status, expected $expected: $(head -c 600 "$WORK/body")"
  fi
  cat "$WORK/body"
}
# json BODY EXPR: evaluates a Python expression over the JSON body `d`;
# strings print bare, anything else as JSON.
json() {
  python3 -c '
import json, sys
d = json.loads(sys.argv[1])
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}
# check BODY EXPR MESSAGE: stops the tour unless EXPR holds.
check() {
  [ "$(json "$1" "bool($2)")" = true ] || fail "$3"
}
