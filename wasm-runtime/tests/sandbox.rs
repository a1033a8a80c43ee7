//! The runtime against the WAT fixture guest (tests/common): ABI round trips, traps and limits,
//! suspension, capacity, shutdown, guest loading.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{code, options, sandbox, sandbox_with};
use wasm_runtime::cache::source_key;
use wasm_runtime::error::HostError;
use wasm_runtime::guest::TrapKind;
use wasm_runtime::sandbox::{RawOutcome, Sandbox};
use wasm_runtime::state::SharedState;

/// The fixture's context: any valid one (the fixture only echoes it).
fn ctx() -> String {
    common::context(&["*"], "", r#"{"n":1}"#, "")
}
const RESULTS: &str = r#"{"results":[{"callId":1,"ok":true,"value":5}]}"#;
const NO_RESULTS: &str = r#"{"results":[]}"#;

fn run(sb: &Sandbox, op: char) -> RawOutcome {
    sb.execute(&code(op), ctx().as_bytes(), &SharedState::default(), 2_000)
        .expect("execute resolves")
}

#[test]
fn precompile_returns_bytecode_keyed_by_sha256_and_caches_it() {
    let sb = sandbox();
    let first = sb.precompile("E return 1").unwrap();
    assert_eq!(&first.bytecode[..], b"E return 1");
    assert_eq!(first.cache_key, source_key(b"E return 1"));
    assert_eq!(first.cache_key.len(), 64);
    assert!(!first.cache_hit);
    assert!(first.compile_time_us > 0.0);
    let second = sb.precompile("E return 1").unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.compile_time_us, 0.0);
    assert_eq!(&second.bytecode[..], b"E return 1");
    let st = sb.stats();
    assert_eq!(
        (st.cache.hits, st.cache.misses, st.cache.memory_entries),
        (1, 1, 1)
    );
}

#[test]
fn compile_error_carries_the_guest_fields() {
    let sb = sandbox();
    match sb.precompile("!oops") {
        Err(HostError::Compilation {
            message,
            line,
            column,
            stack,
        }) => {
            assert_eq!(
                (message.as_str(), line, column, stack),
                ("unexpected token", Some(1), Some(2), None)
            );
        }
        other => panic!("expected a compilation error, got {other:?}"),
    }
    assert_eq!(
        sb.stats().cache.memory_entries,
        0,
        "failed compilations are not cached"
    );
}

#[test]
fn a_wrapped_compile_error_is_flattened() {
    match sandbox().precompile("?oops") {
        Err(HostError::Compilation {
            message,
            line,
            column,
            ..
        }) => {
            assert_eq!(
                (message.as_str(), line, column),
                ("SyntaxError: bad", Some(3), Some(4))
            );
        }
        other => panic!("expected a compilation error, got {other:?}"),
    }
}

#[test]
fn oversized_source_is_invalid_input() {
    let mut o = options();
    o.max_source_bytes = 8;
    let sb = sandbox_with(o);
    let err = sb.precompile("E 123456789").unwrap_err();
    assert_eq!(err.code(), "INVALID_INPUT");
    assert!(sb.precompile("E 1234").is_ok());
}

#[test]
fn execute_passes_context_and_returns_output() {
    let sb = sandbox();
    let out = run(&sb, 'E');
    assert_eq!(out.output_json, ctx());
    assert!(!out.suspended && out.trap.is_none() && out.execution_id.is_none());
    assert!(out.fuel_consumed > 0);
    assert_eq!(out.memory_peak_bytes, 2 * 65536);
    assert!(!out.memory_limit_hit);
    assert_eq!(sb.stats().live, 0);
}

#[test]
fn bad_arguments_are_rejected_before_running() {
    let sb = sandbox();
    assert_eq!(
        sb.execute(&code('E'), b"{not binary", &SharedState::default(), 100)
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    assert_eq!(
        sb.execute(
            &code('E'),
            &ctx().as_bytes()[..20],
            &SharedState::default(),
            100
        )
        .unwrap_err()
        .code(),
        "INVALID_INPUT"
    );
    assert_eq!(
        sb.execute(&code('E'), ctx().as_bytes(), &SharedState::default(), 0)
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    assert_eq!(
        sb.execute(&[], ctx().as_bytes(), &SharedState::default(), 100)
            .unwrap_err()
            .code(),
        "INVALID_INPUT"
    );
    assert_eq!(sb.stats().live, 0);
}

#[test]
fn endless_loop_times_out() {
    let sb = sandbox();
    let started = Instant::now();
    let out = sb
        .execute(&code('L'), ctx().as_bytes(), &SharedState::default(), 100)
        .unwrap();
    assert_eq!(out.trap, Some(TrapKind::Timeout));
    assert_eq!(out.output_json, "");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(out.duration_us >= 100_000.0);
    assert_eq!(sb.stats().live, 0, "the trapped instance is dropped");
    assert_eq!(
        run(&sb, 'E').output_json,
        ctx(),
        "the runtime keeps working after a trap"
    );
}

#[test]
fn refused_growth_then_guest_error_is_memory_limit() {
    let sb = sandbox();
    let out = run(&sb, 'M');
    assert_eq!(out.trap, Some(TrapKind::MemoryLimit));
    assert!(out.memory_limit_hit);
    assert_eq!(
        out.output_json,
        common::OOM_ERROR,
        "the guest's own error JSON is kept"
    );
    assert_eq!(
        out.memory_peak_bytes,
        1 << 20,
        "grew right up to the 1 MiB cap"
    );
}

#[test]
fn refused_growth_then_trap_is_memory_limit() {
    let out = run(&sandbox(), 'G');
    assert_eq!(out.trap, Some(TrapKind::MemoryLimit));
    assert_eq!(out.output_json, "");
}

#[test]
fn recovered_refusal_is_flagged_but_not_a_trap() {
    let out = run(&sandbox(), 'O');
    assert_eq!(out.trap, None);
    assert!(out.memory_limit_hit);
    assert_eq!(out.output_json, common::OK);
}

#[test]
fn status_2_is_memory_limit() {
    let out = run(&sandbox(), 'X');
    assert_eq!(out.trap, Some(TrapKind::MemoryLimit));
    assert_eq!(out.output_json, "");
}

#[test]
fn unbounded_recursion_is_stack_overflow() {
    let out = run(&sandbox(), 'R');
    assert_eq!(out.trap, Some(TrapKind::StackOverflow));
}

#[test]
fn fuel_is_counted_and_limited() {
    let unlimited = run(&sandbox(), 'B');
    assert_eq!(unlimited.trap, None);
    assert!(
        unlimited.fuel_consumed > 1_000_000,
        "fuel {}",
        unlimited.fuel_consumed
    );

    let mut o = options();
    o.fuel_limit = 100_000;
    let out = run(&sandbox_with(o), 'B');
    assert_eq!(out.trap, Some(TrapKind::FuelExhausted));
    assert_eq!(out.fuel_consumed, 100_000);
}

#[test]
fn guest_abi_violations_and_exits_are_traps_with_messages() {
    let sb = sandbox();
    let oob = run(&sb, 'F');
    assert_eq!(oob.trap, Some(TrapKind::Trap));
    assert!(oob.trap_message.unwrap().contains("outside its memory"));

    let console = run(&sb, 'W');
    assert_eq!(console.trap, Some(TrapKind::Trap));
    assert!(
        console.trap_message.unwrap().contains("boom from guest"),
        "stderr is quoted in the message"
    );

    let exit = run(&sb, 'P');
    assert_eq!(exit.trap, Some(TrapKind::Trap));
    assert!(exit.trap_message.unwrap().contains("proc_exit(3)"));
}

#[test]
fn clock_and_random_work() {
    assert_eq!(run(&sandbox(), 'C').output_json, common::OK);
}

#[test]
fn suspend_then_resume_once() {
    let sb = sandbox();
    let out = run(&sb, 'S');
    assert!(out.suspended);
    assert_eq!(out.output_json, common::SUSPENDED);
    let id = out.execution_id.expect("suspended executions have an id");
    assert!(id.starts_with("ex_") && id.len() == 35);
    let st = sb.stats();
    assert_eq!((st.live, st.suspended), (1, 1));

    let done = sb.resume(&id, RESULTS, 1_000).unwrap();
    assert!(!done.suspended);
    assert_eq!(done.output_json, RESULTS);
    let st = sb.stats();
    assert_eq!((st.live, st.suspended), (0, 0));

    let again = sb.resume(&id, RESULTS, 1_000).unwrap_err();
    assert_eq!(again.code(), "UNKNOWN_EXECUTION");
}

#[test]
fn invalid_results_leave_the_execution_suspended() {
    let sb = sandbox();
    let id = run(&sb, 'S').execution_id.unwrap();
    for bad in [
        "{}",
        "[",
        "[]",
        r#"{"results":{}}"#,
        r#"{"results":[],"state":[]}"#,
        r#"{"results":[],"state":{"n":2}}"#,
    ] {
        assert_eq!(
            sb.resume(&id, bad, 1_000).unwrap_err().code(),
            "INVALID_INPUT",
            "{bad}"
        );
    }
    assert_eq!(
        sb.resume(&id, RESULTS, 0).unwrap_err().code(),
        "INVALID_INPUT"
    );
    assert_eq!(sb.stats().suspended, 1);
    assert_eq!(sb.resume(&id, RESULTS, 1_000).unwrap().output_json, RESULTS);
}

#[test]
fn each_suspension_gets_a_new_id() {
    let sb = sandbox();
    let first = run(&sb, 'T').execution_id.unwrap();
    let second = sb.resume(&first, NO_RESULTS, 1_000).unwrap();
    assert!(second.suspended);
    let second_id = second.execution_id.unwrap();
    assert_ne!(first, second_id);
    assert_eq!(
        sb.resume(&first, NO_RESULTS, 1_000).unwrap_err().code(),
        "UNKNOWN_EXECUTION"
    );
    assert_eq!(
        sb.resume(&second_id, RESULTS, 1_000).unwrap().output_json,
        RESULTS
    );
}

#[test]
fn resume_has_its_own_timeout() {
    let sb = sandbox();
    let id = run(&sb, 'Q').execution_id.unwrap();
    let out = sb.resume(&id, NO_RESULTS, 50).unwrap();
    assert_eq!(out.trap, Some(TrapKind::Timeout));
    assert_eq!(sb.stats().live, 0);
}

#[test]
fn cancel_frees_a_suspended_execution() {
    let sb = sandbox();
    let id = run(&sb, 'S').execution_id.unwrap();
    assert!(sb.cancel(&id));
    assert!(!sb.cancel(&id));
    assert!(!sb.cancel("ex_nope"));
    assert_eq!(sb.stats().live, 0);
    assert_eq!(
        sb.resume(&id, NO_RESULTS, 100).unwrap_err().code(),
        "UNKNOWN_EXECUTION"
    );
}

#[test]
fn max_instances_counts_suspended_executions() {
    let mut o = options();
    o.max_instances = 1;
    let sb = sandbox_with(o);
    let id = run(&sb, 'S').execution_id.unwrap();
    assert_eq!(
        sb.execute(&code('E'), ctx().as_bytes(), &SharedState::default(), 100)
            .unwrap_err()
            .code(),
        "CAPACITY_EXCEEDED"
    );
    assert!(
        sb.precompile("E compile still works").is_ok(),
        "compilations have their own slots"
    );
    sb.cancel(&id);
    assert_eq!(run(&sb, 'E').output_json, ctx());
}

#[test]
fn concurrent_executions_each_get_a_fresh_instance() {
    let mut o = options();
    o.max_instances = 8;
    let sb = Arc::new(sandbox_with(o));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let sb = Arc::clone(&sb);
            thread::spawn(move || {
                let ctx = common::context(&["*"], "", &format!(r#"{{"i":{i}}}"#), "");
                let out = sb
                    .execute(&code('E'), ctx.as_bytes(), &SharedState::default(), 2_000)
                    .unwrap();
                assert_eq!(out.output_json, ctx);
                assert_eq!(
                    out.memory_peak_bytes,
                    2 * 65536,
                    "no state from another execution"
                );
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(sb.stats().live, 0);
}

#[test]
fn shutdown_drops_suspended_stops_running_and_refuses_new_calls() {
    let sb = Arc::new(sandbox());
    let id = run(&sb, 'S').execution_id.unwrap();
    let spinner = {
        let sb = Arc::clone(&sb);
        thread::spawn(move || {
            sb.execute(
                &code('L'),
                ctx().as_bytes(),
                &SharedState::default(),
                60_000,
            )
        })
    };
    while sb.stats().live < 2 {
        thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    sb.shutdown();
    let spun = spinner.join().unwrap();
    assert_eq!(spun.unwrap_err().code(), "SHUTDOWN");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the running guest stopped promptly"
    );
    let st = sb.stats();
    assert_eq!((st.live, st.suspended), (0, 0));
    assert_eq!(
        sb.resume(&id, NO_RESULTS, 100).unwrap_err().code(),
        "SHUTDOWN"
    );
    assert_eq!(
        sb.execute(&code('E'), ctx().as_bytes(), &SharedState::default(), 100)
            .unwrap_err()
            .code(),
        "SHUTDOWN"
    );
    assert_eq!(sb.precompile("E").unwrap_err().code(), "SHUTDOWN");
    sb.shutdown();
}
