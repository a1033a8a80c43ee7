//! A tiny guest in WAT that implements the ABI of ABI.md, for tests that need no QuickJS.
//!
//! `wk_compile(src)`: source starting with `!` → status 1 + [`COMPILE_ERROR`], with `?` → status
//! 1 + [`WRAPPED_COMPILE_ERROR`]; otherwise the
//! "bytecode" is the source itself. `wk_execute(code, ctx)` dispatches on the first byte of code:
//!
//! | op | behaviour |
//! |----|-----------|
//! | `E` | output = context, status 0 |
//! | `L` | loops forever (TIMEOUT) |
//! | `M` | grows memory until refused, then outputs [`OOM_ERROR`] (status 0, guest error) |
//! | `G` | grows memory until refused, then `unreachable` |
//! | `O` | one refused grow, then outputs [`OK`] (recovered) |
//! | `R` | unbounded recursion (STACK_OVERFLOW) |
//! | `B` | burns ~3 million instructions, then outputs [`OK`] |
//! | `S` | suspends with [`SUSPENDED`]; resume echoes the results JSON, status 0 |
//! | `T` | suspends; the first resume suspends again, the second echoes |
//! | `Q` | suspends; resume loops forever |
//! | `X` | returns status 2 |
//! | `F` | output pointer outside memory |
//! | `W` | writes "boom from guest" to stderr, then `unreachable` |
//! | `C` | calls clock_time_get + random_get; outputs [`OK`] if both worked, else [`BAD`] |
//! | `P` | proc_exit(3) |
//! | other | outputs [`OK`] |

#![allow(dead_code)]

use std::path::PathBuf;

use wasm_runtime::sandbox::{Sandbox, SandboxOptions};

pub const COMPILE_ERROR: &str =
    r#"{"code":"COMPILATION_ERROR","message":"unexpected token","line":1,"column":2}"#;
/// What the real guest emits: the error wrapped in an `error` member.
pub const WRAPPED_COMPILE_ERROR: &str =
    r#"{"error":{"code":"COMPILATION_ERROR","message":"SyntaxError: bad","line":3,"column":4}}"#;
pub const OOM_ERROR: &str =
    r#"{"status":"error","error":{"code":"EXECUTION_ERROR","message":"out of memory"}}"#;
pub const OK: &str = r#"{"status":"success","returnValue":1}"#;
pub const BAD: &str =
    r#"{"status":"error","error":{"code":"EXECUTION_ERROR","message":"host call failed"}}"#;
pub const SUSPENDED: &str = r#"{"status":"suspended","pendingCalls":[{"callId":1,"extension":"http","method":"get","args":[]}]}"#;
const STDERR_TEXT: &str = "boom from guest\n";

/// Static strings laid out in the data segment: (offset, text).
fn layout() -> Vec<(u32, &'static str)> {
    vec![
        (16, COMPILE_ERROR),
        (256, OOM_ERROR),
        (512, OK),
        (640, BAD),
        (768, SUSPENDED),
        (1024, STDERR_TEXT),
        (1100, WRAPPED_COMPILE_ERROR),
    ]
}

fn wat_string(s: &str) -> String {
    s.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// WAT text of the fixture guest. `extra_import` is spliced into the imports (to test refusal).
pub fn fixture_wat(extra_import: &str) -> String {
    let l = layout();
    let data: String = l
        .iter()
        .map(|(o, s)| format!("  (data (i32.const {o}) \"{}\")\n", wat_string(s)))
        .collect();
    let out = |i: usize| {
        format!(
            "(global.set $optr (i32.const {})) (global.set $olen (i32.const {}))",
            l[i].0,
            l[i].1.len()
        )
    };
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  {extra_import}
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $optr (mut i32) (i32.const 0))
  (global $olen (mut i32) (i32.const 0))
  (global $op (mut i32) (i32.const 0))
  (global $resumes (mut i32) (i32.const 0))
{data}
  (func (export "wk_alloc") (param $n i32) (result i32)
    (local $p i32) (local $need i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.set $need (i32.sub (i32.shr_u (i32.add (global.get $heap) (i32.const 65535)) (i32.const 16)) (memory.size)))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (local.get $need)) (i32.const -1)) (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "wk_output_ptr") (result i32) (global.get $optr))
  (func (export "wk_output_len") (result i32) (global.get $olen))
  (func (export "wk_compile") (param $s i32) (param $n i32) (result i32)
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 33))
      (then {err} (return (i32.const 1))))
    (if (i32.eq (i32.load8_u (local.get $s)) (i32.const 63))
      (then {wrapped} (return (i32.const 1))))
    (global.set $optr (local.get $s)) (global.set $olen (local.get $n))
    (i32.const 0))
  (func $grow_until_refused
    (block $done (loop $l
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $l))))
  (func $recurse (param $d i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $d) (i32.const 1))) (local.get $d)))
  (func (export "wk_execute") (param $c i32) (param $cn i32) (param $x i32) (param $xn i32) (result i32)
    (local $i i32)
    (global.set $op (i32.load8_u (local.get $c)))
    (if (i32.eq (global.get $op) (i32.const 69)) (then
      (global.set $optr (local.get $x)) (global.set $olen (local.get $xn)) (return (i32.const 0))))
    (if (i32.eq (global.get $op) (i32.const 76)) (then (loop $spin (br $spin))))
    (if (i32.eq (global.get $op) (i32.const 77)) (then (call $grow_until_refused) {oom} (return (i32.const 0))))
    (if (i32.eq (global.get $op) (i32.const 71)) (then (call $grow_until_refused) (unreachable)))
    (if (i32.eq (global.get $op) (i32.const 79)) (then (drop (memory.grow (i32.const 60000))) {ok} (return (i32.const 0))))
    (if (i32.eq (global.get $op) (i32.const 82)) (then (return (call $recurse (i32.const 0)))))
    (if (i32.eq (global.get $op) (i32.const 66)) (then
      (block $b (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $b (i32.ge_u (local.get $i) (i32.const 1000000)))
        (br $l)))
      {ok} (return (i32.const 0))))
    (if (i32.or (i32.or (i32.eq (global.get $op) (i32.const 83)) (i32.eq (global.get $op) (i32.const 84)))
                (i32.eq (global.get $op) (i32.const 81)))
      (then {susp} (return (i32.const 1))))
    (if (i32.eq (global.get $op) (i32.const 88)) (then (return (i32.const 2))))
    (if (i32.eq (global.get $op) (i32.const 70)) (then
      (global.set $optr (i32.const 0x7fffff00)) (global.set $olen (i32.const 1000)) (return (i32.const 0))))
    (if (i32.eq (global.get $op) (i32.const 87)) (then
      (i32.store (i32.const 2000) (i32.const {stderr_off}))
      (i32.store (i32.const 2004) (i32.const {stderr_len}))
      (drop (call $fd_write (i32.const 2) (i32.const 2000) (i32.const 1) (i32.const 2008)))
      (unreachable)))
    (if (i32.eq (global.get $op) (i32.const 67)) (then
      (if (i32.and
            (i32.and (i32.eqz (call $clock (i32.const 0) (i64.const 0) (i32.const 2048)))
                     (i64.gt_u (i64.load (i32.const 2048)) (i64.const 1600000000000000000)))
            (i32.eqz (call $random (i32.const 2056) (i32.const 8))))
        (then {ok}) (else {bad}))
      (return (i32.const 0))))
    (if (i32.eq (global.get $op) (i32.const 80)) (then (call $exit (i32.const 3)) (unreachable)))
    {ok}
    (i32.const 0))
  (func (export "wk_resume") (param $r i32) (param $n i32) (result i32)
    (global.set $resumes (i32.add (global.get $resumes) (i32.const 1)))
    (if (i32.eq (global.get $op) (i32.const 81)) (then (loop $spin (br $spin))))
    (if (i32.and (i32.eq (global.get $op) (i32.const 84)) (i32.eq (global.get $resumes) (i32.const 1)))
      (then {susp} (return (i32.const 1))))
    (global.set $optr (local.get $r)) (global.set $olen (local.get $n))
    (i32.const 0))
)"#,
        err = out(0),
        wrapped = out(6),
        oom = out(1),
        ok = out(2),
        bad = out(3),
        susp = out(4),
        stderr_off = l[5].0,
        stderr_len = l[5].1.len(),
    )
}

/// The fixture as wasm bytes.
pub fn fixture_wasm() -> Vec<u8> {
    wat::parse_str(fixture_wat("")).expect("fixture WAT parses")
}

/// Test options: small pool, 1 MiB memory cap.
pub fn options() -> SandboxOptions {
    let mut o = SandboxOptions::new(PathBuf::from("unused.wasm"));
    o.max_instances = 4;
    o.memory_limit_bytes = 1 << 20;
    o
}

/// A sandbox running the fixture with `opts`.
pub fn sandbox_with(opts: SandboxOptions) -> Sandbox {
    Sandbox::from_wasm(&fixture_wasm(), opts).expect("fixture loads")
}

/// A sandbox running the fixture with [`options`].
pub fn sandbox() -> Sandbox {
    sandbox_with(options())
}

/// "Bytecode" for an op of the fixture.
pub fn code(op: char) -> Vec<u8> {
    vec![op as u8]
}

/// A binary execution context (ABI.md "Context"): limits 100, seed 7, the given capability
/// tokens and extensions / args / scope JSON sections ("" = absent). As text: the fixture echoes
/// it as its output, and with small numbers every byte is ASCII.
pub fn context(caps: &[&str], extensions: &str, args: &str, scope: &str) -> String {
    let mut b = b"WKC1".to_vec();
    for n in [100u32, 100, 100, 100, 7, 0, caps.len() as u32] {
        b.extend_from_slice(&n.to_le_bytes());
    }
    for s in caps.iter().copied().chain([extensions, args, scope]) {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }
    String::from_utf8(b).expect("an ASCII context")
}
