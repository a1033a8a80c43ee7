#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine of this kind, and skips what is
# already there: Debian packages for the guest build, npm packages, the Python client library
# used by the tests, Chromium for the inspector's browser tests, then builds the sandbox (guest +
# addon) and the inspector page. Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # `npm install` (not `npm ci`): npm's lock omits some packages' optional platform builds,
  # which `npm ci` then refuses; versions still come from package-lock.json.
  npm install --no-audit --no-fund --loglevel=error
fi

if ! python3 -c 'import websockets' 2>/dev/null; then
  echo "setup: installing the Python websockets library"
  python3 -m pip install --quiet --disable-pip-version-check 'websockets>=13'
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (the inspector's browser tests drive it with playwright-core)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

bash wasm-runtime/build.sh
bash inspector/build.sh
