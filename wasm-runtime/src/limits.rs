//! Per-store limits: linear memory (a [`ResourceLimiter`] that also records the peak and whether
//! growth was refused), wall-clock deadlines (checked on every engine epoch tick) and fuel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

use crate::engine::MAX_TABLE_ELEMENTS;
use crate::host::HostState;

/// Caps linear memory at `max_bytes` and remembers what happened.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Largest linear memory allowed, bytes.
    max_bytes: usize,
    /// Largest linear memory size granted so far (initial size included), bytes.
    pub peak_bytes: usize,
    /// Set once a `memory.grow` past `max_bytes` was refused (the guest saw -1).
    pub refused: bool,
}

impl MemoryLimiter {
    /// A limiter allowing at most `max_bytes` of linear memory.
    pub fn new(max_bytes: usize) -> Self {
        MemoryLimiter {
            max_bytes,
            peak_bytes: 0,
            refused: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes || maximum.is_some_and(|m| desired > m) {
            self.refused = true;
            return Ok(false);
        }
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pooling allocator refused (slot smaller than asked): same outcome for the guest.
        self.refused = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|m| desired <= m))
    }
}

/// Why the epoch callback stopped the guest. Carried as the error of the failed wasm call and
/// recognised by [`crate::guest::classify_trap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Interrupt {
    /// The segment's wall-clock deadline passed.
    #[error("wall-clock deadline exceeded")]
    Timeout,
    /// The runtime is shutting down.
    #[error("runtime shutting down")]
    Shutdown,
}

/// Wall-clock deadline of the current segment plus the runtime-wide shutdown flag.
#[derive(Debug, Clone)]
pub struct Deadline {
    /// When the running segment must stop.
    pub at: Instant,
    /// Set by `shutdown()`; stops every running guest at its next epoch tick.
    pub shutdown: Arc<AtomicBool>,
}

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration, shutdown: Arc<AtomicBool>) -> Self {
        Deadline {
            at: Instant::now() + timeout,
            shutdown,
        }
    }
}

/// Arms epoch checks on a fresh store: every epoch tick (1 ms, see [`crate::engine::EpochTicker`])
/// the callback compares the clock with `HostState::deadline`, so timeouts follow real time even
/// when the ticker thread is delayed. Only needs to run once per store; [`set_deadline`] moves the
/// deadline for later segments.
pub fn arm_epoch_checks(store: &mut Store<HostState>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        let deadline = &ctx.data().deadline;
        if deadline.shutdown.load(Ordering::Relaxed) {
            return Err(wasmtime::Error::new(Interrupt::Shutdown));
        }
        if Instant::now() >= deadline.at {
            return Err(wasmtime::Error::new(Interrupt::Timeout));
        }
        Ok(UpdateDeadline::Continue(1))
    });
}

/// Starts a new segment: new deadline, epoch check re-armed one tick ahead.
pub fn set_deadline(store: &mut Store<HostState>, deadline: Deadline) {
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
}

/// Fuel given to a store when the runtime has no fuel limit (`fuelLimit` = 0).
pub const UNLIMITED_FUEL: u64 = u64::MAX;

/// Fuel left in the store (0 if fuel is not enabled, which our engine never does).
pub fn fuel_left(store: &Store<HostState>) -> u64 {
    store.get_fuel().unwrap_or(0)
}
