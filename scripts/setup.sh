#!/usr/bin/env bash
# Installs what building recengine needs beyond a Rust toolchain: the
# wasm32-wasip2 target that rule authors' components compile to, the
# wasm32-unknown-unknown target of the built-in rules, and the pinned
# Python and JavaScript rule toolchains (scripts/lang-toolchains.sh).
set -euo pipefail
if command -v rustup >/dev/null; then
  for target in wasm32-wasip2 wasm32-unknown-unknown; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
  done
fi
# componentize-py and componentize-js, pinned, for the rules written in
# Python and JavaScript that the test suite builds from source.
"$(dirname "$0")/lang-toolchains.sh"
