//! Frees finished guest instances on a thread of their own, so the caller's result does not
//! wait for the store to be torn down and its pool slot reset (tens of µs per instance).

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{HostError, HostResult};
use crate::guest::GuestInstance;

/// Instances that may wait to be freed. The pool is sized with room for them (plus the one
/// being freed), so a queued instance never makes a new execution find the pool full.
pub const REAP_BACKLOG: u32 = 32;

/// How long the reaper lets finished instances gather after the first one arrives before it
/// frees them all. Waking a blocked thread is a futex syscall on the thread that finished the
/// execution (the JS thread, for inline calls); gathering makes that one wake per batch instead
/// of one per execution. At most `REAP_BACKLOG` arrive meanwhile; beyond that `reap` frees inline.
const GATHER: Duration = Duration::from_micros(500);

/// The reaper thread and the queue that feeds it.
pub struct Reaper {
    tx: Option<SyncSender<GuestInstance>>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the reaper thread. Errors: INTERNAL_ERROR when the thread cannot start.
    pub fn start() -> HostResult<Self> {
        let (tx, rx) = mpsc::sync_channel::<GuestInstance>(REAP_BACKLOG as usize);
        let thread = thread::Builder::new()
            .name("wk-reaper".into())
            .spawn(move || free_in_batches(&rx))
            .map_err(|e| HostError::internal(format!("cannot start the reaper thread: {e}")))?;
        Ok(Reaper {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands `inst` to the reaper; frees it right here when the queue is full.
    pub fn reap(&self, inst: GuestInstance) {
        let Some(tx) = &self.tx else {
            return drop(inst);
        };
        match tx.try_send(inst) {
            Ok(()) => {}
            Err(TrySendError::Full(inst) | TrySendError::Disconnected(inst)) => drop(inst),
        }
    }
}

/// The reaper thread's loop: block for one instance, let more gather, free them all.
fn free_in_batches(rx: &Receiver<GuestInstance>) {
    while let Ok(first) = rx.recv() {
        thread::sleep(GATHER);
        drop(first);
        rx.try_iter().for_each(drop);
    }
}

impl Drop for Reaper {
    /// Frees what is queued, then stops the thread.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
