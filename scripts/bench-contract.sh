#!/usr/bin/env bash
# Rule contract 0.2 against 0.1, in one run: builds the eight built-in rules
# as contract 0.1 shipped them (from git, the last 0.1 commit), then runs
# the rules bench's `contract` group (the same pipeline on 0.1 and on 0.2
# components, 100 candidates) and its `declared_inputs` group (a boost
# declaring ten attributes beside one declaring none), and prints the
# ratios. Needs a clone with history (not shallow).
#
#   scripts/bench-contract.sh
set -euo pipefail
cd "$(dirname "$0")/.."
V01_COMMIT=${V01_COMMIT:-3f865ec}
work="${CARGO_TARGET_DIR:-$PWD/target}/bench-v01"
rm -rf "$work/src"
mkdir -p "$work"
git worktree add --detach "$work/src" "$V01_COMMIT" >/dev/null 2>&1
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true' EXIT
(
  cd "$work/src/builtin-rules"
  CARGO_TARGET_DIR="$work/target" cargo build --release --quiet --target wasm32-wasip2
)
rm -rf "$work/rules"
mkdir -p "$work/rules"
for crate in "$work/src/builtin-rules/components"/*/; do
  name=$(basename "$crate" | tr - _)
  cp "$work/target/wasm32-wasip2/release/$name.wasm" "$work/rules/"
done
RECENGINE_BENCH_V01_RULES="$work/rules" \
  cargo bench -p recengine --bench rules -- 'contract|declared_inputs'
criterion="${CARGO_TARGET_DIR:-$PWD/target}/criterion"
median() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"]/1000)' "$criterion/$1/new/estimates.json"; }
v01=$(median contract/v0_1_100)
v02=$(median contract/v0_2_100)
none=$(median declared_inputs/none_100)
declares=$(median declared_inputs/declares_ten_100)
ten=$(median declared_inputs/ten_100)
python3 - "$v01" "$v02" "$none" "$declares" "$ten" <<'PY'
import sys
v01, v02, none, declares, ten = map(float, sys.argv[1:])
print(f"built-ins, 100 candidates: 0.1 {v01:.1f} µs, 0.2 {v02:.1f} µs: 0.2/0.1 = {v02 / v01:.2f}x (goal <= 1.1x)")
print(f"one boost, 100 candidates: no inputs {none:.1f} µs, ten declared {declares:.1f} µs: {declares / none:.2f}x (goal <= 1.5x)")
print(f"  and reading all ten for every candidate: {ten:.1f} µs: {ten / none:.2f}x")
PY
