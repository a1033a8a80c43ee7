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
npx tap "$@"
