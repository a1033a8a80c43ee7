#!/usr/bin/env bash
# Builds the sandbox guest: quickjs-ng (C sources pinned by quickjs-src/Cargo.lock) + our glue,
# compiled to wasm32-wasi, pre-initialized by Wizer and optimized by wasm-opt.
# Output: wasm-runtime/build/guest.wasm. Idempotent: skips when no input changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/wasm-runtime/build"
obj="$out/guest-obj"
mkdir -p "$obj"

need_pkgs=()
for p in clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "guest: installing ${need_pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Locate the pinned QuickJS sources (downloads the crate into Cargo's cache if needed).
qjs="$(cd "$here/quickjs-src" && cargo metadata --locked --format-version 1 2>/dev/null |
  python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.join(os.path.dirname(p["manifest_path"]),"quickjs") for p in m["packages"] if p["name"]=="rquickjs-sys"))')"
[ -f "$qjs/quickjs.c" ] || { echo "guest: QuickJS sources not found at $qjs" >&2; exit 1; }

CC=clang-14
CFLAGS=(--target=wasm32-wasi -O2 -D_WASI_EMULATED_SIGNAL -DNDEBUG -I"$qjs" -I"$obj" -Wno-everything)
STACK_BYTES=1048576

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# QuickJS disables its stack-depth check under WASI (update_stack_limit); we keep it on, so
# deep recursion ends as a catchable RangeError instead of running the wasm stack into a trap.
# The patch is applied to a copy in the build folder; the pinned sources stay untouched.
patch_stack_check() {
  python3 - "$qjs/quickjs.c" "$obj/quickjs.c" <<'PY'
import sys
src = open(sys.argv[1], encoding="utf-8").read()
old = "#if defined(__wasi__)\n    rt->stack_limit = 0; /* no limit */\n#else"
if src.count(old) != 1:
    sys.exit("guest: QuickJS's update_stack_limit changed; review the stack-check patch in build.sh")
open(sys.argv[2], "w", encoding="utf-8").write(src.replace(old, "#if 0 /* wk: stack check kept under WASI */\n#else"))
PY
}

# QuickJS itself: compiled once per source version (the slow part, ~40 s).
qstamp="$(stamp_of "$qjs"/quickjs.c "$qjs"/libregexp.c "$qjs"/libunicode.c "$qjs"/dtoa.c "$0" <(echo "${CFLAGS[*]}"))"
if [ "$(cat "$obj/quickjs.stamp" 2>/dev/null)" != "$qstamp" ]; then
  echo "guest: compiling QuickJS (quickjs-ng from $(basename "$(dirname "$qjs")"))"
  patch_stack_check
  $CC "${CFLAGS[@]}" -c "$obj/quickjs.c" -o "$obj/quickjs.o" &
  for f in libregexp libunicode dtoa; do
    $CC "${CFLAGS[@]}" -c "$qjs/$f.c" -o "$obj/$f.o" &
  done
  wait
  echo "$qstamp" > "$obj/quickjs.stamp"
fi

gstamp="$(stamp_of "$here"/*.c "$here"/*.h "$here"/prelude.js "$0" "$obj/quickjs.stamp")"
if [ -f "$out/guest.wasm" ] && [ "$(cat "$out/guest.stamp" 2>/dev/null)" = "$gstamp" ]; then
  echo "guest: up to date"
  exit 0
fi

python3 - "$here/prelude.js" "$obj/prelude.h" <<'PY'
import json, sys
src = open(sys.argv[1], encoding="utf-8").read()
open(sys.argv[2], "w").write("#define WK_PRELUDE " + json.dumps(src) + "\n")
PY

echo "guest: compiling glue and linking"
$CC "${CFLAGS[@]}" -Wall -Wextra -Wno-unused-parameter -mexec-model=reactor \
  "$here"/glue.c "$here"/buf.c "$here"/caps.c "$obj"/{quickjs,libregexp,libunicode,dtoa}.o \
  -lwasi-emulated-signal -Wl,-z,stack-size=$STACK_BYTES -Wl,--strip-debug \
  -o "$obj/guest.raw.wasm"

bin="$root/node_modules/.bin"
echo "guest: pre-initializing with Wizer"
# The state imports (host.rs) do not exist under Wizer: a stub in which no key is committed.
cat > "$obj/wk-stub.wat" <<'WAT'
(module
  (func (export "state_get") (param i32 i32 i32 i32) (result i32) (i32.const -1))
  (func (export "state_keys") (param i32 i32) (result i32) (i32.const -1)))
WAT
"$bin/wizer" --init-func wizer-initialize --allow-wasi --wasm-bulk-memory true --preload "wk=$obj/wk-stub.wat" \
  -o "$obj/guest.wizer.wasm" "$obj/guest.raw.wasm"
echo "guest: optimizing with wasm-opt"
"$bin/wasm-opt" -O2 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
  --strip-debug --strip-producers "$obj/guest.wizer.wasm" -o "$out/guest.wasm"
echo "$gstamp" > "$out/guest.stamp"
ls -l "$out/guest.wasm"
