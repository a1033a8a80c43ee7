//! workspace-kernel sandbox host: runs panel handlers inside the QuickJS guest (guest.wasm) with
//! wasmtime, exposed to Node as the N-API class `Runtime` (see `build/binding.d.ts`).
//!
//! Modules: [`engine`] (engine, pool, guest loading, epoch ticker), [`host`] (imported functions),
//! [`guest`] (ABI calls), [`limits`] (memory limiter, deadlines, fuel), [`cache`] (bytecode cache), [`reaper`]
//! (frees finished instances off the result path),
//! [`sandbox`] (the runtime in plain Rust), [`state`] (a panel's committed state, read lazily by
//! the guest), [`pool`] (the worker threads), [`completion`] (settling their promises on the JS
//! thread), [`error`] (error codes). This file is only the N-API
//! surface: it converts values and runs every blocking call on the runtime's own worker threads
//! (`workerThreads`, by default every core but one), so Node's event loop (and libuv's small
//! thread pool) never waits for a guest and guests never outnumber the cores.
//!
//! Errors: every rejected promise / thrown error is a JS `Error` whose `code` property is one of
//! `INVALID_INPUT`, `UNKNOWN_EXECUTION`, `CAPACITY_EXCEEDED`, `SHUTDOWN`, `COMPILATION_ERROR`,
//! `GUEST_LOAD_ERROR`, `INTERNAL_ERROR`. A `COMPILATION_ERROR` also has the properties `line` and
//! `column` (1-based, in the handler's own source) and `guestStack` when the guest reported them.

pub mod cache;
pub mod completion;
pub mod engine;
pub mod error;
pub mod guest;
pub mod host;
pub mod limits;
pub mod pool;
pub mod reaper;
pub mod sandbox;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Object};
use napi::{Env, JsError, Status, Unknown};
use napi_derive::napi;

use crate::completion::Completions;
use crate::error::HostError;
use crate::guest::TrapKind;
use crate::pool::{Delivery, WorkerPool, default_threads};
use crate::sandbox::{Compiled, RawOutcome, Sandbox, SandboxOptions};
use crate::state::SharedState;

/// Options of `new Runtime(options)`. Sizes in bytes; every field but `guestPath` has the
/// default of types.ts.
#[napi(object)]
pub struct RuntimeOptions {
    /// Path of guest.wasm. Its compiled form is cached beside it as `guest.<hash>-<hash>.cwasm`,
    /// or, when that folder is not writable, in the user's cache folder (`$XDG_CACHE_HOME`, else
    /// `~/.cache`, `/workspace-kernel/cwasm`; see engine.rs `cwasm_paths`).
    pub guest_path: String,
    /// Executions live at once (running + suspended). Default 64.
    pub max_instances: Option<u32>,
    /// Linear memory cap per instance, bytes. Default 64 MiB.
    pub memory_limit_bytes: Option<f64>,
    /// Fuel (≈ wasm instructions) per execution, all segments together; 0 = unlimited (default).
    pub fuel_limit: Option<f64>,
    /// Largest handler source `precompile` accepts, bytes. Default 1 MiB.
    pub max_source_bytes: Option<u32>,
    /// Entries of the in-memory bytecode LRU; 0 disables it. Default 512.
    pub memory_cache_entries: Option<u32>,
    /// Folder of the on-disk bytecode cache (`<sha256>.qbc` files); unset = no disk cache.
    pub cache_dir: Option<String>,
    /// Bound of the disk cache, bytes (least recently used files evicted). Default 64 MiB.
    pub max_cache_size_bytes: Option<f64>,
    /// Native stack available to wasm frames, bytes. Default 1 MiB.
    pub max_wasm_stack_bytes: Option<u32>,
    /// Threads that run guest work (execute, resume, precompile), 1..=256. Default: the number of
    /// cores minus one (the event loop's), at least 1.
    pub worker_threads: Option<u32>,
}

/// Result of `precompile`.
#[napi(object)]
pub struct CompiledHandler {
    /// QuickJS bytecode, to pass to `execute`.
    pub bytecode: Buffer,
    /// SHA-256 (hex) of the source.
    pub cache_key: String,
    /// µs spent instantiating the guest and compiling; 0 on a cache hit.
    pub compile_time_us: f64,
    /// Whether the bytecode came from the memory or disk cache.
    pub cache_hit: bool,
}

/// Result of `execute` / `resume` (one segment).
#[napi(object)]
pub struct RawResult {
    /// The guest's output JSON (see ABI.md), or "" when the guest produced none (trap).
    pub output_json: String,
    /// True when the handler is waiting for pending calls; `executionId` then names it.
    pub suspended: bool,
    /// Set iff `suspended`: the id to pass to `resume` / `cancel` (new at every suspension).
    pub execution_id: Option<String>,
    /// Set when the segment ended abnormally (outputJson is then "" except for MEMORY_LIMIT after
    /// a guest error); never SHUTDOWN, which rejects instead.
    pub trap: Option<TrapKind>,
    /// Human-readable details of `trap`.
    pub trap_message: Option<String>,
    /// Wall time of the segment, µs.
    pub duration_us: f64,
    /// Fuel burnt by this segment (≈ wasm instructions).
    pub fuel_consumed: f64,
    /// Peak linear memory of the instance, bytes.
    pub memory_peak_bytes: f64,
    /// True when a memory growth past `memoryLimitBytes` was refused during the execution.
    pub memory_limit_hit: bool,
}

/// Result of `stats()`.
#[napi(object)]
pub struct RuntimeStats {
    /// Executions holding an instance (running + suspended).
    pub live: u32,
    /// Suspended executions.
    pub suspended: u32,
    /// `precompile` calls running in the guest.
    pub compiling: u32,
    /// Entries in the memory cache.
    pub cache_entries: u32,
    /// Cache lookups answered (memory or disk).
    pub cache_hits: f64,
    /// Cache lookups not answered.
    pub cache_misses: f64,
    /// Bytes of the disk cache.
    pub disk_cache_bytes: f64,
    /// Files of the disk cache.
    pub disk_cache_entries: u32,
    /// Worker threads.
    pub threads: u32,
    /// Calls (execute, resume, precompile) running on a worker thread now.
    pub running_jobs: u32,
    /// Calls waiting for a free worker thread.
    pub queued_jobs: u32,
}

/// A panel's committed state: key → JSON text, held by the addon so that an execution reads only
/// the keys its handler touches (ABI.md "State"). Executions given this object read it as
/// committed at the start of each of their segments; `apply` commits a batch atomically.
#[napi]
pub struct PanelState {
    inner: SharedState,
}

#[napi]
impl PanelState {
    /// An empty state.
    #[napi(constructor)]
    pub fn new() -> Self {
        PanelState {
            inner: SharedState::default(),
        }
    }

    /// Applies mutations in order, atomically: `values[i]` is the JSON text `keys[i]` is set to,
    /// or null to delete it. Throws INVALID_INPUT (lengths differ, a value is not one JSON text)
    /// and then applies nothing.
    #[napi]
    pub fn apply(
        &self,
        env: Env,
        keys: Vec<String>,
        values: Vec<Option<String>>,
    ) -> napi::Result<()> {
        if keys.len() != values.len() {
            return Err(js_error(
                &env,
                HostError::invalid("keys and values must have the same length"),
            ));
        }
        self.inner
            .apply(keys.into_iter().zip(values).collect())
            .map_err(|e| js_error(&env, e))
    }

    /// Drops every key at once (running segments keep reading the version they started with).
    #[napi]
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// The committed JSON text of `key`, or null.
    #[napi]
    pub fn get(&self, key: String) -> Option<String> {
        self.inner.snapshot().get(&key).map(|j| j.to_string())
    }

    /// The committed keys, in insertion order.
    #[napi]
    pub fn keys(&self) -> Vec<String> {
        self.inner
            .snapshot()
            .keys()
            .into_iter()
            .map(|k| k.to_string())
            .collect()
    }

    /// The whole state as one JSON object text.
    #[napi]
    pub fn to_json_text(&self) -> String {
        self.inner.snapshot().to_json()
    }

    /// Number of keys.
    #[napi(getter)]
    pub fn size(&self) -> u32 {
        u32::try_from(self.inner.snapshot().len()).unwrap_or(u32::MAX)
    }

    /// Sum of the keys' and values' UTF-8 lengths, bytes.
    #[napi(getter)]
    pub fn byte_size(&self) -> f64 {
        self.inner.snapshot().byte_size() as f64
    }
}

impl Default for PanelState {
    fn default() -> Self {
        Self::new()
    }
}

/// The sandbox runtime. All async methods run on its worker threads.
#[napi]
pub struct Runtime {
    inner: Arc<Sandbox>,
    pool: WorkerPool,
    completions: Completions,
}

#[napi]
impl Runtime {
    /// Builds the engine and loads the guest. Synchronous: compiling guest.wasm takes seconds the
    /// first time; later starts deserialize the cached `.cwasm` in milliseconds.
    /// Throws INVALID_INPUT (bad options) or GUEST_LOAD_ERROR.
    #[napi(constructor)]
    pub fn new(env: Env, options: RuntimeOptions) -> napi::Result<Self> {
        let threads = options.worker_threads.unwrap_or_else(default_threads);
        let opts = sandbox_options(options).map_err(|e| js_error(&env, e))?;
        let pool = WorkerPool::new(threads).map_err(|e| js_error(&env, e))?;
        let inner = Sandbox::new(opts).map_err(|e| js_error(&env, e))?;
        Ok(Runtime {
            inner: Arc::new(inner),
            pool,
            completions: Completions::new(&env)?,
        })
    }

    /// Compiles handler source to bytecode (through the cache).
    /// Rejects INVALID_INPUT (source > maxSourceBytes), COMPILATION_ERROR (message is JSON),
    /// SHUTDOWN, INTERNAL_ERROR.
    #[napi(ts_return_type = "Promise<CompiledHandler>")]
    pub fn precompile<'env>(&self, env: &'env Env, source: String) -> napi::Result<Object<'env>> {
        let sandbox = Arc::clone(&self.inner);
        self.run_blocking(
            env,
            move || sandbox.precompile(&source),
            |c: Compiled| CompiledHandler {
                bytecode: Buffer::from(&c.bytecode[..]),
                cache_key: c.cache_key,
                compile_time_us: c.compile_time_us,
                cache_hit: c.cache_hit,
            },
        )
    }

    /// Runs bytecode with a binary context (ABI.md "Context") for at most `timeoutMs` ms; the
    /// handler reads `state` lazily, as committed at the start of each segment.
    /// Rejects INVALID_INPUT, CAPACITY_EXCEEDED, SHUTDOWN, INTERNAL_ERROR; traps resolve.
    #[napi(ts_return_type = "Promise<RawResult>")]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        code: Buffer,
        context: Buffer,
        state: &PanelState,
        timeout_ms: u32,
    ) -> napi::Result<Object<'env>> {
        let sandbox = Arc::clone(&self.inner);
        let state = state.inner.clone();
        // Copied (≈1 KiB, tens of ns): a Buffer dropped on a worker thread would cost a
        // threadsafe-function hop back to the JS thread to release its reference.
        let (code, context) = (code.to_vec(), context.to_vec());
        self.run_blocking(
            env,
            move || sandbox.execute(&code, &context, &state, timeout_ms),
            raw_result,
        )
    }

    /// Runs bytecode on the calling (JS) thread for at most `sliceMs` ms of its `timeoutMs`.
    /// Returns the result when the handler finished (or suspended, or failed) within the slice,
    /// or null when the slice ran out first: that attempt left nothing behind (a handler only
    /// records, it has no outside effects), so the caller runs it again with `execute`.
    /// Throws what `execute` rejects with.
    #[napi(ts_return_type = "RawResult | null")]
    pub fn execute_inline(
        &self,
        env: Env,
        code: Buffer,
        context: Buffer,
        state: &PanelState,
        timeout_ms: u32,
        slice_ms: u32,
    ) -> napi::Result<Option<RawResult>> {
        self.inner
            .execute_slice(&code, &context, &state.inner, timeout_ms, slice_ms)
            .map(|o| o.map(raw_result))
            .map_err(|e| js_error(&env, e))
    }

    /// Settles a suspended execution's pending calls and runs on, reading its state as committed
    /// now. `resumeJson` is ABI.md's `{"results":[{callId,ok,value|error}...]}`. Consumes the id. Rejects INVALID_INPUT (the execution stays suspended), UNKNOWN_EXECUTION,
    /// SHUTDOWN, INTERNAL_ERROR.
    #[napi(ts_return_type = "Promise<RawResult>")]
    pub fn resume<'env>(
        &self,
        env: &'env Env,
        execution_id: String,
        resume_json: String,
        timeout_ms: u32,
    ) -> napi::Result<Object<'env>> {
        let sandbox = Arc::clone(&self.inner);
        self.run_blocking(
            env,
            move || sandbox.resume(&execution_id, &resume_json, timeout_ms),
            raw_result,
        )
    }

    /// Frees a suspended execution. False when the id is not suspended.
    #[napi]
    pub fn cancel(&self, execution_id: String) -> bool {
        self.inner.cancel(&execution_id)
    }

    /// Worker threads with no job running or queued now (the executor's placement reads it
    /// before handing a segment to the pool, so the pool's queue stays empty). Cheap: one
    /// uncontended lock.
    #[napi]
    pub fn idle_threads(&self) -> u32 {
        self.pool.idle()
    }

    /// Current counters.
    #[napi]
    pub fn stats(&self) -> RuntimeStats {
        let s = self.inner.stats();
        let p = self.pool.stats();
        RuntimeStats {
            live: s.live,
            suspended: s.suspended,
            compiling: s.compiling,
            cache_entries: s.cache.memory_entries as u32,
            cache_hits: s.cache.hits as f64,
            cache_misses: s.cache.misses as f64,
            disk_cache_bytes: s.cache.disk_bytes as f64,
            disk_cache_entries: s.cache.disk_entries as u32,
            threads: p.threads,
            running_jobs: p.running,
            queued_jobs: p.queued,
        }
    }

    /// Drops all suspended executions, makes running ones fail with SHUTDOWN at their next
    /// epoch tick (≤ ~1 ms of guest time), stops the epoch thread. Later calls reject SHUTDOWN.
    #[napi]
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// SHA-256 (hex) of the loaded guest.wasm.
    #[napi(getter)]
    pub fn guest_hash(&self) -> String {
        self.inner.guest_hash()
    }

    /// Whether this start loaded the guest from its cached `.cwasm` (no Cranelift compile).
    #[napi(getter)]
    pub fn guest_from_cwasm(&self) -> bool {
        self.inner.guest_from_cwasm()
    }
}

impl Runtime {
    /// Runs `work` on a worker thread; resolves with `map(value)` or rejects with a coded error
    /// (INTERNAL_ERROR when `work` panicked).
    fn run_blocking<'env, T, V, W, M>(
        &self,
        env: &'env Env,
        work: W,
        map: M,
    ) -> napi::Result<Object<'env>>
    where
        T: Send + 'static,
        V: napi::bindgen_prelude::ToNapiValue + 'static,
        W: FnOnce() -> Result<T, HostError> + Send + 'static,
        M: FnOnce(T) -> V + Send + 'static,
    {
        // One hop out (to a worker; a guest spinning until its timeout holds that worker, which
        // is the price of never running more guests than cores) and one hop back (the runtime's
        // one threadsafe function, which delivers a burst of results in one wakeup).
        let (pending, promise) = self.completions.promise(env)?;
        self.pool.spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(HostError::internal("a worker thread panicked")));
            Box::new(move || {
                pending.settle(Box::new(move |raw_env| {
                    // SAFETY (both arms): `raw_env` is the live environment of the JS thread.
                    let error = |e: napi::Error| unsafe { JsError::from(e).into_value(raw_env) };
                    match outcome {
                        Ok(value) => unsafe { V::to_napi_value(raw_env, map(value)) }.map_err(error),
                        Err(e) => Err(error(js_error(&Env::from_raw(raw_env), e))),
                    }
                }));
            }) as Delivery
        });
        Ok(promise)
    }
}

fn raw_result(o: RawOutcome) -> RawResult {
    RawResult {
        output_json: o.output_json,
        suspended: o.suspended,
        execution_id: o.execution_id,
        trap: o.trap,
        trap_message: o.trap_message,
        duration_us: o.duration_us,
        fuel_consumed: o.fuel_consumed as f64,
        memory_peak_bytes: o.memory_peak_bytes as f64,
        memory_limit_hit: o.memory_limit_hit,
    }
}

/// A JS `Error` with `code` = the host error's code (and, for COMPILATION_ERROR, the guest's
/// `line`, `column` and `guestStack` when it gave them), wrapped so napi throws/rejects with that
/// very object (napi reuses the referenced JS value instead of building a generic one).
fn js_error(env: &Env, e: HostError) -> napi::Error {
    let message = e.to_string();
    let coded: napi::Error<&'static str> = napi::Error::new(e.code(), message.clone());
    // SAFETY: `env` is the live environment of the current (JS) thread.
    let raw = unsafe { JsError::from(coded).into_value(env.raw()) };
    if raw.is_null() {
        return napi::Error::new(Status::GenericFailure, message);
    }
    if let HostError::Compilation {
        line,
        column,
        stack,
        ..
    } = e
    {
        let mut obj = Object::from_raw(env.raw(), raw);
        let set = line
            .map_or(Ok(()), |v| obj.set("line", v))
            .and_then(|()| column.map_or(Ok(()), |v| obj.set("column", v)))
            .and_then(|()| stack.map_or(Ok(()), |v| obj.set("guestStack", v)));
        if let Err(err) = set {
            return err;
        }
    }
    // SAFETY: `raw` was just created in `env` and is a valid value handle in this scope.
    napi::Error::from(unsafe { Unknown::from_raw_unchecked(env.raw(), raw) })
}

/// Checks and converts the JS options.
fn sandbox_options(o: RuntimeOptions) -> Result<SandboxOptions, HostError> {
    let mut s = SandboxOptions::new(PathBuf::from(&o.guest_path));
    if o.guest_path.is_empty() {
        return Err(HostError::invalid("guestPath is required"));
    }
    if let Some(v) = o.max_instances {
        s.max_instances = v;
    }
    if let Some(v) = o.memory_limit_bytes {
        s.memory_limit_bytes = whole_number(v, "memoryLimitBytes")?;
    }
    if let Some(v) = o.fuel_limit {
        s.fuel_limit = whole_number(v, "fuelLimit")?;
    }
    if let Some(v) = o.max_source_bytes {
        s.max_source_bytes = v as usize;
    }
    if let Some(v) = o.memory_cache_entries {
        s.memory_cache_entries = v as usize;
    }
    s.cache_dir = o.cache_dir.filter(|d| !d.is_empty()).map(PathBuf::from);
    if let Some(v) = o.max_cache_size_bytes {
        s.max_cache_size_bytes = whole_number(v, "maxCacheSizeBytes")?;
    }
    if let Some(v) = o.max_wasm_stack_bytes {
        s.max_wasm_stack_bytes = v as usize;
    }
    Ok(s)
}

/// A non-negative integer ≤ 2^53 given as a JS number.
fn whole_number(v: f64, name: &str) -> Result<u64, HostError> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_992.0 {
        Ok(v as u64)
    } else {
        Err(HostError::invalid(format!(
            "{name} must be a non-negative integer, got {v}"
        )))
    }
}
