#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the build
# needs, starts PostgreSQL and Redis, then runs every test of the workspace
# (SQLite and PostgreSQL variants alike).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/services.sh
cargo test --workspace --locked "$@"
