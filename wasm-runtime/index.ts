/**
 * The wasm-runtime: runs panel handlers inside QuickJS compiled to WebAssembly, in wasmtime,
 * through the native addon built from this folder (`bash wasm-runtime/build.sh`).
 *
 * This wrapper is mechanism: execute / resume / cancel, argument checks, mapping traps to
 * execution error codes, and metrics. Policy lives with its caller (plugins/executor.ts: the
 * admission gate, the suspension timeout); used directly, `maxInstances` live executions are
 * the bound and one more fails at once with CAPACITY_EXCEEDED. The addon owns the engine,
 * instances, limits, cache, the table of suspended instances, the worker threads
 * (`workerThreads`) and each panel's committed state (`PanelState`, state.ts).
 * Behaviour follows ../shared/DESIGN.md ("The sandbox"); the guest contract is ABI.md.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { GUEST_PATH, addon, type NativeRuntime, type RawResult, type TrapKind } from './addon.js'
import { RuntimeError, type CompileErrorPosition } from './errors.js'
import { PanelState } from './state.js'
import { RUNTIME_OPTION_DEFAULTS } from './options.js'
import type {
  CallResult,
  CompiledHandler,
  ExecutionContext,
  ExecutionError,
  ExecutionErrorCode,
  ExecutionResult,
  RuntimeConfig,
  RuntimeErrorCode,
  RuntimeStats,
  Placement,
} from './types.js'

export * from './types.js'
export { defaultWorkerThreads } from './admission.js'
export { RuntimeError, type CompileErrorPosition } from './errors.js'
export { PanelState } from './state.js'
export { RuntimeOptions, RUNTIME_OPTION_DEFAULTS } from './options.js'


/** The guest's output (ABI.md): an ExecutionResult whose metrics hold only hostCalls. */
type GuestOutput = Omit<ExecutionResult, 'metrics'> & { metrics: Partial<ExecutionResult['metrics']> & { hostCalls: number } }

/**
 * What a segment that trapped (`RawResult.trap`, the addon's TrapKind) ends the execution with:
 * the ExecutionResult error code and its message. Keyed by every TrapKind, so a kind the addon
 * adds does not compile until it is mapped here. SHUTDOWN never reaches a result (the addon
 * rejects with the SHUTDOWN error instead); TRAP is the sandbox's own failure.
 */
export const TRAP_CODES: Record<TrapKind, { code: ExecutionErrorCode; message: (raw: RawResult, timeoutMs: number) => string }> = {
  TIMEOUT: { code: 'TIMEOUT', message: (_, timeoutMs) => `the handler ran past its ${timeoutMs} ms timeout` },
  MEMORY_LIMIT: { code: 'MEMORY_LIMIT', message: (raw) => memoryError(raw).message },
  STACK_OVERFLOW: { code: 'EXECUTION_ERROR', message: () => 'RangeError: Maximum call stack size exceeded' },
  FUEL_EXHAUSTED: { code: 'RESOURCE_LIMIT', message: () => 'the handler used up its instruction budget (fuel)' },
  TRAP: { code: 'INTERNAL_ERROR', message: (raw) => trapped(raw) },
  SHUTDOWN: { code: 'INTERNAL_ERROR', message: (raw) => trapped(raw) },
}

function trapped(raw: RawResult): string {
  return `the sandbox trapped: ${raw.trapMessage ?? raw.trap}`
}

/** Calls of a handler that skip the inline slice after it once ran out (see WasmRuntime.dispatch). */
const OVERRUN_BACKOFF = 64

type RuntimeMetrics = ReturnType<typeof runtimeMetrics>

/** The runtime's Prometheus metrics, registered on `registry`; `suspended` reads the addon's count. */
function runtimeMetrics(registry: Registry, suspended: () => number) {
  const registers = [registry]
  return {
    suspended: new Gauge({
      name: 'wk_runtime_suspended_instances',
      help: 'Sandbox instances held by suspended executions',
      registers,
      collect() {
        this.set(suspended())
      },
    }),
    segments: new Counter({
      name: 'wk_runtime_segments_total',
      help: 'Handler run segments by outcome (success, error, suspended)',
      labelNames: ['status'] as const,
      registers,
    }),
    placements: new Counter({
      name: 'wk_runtime_first_segments_total',
      help: 'First segments of executions by where they ran to their end (inline on the event loop, or pool: a worker thread)',
      labelNames: ['placement'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'wk_runtime_errors_total',
      help: 'Executions that ended in an error, by code',
      labelNames: ['code'] as const,
      registers,
    }),
    segmentSeconds: new Histogram({
      name: 'wk_runtime_segment_duration_seconds',
      help: 'Wall time of one handler run segment inside the sandbox',
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1, 5],
      registers,
    }),
  }
}

/**
 * A sandbox runtime. One per app is typical; every method is safe to call concurrently.
 * Construction throws `RuntimeError` INTERNAL_ERROR when the addon or guest is missing (addon.ts), or the addon's
 * INVALID_INPUT / GUEST_LOAD_ERROR for bad options or a broken guest.
 */
export class WasmRuntime {
  readonly config: Required<Omit<RuntimeConfig, 'cacheDir'>> & Pick<RuntimeConfig, 'cacheDir'>
  /**
   * Where this runtime's `wk_runtime_*` metrics live: the registry passed to the constructor (the
   * app's, so they appear on its /metrics) or one of its own.
   */
  readonly registry: Registry
  private readonly raw: NativeRuntime
  /**
   * The private states made from plain-object contexts of suspended executions, which this
   * wrapper commits itself (not a table of suspensions: the addon holds those).
   */
  private readonly owned = new Map<string, PanelState>()
  /** Handlers that outlived their inline slice → pooled runs left before they may try inline again. */
  private readonly overran = new Map<string | Buffer, number>()
  private readonly byStatus = { success: 0, error: 0, suspended: 0 }
  private readonly byPlacement: Record<Placement, number> = { inline: 0, pool: 0 }
  private readonly placedOn: Partial<Record<Placement, { inc(): void }>> = {}
  private readonly segmentsBy: Partial<Record<ExecutionResult['status'], { inc(): void }>> = {}
  private executions = 0
  private closed = false
  private readonly metrics: RuntimeMetrics

  /** `options.registry`: a prom-client Registry to register the runtime's metrics on (default: a new one). */
  constructor(config: RuntimeConfig = {}, options: { registry?: Registry } = {}) {
    this.registry = options.registry ?? new Registry()
    this.metrics = runtimeMetrics(this.registry, () => (this.closed ? 0 : this.raw.stats().suspended))
    this.config = { ...RUNTIME_OPTION_DEFAULTS, ...stripUndefined(config) }
    this.raw = new (addon().Runtime)({
      guestPath: GUEST_PATH,
      maxInstances: this.config.maxInstances,
      memoryLimitBytes: this.config.memoryLimitBytes,
      fuelLimit: this.config.fuelLimit,
      maxSourceBytes: this.config.maxSourceBytes,
      memoryCacheEntries: this.config.memoryCacheEntries,
      cacheDir: this.config.cacheDir,
      maxCacheSizeBytes: this.config.maxCacheSizeBytes,
      workerThreads: this.config.workerThreads,
    })
  }

  /**
   * Compiles handler source (the body of an async function) to QuickJS bytecode, through the
   * memory/disk cache keyed by the SHA-256 of the source.
   * Rejects RuntimeError COMPILATION_ERROR (with `line`/`column` in the handler's own source),
   * INVALID_INPUT (not a string, or larger than maxSourceBytes), SHUTDOWN.
   */
  async precompile(source: string): Promise<CompiledHandler> {
    this.assertOpen()
    checkSource(source, this.config.maxSourceBytes)
    try {
      return await this.raw.precompile(source)
    } catch (err) {
      throw clampToSource(fromAddonError(err), source)
    }
  }

  /**
   * A new committed state for executions (`ExecutionContext.state`), holding `initial`'s entries.
   * Throws RuntimeError INVALID_INPUT (see `PanelState.apply`).
   */
  createState(initial?: Record<string, unknown>): PanelState {
    return new PanelState(initial)
  }

  /**
   * Runs a handler (source, or bytecode from `precompile`) in a fresh instance for at most
   * `timeoutMs` (default `defaultTimeoutMs`) of running time. Resolves with the first segment's
   * result; `status: 'suspended'` carries `executionId` and `pendingCalls` for `resume`.
   * The handler reads `context.state` lazily (a `PanelState`; a plain object is copied into a
   * private one first, which costs what the object's size costs).
   * `placement` says where it runs (see `Placement`; the caller's policy decides, e.g.
   * plugins/executor/placement.ts); default `inline`.
   * Execution failures are results (`error.code`); rejects only with RuntimeError INVALID_INPUT,
   * COMPILATION_ERROR, CAPACITY_EXCEEDED (`maxInstances` executions live: no queue here, see
   * plugins/executor/gate.ts) or SHUTDOWN.
   */
  async execute(handler: string | CompiledHandler, context: ExecutionContext, timeoutMs?: number, placement: Placement = 'inline'): Promise<ExecutionResult> {
    this.assertOpen()
    const timeout = checkTimeout(timeoutMs, this.config.defaultTimeoutMs)
    if (placement !== 'inline' && placement !== 'pool') throw new RuntimeError('INVALID_INPUT', `placement must be 'inline' or 'pool', got ${String(placement)}`)
    checkContext(context)
    const compiled = typeof handler === 'string' ? await this.precompile(handler) : checkCompiled(handler)
    const contextBytes = this.contextBytes(context)
    let owned: PanelState | undefined
    const state = context.state instanceof PanelState ? context.state : (owned = new PanelState(context.state))
    this.executions++
    const run = (): Promise<RawResult> => this.dispatch(compiled, contextBytes, state, timeout, placement)
    return this.settle(run, compiled.cacheHit || typeof handler !== 'string', timeout, owned)
  }

  /**
   * Settles the pending calls of a suspended execution and runs it on; it may suspend again
   * (with a new `executionId`). The next segment reads the execution's `PanelState` as committed
   * now (DESIGN.md "State consistency"): commit each segment's mutations into it before resuming
   * (an execution started with a plain-object state has its own writes committed for it).
   * `timeoutMs` defaults to `defaultTimeoutMs`. A suspended execution waits as long as its caller
   * lets it: the caller's policy times it out with `cancel`.
   * Rejects RuntimeError UNKNOWN_EXECUTION (never suspended, already resumed or cancelled),
   * INVALID_INPUT (bad results: the execution stays suspended), SHUTDOWN.
   */
  async resume(executionId: string, results: CallResult[], timeoutMs?: number): Promise<ExecutionResult> {
    this.assertOpen()
    if (typeof executionId !== 'string') throw new RuntimeError('UNKNOWN_EXECUTION', `no suspended execution ${JSON.stringify(executionId)}`)
    const input = resumeJson(results)
    const timeout = checkTimeout(timeoutMs, this.config.defaultTimeoutMs)
    const owned = this.owned.get(executionId)
    this.owned.delete(executionId)
    try {
      return await this.settle(() => this.raw.resume(executionId, input, timeout), true, timeout, owned)
    } catch (err) {
      this.raw.cancel(executionId) // a resume that failed leaves nothing suspended behind
      throw err
    }
  }

  /** Frees a suspended execution and its instance at once. False when `executionId` is not suspended. */
  cancel(executionId: string): boolean {
    const cancelled = this.raw.cancel(executionId)
    this.owned.get(executionId)?.clear()
    this.owned.delete(executionId)
    return cancelled
  }

  /** Counters of this runtime. */
  getStats(): RuntimeStats {
    const raw = this.raw.stats()
    return {
      executions: this.executions,
      byPlacement: { ...this.byPlacement },
      suspended: raw.suspended,
      running: raw.runningJobs,
      queued: raw.queuedJobs,
      threads: raw.threads,
      cacheEntries: raw.cacheEntries,
      cacheHits: raw.cacheHits,
      cacheMisses: raw.cacheMisses,
      byStatus: { ...this.byStatus },
    }
  }

  /**
   * Worker threads with no job running or queued now (a thread that just finished counts as busy
   * until it looks for its next job): what a caller's placement policy reads before it passes
   * `placement: 'pool'`, so that the pool's queue stays empty. 0 after shutdown.
   */
  idleThreads(): number {
    return this.closed ? 0 : this.raw.idleThreads()
  }

  /** Prometheus text exposition of this runtime's metrics. */
  getMetrics(): Promise<string> {
    return this.registry.metrics()
  }

  /** Cancels every suspension, fails queued calls with SHUTDOWN and frees the engine. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.raw.shutdown()
    for (const state of this.owned.values()) state.clear()
    this.owned.clear()
  }

  private async settle(run: () => Promise<RawResult>, cacheHit: boolean, timeoutMs: number, owned?: PanelState): Promise<ExecutionResult> {
    let raw: RawResult
    try {
      raw = await run()
    } catch (err) {
      owned?.clear()
      throw fromAddonError(err)
    }
    const result = toResult(raw, cacheHit, timeoutMs)
    this.record(result, raw.durationUs)
    if (result.status === 'suspended' && result.executionId) {
      if (owned) {
        owned.apply(result.stateMutations)
        this.owned.set(result.executionId, owned)
      }
    } else owned?.clear()
    return result
  }

  /**
   * Runs one execution's first segment where `placement` says (issue 11). `inline`: on this
   * thread for at most `inlineSliceMs`, then (if it has not finished) from the start on a worker
   * thread — the slice recorded nothing, so re-running is safe. Inline is the default because a
   * hop to a worker costs the panel's next segment an event-loop turn, which measured slower than
   * the inline call itself for one hot panel (bench/kernel.ts, 2 cores); the executor passes
   * `pool` when other panels' segments wait and a worker is idle. To bound the waste of a
   * thrown-away slice, a handler that outlived it skips the inline slice for its next
   * OVERRUN_BACKOFF calls (≤ 1 wasted slice per that many).
   */
  private dispatch(compiled: CompiledHandler, context: Buffer, state: PanelState, timeout: number, placement: Placement): Promise<RawResult> {
    const slice = this.config.inlineSliceMs
    const key = compiled.cacheKey ?? compiled.bytecode
    const backoff = this.overran.get(key)
    if (backoff !== undefined) {
      if (backoff <= 1) this.overran.delete(key)
      else this.overran.set(key, backoff - 1)
    } else if (slice > 0 && placement === 'inline') {
      const raw = this.raw.executeInline(compiled.bytecode, context, state.native, timeout, slice)
      if (raw) {
        this.placed('inline')
        return Promise.resolve(raw)
      }
      if (this.overran.size >= this.config.memoryCacheEntries) this.overran.clear()
      this.overran.set(key, OVERRUN_BACKOFF)
    }
    this.placed('pool')
    return this.raw.execute(compiled.bytecode, context, state.native, timeout)
  }

  private placed(placement: Placement): void {
    this.byPlacement[placement]++
    ;(this.placedOn[placement] ??= this.metrics.placements.labels(placement)).inc()
  }

  private record(result: ExecutionResult, durationUs: number): void {
    this.byStatus[result.status]++
    // a child per status, bound once: labelling each segment would hash the labels every time
    ;(this.segmentsBy[result.status] ??= this.metrics.segments.labels(result.status)).inc()
    this.metrics.segmentSeconds.observe(durationUs / 1e6)
    if (result.error) this.metrics.errors.inc({ code: result.error.code })
  }

  /** The binary context of ABI.md "Context" (the context was checked by `checkContext`). */
  private contextBytes(context: ExecutionContext): Buffer {
    const { maxHostCalls, maxStateMutations, maxEvents } = this.config
    let sections: string[]
    try {
      sections = [jsonSection(context.extensions, '{}'), jsonSection(context.args, 'null'), jsonSection(context.scope, '{}')]
    } catch (err) {
      throw new RuntimeError('INVALID_INPUT', `context is not JSON-serializable: ${(err as Error).message}`)
    }
    // seed 0: the addon draws one per execution (cheaper than crypto.randomInt on this thread)
    return encodeContext([maxHostCalls, maxStateMutations, maxEvents, maxHostCalls], 0, context.capabilities, sections)
  }

  private assertOpen(): void {
    if (this.closed) throw new RuntimeError('SHUTDOWN', 'the runtime has been shut down')
  }
}

/** JSON text of an optional context field; '' (the guest's default) when absent or equal to `empty`. */
function jsonSection(value: unknown, empty: string): string {
  if (value === undefined || value === null) return ''
  const text = JSON.stringify(value) as string | undefined
  return text === undefined || text === empty ? '' : text
}

const CONTEXT_MAGIC = 'WKC1'

/**
 * ABI.md "Context": magic, limits and seed as u32 LE, the capability tokens, then the
 * extensions / args / scope JSON sections; each string is u32 length + UTF-8 + NUL.
 */
function encodeContext(limits: number[], seed: number, capabilities: string[], sections: string[]): Buffer {
  const strings = [...capabilities, ...sections]
  let size = 4 + 4 * (limits.length + 3)
  for (const s of strings) size += 5 + Buffer.byteLength(s)
  const buf = Buffer.allocUnsafe(size)
  let at = buf.write(CONTEXT_MAGIC, 0, 'latin1')
  for (const n of limits) at = buf.writeUInt32LE(n, at)
  at = buf.writeUInt32LE(seed % 2 ** 32, at)
  at = buf.writeUInt32LE(Math.floor(seed / 2 ** 32), at)
  at = buf.writeUInt32LE(capabilities.length, at)
  for (const s of strings) {
    const n = buf.write(s, at + 4, 'utf8')
    buf.writeUInt32LE(n, at)
    buf[at + 4 + n] = 0
    at += 5 + n
  }
  return buf
}

function toResult(raw: RawResult, cacheHit: boolean, timeoutMs: number): ExecutionResult {
  if (raw.trap && !raw.outputJson) {
    const metrics = { durationUs: Math.round(raw.durationUs), instructionCount: raw.fuelConsumed, memoryPeakBytes: raw.memoryPeakBytes, hostCalls: 0, cacheHit }
    return trapResult(raw, raw.trap, timeoutMs, metrics)
  }
  // the guest's object is the result: its metrics get the host's observations added in place
  const result = JSON.parse(raw.outputJson) as GuestOutput
  const m = result.metrics
  m.durationUs = Math.round(raw.durationUs)
  m.instructionCount = raw.fuelConsumed
  m.memoryPeakBytes = raw.memoryPeakBytes
  m.cacheHit = cacheHit
  if (raw.suspended) result.executionId = raw.executionId
  if (result.error && raw.memoryLimitHit) result.error = memoryError(raw)
  return result as ExecutionResult
}

function trapResult(raw: RawResult, trap: TrapKind, timeoutMs: number, metrics: ExecutionResult['metrics']): ExecutionResult {
  const { code, message } = TRAP_CODES[raw.memoryLimitHit ? 'MEMORY_LIMIT' : trap]
  const error: ExecutionError = { code, message: message(raw, timeoutMs) }
  return { status: 'error', stateMutations: [], events: [], viewCommands: [], logs: [], pendingCalls: [], error, metrics }
}

function memoryError(raw: RawResult): ExecutionError {
  return { code: 'MEMORY_LIMIT', message: `the handler exceeded its memory limit (peak ${raw.memoryPeakBytes} bytes)` }
}

/** A coded error the addon throws (lib.rs `js_error`); COMPILATION_ERROR also has the position. */
interface AddonError extends Error, CompileErrorPosition {
  code?: string
}

/** The addon's codes that are RuntimeError codes (GUEST_LOAD_ERROR stays the addon's own Error). */
const RUNTIME_CODES: Record<RuntimeErrorCode, true> = {
  INVALID_INPUT: true,
  UNKNOWN_EXECUTION: true,
  CAPACITY_EXCEEDED: true,
  SHUTDOWN: true,
  COMPILATION_ERROR: true,
  INTERNAL_ERROR: true,
}

function fromAddonError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(String(err))
  const { code } = err as AddonError
  if (typeof code !== 'string' || !Object.hasOwn(RUNTIME_CODES, code)) return err
  return new RuntimeError(code as RuntimeErrorCode, err.message, err as AddonError)
}

/** Errors found at the end of input (past the wrapper's closing line) point just past the source. */
function clampToSource(err: Error, source: string): Error {
  if (!(err instanceof RuntimeError) || err.line === undefined) return err
  const lines = source.split('\n')
  if (err.line <= lines.length) return err
  return new RuntimeError(err.code, err.message, { line: lines.length, column: lines[lines.length - 1].length + 1, guestStack: err.guestStack })
}

function checkSource(source: unknown, maxBytes: number): asserts source is string {
  if (typeof source !== 'string') throw new RuntimeError('INVALID_INPUT', `handler source must be a string, got ${typeOf(source)}`)
  const bytes = Buffer.byteLength(source)
  if (bytes > maxBytes) throw new RuntimeError('INVALID_INPUT', `handler source is ${bytes} bytes; the limit is ${maxBytes}`)
}

function checkCompiled(handler: unknown): CompiledHandler {
  const h = handler as CompiledHandler
  if (!h || typeof h !== 'object' || !Buffer.isBuffer(h.bytecode) || h.bytecode.length === 0) {
    throw new RuntimeError('INVALID_INPUT', `handler must be source text or a CompiledHandler from precompile(), got ${typeOf(handler)}`)
  }
  return h
}

function checkTimeout(timeoutMs: number | undefined, fallback: number): number {
  if (timeoutMs === undefined) return fallback
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31 - 1) {
    throw new RuntimeError('INVALID_INPUT', `timeoutMs must be a positive integer (ms), got ${String(timeoutMs)}`)
  }
  return timeoutMs
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function checkContext(c: ExecutionContext): void {
  const bad = (what: string): never => {
    throw new RuntimeError('INVALID_INPUT', `invalid execution context: ${what}`)
  }
  if (!isPlainObject(c)) bad(`expected an object, got ${typeOf(c)}`)
  if (typeof c.panelId !== 'string') bad('panelId must be a string')
  if (typeof c.handlerName !== 'string') bad('handlerName must be a string')
  if (!(c.state instanceof PanelState) && !isPlainObject(c.state)) bad('state must be an object or a PanelState')
  if (c.scope !== undefined && !isPlainObject(c.scope)) bad('scope must be an object')
  if (!Array.isArray(c.capabilities) || !c.capabilities.every((t) => typeof t === 'string')) bad('capabilities must be an array of strings')
  if (c.extensions !== undefined) {
    if (!isPlainObject(c.extensions)) bad('extensions must map names to method lists')
    for (const [name, methods] of Object.entries(c.extensions)) {
      if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) bad(`extensions.${name} must be an array of method names`)
    }
  }
}

function resumeJson(results: CallResult[]): string {
  const bad = (what: string): never => {
    throw new RuntimeError('INVALID_INPUT', `invalid resume results: ${what}`)
  }
  if (!Array.isArray(results)) bad(`expected an array, got ${typeOf(results)}`)
  for (const r of results) {
    if (!isPlainObject(r) || !Number.isInteger(r.callId) || typeof r.ok !== 'boolean') bad('each result needs an integer callId and a boolean ok')
    if (r.ok === false && (!isPlainObject(r.error) || typeof r.error.message !== 'string')) bad(`result ${r.callId} has ok:false without error.message`)
  }
  try {
    return JSON.stringify({ results })
  } catch (err) {
    return bad(`not JSON-serializable: ${(err as Error).message}`)
  }
}

function typeOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
