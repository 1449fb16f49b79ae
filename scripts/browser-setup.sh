#!/usr/bin/env bash
# Installs what the console's browser test needs: Debian's Chromium and
# playwright-core (the driver alone; it never downloads a browser of its
# own, it launches /usr/bin/chromium). Idempotent; needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null; then
    echo "browser-setup: installing chromium from Debian's packages"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser-setup: chromium is missing and there is no apt-get; install it by hand" >&2
    exit 1
  fi
fi
if [ ! -d host/tests/browser/node_modules/playwright-core ]; then
  echo "browser-setup: installing playwright-core from npm"
  (cd host/tests/browser && npm ci --no-audit --no-fund --silent)
fi
