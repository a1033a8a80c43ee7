//! The runtime proper, in plain Rust (the N-API layer in lib.rs only converts and schedules):
//! one engine + guest, the bytecode cache, the table of suspended executions, instance slots.
//! Every method blocks its thread; lib.rs runs them on worker threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::cache::{BytecodeCache, CacheStats, source_key};
use crate::engine::{self, EngineSettings, EpochTicker, LoadedGuest, hex, lock};
use crate::error::{HostError, HostResult};
use crate::guest::{GuestInstance, GuestTrap, InstanceLimits, TrapKind};
use crate::limits::{Deadline, UNLIMITED_FUEL, fuel_left};
use crate::reaper::{REAP_BACKLOG, Reaper};
use crate::state::SharedState;

/// Pool slots reserved for `precompile` on top of `max_instances`; more concurrent compilations wait.
pub const COMPILE_SLOTS: u32 = 4;
/// Wall-clock budget of one compilation.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default native stack for wasm frames, bytes.
pub const DEFAULT_MAX_WASM_STACK: usize = 1 << 20;

/// Options of a runtime. Sizes in bytes.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Path of guest.wasm (its `.cwasm` is kept beside it).
    pub guest_path: PathBuf,
    /// Executions live at once (running + suspended). ≥ 1.
    pub max_instances: u32,
    /// Linear memory cap per instance, bytes (≥ the guest's initial memory, ≤ 4 GiB).
    pub memory_limit_bytes: u64,
    /// Fuel per execution (all its segments); 0 = unlimited.
    pub fuel_limit: u64,
    /// Largest source `precompile` accepts, bytes.
    pub max_source_bytes: usize,
    /// Entries of the in-memory bytecode LRU (0 disables it).
    pub memory_cache_entries: usize,
    /// Folder of the disk bytecode cache; None disables it.
    pub cache_dir: Option<PathBuf>,
    /// Bound of the disk cache, bytes.
    pub max_cache_size_bytes: u64,
    /// Native stack for wasm frames, bytes.
    pub max_wasm_stack_bytes: usize,
}

impl SandboxOptions {
    /// Defaults of types.ts (64 instances, 64 MiB, no fuel limit, 1 MiB sources, 512 entries,
    /// 64 MiB disk) for the guest at `guest_path`.
    pub fn new(guest_path: impl Into<PathBuf>) -> Self {
        SandboxOptions {
            guest_path: guest_path.into(),
            max_instances: 64,
            memory_limit_bytes: 64 << 20,
            fuel_limit: 0,
            max_source_bytes: 1 << 20,
            memory_cache_entries: 512,
            cache_dir: None,
            max_cache_size_bytes: 64 << 20,
            max_wasm_stack_bytes: DEFAULT_MAX_WASM_STACK,
        }
    }

    fn validate(&self) -> HostResult<()> {
        if self.max_instances == 0 || self.max_instances > 10_000 {
            return Err(HostError::invalid(
                "maxInstances must be between 1 and 10000",
            ));
        }
        if self.memory_limit_bytes < 65_536 || self.memory_limit_bytes > 1 << 32 {
            return Err(HostError::invalid(
                "memoryLimitBytes must be between 64 KiB and 4 GiB",
            ));
        }
        if self.max_wasm_stack_bytes < 64 << 10 || self.max_wasm_stack_bytes > 1 << 30 {
            return Err(HostError::invalid(
                "maxWasmStackBytes must be between 64 KiB and 1 GiB",
            ));
        }
        Ok(())
    }
}

/// What `precompile` returns.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// QuickJS bytecode of the handler.
    pub bytecode: Arc<[u8]>,
    /// SHA-256 hex of the source.
    pub cache_key: String,
    /// Wall time of instantiation + `wk_compile`, µs (0 on a cache hit).
    pub compile_time_us: f64,
    /// Whether the bytecode came from the cache.
    pub cache_hit: bool,
}

/// What `execute` / `resume` return: the guest's output plus the host's own observations.
#[derive(Debug, Clone, Default)]
pub struct RawOutcome {
    /// The guest's output JSON ("" when it produced none: trap or status 2).
    pub output_json: String,
    /// True when the guest suspended; `execution_id` then names it.
    pub suspended: bool,
    /// Fresh id of this suspension (each suspension gets a new one).
    pub execution_id: Option<String>,
    /// Why the segment ended abnormally, or MEMORY_LIMIT when growth was refused and the guest
    /// then reported an error.
    pub trap: Option<TrapKind>,
    /// Details of `trap`.
    pub trap_message: Option<String>,
    /// Wall time of the segment (instantiation included for `execute`), µs.
    pub duration_us: f64,
    /// Fuel (≈ wasm instructions) burnt by this segment.
    pub fuel_consumed: u64,
    /// Peak linear memory of the instance so far, bytes.
    pub memory_peak_bytes: u64,
    /// True when some `memory.grow` past the limit was refused during the execution (even if the
    /// guest recovered).
    pub memory_limit_hit: bool,
}

/// Counters of `stats()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxStats {
    /// Executions holding an instance (running + suspended).
    pub live: u32,
    /// Suspended executions.
    pub suspended: u32,
    /// Compilations running.
    pub compiling: u32,
    /// Bytecode cache counters.
    pub cache: CacheStats,
}

/// A suspended execution. Field order matters: the instance (and its pool slot) is freed
/// before the execution slot, so a freed slot always has a free pool slot behind it.
struct Suspended {
    instance: GuestInstance,
    _slot: SlotGuard,
}

/// One taken execution slot; dropping it frees the slot.
struct SlotGuard(Arc<AtomicU32>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A runtime: see the module docs.
pub struct Sandbox {
    engine: Engine,
    guest: LoadedGuest,
    ticker: EpochTicker,
    cache: BytecodeCache,
    opts: SandboxOptions,
    suspended: Mutex<HashMap<String, Suspended>>,
    live: Arc<AtomicU32>,
    compiling: Mutex<u32>,
    compile_free: Condvar,
    shutdown: Arc<AtomicBool>,
    reaper: Reaper,
}

impl Sandbox {
    /// Builds the engine, loads guest.wasm (from its `.cwasm` when possible), opens the cache.
    /// Errors: INVALID_INPUT (bad options, cache folder unusable), GUEST_LOAD_ERROR.
    pub fn new(opts: SandboxOptions) -> HostResult<Self> {
        opts.validate()?;
        let engine = engine::build_engine(&engine_settings(&opts))?;
        let guest = engine::load_guest(&engine, &opts.guest_path, opts.memory_limit_bytes)?;
        Self::assemble(engine, guest, opts)
    }

    /// Same as [`Sandbox::new`] with the guest given as wasm bytes (no `.cwasm`; `guest_path`
    /// is ignored). Used by tests.
    pub fn from_wasm(wasm: &[u8], opts: SandboxOptions) -> HostResult<Self> {
        opts.validate()?;
        let engine = engine::build_engine(&engine_settings(&opts))?;
        let guest = engine::load_guest_bytes(&engine, wasm, opts.memory_limit_bytes)?;
        Self::assemble(engine, guest, opts)
    }

    fn assemble(engine: Engine, guest: LoadedGuest, opts: SandboxOptions) -> HostResult<Self> {
        let cache = BytecodeCache::new(
            opts.memory_cache_entries,
            opts.cache_dir.as_deref(),
            opts.max_cache_size_bytes,
            guest.guest_hash,
        )?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Sandbox {
            engine,
            guest,
            ticker,
            cache,
            opts,
            suspended: Mutex::new(HashMap::new()),
            live: Arc::new(AtomicU32::new(0)),
            compiling: Mutex::new(0),
            compile_free: Condvar::new(),
            shutdown: Arc::new(AtomicBool::new(false)),
            reaper: Reaper::start()?,
        })
    }

    /// Whether guest.wasm was loaded from its serialized `.cwasm` (no Cranelift at this start).
    pub fn guest_from_cwasm(&self) -> bool {
        self.guest.from_cwasm
    }

    /// SHA-256 hex of guest.wasm.
    pub fn guest_hash(&self) -> String {
        hex(&self.guest.guest_hash)
    }

    /// Compiles a handler source to bytecode, through the cache.
    /// Errors: INVALID_INPUT (source > maxSourceBytes), COMPILATION_ERROR (message = error JSON
    /// `{code,message,line?,column?}`), CAPACITY_EXCEEDED, SHUTDOWN, INTERNAL_ERROR.
    pub fn precompile(&self, source: &str) -> HostResult<Compiled> {
        self.check_open()?;
        if source.len() > self.opts.max_source_bytes {
            return Err(HostError::invalid(format!(
                "handler source is {} bytes; the limit is {} bytes",
                source.len(),
                self.opts.max_source_bytes
            )));
        }
        let cache_key = source_key(source.as_bytes());
        if let Some(bytecode) = self.cache.get(&cache_key) {
            return Ok(Compiled {
                bytecode,
                cache_key,
                compile_time_us: 0.0,
                cache_hit: true,
            });
        }
        let started = Instant::now();
        let bytecode: Arc<[u8]> = self.compile_in_guest(source.as_bytes())?.into();
        let compile_time_us = started.elapsed().as_secs_f64() * 1e6;
        self.cache.put(&cache_key, &bytecode);
        Ok(Compiled {
            bytecode,
            cache_key,
            compile_time_us,
            cache_hit: false,
        })
    }

    fn compile_in_guest(&self, source: &[u8]) -> HostResult<Vec<u8>> {
        let _slot = self.take_compile_slot()?;
        let limits = InstanceLimits {
            memory_bytes: self.memory_bytes(),
            fuel: UNLIMITED_FUEL,
            deadline: self.deadline(COMPILE_TIMEOUT),
        };
        let mut inst =
            GuestInstance::instantiate(&self.engine, &self.guest, limits, SharedState::default())?;
        let result = {
            let _tick = self.ticker.enter();
            inst.compile(source)
                .and_then(|status| Ok((status, inst.output()?)))
        };
        match result {
            Ok((0, bytecode)) if !bytecode.is_empty() => Ok(bytecode),
            Ok((0, _)) => Err(HostError::internal("guest returned empty bytecode")),
            Ok((1, json)) => Err(flat_compile_error(&json)),
            Ok((status, _)) => Err(HostError::internal(format!(
                "wk_compile returned unknown status {status}"
            ))),
            Err(t) if t.kind == TrapKind::Shutdown => Err(HostError::Shutdown),
            Err(t) => Err(compile_trap_error(&t)),
        }
    }

    /// Runs bytecode with a binary context (ABI.md "Context") for at most `timeout_ms` ms. The
    /// handler reads `state` lazily, each segment as committed at its start (ABI.md "State").
    /// Errors: INVALID_INPUT (empty bytecode, context not of that layout, timeout 0), CAPACITY_EXCEEDED
    /// (maxInstances executions live), SHUTDOWN, INTERNAL_ERROR. Traps are outcomes, not errors.
    pub fn execute(
        &self,
        bytecode: &[u8],
        context: &[u8],
        state: &SharedState,
        timeout_ms: u32,
    ) -> HostResult<RawOutcome> {
        self.check_open()?;
        if bytecode.is_empty() {
            return Err(HostError::invalid("bytecode is empty"));
        }
        check_context(context)?;
        let timeout = timeout(timeout_ms)?;
        let slot = self.take_execution_slot()?;
        let started = Instant::now();
        let fuel = if self.opts.fuel_limit == 0 {
            UNLIMITED_FUEL
        } else {
            self.opts.fuel_limit
        };
        let limits = InstanceLimits {
            memory_bytes: self.memory_bytes(),
            fuel,
            deadline: self.deadline(timeout),
        };
        let mut inst =
            GuestInstance::instantiate(&self.engine, &self.guest, limits, state.clone())?;
        let call = {
            let _tick = self.ticker.enter();
            inst.execute(bytecode, context)
        };
        self.finish_segment(inst, slot, call, started, fuel)
    }

    /// [`Sandbox::execute`] limited to `slice_ms` of running time when that is shorter than
    /// `timeout_ms`. `None` when the slice ran out before the handler finished: the instance is
    /// gone and nothing was recorded anywhere, so running it again from the start is safe.
    pub fn execute_slice(
        &self,
        bytecode: &[u8],
        context: &[u8],
        state: &SharedState,
        timeout_ms: u32,
        slice_ms: u32,
    ) -> HostResult<Option<RawOutcome>> {
        let sliced = slice_ms > 0 && slice_ms < timeout_ms;
        let timeout = if sliced { slice_ms } else { timeout_ms };
        let out = self.execute(bytecode, context, state, timeout)?;
        let expired = sliced && out.trap == Some(TrapKind::Timeout);
        Ok((!expired).then_some(out))
    }

    /// Settles the pending calls of a suspended execution with the resume JSON of ABI.md
    /// (`{"results":[...]}`) and runs on for at most `timeout_ms` ms, reading the execution's
    /// state as committed now. Consumes `execution_id` (a new suspension gets a new id).
    /// Errors: INVALID_INPUT (input not of that shape, timeout 0; the execution stays
    /// suspended), UNKNOWN_EXECUTION, SHUTDOWN.
    pub fn resume(
        &self,
        execution_id: &str,
        resume_json: &str,
        timeout_ms: u32,
    ) -> HostResult<RawOutcome> {
        self.check_open()?;
        check_resume_json(resume_json)?;
        let timeout = timeout(timeout_ms)?;
        let entry = lock(&self.suspended)
            .remove(execution_id)
            .ok_or_else(|| HostError::UnknownExecution(execution_id.to_owned()))?;
        let Suspended {
            mut instance,
            _slot: slot,
        } = entry;
        let started = Instant::now();
        let fuel_before = fuel_left(instance.store());
        instance.set_deadline(self.deadline(timeout));
        let call = {
            let _tick = self.ticker.enter();
            instance.resume(resume_json.as_bytes())
        };
        self.finish_segment(instance, slot, call, started, fuel_before)
    }

    /// Drops a suspended execution. False when `execution_id` is not suspended.
    pub fn cancel(&self, execution_id: &str) -> bool {
        let removed = lock(&self.suspended).remove(execution_id);
        removed.is_some()
    }

    /// Current counters.
    pub fn stats(&self) -> SandboxStats {
        SandboxStats {
            live: self.live.load(Ordering::Acquire),
            suspended: lock(&self.suspended).len() as u32,
            compiling: *lock(&self.compiling),
            cache: self.cache.stats(),
        }
    }

    /// Drops every suspended execution, stops running guests at their next epoch tick (their
    /// calls fail with SHUTDOWN), stops the epoch thread once they are gone; later calls fail
    /// with SHUTDOWN. Idempotent.
    pub fn shutdown(&self) {
        let drained: Vec<Suspended> = {
            let mut map = lock(&self.suspended);
            self.shutdown.store(true, Ordering::SeqCst);
            map.drain().map(|(_, s)| s).collect()
        };
        drop(drained);
        self.ticker.stop();
        let _guard = lock(&self.compiling);
        self.compile_free.notify_all();
    }

    /// Reads the output of a finished call and builds the outcome; keeps the instance when the
    /// guest suspended, drops it otherwise.
    fn finish_segment(
        &self,
        mut inst: GuestInstance,
        slot: SlotGuard,
        call: Result<i32, GuestTrap>,
        started: Instant,
        fuel_before: u64,
    ) -> HostResult<RawOutcome> {
        let status_and_output = call.and_then(|status| Ok((status, inst.output()?)));
        let state = inst.store().data();
        let mut out = RawOutcome {
            fuel_consumed: fuel_before.saturating_sub(fuel_left(inst.store())),
            memory_peak_bytes: state.limiter.peak_bytes as u64,
            memory_limit_hit: state.limiter.refused,
            ..RawOutcome::default()
        };
        match status_and_output {
            Err(t) if t.kind == TrapKind::Shutdown => return Err(HostError::Shutdown),
            Err(t) => set_trap(&mut out, t.kind, t.message),
            Ok((0, bytes)) => {
                out.output_json = String::from_utf8_lossy(&bytes).into_owned();
                if out.memory_limit_hit && output_is_error(&out.output_json) {
                    set_trap(
                        &mut out,
                        TrapKind::MemoryLimit,
                        "linear memory growth past memoryLimitBytes was refused".into(),
                    );
                }
            }
            Ok((1, bytes)) => {
                out.output_json = String::from_utf8_lossy(&bytes).into_owned();
                out.suspended = true;
                out.duration_us = started.elapsed().as_secs_f64() * 1e6;
                let id = self.park(inst, slot)?;
                out.execution_id = Some(id);
                return Ok(out);
            }
            Ok((2, _)) => set_trap(
                &mut out,
                TrapKind::MemoryLimit,
                "the guest ran out of memory building its result".into(),
            ),
            Ok((status, _)) => set_trap(
                &mut out,
                TrapKind::Trap,
                format!("guest returned unknown status {status}"),
            ),
        }
        out.duration_us = started.elapsed().as_secs_f64() * 1e6;
        self.reaper.reap(inst);
        drop(slot);
        Ok(out)
    }

    /// Stores a suspended instance under a fresh id (refused once shutdown started).
    fn park(&self, instance: GuestInstance, slot: SlotGuard) -> HostResult<String> {
        let id = new_execution_id()?;
        let mut map = lock(&self.suspended);
        if self.shutdown.load(Ordering::SeqCst) {
            return Err(HostError::Shutdown);
        }
        map.insert(
            id.clone(),
            Suspended {
                instance,
                _slot: slot,
            },
        );
        Ok(id)
    }

    fn check_open(&self) -> HostResult<()> {
        if self.shutdown.load(Ordering::SeqCst) {
            Err(HostError::Shutdown)
        } else {
            Ok(())
        }
    }

    /// The hard invariant behind the pool's sizing (`maxInstances` executions live), not a second
    /// admission gate: it never waits, and under the kernel it never refuses, because the
    /// executor's gate (plugins/executor/gate.ts) grants at most `maxInstances` live runs and
    /// counts one as ended only after this slot was dropped. It answers CAPACITY_EXCEEDED only to
    /// callers that use the runtime without that gate.
    fn take_execution_slot(&self) -> HostResult<SlotGuard> {
        let max = self.opts.max_instances;
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| {
                HostError::CapacityExceeded(format!(
                    "all {max} instances are live (running or suspended)"
                ))
            })?;
        Ok(SlotGuard(Arc::clone(&self.live)))
    }

    /// Waits (blocking this worker thread) for one of the [`COMPILE_SLOTS`].
    fn take_compile_slot(&self) -> HostResult<CompileSlot<'_>> {
        let mut n = lock(&self.compiling);
        loop {
            self.check_open()?;
            if *n < COMPILE_SLOTS {
                *n += 1;
                return Ok(CompileSlot(self));
            }
            n = self.compile_free.wait(n).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn memory_bytes(&self) -> usize {
        usize::try_from(self.opts.memory_limit_bytes).unwrap_or(usize::MAX)
    }

    fn deadline(&self, timeout: Duration) -> Deadline {
        Deadline::after(timeout, Arc::clone(&self.shutdown))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct CompileSlot<'a>(&'a Sandbox);

impl Drop for CompileSlot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.compiling) -= 1;
        self.0.compile_free.notify_one();
    }
}

fn engine_settings(o: &SandboxOptions) -> EngineSettings {
    EngineSettings {
        pool_instances: o.max_instances + COMPILE_SLOTS + REAP_BACKLOG + 1,
        memory_limit_bytes: o.memory_limit_bytes,
        max_wasm_stack_bytes: o.max_wasm_stack_bytes,
    }
}

fn set_trap(out: &mut RawOutcome, kind: TrapKind, message: String) {
    out.trap = Some(kind);
    out.trap_message = Some(message);
}

fn timeout(ms: u32) -> HostResult<Duration> {
    if ms == 0 {
        return Err(HostError::invalid("timeoutMs must be at least 1"));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// Magic of the binary context (ABI.md "Context").
pub const CONTEXT_MAGIC: &[u8; 4] = b"WKC1";
/// Bytes of the context's fixed part: magic, four limits, the seed (two u32).
const CONTEXT_FIXED: usize = 4 + 6 * 4;

/// Checks the layout of the binary context (ABI.md "Context"): magic, fixed fields, every
/// length-prefixed string in bounds and NUL-terminated, nothing after the last one. The JSON
/// sections are not parsed here: the wrapper built them with JSON.stringify, and the guest
/// reports a section it cannot parse as an INTERNAL_ERROR outcome.
fn check_context(bytes: &[u8]) -> HostResult<()> {
    let bad = |what: &str| {
        Err(HostError::invalid(format!(
            "context: {what} (ABI.md \"Context\")"
        )))
    };
    if bytes.len() < CONTEXT_FIXED + 4 || &bytes[..4] != CONTEXT_MAGIC {
        return bad("not a binary execution context");
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let mut at = CONTEXT_FIXED;
    let Some(tokens) = u32_at(at) else {
        return bad("truncated");
    };
    at += 4;
    for _ in 0..tokens.saturating_add(3) {
        let end = u32_at(at).and_then(|n| (at + 4).checked_add(n));
        match end {
            Some(end) if bytes.get(end) == Some(&0) => at = end + 1,
            _ => return bad("a string runs past the end or lacks its NUL"),
        }
    }
    if at != bytes.len() {
        return bad("bytes after the last section");
    }
    Ok(())
}

/// Checks the resume input of ABI.md, `{ "results": [...] }`, without building its values. A
/// `state` field is refused: the next segment reads the execution's committed state itself.
fn check_resume_json(text: &str) -> HostResult<()> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Resume {
        #[serde(rename = "results")]
        _results: Vec<serde::de::IgnoredAny>,
    }
    serde_json::from_str::<Resume>(text)
        .map(|_| ())
        .map_err(|e| {
            HostError::invalid(format!("resume input must be {{\"results\": [...]}}: {e}"))
        })
}

/// True when the guest output is an object with `"status": "error"`.
fn output_is_error(json: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Head {
        status: Option<String>,
    }
    serde_json::from_str::<Head>(json)
        .ok()
        .and_then(|h| h.status)
        .as_deref()
        == Some("error")
}

/// The guest's compile error `{code,message,line?,column?,stack?}` (possibly wrapped as
/// `{"error":{...}}`) as a [`HostError::Compilation`]; anything unreadable keeps the raw text
/// as its message.
fn flat_compile_error(json: &[u8]) -> HostError {
    #[derive(serde::Deserialize)]
    struct Fields {
        message: Option<String>,
        line: Option<u32>,
        column: Option<u32>,
        stack: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Wrapped {
        error: Fields,
    }
    let fields = serde_json::from_slice::<Wrapped>(json)
        .map(|w| w.error)
        .or_else(|_| serde_json::from_slice::<Fields>(json));
    match fields {
        Ok(f) => HostError::Compilation {
            message: f.message.unwrap_or_else(|| "does not compile".to_owned()),
            line: f.line,
            column: f.column,
            stack: f.stack,
        },
        Err(_) => HostError::compilation(String::from_utf8_lossy(json)),
    }
}

/// The error of a compilation that trapped instead of returning (no position).
fn compile_trap_error(t: &GuestTrap) -> HostError {
    HostError::compilation(match t.kind {
        TrapKind::Timeout => format!(
            "compilation took longer than {} ms",
            COMPILE_TIMEOUT.as_millis()
        ),
        TrapKind::MemoryLimit => "compilation exceeded the memory limit".to_owned(),
        TrapKind::StackOverflow => "source nested too deeply to compile".to_owned(),
        _ => format!("compiler trapped: {}", t.message),
    })
}

/// A fresh opaque id: `ex_` + 32 hex digits from the OS RNG.
fn new_execution_id() -> HostResult<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| HostError::internal(format!("no randomness for an execution id: {e}")))?;
    Ok(format!("ex_{}", hex(&bytes)))
}
