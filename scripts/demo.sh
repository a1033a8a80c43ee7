#!/usr/bin/env bash
# The main job: sets up what is missing, then runs examples/demo.ts: it starts the standalone server
# (auth on, a token generated at start: it reads the printed token URL), creates the example panels
# and drives them with the token, printing PATCH / EVENT / RESULT as they arrive.
# Against a running kernel: KERNEL_URL='http://127.0.0.1:3000/?token=…' npm run demo
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec node --import tsx examples/demo.ts "$@"
