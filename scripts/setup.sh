#!/usr/bin/env bash
# Installs what building recengine needs beyond a Rust toolchain: the
# wasm32-wasip2 target that the rule components compile to.
set -euo pipefail
if command -v rustup >/dev/null; then
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
fi
