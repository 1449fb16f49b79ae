#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the build
# needs, starts PostgreSQL and Redis, then runs every test of the workspace
# (SQLite and PostgreSQL variants alike), the console's in headless Chromium,
# then a bounded schema-fuzzing run of the OpenAPI document (a few minutes;
# skipped when arguments narrow the cargo tests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/services.sh
# Chromium and playwright-core for the console's browser test, which must
# run here rather than skip.
scripts/browser-setup.sh
export RECENGINE_BROWSER_TEST=required
# The Python and JavaScript example rules (toolchains installed by
# scripts/setup.sh) are built and loaded; their test must not skip here.
export RECENGINE_LANG_TEST=required
# The example rule is its own crate (built for Wasm); its unit tests run
# natively.
host_triple=$(rustc -vV | sed -n 's/^host: //p')
(cd examples/boost-local-items && cargo test --locked --lib --target "$host_triple")
cargo test --workspace --locked "$@"
# schemathesis against the real binary, on SQLite and PostgreSQL,
# anonymously and as an admin; any failure fails the suite.
if [[ $# -eq 0 ]]; then
  scripts/schemathesis.sh --sqlite
  scripts/schemathesis.sh --postgres
fi
