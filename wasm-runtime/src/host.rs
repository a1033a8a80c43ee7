//! Host side of the store and the functions the guest imports.
//!
//! The guest is a WASI reactor, but it gets no WASI implementation: only the handful of
//! `wasi_snapshot_preview1` functions below, written by hand. No files, no environment, no
//! arguments, no sockets. stdout/stderr writes are swallowed (their first bytes are kept for trap
//! messages); the clocks are real; `random_get` is a real RNG. A guest that imports anything
//! else is refused at load time ([`check_imports`]).
//!
//! Besides WASI, the guest imports the two functions of [`STATE_MODULE`] that read the panel
//! state lazily (ABI.md "State"): `state_get` (one key's JSON) and `state_keys` (the key list).

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker, Memory, Module};

use crate::error::{HostError, HostResult};
use crate::limits::{Deadline, MemoryLimiter};
use crate::state::{SharedState, StateMap};

/// The WASI import module (a hand-written subset, see [`PROVIDED`]).
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";
/// The import module of the lazy state reads.
pub const STATE_MODULE: &str = "wk";
/// The functions of [`STATE_MODULE`].
const STATE_FUNCS: &[&str] = &["state_get", "state_keys"];
/// What `state_get` returns for a key that is not committed.
const ABSENT: i32 = -1;

/// Bytes of guest stdout/stderr kept per store (to explain traps), bytes.
const CONSOLE_KEEP_BYTES: usize = 4096;

// WASI errno values used here.
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ESPIPE: i32 = 70;

/// Data of one store: limits and what the guest wrote to its console.
pub struct HostState {
    /// Memory cap + peak + "growth refused" flag.
    pub limiter: MemoryLimiter,
    /// Deadline of the running segment.
    pub deadline: Deadline,
    /// Total bytes the guest wrote to fd 1/2.
    pub console_bytes: u64,
    /// First [`CONSOLE_KEEP_BYTES`] of those bytes.
    pub console_head: Vec<u8>,
    /// The panel state this execution reads (its owner commits into it between segments).
    pub state: SharedState,
    /// The version the running segment reads, taken at its start; None between segments.
    pub snapshot: Option<Arc<StateMap>>,
    /// The running segment's key list JSON, built at its first `state_keys`.
    keys_json: Option<String>,
    /// Process clock origin for the monotonic clock.
    clock_origin: Instant,
    /// The instance's exported memory, set right after instantiation (host calls then look
    /// nothing up by name).
    pub memory: Option<Memory>,
}

impl HostState {
    /// Fresh state for one store.
    pub fn new(limiter: MemoryLimiter, deadline: Deadline, state: SharedState) -> Self {
        HostState {
            limiter,
            deadline,
            console_bytes: 0,
            console_head: Vec::new(),
            state,
            snapshot: None,
            keys_json: None,
            clock_origin: Instant::now(),
            memory: None,
        }
    }

    /// Starts a segment: it reads the state as committed now.
    pub fn begin_segment(&mut self) {
        self.snapshot = Some(self.state.snapshot());
        self.keys_json = None;
    }

    /// Ends a segment: the snapshot is released, so commits while suspended copy nothing.
    pub fn end_segment(&mut self) {
        self.snapshot = None;
        self.keys_json = None;
    }
}

/// Error raised by `proc_exit`: the guest asked to end itself.
#[derive(Debug, thiserror::Error)]
#[error("guest called proc_exit({0})")]
pub struct ProcExit(pub i32);

/// Names of the WASI functions we provide. Any other import is refused.
/// guest.wasm imports the first five; `random_get` and `proc_exit` are there because libc pulls
/// them in as soon as the guest uses `getentropy` or `exit`, and both are harmless.
const PROVIDED: &[&str] = &[
    "clock_time_get",
    "fd_close",
    "fd_fdstat_get",
    "fd_seek",
    "fd_write",
    "random_get",
    "proc_exit",
];

/// Refuses a guest that imports anything but the functions of [`PROVIDED`] and [`STATE_FUNCS`].
pub fn check_imports(module: &Module) -> HostResult<()> {
    let known = |m: &str, n: &str| {
        (m == WASI_MODULE && PROVIDED.contains(&n))
            || (m == STATE_MODULE && STATE_FUNCS.contains(&n))
    };
    let unknown: Vec<String> = module
        .imports()
        .filter(|i| !known(i.module(), i.name()) || i.ty().func().is_none())
        .map(|i| format!("{}::{}", i.module(), i.name()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(HostError::GuestLoad(format!(
            "guest imports unsupported host functions: {}",
            unknown.join(", ")
        )))
    }
}

/// Adds every provided function to `linker`. Signatures are those of `wasi_snapshot_preview1`
/// on wasm32 (pointers are i32); a guest declaring another type fails at link time.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> HostResult<()> {
    let m = WASI_MODULE;
    let def = |e: wasmtime::Error| HostError::internal(format!("defining host functions: {e}"));
    linker
        .func_wrap(m, "clock_time_get", clock_time_get)
        .map_err(def)?;
    linker
        .func_wrap(m, "fd_close", |_: Caller<'_, HostState>, _: i32| EBADF)
        .map_err(def)?;
    linker
        .func_wrap(m, "fd_fdstat_get", fd_fdstat_get)
        .map_err(def)?;
    linker.func_wrap(m, "fd_seek", fd_seek).map_err(def)?;
    linker.func_wrap(m, "fd_write", fd_write).map_err(def)?;
    linker
        .func_wrap(
            m,
            "proc_exit",
            |_: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::new(ProcExit(code)))
            },
        )
        .map_err(def)?;
    linker.func_wrap(m, "random_get", random_get).map_err(def)?;
    linker
        .func_wrap(STATE_MODULE, "state_get", state_get)
        .map_err(def)?;
    linker
        .func_wrap(STATE_MODULE, "state_keys", state_keys)
        .map_err(def)?;
    Ok(())
}

/// `state_get(key, key_len, buf, cap) -> len`: the byte length of the committed JSON of the key
/// (UTF-8 at `key`), copied to `buf` when it fits in `cap` bytes (call again with a bigger buffer
/// otherwise; `cap` 0 only asks whether the key exists); [`ABSENT`] (-1) when the key is not
/// committed. Out-of-bounds pointers trap.
fn state_get(
    mut caller: Caller<'_, HostState>,
    key: i32,
    key_len: i32,
    buf: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller).ok_or_else(|| wasmtime::Error::msg("guest has no memory"))?;
    let (data, st) = mem.data_and_store_mut(&mut caller);
    let name = guest_slice(data, key, key_len)?;
    let found = std::str::from_utf8(name)
        .ok()
        .and_then(|k| st.snapshot.as_ref()?.get(k).cloned());
    let Some(json) = found else {
        return Ok(ABSENT);
    };
    copy_out(data, json.as_bytes(), buf, cap)
}

/// `state_keys(buf, cap) -> len`: the committed keys as a JSON array of strings, in insertion
/// order; copied as for `state_get`.
fn state_keys(mut caller: Caller<'_, HostState>, buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let mem = memory(&mut caller).ok_or_else(|| wasmtime::Error::msg("guest has no memory"))?;
    let (data, st) = mem.data_and_store_mut(&mut caller);
    let snapshot = &st.snapshot;
    let json = st.keys_json.get_or_insert_with(|| {
        snapshot
            .as_ref()
            .map_or_else(|| "[]".to_owned(), |s| s.keys_json())
    });
    copy_out(data, json.as_bytes(), buf, cap)
}

fn guest_slice(data: &[u8], ptr: i32, len: i32) -> wasmtime::Result<&[u8]> {
    let start = ptr as u32 as usize;
    data.get(start..start.saturating_add(len as u32 as usize))
        .ok_or_else(|| wasmtime::Error::msg("state import: pointer outside guest memory"))
}

/// Copies `bytes` to `buf` when they fit in `cap`; returns their length either way.
fn copy_out(data: &mut [u8], bytes: &[u8], buf: i32, cap: i32) -> wasmtime::Result<i32> {
    let len = i32::try_from(bytes.len())
        .map_err(|_| wasmtime::Error::msg("state value larger than 2 GiB"))?;
    if len <= cap {
        let start = buf as u32 as usize;
        data.get_mut(start..start + bytes.len())
            .ok_or_else(|| wasmtime::Error::msg("state import: buffer outside guest memory"))?
            .copy_from_slice(bytes);
    }
    Ok(len)
}

/// The guest's exported memory, if any.
fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    if let Some(m) = caller.data().memory {
        return Some(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// Writes `bytes` at guest address `ptr`; false when out of bounds.
fn write_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(mem) = memory(caller) else {
        return false;
    };
    mem.write(caller, ptr as u32 as usize, bytes).is_ok()
}

/// Clock ids: 0 realtime, 1 monotonic, 2 process cputime, 3 thread cputime.
fn clock_now_ns(state: &HostState, id: i32) -> Option<u64> {
    match id {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_nanos() as u64),
        1..=3 => Some(state.clock_origin.elapsed().as_nanos() as u64),
        _ => None,
    }
}

fn clock_time_get(
    mut caller: Caller<'_, HostState>,
    id: i32,
    _precision: i64,
    time_ptr: i32,
) -> i32 {
    let Some(ns) = clock_now_ns(caller.data(), id) else {
        return EINVAL;
    };
    if write_bytes(&mut caller, time_ptr, &ns.to_le_bytes()) {
        ESUCCESS
    } else {
        EFAULT
    }
}

/// fds 0–2 are character devices (so libc line-buffers them); every other fd is unknown.
fn fd_fdstat_get(mut caller: Caller<'_, HostState>, fd: i32, stat_ptr: i32) -> i32 {
    if !(0..=2).contains(&fd) {
        return EBADF;
    }
    // struct fdstat { u8 filetype; u16 flags @2; u64 rights_base @8; u64 rights_inheriting @16 }
    let mut stat = [0u8; 24];
    stat[0] = 2; // CHARACTER_DEVICE
    let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 }; // FD_READ / FD_WRITE
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    if write_bytes(&mut caller, stat_ptr, &stat) {
        ESUCCESS
    } else {
        EFAULT
    }
}

fn fd_seek(
    _: Caller<'_, HostState>,
    fd: i32,
    _offset: i64,
    _whence: i32,
    _new_offset_ptr: i32,
) -> i32 {
    if (0..=2).contains(&fd) { ESPIPE } else { EBADF }
}

/// Accepts writes to fd 1 and 2: counts them, keeps the first bytes, reports all as written.
fn fd_write(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten_ptr: i32,
) -> i32 {
    if fd != 1 && fd != 2 {
        return EBADF;
    }
    let Some(mem) = memory(&mut caller) else {
        return EFAULT;
    };
    let (data, state) = mem.data_and_store_mut(&mut caller);
    let mut total: u64 = 0;
    for i in 0..(iovs_len.max(0) as usize) {
        let at = iovs as u32 as usize + i * 8;
        let Some(iov) = data.get(at..at + 8) else {
            return EFAULT;
        };
        let ptr = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]) as usize;
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]) as usize;
        let Some(chunk) = data.get(ptr..ptr.saturating_add(len)) else {
            return EFAULT;
        };
        let room = CONSOLE_KEEP_BYTES.saturating_sub(state.console_head.len());
        state
            .console_head
            .extend_from_slice(&chunk[..room.min(chunk.len())]);
        total += len as u64;
    }
    state.console_bytes += total;
    let written = u32::try_from(total).unwrap_or(u32::MAX);
    if write_bytes(&mut caller, nwritten_ptr, &written.to_le_bytes()) {
        ESUCCESS
    } else {
        EFAULT
    }
}

/// Fills guest memory with bytes from the OS RNG.
fn random_get(mut caller: Caller<'_, HostState>, buf: i32, len: i32) -> i32 {
    let Some(mem) = memory(&mut caller) else {
        return EFAULT;
    };
    let start = buf as u32 as usize;
    let Some(slice) = mem
        .data_mut(&mut caller)
        .get_mut(start..start.saturating_add(len as u32 as usize))
    else {
        return EFAULT;
    };
    match getrandom::fill(slice) {
        Ok(()) => ESUCCESS,
        Err(_) => EINVAL,
    }
}
