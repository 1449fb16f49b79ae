#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the build
# needs, starts PostgreSQL and Redis, then runs every test of the workspace
# (SQLite and PostgreSQL variants alike).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/services.sh
# The example rule is its own crate (built for Wasm); its unit tests run
# natively.
host_triple=$(rustc -vV | sed -n 's/^host: //p')
(cd examples/boost-local-items && cargo test --locked --lib --target "$host_triple")
cargo test --workspace --locked "$@"
