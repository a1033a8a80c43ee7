#!/usr/bin/env bash
# Sets up what is missing, then runs every test: the Rust host's cargo tests and the tap suite
# (unit + integration against real listening servers).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
echo "test: cargo tests (wasm-runtime host)"
# same --target as `napi build`, so the tests reuse the addon build's compiled dependencies
cargo test --release --locked --manifest-path wasm-runtime/Cargo.toml --target "$(rustc -vV | sed -n 's/^host: //p')"
echo "test: tap"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
npx tap "$@" | tee "$log" || status=$?
# tap's summary is `# { total: N, pass: P, fail: F, ... }`; restate it as a plain closing line
node -e '
const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(require("fs").readFileSync(process.argv[1], "utf8"))
if (m) console.log(`tap: ${m[2]} passed, ${m[3] ?? 0} failed`)
' "$log"
exit "$status"
