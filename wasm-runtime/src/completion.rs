//! Settles the promises of worker-thread jobs on the JS thread through ONE threadsafe function
//! per runtime (issue 11), instead of napi-rs's `create_deferred`, which creates and closes a
//! threadsafe function (a libuv async handle) for every call. Node drains every completion queued
//! on that function in one event-loop wakeup, so a burst of results costs one wakeup, and the
//! per-call JS work is a `napi_resolve_deferred` and the result's conversion.
//!
//! The function keeps the event loop alive only while some job's promise is unsettled (like a
//! pending napi-rs deferred does), and lives until the runtime and every job that may still
//! settle through it are gone (each job holds one of its thread counts).

use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::Object;
use napi::{Env, Status, sys};

/// Builds the settled value on the JS thread: `Ok(value)` resolves the promise, `Err(value)`
/// rejects it with that JS value.
pub type Finish = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value, sys::napi_value> + Send>;

/// True once Node destroyed the function (environment teardown, or the last count released):
/// after that nothing may call or release it. Written under the lock by `finalize`, read under
/// it around every use from another thread.
type Closed = Arc<RwLock<bool>>;

/// State read by the call-js callback on the JS thread; freed by the function's finalizer.
struct Shared {
    tsfn: Cell<sys::napi_threadsafe_function>,
    /// Promises handed out and not settled yet (JS thread only).
    unsettled: Cell<u32>,
    closed: Closed,
}

struct Item {
    deferred: sys::napi_deferred,
    finish: Finish,
}

/// The JS-thread side: makes promises and holds the function.
pub struct Completions {
    tsfn: sys::napi_threadsafe_function,
    shared: *const Shared,
    closed: Closed,
}

/// A promise's pending settlement, to move to a worker thread and hand to [`Pending::settle`].
pub struct Pending {
    tsfn: sys::napi_threadsafe_function,
    deferred: sys::napi_deferred,
    closed: Closed,
}

// SAFETY: a threadsafe function may be called and released from any thread; the deferred is only
// used by the call-js callback, on the JS thread.
unsafe impl Send for Pending {}

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            Status::from(status),
            format!("{what} failed"),
        ))
    }
}

impl Completions {
    /// Creates the runtime's threadsafe function (not keeping the loop alive until a promise is
    /// made). JS thread only.
    pub fn new(env: &Env) -> napi::Result<Self> {
        #[cfg(not(target_family = "wasm"))]
        napi::bindgen_prelude::retain_current_module_for_unload_safety();
        let closed = Closed::default();
        let shared = Box::into_raw(Box::new(Shared {
            tsfn: Cell::new(ptr::null_mut()),
            unsettled: Cell::new(0),
            closed: Arc::clone(&closed),
        }));
        let mut name = ptr::null_mut();
        let mut tsfn = ptr::null_mut();
        // SAFETY: `env` is the live environment of this (JS) thread; `shared` stays valid until
        // `finalize` frees it, which Node calls once the function is destroyed.
        unsafe {
            check(
                sys::napi_create_string_utf8(
                    env.raw(),
                    c"wk_runtime_settle".as_ptr(),
                    17,
                    &mut name,
                ),
                "napi_create_string_utf8",
            )?;
            let status = sys::napi_create_threadsafe_function(
                env.raw(),
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                shared.cast(),
                Some(finalize),
                shared.cast(),
                Some(call_js),
                &mut tsfn,
            );
            if status != sys::Status::napi_ok {
                drop(Box::from_raw(shared));
                check(status, "napi_create_threadsafe_function")?;
            }
            (*shared).tsfn.set(tsfn);
            check(
                sys::napi_unref_threadsafe_function(env.raw(), tsfn),
                "napi_unref_threadsafe_function",
            )?;
        }
        Ok(Completions {
            tsfn,
            shared,
            closed,
        })
    }

    /// A new promise and its pending settlement. JS thread only.
    pub fn promise<'env>(&self, env: &'env Env) -> napi::Result<(Pending, Object<'env>)> {
        let mut deferred = ptr::null_mut();
        let mut promise = ptr::null_mut();
        if *self.closed.read().unwrap_or_else(|p| p.into_inner()) {
            return Err(napi::Error::new(
                Status::Closing,
                "the environment is shutting down",
            ));
        }
        // SAFETY: JS thread; `self.shared` is alive while the function is not closed.
        unsafe {
            check(
                sys::napi_create_promise(env.raw(), &mut deferred, &mut promise),
                "napi_create_promise",
            )?;
            check(
                sys::napi_acquire_threadsafe_function(self.tsfn),
                "napi_acquire_threadsafe_function",
            )?;
            let shared = &*self.shared;
            shared.unsettled.set(shared.unsettled.get() + 1);
            if shared.unsettled.get() == 1 {
                sys::napi_ref_threadsafe_function(env.raw(), self.tsfn);
            }
            Ok((
                Pending {
                    tsfn: self.tsfn,
                    deferred,
                    closed: Arc::clone(&self.closed),
                },
                Object::from_raw(env.raw(), promise),
            ))
        }
    }
}

impl Drop for Completions {
    fn drop(&mut self) {
        let closed = self.closed.read().unwrap_or_else(|p| p.into_inner());
        if !*closed {
            // SAFETY: releases the count taken at creation; the function is destroyed once the
            // jobs still holding one have settled.
            unsafe {
                sys::napi_release_threadsafe_function(
                    self.tsfn,
                    sys::ThreadsafeFunctionReleaseMode::release,
                );
            }
        }
    }
}

impl Pending {
    /// Queues the settlement (`finish` runs on the JS thread) and gives up this job's count of
    /// the function. Any thread.
    pub fn settle(self, finish: Finish) {
        let item = Box::into_raw(Box::new(Item {
            deferred: self.deferred,
            finish,
        }));
        let closed = self.closed.read().unwrap_or_else(|p| p.into_inner());
        if *closed {
            // SAFETY: never queued: ours to free (the environment, and the promise, are gone)
            return drop(unsafe { Box::from_raw(item) });
        }
        // SAFETY: the function is alive (not closed, and `finalize` waits for this read lock); a
        // blocking call on an unbounded queue only fails while it is closing, then the item is
        // ours to free.
        unsafe {
            let status = sys::napi_call_threadsafe_function(
                self.tsfn,
                item.cast(),
                sys::ThreadsafeFunctionCallMode::blocking,
            );
            if status != sys::Status::napi_ok {
                drop(Box::from_raw(item));
            }
            sys::napi_release_threadsafe_function(
                self.tsfn,
                sys::ThreadsafeFunctionReleaseMode::release,
            );
        }
    }
}

unsafe extern "C" fn call_js(
    env: sys::napi_env,
    _js: sys::napi_value,
    context: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: `data` is the Box made by `settle`; `context` the Shared freed only by `finalize`.
    let item = unsafe { Box::from_raw(data.cast::<Item>()) };
    if env.is_null() {
        return; // the environment is going away: no promise is left to settle
    }
    let shared = unsafe { &*context.cast::<Shared>() };
    let Item { deferred, finish } = *item;
    // a panic must not unwind into Node: the promise then stays pending, the process lives on
    if let Ok(settled) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finish(env))) {
        unsafe {
            match settled {
                Ok(value) => sys::napi_resolve_deferred(env, deferred, value),
                Err(error) => sys::napi_reject_deferred(env, deferred, error),
            };
        }
    }
    shared
        .unsettled
        .set(shared.unsettled.get().saturating_sub(1));
    if shared.unsettled.get() == 0 {
        unsafe { sys::napi_unref_threadsafe_function(env, shared.tsfn.get()) };
    }
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Shared boxed in `Completions::new`; once `closed` is set nothing
    // reads it (Node only passes it on to `call_js` with a null env, which does not).
    let shared = unsafe { Box::from_raw(data.cast::<Shared>()) };
    *shared.closed.write().unwrap_or_else(|p| p.into_inner()) = true;
}
