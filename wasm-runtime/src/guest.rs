//! One guest instance and the ABI calls of ABI.md: inputs go in through `wk_alloc` + memory
//! writes, `wk_compile` / `wk_execute` / `wk_resume` run, the output is read back through
//! `wk_output_ptr` / `wk_output_len`. Failures of a call are classified into trap kinds.

use napi_derive::napi;
use wasmtime::{Engine, Extern, Memory, Module, ModuleExport, Store, Trap, TypedFunc};

use crate::engine::LoadedGuest;
use crate::error::{HostError, HostResult};
use crate::host::{HostState, ProcExit};
use crate::limits::{self, Deadline, Interrupt, MemoryLimiter};
use crate::state::SharedState;

/// Why a guest call ended abnormally. The instance is dropped afterwards, never reused. Crosses
/// N-API as the string enum `TrapKind` of build/binding.d.ts (`'TIMEOUT'`, `'MEMORY_LIMIT'`, …).
#[napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// Wall-clock deadline of the segment passed.
    Timeout,
    /// Linear memory growth was refused (or the guest reported it could not allocate).
    MemoryLimit,
    /// The wasm stack (`max_wasm_stack`) was exhausted.
    StackOverflow,
    /// The fuel budget of the execution ran out.
    FuelExhausted,
    /// Any other trap, or a guest that broke the ABI.
    Trap,
    /// The runtime shut down while the call ran (reported as the SHUTDOWN error, not a trap).
    Shutdown,
}

/// An abnormal end of a guest call: kind + human-readable message.
#[derive(Debug, Clone)]
pub struct GuestTrap {
    pub kind: TrapKind,
    pub message: String,
}

impl GuestTrap {
    fn new(kind: TrapKind, message: impl Into<String>) -> Self {
        GuestTrap {
            kind,
            message: message.into(),
        }
    }
}

/// Turns the error of a failed wasm call into a trap kind. `memory_refused` is the limiter's
/// flag: an otherwise unexplained trap after refused growth (QuickJS aborting on a failed
/// allocation, say) is reported as MEMORY_LIMIT.
pub fn classify_trap(err: &wasmtime::Error, memory_refused: bool) -> TrapKind {
    if let Some(i) = err.downcast_ref::<Interrupt>() {
        return match i {
            Interrupt::Timeout => TrapKind::Timeout,
            Interrupt::Shutdown => TrapKind::Shutdown,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => TrapKind::Timeout,
        Some(Trap::OutOfFuel) => TrapKind::FuelExhausted,
        Some(Trap::StackOverflow) => TrapKind::StackOverflow,
        _ if memory_refused => TrapKind::MemoryLimit,
        _ => TrapKind::Trap,
    }
}

/// The typed exports of the guest ABI.
struct Exports {
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    compile: TypedFunc<(i32, i32), i32>,
    execute: TypedFunc<(i32, i32, i32, i32), i32>,
    resume: TypedFunc<(i32, i32), i32>,
    output_ptr: TypedFunc<(), i32>,
    output_len: TypedFunc<(), i32>,
}

/// Where the ABI's exports sit in the guest module, resolved once when the guest loads, so an
/// instantiation looks none of them up by name.
pub struct ExportIndex {
    memory: ModuleExport,
    alloc: ModuleExport,
    compile: ModuleExport,
    execute: ModuleExport,
    resume: ModuleExport,
    output_ptr: ModuleExport,
    output_len: ModuleExport,
}

impl ExportIndex {
    /// The ABI exports of `module` (GUEST_LOAD_ERROR when one is missing).
    pub fn of(module: &Module) -> HostResult<Self> {
        let at = |name: &str| {
            module
                .get_export_index(name)
                .ok_or_else(|| HostError::GuestLoad(format!("guest module lacks export {name}")))
        };
        Ok(ExportIndex {
            memory: at("memory")?,
            alloc: at("wk_alloc")?,
            compile: at("wk_compile")?,
            execute: at("wk_execute")?,
            resume: at("wk_resume")?,
            output_ptr: at("wk_output_ptr")?,
            output_len: at("wk_output_len")?,
        })
    }
}

/// A live guest instance with its own store. Dropping it returns its pool slot.
pub struct GuestInstance {
    store: Store<HostState>,
    exports: Exports,
}

/// Per-instance limits given at instantiation.
#[derive(Debug, Clone)]
pub struct InstanceLimits {
    /// Linear memory cap, bytes.
    pub memory_bytes: usize,
    /// Fuel for the whole execution (all segments); [`limits::UNLIMITED_FUEL`] for none.
    pub fuel: u64,
    /// Deadline of the first segment.
    pub deadline: Deadline,
}

impl GuestInstance {
    /// Instantiates the guest in a fresh store whose executions read `state`. A full pool is
    /// CAPACITY_EXCEEDED.
    pub fn instantiate(
        engine: &Engine,
        guest: &LoadedGuest,
        lim: InstanceLimits,
        state: SharedState,
    ) -> HostResult<Self> {
        let mut store = Store::new(
            engine,
            HostState::new(MemoryLimiter::new(lim.memory_bytes), lim.deadline, state),
        );
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(lim.fuel)
            .map_err(|e| HostError::internal(format!("cannot set fuel: {e}")))?;
        limits::arm_epoch_checks(&mut store);
        let instance = guest.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                HostError::CapacityExceeded(format!("no free guest instance slot: {e}"))
            } else {
                HostError::internal(format!("cannot instantiate the guest: {e:#}"))
            }
        })?;
        let ix = &guest.exports;
        let memory = match instance.get_module_export(&mut store, &ix.memory) {
            Some(Extern::Memory(m)) => m,
            _ => return Err(HostError::internal("guest has no memory export")),
        };
        store.data_mut().memory = Some(memory);
        let exports = Exports {
            memory,
            alloc: typed(&instance, &mut store, &ix.alloc, "wk_alloc")?,
            compile: typed(&instance, &mut store, &ix.compile, "wk_compile")?,
            execute: typed(&instance, &mut store, &ix.execute, "wk_execute")?,
            resume: typed(&instance, &mut store, &ix.resume, "wk_resume")?,
            output_ptr: typed(&instance, &mut store, &ix.output_ptr, "wk_output_ptr")?,
            output_len: typed(&instance, &mut store, &ix.output_len, "wk_output_len")?,
        };
        Ok(GuestInstance { store, exports })
    }

    /// The store (limits, fuel, console).
    pub fn store(&self) -> &Store<HostState> {
        &self.store
    }

    /// Starts a new segment with `deadline`.
    pub fn set_deadline(&mut self, deadline: Deadline) {
        limits::set_deadline(&mut self.store, deadline);
    }

    /// `wk_compile(source)`: the guest status (0 ok, 1 compile error).
    pub fn compile(&mut self, source: &[u8]) -> Result<i32, GuestTrap> {
        let (p, n) = self.put(source)?;
        let r = self.exports.compile.call(&mut self.store, (p, n));
        self.check(r)
    }

    /// `wk_execute(code, context)`: the guest status (0 finished, 1 suspended, 2 no result).
    pub fn execute(&mut self, code: &[u8], context: &[u8]) -> Result<i32, GuestTrap> {
        // one allocation (one call into the guest) for both inputs
        let (cp, len) = self.alloc(code.len().saturating_add(context.len()))?;
        let (cn, xn) = (code.len() as i32, len - code.len() as i32);
        let xp = cp.wrapping_add(cn); // addresses are u32 bit patterns
        self.write(cp as u32 as usize, code)?;
        self.write(xp as u32 as usize, context)?;
        if context.get(SEED_AT..SEED_AT + 8) == Some(&[0; 8]) {
            self.write(xp as u32 as usize + SEED_AT, &fresh_seed())?;
        }
        self.store.data_mut().begin_segment();
        let r = self.exports.execute.call(&mut self.store, (cp, cn, xp, xn));
        self.store.data_mut().end_segment();
        self.check(r)
    }

    /// `wk_resume(results)`: the guest status, as for [`GuestInstance::execute`]. The segment
    /// reads the state as committed now.
    pub fn resume(&mut self, results: &[u8]) -> Result<i32, GuestTrap> {
        let (p, n) = self.put(results)?;
        self.store.data_mut().begin_segment();
        let r = self.exports.resume.call(&mut self.store, (p, n));
        self.store.data_mut().end_segment();
        self.check(r)
    }

    /// The bytes of the last output (copied out of guest memory).
    pub fn output(&mut self) -> Result<Vec<u8>, GuestTrap> {
        let ptr = self.exports.output_ptr.call(&mut self.store, ());
        let ptr = self.check(ptr)? as u32 as usize;
        let len = self.exports.output_len.call(&mut self.store, ());
        let len = self.check(len)? as u32 as usize;
        let data = self.exports.memory.data(&self.store);
        match data.get(ptr..ptr.saturating_add(len)) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(GuestTrap::new(
                TrapKind::Trap,
                format!("guest output [{ptr}, +{len}) is outside its memory"),
            )),
        }
    }

    /// Writes `bytes` at guest address `at`.
    fn write(&mut self, at: usize, bytes: &[u8]) -> Result<(), GuestTrap> {
        self.exports
            .memory
            .write(&mut self.store, at, bytes)
            .map_err(|_| {
                GuestTrap::new(
                    TrapKind::Trap,
                    "wk_alloc returned an address outside guest memory",
                )
            })
    }

    /// Copies `bytes` into guest memory through `wk_alloc`; returns (address, length).
    fn put(&mut self, bytes: &[u8]) -> Result<(i32, i32), GuestTrap> {
        let (ptr, len) = self.alloc(bytes.len())?;
        self.write(ptr as u32 as usize, bytes)?;
        Ok((ptr, len))
    }

    /// `wk_alloc(len)`: guest memory for `len` input bytes; returns (address, length).
    fn alloc(&mut self, len: usize) -> Result<(i32, i32), GuestTrap> {
        let len = i32::try_from(len)
            .map_err(|_| GuestTrap::new(TrapKind::MemoryLimit, "input larger than 2 GiB"))?;
        // Ask for at least one byte so that an empty input still gets a valid address.
        let r = self.exports.alloc.call(&mut self.store, len.max(1));
        let ptr = self.check(r)?;
        if ptr == 0 {
            return Err(GuestTrap::new(
                TrapKind::MemoryLimit,
                format!("guest could not allocate {len} input bytes"),
            ));
        }
        Ok((ptr, len))
    }

    /// Maps a wasm call result to a status or a classified trap.
    fn check(&self, r: wasmtime::Result<i32>) -> Result<i32, GuestTrap> {
        r.map_err(|e| {
            let kind = classify_trap(&e, self.store.data().limiter.refused);
            GuestTrap::new(kind, self.describe(&e, kind))
        })
    }

    /// Trap message: wasmtime's text (or ours), plus the first console bytes the guest printed.
    fn describe(&self, e: &wasmtime::Error, kind: TrapKind) -> String {
        let mut msg = match kind {
            TrapKind::Timeout => "execution exceeded its wall-clock timeout".to_owned(),
            TrapKind::FuelExhausted => {
                "execution exhausted its fuel (instruction) budget".to_owned()
            }
            TrapKind::StackOverflow => "wasm call stack exhausted (recursion too deep)".to_owned(),
            TrapKind::MemoryLimit => format!("memory limit reached ({e})"),
            TrapKind::Shutdown => "runtime shut down".to_owned(),
            TrapKind::Trap => match e.downcast_ref::<ProcExit>() {
                Some(p) => p.to_string(),
                None => format!("{e:#}"),
            },
        };
        let console = &self.store.data().console_head;
        if !console.is_empty() && matches!(kind, TrapKind::Trap | TrapKind::MemoryLimit) {
            msg.push_str("; guest output: ");
            msg.push_str(String::from_utf8_lossy(console).trim_end());
        }
        msg
    }
}

/// Offset of the `Math.random` seed in the binary context (ABI.md "Context").
const SEED_AT: usize = 20;

/// Seeds per refill of the thread's random buffer.
const SEEDS_PER_FILL: usize = 64;

thread_local! {
    /// Random bytes from the OS RNG, handed out 8 at a time (one `getrandom` per 64 executions).
    static SEEDS: std::cell::RefCell<(usize, [u8; 8 * SEEDS_PER_FILL])> =
        const { std::cell::RefCell::new((SEEDS_PER_FILL, [0; 8 * SEEDS_PER_FILL])) };
}

/// A fresh `Math.random` seed as the context stores it: `u32` low, `u32` high, below 2^47 and
/// never 0 (a context's 0 asks the host for one).
fn fresh_seed() -> [u8; 8] {
    SEEDS.with_borrow_mut(|(next, buf)| {
        if *next == SEEDS_PER_FILL {
            if getrandom::fill(buf).is_err() {
                // no OS randomness (not seen on Linux): seeds from the clock still differ per call
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64);
                for (i, c) in buf.chunks_exact_mut(8).enumerate() {
                    c.copy_from_slice(
                        &(t ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes(),
                    );
                }
            }
            *next = 0;
        }
        let at = *next * 8;
        *next += 1;
        let raw = u64::from_le_bytes(buf[at..at + 8].try_into().unwrap_or([1; 8]));
        ((raw & ((1 << 47) - 1)).max(1)).to_le_bytes()
    })
}

fn typed<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    instance: &wasmtime::Instance,
    store: &mut Store<HostState>,
    export: &ModuleExport,
    name: &str,
) -> HostResult<TypedFunc<P, R>> {
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .ok_or_else(|| HostError::internal(format!("guest export {name} is not a function")))?
        .typed::<P, R>(&*store)
        .map_err(|e| HostError::internal(format!("guest export {name}: {e}")))
}
