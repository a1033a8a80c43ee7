//! The wasmtime engine (pooling allocator, epochs, fuel), loading guest.wasm once (with a
//! serialized `.cwasm` beside it so later starts skip Cranelift), the linker + `InstancePre`,
//! and the epoch ticker thread.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker, Module,
    OptLevel, PoolingAllocationConfig, ValType,
};

use crate::error::{HostError, HostResult};
use crate::guest::ExportIndex;
use crate::host::{self, HostState};

/// Interval between two engine epoch increments.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Bytes of a freed instance's memory (and table) reset in place and kept resident for reuse.
pub const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Table elements allowed per instance (QuickJS's function table holds a few thousand).
pub const MAX_TABLE_ELEMENTS: usize = 50_000;

/// Engine settings derived from the runtime options.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Instance slots of the pool (executions + compilations that may be live at once).
    pub pool_instances: u32,
    /// Largest linear memory of one instance, bytes.
    pub memory_limit_bytes: u64,
    /// Native stack wasm code may use, bytes (deep recursion → STACK_OVERFLOW trap).
    pub max_wasm_stack_bytes: usize,
}

/// Builds the one engine of a runtime: Cranelift, epoch interruption, fuel, pooling allocator
/// with copy-on-write memory images.
pub fn build_engine(s: &EngineSettings) -> HostResult<Engine> {
    let n = s.pool_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(n)
        .total_memories(n)
        .total_tables(n)
        .max_memory_size(usize::try_from(s.memory_limit_bytes).unwrap_or(usize::MAX))
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_unused_warm_slots(n.min(16))
        // Reset a freed slot by copying back only its dirty pages (PAGEMAP_SCAN, Linux ≥ 6.7;
        // plain memset elsewhere) instead of dropping them: the next instance in that slot then
        // starts without a copy-on-write page fault per page QuickJS touches.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(Enabled::Auto);
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .consume_fuel(true)
        .max_wasm_stack(s.max_wasm_stack_bytes)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .cranelift_opt_level(OptLevel::Speed)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&cfg)
        .map_err(|e| HostError::invalid(format!("cannot configure the wasm engine: {e}")))
}

/// The loaded guest: compiled module, pre-linked instance template and identity.
pub struct LoadedGuest {
    /// Linker + module resolved once; each execution only instantiates.
    pub pre: InstancePre<HostState>,
    /// The ABI exports' places in the module (no lookups by name per instance).
    pub exports: ExportIndex,
    /// SHA-256 of guest.wasm (bytecode is only valid for the guest that produced it).
    pub guest_hash: [u8; 32],
    /// Whether the module came from the `.cwasm` file (no Cranelift run at this start).
    pub from_cwasm: bool,
}

/// Loads guest.wasm from `path`: deserializes `<dir>/<stem>.<guesthash>-<enginehash>.cwasm` when
/// present and compatible, else compiles and writes that file. When the guest's folder is not
/// writable (a package installed by root, used by another user) the file goes to the user's cache
/// folder instead (see [`cwasm_paths`]); best effort: with neither, each start compiles. Older
/// `.cwasm` files of the same stem are removed.
/// `memory_limit_bytes` must hold the guest's initial memory (else INVALID_INPUT).
pub fn load_guest(
    engine: &Engine,
    path: &Path,
    memory_limit_bytes: u64,
) -> HostResult<LoadedGuest> {
    let wasm = fs::read(path).map_err(|e| {
        HostError::GuestLoad(format!("cannot read guest module {}: {e}", path.display()))
    })?;
    check_initial_memory(&wasm, memory_limit_bytes)?;
    let guest_hash: [u8; 32] = Sha256::digest(&wasm).into();
    let cwasm = cwasm_paths(engine, path, &guest_hash);
    let cached = cwasm.iter().find_map(|p| deserialize(engine, p));
    let from_cwasm = cached.is_some();
    let module = match cached {
        Some(m) => m,
        None => {
            let m = compile(engine, &wasm)?;
            // the first place that takes it: beside the guest, else the user's cache
            let _ = cwasm.iter().any(|p| store_cwasm(&m, p));
            m
        }
    };
    finish(engine, module, guest_hash, from_cwasm)
}

/// Loads a guest from bytes (wasm or WAT text is not accepted: binary only), with no `.cwasm`.
pub fn load_guest_bytes(
    engine: &Engine,
    wasm: &[u8],
    memory_limit_bytes: u64,
) -> HostResult<LoadedGuest> {
    check_initial_memory(wasm, memory_limit_bytes)?;
    let guest_hash: [u8; 32] = Sha256::digest(wasm).into();
    let module = compile(engine, wasm)?;
    finish(engine, module, guest_hash, false)
}

fn compile(engine: &Engine, wasm: &[u8]) -> HostResult<Module> {
    Module::from_binary(engine, wasm)
        .map_err(|e| HostError::GuestLoad(format!("invalid guest module: {e:#}")))
}

fn finish(
    engine: &Engine,
    module: Module,
    guest_hash: [u8; 32],
    from_cwasm: bool,
) -> HostResult<LoadedGuest> {
    host::check_imports(&module)?;
    check_exports(&module)?;
    let mut linker: Linker<HostState> = Linker::new(engine);
    host::add_to_linker(&mut linker)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| HostError::GuestLoad(format!("cannot link guest module: {e:#}")))?;
    Ok(LoadedGuest {
        exports: ExportIndex::of(&module)?,
        pre,
        guest_hash,
        from_cwasm,
    })
}

/// The exports of the guest ABI (see ABI.md) and their signatures: (name, params, results).
const ABI_FUNCS: &[(&str, usize, usize)] = &[
    ("wk_alloc", 1, 1),
    ("wk_compile", 2, 1),
    ("wk_execute", 4, 1),
    ("wk_resume", 2, 1),
    ("wk_output_ptr", 0, 1),
    ("wk_output_len", 0, 1),
];

/// Checks that every ABI export exists with all-i32 signatures, and the memory export.
fn check_exports(module: &Module) -> HostResult<()> {
    for &(name, params, results) in ABI_FUNCS {
        let ok = match module.get_export(name) {
            Some(ExternType::Func(ft)) => {
                ft.params().len() == params
                    && ft.results().len() == results
                    && ft
                        .params()
                        .chain(ft.results())
                        .all(|t| matches!(t, ValType::I32))
            }
            _ => false,
        };
        if !ok {
            return Err(HostError::GuestLoad(format!(
                "guest module lacks export {name} with {params} i32 parameter(s) and an i32 result"
            )));
        }
    }
    match module.get_export("memory") {
        Some(ExternType::Memory(mt)) if !mt.is_64() && !mt.is_shared() => Ok(()),
        _ => Err(HostError::GuestLoad(
            "guest module lacks a 32-bit exported memory named 'memory'".into(),
        )),
    }
}

/// Refuses a memory limit below the guest's initial memory with a clear INVALID_INPUT (the
/// pooling allocator would otherwise reject the module with a less direct message).
fn check_initial_memory(wasm: &[u8], memory_limit_bytes: u64) -> HostResult<()> {
    match initial_memory_bytes(wasm) {
        Some(initial) if initial > memory_limit_bytes => Err(HostError::invalid(format!(
            "memoryLimitBytes ({memory_limit_bytes}) is below the guest's initial memory ({initial} bytes)"
        ))),
        _ => Ok(()),
    }
}

/// Initial size of the first memory defined in a wasm binary, bytes; None when the binary has no
/// memory section or cannot be read (compilation then reports the problem).
pub fn initial_memory_bytes(wasm: &[u8]) -> Option<u64> {
    let mut r = Reader { bytes: wasm, at: 8 };
    if wasm.get(..4)? != b"\0asm" {
        return None;
    }
    while r.at < wasm.len() {
        let id = r.byte()?;
        let size = usize::try_from(r.leb()?).ok()?;
        let end = r.at.checked_add(size)?;
        if id == 5 {
            let _count = r.leb()?;
            let flags = r.byte()?;
            let min = r.leb()?;
            if flags & 1 != 0 {
                r.leb()?; // maximum
            }
            let page_log2 = if flags & 8 != 0 { r.leb()? } else { 16 };
            return min.checked_mul(1u64.checked_shl(u32::try_from(page_log2).ok()?)?);
        }
        r.at = end;
    }
    None
}

/// Cursor over a wasm binary (just enough to read section headers and memory limits).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// Unsigned LEB128, up to 64 bits.
    fn leb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

/// Where the serialized module of this guest + engine configuration may live, in the order it is
/// looked for and written: `<guest dir>/<stem>.<guesthash>-<enginehash>.cwasm`, then
/// `$XDG_CACHE_HOME` (else `~/.cache`) `/workspace-kernel/cwasm/<stem>-<dirhash>.<…>.cwasm`, named
/// after the guest's folder too so that installs of other versions neither share nor remove it.
fn cwasm_paths(engine: &Engine, wasm_path: &Path, guest_hash: &[u8; 32]) -> Vec<PathBuf> {
    let (Some(dir), Some(stem)) = (
        wasm_path.parent(),
        wasm_path.file_stem().and_then(|s| s.to_str()),
    ) else {
        return Vec::new();
    };
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let name = |stem: &str| format!("{stem}.{}-{:016x}.cwasm", hex(&guest_hash[..8]), h.finish());
    let mut paths = vec![dir.join(name(stem))];
    if let Some(cache) = user_cache_dir() {
        let folder: [u8; 32] = Sha256::digest(dir.as_os_str().as_encoded_bytes()).into();
        let own = format!("{stem}-{}", hex(&folder[..8]));
        paths.push(
            cache
                .join("workspace-kernel")
                .join("cwasm")
                .join(name(&own)),
        );
    }
    paths
}

/// `$XDG_CACHE_HOME` when it is absolute (the XDG rule), else `$HOME/.cache`.
fn user_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
    match xdg {
        Some(p) if p.is_absolute() => Some(p),
        _ => std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute())
            .map(|h| h.join(".cache")),
    }
}

fn deserialize(engine: &Engine, path: &Path) -> Option<Module> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: the file is one this crate wrote with `Module::serialize` for this exact guest
    // hash and engine configuration; wasmtime still checks its header and compatibility and
    // returns an error (→ we recompile) when they do not match. Whoever can write this file can
    // also replace the addon itself (beside the guest) or already runs code as this user (their
    // cache folder, created 0700), so trusting it adds no new exposure.
    unsafe { Module::deserialize_file(engine, path) }.ok()
}

/// Writes the `.cwasm` atomically (temp file + rename, its folder created 0700 when missing) and
/// removes stale siblings. Best effort: false when it could not be written.
fn store_cwasm(module: &Module, path: &Path) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    let Ok(bytes) = module.serialize() else {
        return false;
    };
    if let Some(dir) = path.parent().filter(|d| !d.is_dir()) {
        if fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .is_err()
        {
            return false;
        }
    }
    let tmp = path.with_extension(format!("cwasm.tmp{}", std::process::id()));
    if fs::write(&tmp, &bytes).is_err() || fs::rename(&tmp, path).is_err() {
        let _ = fs::remove_file(&tmp);
        return false;
    }
    remove_stale_cwasm(path);
    true
}

fn remove_stale_cwasm(current: &Path) {
    let (Some(dir), Some(name)) = (
        current.parent(),
        current.file_name().and_then(|n| n.to_str()),
    ) else {
        return;
    };
    let Some(stem) = name.split('.').next() else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(f) = file.to_str() else { continue };
        if f != name && f.starts_with(&format!("{stem}.")) && f.ends_with(".cwasm") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Increments the engine epoch every [`EPOCH_TICK`] while at least one guest call runs, and for
/// `IDLE_LINGER_TICKS` after the last one (it sleeps otherwise). After [`EpochTicker::stop`] it
/// keeps ticking until the running calls have noticed the shutdown, then exits.
pub struct EpochTicker {
    shared: Arc<TickShared>,
}

struct TickShared {
    state: Mutex<TickState>,
    wake: Condvar,
}

#[derive(Default)]
struct TickState {
    active: usize,
    stop: bool,
    /// The thread waits on the condvar (idle), as opposed to sleeping out a tick.
    waiting: bool,
}

/// Held while a guest call runs; keeps the ticker ticking.
pub struct TickGuard {
    shared: Arc<TickShared>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine) -> HostResult<Self> {
        let shared = Arc::new(TickShared {
            state: Mutex::new(TickState::default()),
            wake: Condvar::new(),
        });
        let s = Arc::clone(&shared);
        thread::Builder::new()
            .name("wk-epoch".into())
            .spawn(move || tick_loop(&engine, &s))
            .map_err(|e| HostError::internal(format!("cannot start the epoch thread: {e}")))?;
        Ok(EpochTicker { shared })
    }

    /// Marks a guest call as running until the guard drops.
    pub fn enter(&self) -> TickGuard {
        let mut st = lock(&self.shared.state);
        st.active += 1;
        // only an idle ticker waits on the condvar; a busy one is sleeping its 1 ms tick and
        // sees `active` when it wakes (a notify costs a futex syscall, so none when not needed)
        if st.waiting {
            self.shared.wake.notify_all();
        }
        drop(st);
        TickGuard {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Asks the thread to exit once no guest call runs.
    pub fn stop(&self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for TickGuard {
    fn drop(&mut self) {
        let mut st = lock(&self.shared.state);
        st.active = st.active.saturating_sub(1);
    }
}

/// Ticks the ticker goes on for after the last guest call ended before it waits idle: calls that
/// arrive in a steady stream (a request every few hundred µs) find it ticking and pay no wake-up
/// (a futex syscall inside the call's own time); an idle runtime stops ticking after 20 ms.
const IDLE_LINGER_TICKS: u32 = 20;

fn tick_loop(engine: &Engine, shared: &TickShared) {
    let mut st = lock(&shared.state);
    let mut idle_ticks = 0;
    loop {
        if st.active > 0 {
            idle_ticks = 0;
        } else if st.stop {
            return;
        } else if idle_ticks < IDLE_LINGER_TICKS {
            idle_ticks += 1;
        } else {
            st.waiting = true;
            st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiting = false;
            idle_ticks = 0;
            continue;
        }
        drop(st);
        thread::sleep(EPOCH_TICK);
        engine.increment_epoch();
        st = lock(&shared.state);
    }
}

/// Locks a mutex, ignoring poisoning (our critical sections leave the data consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
