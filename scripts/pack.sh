#!/usr/bin/env bash
# Packs what `npm publish` would ship, as tarballs in the folder given (default: the current one):
#   workspace-kernel-linux-x64-gnu-<version>.tgz  the platform package with this machine's addon
#                                                 (the napi-rs layout: wasm-runtime/npm/<target>/)
#   workspace-kernel-<version>.tgz                the main package (prepack builds dist/)
# Prints the two tarball paths, platform package first. Needs the sandbox built
# (npm run build:runtime; it is skipped when up to date).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)"
cd "$root"
bash wasm-runtime/build.sh >&2
target="$(node --import tsx -e "import('./wasm-runtime/addon.ts').then((m) => console.log(m.platformTarget()))")"
[ -d "wasm-runtime/npm/$target" ] || { echo "pack: no platform package for $target in wasm-runtime/npm (add it to wasm-runtime/napi.json targets, then napi create-npm-dirs)" >&2; exit 1; }
# the platform package's folder and package.json come from `napi create-npm-dirs` (committed);
# its one file is this machine's addon, under the name napi-rs gives it. (`napi artifacts` would
# also copy it into the package root and edit its entry points, which this layout does not use.)
cp wasm-runtime/build/wasm_runtime.node "wasm-runtime/npm/$target/wasm_runtime.$target.node"
npm pack "./wasm-runtime/npm/$target" --pack-destination "$out" >&2
npm pack --pack-destination "$out" >&2
version="$(node -p 'require("./package.json").version')"
echo "$out/workspace-kernel-$target-$version.tgz"
echo "$out/workspace-kernel-$version.tgz"
