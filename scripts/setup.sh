#!/usr/bin/env bash
# Installs what building recengine needs beyond a Rust toolchain: the
# wasm32-wasip2 target that the rule components compile to, and the pinned
# Python and JavaScript rule toolchains (scripts/lang-toolchains.sh).
set -euo pipefail
if command -v rustup >/dev/null; then
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
fi
# componentize-py and componentize-js, pinned, for the rules written in
# Python and JavaScript that the test suite builds from source.
"$(dirname "$0")/lang-toolchains.sh"
