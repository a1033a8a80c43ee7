//! Loading guest.wasm: import/export checks, option checks, the `.cwasm` beside the guest.

mod common;

use std::fs;

use common::{fixture_wasm, fixture_wat, options};
use wasm_runtime::sandbox::{Sandbox, SandboxOptions};
use wasm_runtime::state::SharedState;

fn load(wasm: &[u8], opts: SandboxOptions) -> Result<Sandbox, wasm_runtime::error::HostError> {
    Sandbox::from_wasm(wasm, opts)
}

#[test]
fn unknown_imports_are_refused_by_name() {
    for (import, name) in [
        (
            r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
            "wasi_snapshot_preview1::path_open",
        ),
        (r#"(import "env" "socket" (func))"#, "env::socket"),
    ] {
        let wasm = wat::parse_str(fixture_wat(import)).unwrap();
        let err = load(&wasm, options()).err().expect("refused");
        assert_eq!(err.code(), "GUEST_LOAD_ERROR");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn missing_abi_exports_are_refused() {
    let wasm = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "wk_alloc") (param i32) (result i32) (i32.const 0)))"#).unwrap();
    let err = load(&wasm, options()).err().expect("refused");
    assert_eq!(err.code(), "GUEST_LOAD_ERROR");
    assert!(err.to_string().contains("wk_compile"), "{err}");
}

#[test]
fn invalid_modules_and_paths_are_load_errors() {
    assert_eq!(
        load(b"not wasm", options()).err().unwrap().code(),
        "GUEST_LOAD_ERROR"
    );
    let err = Sandbox::new(SandboxOptions::new("/nonexistent/guest.wasm"))
        .err()
        .unwrap();
    assert_eq!(err.code(), "GUEST_LOAD_ERROR");
    assert!(err.to_string().contains("/nonexistent/guest.wasm"));
}

#[test]
fn options_are_checked() {
    let mut o = options();
    o.memory_limit_bytes = 65_536; // fixture starts with 2 pages
    let err = load(&fixture_wasm(), o).err().unwrap();
    assert_eq!(err.code(), "INVALID_INPUT");
    assert!(err.to_string().contains("initial memory"), "{err}");

    let mut o = options();
    o.max_instances = 0;
    assert_eq!(
        load(&fixture_wasm(), o).err().unwrap().code(),
        "INVALID_INPUT"
    );
}

#[test]
fn the_compiled_guest_is_cached_beside_it_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guest.wasm");
    fs::write(&path, fixture_wasm()).unwrap();
    let mut o = options();
    o.guest_path = path.clone();

    let first = Sandbox::new(o.clone()).unwrap();
    assert!(!first.guest_from_cwasm());
    let cwasm: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    assert_eq!(cwasm.len(), 1, "{cwasm:?}");
    assert!(cwasm[0].starts_with(&format!("guest.{}", &first.guest_hash()[..16])));
    drop(first);

    let second = Sandbox::new(o.clone()).unwrap();
    assert!(second.guest_from_cwasm());
    assert_eq!(
        second
            .execute(
                b"E",
                common::context(&[], "", "", "").as_bytes(),
                &SharedState::default(),
                1_000
            )
            .unwrap()
            .output_json,
        common::context(&[], "", "", "")
    );
    drop(second);

    // A damaged .cwasm is ignored and replaced.
    fs::write(dir.path().join(&cwasm[0]), b"garbage").unwrap();
    let third = Sandbox::new(o.clone()).unwrap();
    assert!(!third.guest_from_cwasm());
    assert_eq!(
        third
            .execute(
                b"E",
                common::context(&[], "", "", "").as_bytes(),
                &SharedState::default(),
                1_000
            )
            .unwrap()
            .output_json,
        common::context(&[], "", "", "")
    );
    drop(third);
    assert!(Sandbox::new(o.clone()).unwrap().guest_from_cwasm());

    // A rebuilt guest gets its own .cwasm; the stale one is removed.
    fs::write(
        &path,
        wat::parse_str(fixture_wat(""))
            .map(|mut w| {
                w.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']); // custom section: new hash, same code
                w
            })
            .unwrap(),
    )
    .unwrap();
    let rebuilt = Sandbox::new(o).unwrap();
    assert!(!rebuilt.guest_from_cwasm());
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cwasm"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_ne!(names[0], cwasm[0]);
}
