//! Host side of the store and the functions the guest imports.
//!
//! The guest is a WASI reactor, but it gets no WASI implementation: only the handful of
//! `wasi_snapshot_preview1` functions below, written by hand. No files, no environment, no
//! arguments, no sockets. stdout/stderr writes are swallowed (their first bytes are kept for trap
//! messages); the clocks are real; `random_get` is a real RNG. A guest that imports anything
//! else is refused at load time ([`check_imports`]).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker, Memory, Module};

use crate::error::{HostError, HostResult};
use crate::limits::{Deadline, MemoryLimiter};

/// The only import module the guest may use.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

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
    /// Process clock origin for the monotonic clock.
    clock_origin: Instant,
}

impl HostState {
    /// Fresh state for one store.
    pub fn new(limiter: MemoryLimiter, deadline: Deadline) -> Self {
        HostState {
            limiter,
            deadline,
            console_bytes: 0,
            console_head: Vec::new(),
            clock_origin: Instant::now(),
        }
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

/// Refuses a guest that imports anything but the functions of [`PROVIDED`].
pub fn check_imports(module: &Module) -> HostResult<()> {
    let unknown: Vec<String> = module
        .imports()
        .filter(|i| {
            i.module() != WASI_MODULE || !PROVIDED.contains(&i.name()) || i.ty().func().is_none()
        })
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
    Ok(())
}

/// The guest's exported memory, if any.
fn memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
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
