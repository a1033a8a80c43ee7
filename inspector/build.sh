#!/usr/bin/env bash
# Builds the inspector page (inspector/src → inspector/dist) with Vite when its inputs changed:
# the sources, index.html, the Vite config, this script and the npm lock (library versions).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
stamp="$( (find inspector/src -type f | sort | xargs cat; cat inspector/index.html inspector/vite.config.ts "$0" package-lock.json) | sha256sum | cut -c1-16)"
if [ -f inspector/dist/index.html ] && [ "$(cat inspector/dist/.stamp 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
echo "setup: building the inspector page"
npx vite build --config inspector/vite.config.ts
echo "$stamp" > inspector/dist/.stamp
