#!/usr/bin/env bash
# Builds the whole sandbox: the QuickJS guest (guest/build.sh → build/guest.wasm) and the
# wasmtime host addon (build-host.sh → build/wasm_runtime.node). Idempotent: each step skips
# itself when its inputs have not changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/guest/build.sh"
bash "$here/build-host.sh"
