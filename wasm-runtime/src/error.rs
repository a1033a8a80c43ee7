//! Errors of the sandbox host. Each maps to a stable string `code` that the N-API layer puts on
//! the JS `Error` it rejects/throws with (`err.code`), so the TS wrapper can switch on it.
//!
//! Traps of the guest are *not* errors: an execution that hits a timeout or a limit resolves with
//! a [`crate::sandbox::RawOutcome`] whose `trap` is set. Errors are for calls that are wrong or
//! cannot be served at all.

use thiserror::Error;

/// Every way a call into the host can fail. `code()` is the JS-visible code.
#[derive(Debug, Error)]
pub enum HostError {
    /// Bad argument from the caller (oversized source, zero timeout, bad options). Changes nothing.
    #[error("{0}")]
    InvalidInput(String),
    /// `resume` of an id that is not (or no longer) suspended.
    #[error("no suspended execution with id '{0}'")]
    UnknownExecution(String),
    /// All `maxInstances` slots are live (running + suspended), or the instance pool is full.
    #[error("{0}")]
    CapacityExceeded(String),
    /// The runtime was shut down (before or during the call).
    #[error("the runtime has been shut down")]
    Shutdown,
    /// The handler source does not compile: the guest's message and, when it reported them, the
    /// 1-based `line` / `column` in the handler's own source and its `stack`. The N-API layer
    /// sets them as properties of the JS `Error` (lib.rs `js_error`).
    #[error("{message}")]
    Compilation {
        message: String,
        line: Option<u32>,
        column: Option<u32>,
        stack: Option<String>,
    },
    /// guest.wasm cannot be used: missing file, invalid module, unknown import, missing export.
    #[error("{0}")]
    GuestLoad(String),
    /// A host-side failure that is not the caller's fault (instantiation failed, the guest broke
    /// the ABI, a worker thread panicked).
    #[error("{0}")]
    Internal(String),
}

impl HostError {
    /// The JS-visible error code (the `code` property of the rejected `Error`).
    pub fn code(&self) -> &'static str {
        match self {
            HostError::InvalidInput(_) => "INVALID_INPUT",
            HostError::UnknownExecution(_) => "UNKNOWN_EXECUTION",
            HostError::CapacityExceeded(_) => "CAPACITY_EXCEEDED",
            HostError::Shutdown => "SHUTDOWN",
            HostError::Compilation { .. } => "COMPILATION_ERROR",
            HostError::GuestLoad(_) => "GUEST_LOAD_ERROR",
            HostError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// Shorthand for an [`HostError::InvalidInput`] with a formatted message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        HostError::InvalidInput(msg.into())
    }

    /// A [`HostError::Compilation`] with a message only (no position).
    pub fn compilation(msg: impl Into<String>) -> Self {
        HostError::Compilation {
            message: msg.into(),
            line: None,
            column: None,
            stack: None,
        }
    }

    /// Shorthand for an [`HostError::Internal`] with a formatted message.
    pub fn internal(msg: impl Into<String>) -> Self {
        HostError::Internal(msg.into())
    }
}

/// Result alias of the host crate.
pub type HostResult<T> = Result<T, HostError>;
