#!/usr/bin/env bash
# Installs the toolchains that build rules written in Python and JavaScript,
# at exact versions, from PyPI and npm only:
# - componentize-py (examples/python-margin-boost/requirements.txt) into a
#   virtualenv at .tools/python;
# - @bytecodealliance/componentize-js (examples/javascript-margin-boost/
#   package.json and its lock file) into that example's node_modules.
# Idempotent: when both are in place at the pinned versions it returns in
# well under a second, so scripts/setup.sh can call it on every run.
# Needs python3 (with venv) and node + npm.
set -euo pipefail
cd "$(dirname "$0")/.."

py_example=examples/python-margin-boost
js_example=examples/javascript-margin-boost
venv=.tools/python

pinned_py=$(sed -n 's/^componentize-py==//p' "$py_example/requirements.txt")
if [[ "$("$venv/bin/componentize-py" --version 2>/dev/null || true)" != "componentize-py $pinned_py" ]]; then
  echo "lang-toolchains: installing componentize-py $pinned_py into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$py_example/requirements.txt"
fi

# npm ci installs exactly the lock file; a stamp of the lock's digest makes
# the next run a no-op.
stamp="$js_example/node_modules/.recengine-lock.sha256"
want=$(sha256sum "$js_example/package-lock.json" | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  echo "lang-toolchains: installing componentize-js (npm ci in $js_example)" >&2
  (cd "$js_example" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
