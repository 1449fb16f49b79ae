#!/usr/bin/env bash
# A client's tour of the API. Start the service first (scripts/demo.sh), then
# run this; BASE overrides the address.
set -euo pipefail
BASE=${BASE:-http://localhost:8000}
say() { printf '\n== %s\n' "$*"; }

say "health"
curl -s "$BASE/health"; echo

say "create a user"
user=$(curl -s -X POST "$BASE/api/v1/users/" -H 'content-type: application/json' \
  -d "{\"username\":\"walker$RANDOM\",\"email\":\"walker$RANDOM@example.com\",\"password\":\"a-long-password\",\"preferences\":{\"age\":30,\"country\":\"FR\",\"favorite_categories\":[\"books\"]}}")
echo "$user"
uid=$(echo "$user" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

say "the five most popular items"
curl -s "$BASE/api/v1/items/popular/top?limit=5"; echo

say "record a purchase of item 1"
curl -s -X POST "$BASE/api/v1/interactions/" -H 'content-type: application/json' \
  -d "{\"user_id\":$uid,\"item_id\":1,\"interaction_type\":\"purchase\"}"; echo

say "the user's interaction stats"
curl -s "$BASE/api/v1/interactions/stats/user/$uid"; echo

say "an error is always {\"detail\": ...}"
curl -s "$BASE/api/v1/users/999999999"; echo
