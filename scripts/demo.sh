#!/usr/bin/env bash
# Runs the service on the embedded default (SQLite under ./data) with a demo
# catalogue, on http://localhost:8000 (docs at /docs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -- serve --demo "$@"
