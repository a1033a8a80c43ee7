//! End to end against the real QuickJS guest (build/guest.wasm, built by guest/build.sh).
//! Skipped, with a note on stderr, when the guest has not been built.

use std::path::Path;

use serde_json::{Value, json};
use wasm_runtime::error::HostError;
use wasm_runtime::sandbox::{Sandbox, SandboxOptions};
use wasm_runtime::state::SharedState;

fn context() -> Vec<u8> {
    let mut b = b"WKC1".to_vec();
    for n in [100u32, 100, 100, 100, 7, 0, 1] {
        b.extend_from_slice(&n.to_le_bytes());
    }
    for s in ["*", r#"{"http":["get"]}"#, r#"{"by":2}"#, ""] {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
        b.push(0);
    }
    b
}

#[test]
fn the_real_guest_compiles_runs_suspends_and_hits_limits() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/guest.wasm");
    let Ok(wasm) = std::fs::read(&path) else {
        eprintln!(
            "skipped: {} not built (bash wasm-runtime/guest/build.sh)",
            path.display()
        );
        return;
    };
    let mut opts = SandboxOptions::new(&path);
    opts.max_instances = 4;
    opts.memory_limit_bytes = 16 << 20;
    let sb = Sandbox::from_wasm(&wasm, opts).expect("guest loads");
    let state = SharedState::default();
    let set = |k: &str, v: &str| {
        state
            .apply(vec![(k.to_owned(), Some(v.to_owned()))])
            .unwrap()
    };
    set("count", "1");
    set("big", &format!("\"{}\"", "x".repeat(1 << 20)));

    // Run: state write, event, return value.
    let c = sb
        .precompile(
            "$state.count = $state.count + $args.by; $emit('changed', {}); return $state.count",
        )
        .unwrap();
    let out = sb.execute(&c.bytecode, &context(), &state, 2_000).unwrap();
    assert_eq!(out.trap, None);
    let v: Value = serde_json::from_str(&out.output_json).unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["returnValue"], 3);
    assert_eq!(
        v["stateMutations"][0],
        json!({ "key": "count", "value": 3, "operation": "set" })
    );
    assert!(out.fuel_consumed > 0 && out.memory_peak_bytes > 0);

    // Enumeration sees every key; `in` does not need the value.
    let c = sb
        .precompile("return [Object.keys($state), 'big' in $state, 'nope' in $state]")
        .unwrap();
    let v: Value = serde_json::from_str(
        &sb.execute(&c.bytecode, &context(), &state, 2_000)
            .unwrap()
            .output_json,
    )
    .unwrap();
    assert_eq!(v["returnValue"], json!([["count", "big"], true, false]));

    // Compile error: flat JSON with the position in the handler's own source.
    match sb.precompile("const a = 1\nconst b = ;") {
        Err(HostError::Compilation(msg)) => {
            let e: Value = serde_json::from_str(&msg).unwrap();
            assert_eq!(
                (e["code"].as_str(), e["line"].as_u64()),
                (Some("COMPILATION_ERROR"), Some(2))
            );
        }
        other => panic!("expected COMPILATION_ERROR, got {other:?}"),
    }

    // Suspend on an extension call; a commit meanwhile is what the resumed segment reads.
    let c = sb
        .precompile("const before = $state.count; const r = await $ext.http.get('u'); return [r, before, $state.count]")
        .unwrap();
    let first = sb.execute(&c.bytecode, &context(), &state, 2_000).unwrap();
    assert!(first.suspended, "{first:?}");
    let pending: Value = serde_json::from_str(&first.output_json).unwrap();
    assert_eq!(pending["pendingCalls"][0]["method"], "get");
    set("count", "9");
    let resume = json!({ "results": [{ "callId": pending["pendingCalls"][0]["callId"], "ok": true, "value": 42 }] });
    let done = sb
        .resume(
            first.execution_id.as_deref().unwrap(),
            &resume.to_string(),
            2_000,
        )
        .unwrap();
    let v: Value = serde_json::from_str(&done.output_json).unwrap();
    assert_eq!(v["returnValue"], json!([42, 1, 9]));

    // Limits.
    let c = sb.precompile("new Array(1e9).fill(1)").unwrap();
    let oom = sb.execute(&c.bytecode, &context(), &state, 10_000).unwrap();
    assert_eq!(oom.trap, Some("MEMORY_LIMIT"));
    assert!(oom.memory_limit_hit && oom.memory_peak_bytes <= 16 << 20);
    let c = sb.precompile("while (true) {}").unwrap();
    assert_eq!(
        sb.execute(&c.bytecode, &context(), &state, 100)
            .unwrap()
            .trap,
        Some("TIMEOUT")
    );
    assert_eq!(sb.stats().live, 0);
}
