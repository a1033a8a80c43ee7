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

# The process bridge runs every process under bubblewrap, with rlimits set by util-linux prlimit.
if ! command -v bwrap >/dev/null 2>&1 || ! command -v prlimit >/dev/null 2>&1; then
  echo "setup: installing bubblewrap and util-linux (the process sandbox)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends bubblewrap util-linux
fi

if ! python3 -c 'import websockets' 2>/dev/null; then
  echo "setup: installing the Python websockets library"
  python3 -m pip install --quiet --disable-pip-version-check 'websockets>=13'
fi

# Code kernels: ipykernel (python3 kernelspec) and the Jupyter clients the tests and benchmark use,
# in a project virtualenv (.venv, gitignored) so the system Python stays untouched.
if ! .venv/bin/python3 -c 'import ipykernel, jupyter_client, jupyter_kernel_test' 2>/dev/null; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "setup: installing python3-venv"
    apt-get update -qq && apt-get install -y -qq python3-venv
  fi
  echo "setup: installing ipykernel into .venv"
  python3 -m venv .venv
  .venv/bin/python3 -m pip install --quiet --disable-pip-version-check 'ipykernel>=6' 'jupyter_client>=8' 'jupyter_kernel_test>=0.7'
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium (the inspector's browser tests drive it with playwright-core)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

bash wasm-runtime/build.sh
bash inspector/build.sh
