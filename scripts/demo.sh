#!/usr/bin/env bash
# The main job: sets up what is missing, then starts the server with the example panels and runs
# the demo client against it (examples/demo.ts), printing PATCH / EVENT / RESULT as they arrive.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec node --import tsx examples/demo.ts "$@"
