import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { WasmRuntime, type PanelState } from '../wasm-runtime/index.js'
import type {
  CallResult,
  CompiledHandler,
  EmittedEvent,
  ExecutionContext,
  ExecutionError,
  ExecutionResult,
  LogEntry,
  PendingCall,
  RuntimeConfig,
  RuntimeStats,
  StateMutation,
  ViewCommand,
} from '../wasm-runtime/types.js'

/** Options of the executor plugin: the wasm-runtime's own config (sizes in bytes, times in ms). */
export type ExecutorPluginOptions = RuntimeConfig

/** Who an extension call is made for; passed on to `fastify.extensions.call`. */
export interface RunCallContext {
  panelId?: string
  namespace?: string
}

/**
 * Runs one segment (see `RunOptions.turn`); it reads the context's `PanelState` as committed when
 * it runs (DESIGN.md "State consistency").
 */
export type Segment = () => Promise<ExecutionResult>

export interface RunOptions {
  /** Wall-clock budget of each segment (execute / each resume), ms; runtime default when absent. */
  timeoutMs?: number
  /** Aborting it cancels the run: pending extension calls see the signal, a suspended execution is cancelled. */
  signal?: AbortSignal
  /**
   * Runs each segment (the execute, then every resume) in the caller's serial order: the caller
   * calls `segment` when its turn comes, commits its outcome to the context's state, and resolves
   * with it; the run's next segment is only asked for after that. A rejection ends the run with
   * that error (the turn cancels a suspended execution it could not commit). Default: run at once,
   * commit nothing (DESIGN.md "State consistency").
   */
  turn?: (segment: Segment) => Promise<ExecutionResult>
  /** Called when the extension calls of a suspension have settled, before the resume is queued. */
  onResume?: (calls: PendingCall[]) => void
  callContext?: RunCallContext
}

/**
 * The whole of one run (all segments): outputs concatenated in order; `status` never `suspended`.
 * A failed segment's mutations, events and view commands are left out (it commits nothing); its logs stay.
 */
export interface RunResult {
  status: 'success' | 'error'
  returnValue?: unknown
  error?: ExecutionError
  stateMutations: StateMutation[]
  events: EmittedEvent[]
  viewCommands: ViewCommand[]
  logs: LogEntry[]
  /** 1 + number of suspensions */
  segments: number
  /** wall time of the run including extension calls, ms */
  durationMs: number
}

/** `fastify.executor`: one WasmRuntime per app plus the suspend → call extensions → resume loop. */
export interface Executor {
  /** @throws RuntimeError COMPILATION_ERROR (with line/column) or INVALID_INPUT */
  precompile(source: string): Promise<CompiledHandler>
  execute(handler: string | CompiledHandler, context: ExecutionContext, timeoutMs?: number): Promise<ExecutionResult>
  /** The next segment reads the context's `PanelState` as committed now; it may suspend again under a new id. */
  resume(executionId: string, results: CallResult[], timeoutMs?: number): Promise<ExecutionResult>
  /** A panel's committed state for `ExecutionContext.state`. @throws RuntimeError INVALID_INPUT */
  createState(initial?: Record<string, unknown>): PanelState
  cancel(executionId: string): boolean
  stats(): RuntimeStats
  /** Prometheus text of the runtime's own metrics */
  metrics(): Promise<string>
  /**
   * Run a handler to completion, each segment through `options.turn`: each time it suspends, its pending extension calls run in
   * parallel through `fastify.extensions` (a failed call settles as `{ ok: false, error: { message, code } }`,
   * which the handler can catch), then it is resumed. Execution outcomes come back in the result;
   * only runtime misuse is thrown.
   * @throws RuntimeError CAPACITY_EXCEEDED / SHUTDOWN / INVALID_INPUT from `execute`
   */
  run(handler: string | CompiledHandler, context: ExecutionContext, options?: RunOptions): Promise<RunResult>
}

declare module 'fastify' {
  interface FastifyInstance {
    executor: Executor
  }
}

function errorResult(code: ExecutionError['code'], message: string): ExecutionResult {
  return {
    status: 'error',
    error: { code, message },
    stateMutations: [],
    events: [],
    viewCommands: [],
    logs: [],
    pendingCalls: [],
    metrics: { durationUs: 0, instructionCount: 0, memoryPeakBytes: 0, hostCalls: 0, cacheHit: false },
  }
}

/** Settles when the signal aborts (never rejects), so a stuck extension call cannot hold a cancelled run. */
function aborted(signal: AbortSignal | undefined): Promise<'aborted'> {
  return new Promise((resolve) => {
    if (!signal) return
    if (signal.aborted) return resolve('aborted')
    signal.addEventListener('abort', () => resolve('aborted'), { once: true })
  })
}

function toCallError(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown }
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    code: typeof e?.code === 'string' ? e.code : 'EXTENSION_ERROR',
  }
}

function createExecutor(fastify: FastifyInstance, runtime: WasmRuntime): Executor {
  async function callAll(calls: PendingCall[], opts: RunOptions): Promise<CallResult[]> {
    const ctx = { ...opts.callContext, signal: opts.signal }
    return Promise.all(
      calls.map(async (c): Promise<CallResult> => {
        try {
          const value = await fastify.extensions.call(c.extension, c.method, c.args, ctx)
          return { callId: c.callId, ok: true, value }
        } catch (err) {
          return { callId: c.callId, ok: false, error: toCallError(err) }
        }
      }),
    )
  }

  /** One step after a suspension: call extensions, then resume in a turn; a cancelled or expired run ends as an error segment. */
  async function step(seg: ExecutionResult, opts: RunOptions, turn: (segment: Segment) => Promise<ExecutionResult>): Promise<ExecutionResult> {
    const id = seg.executionId as string
    const results = await Promise.race([callAll(seg.pendingCalls, opts), aborted(opts.signal)])
    const cancelled = () => {
      runtime.cancel(id)
      return errorResult('TIMEOUT', `run cancelled while waiting on extension calls: ${String(opts.signal?.reason ?? 'aborted')}`)
    }
    if (results === 'aborted' || opts.signal?.aborted) return cancelled()
    opts.onResume?.(seg.pendingCalls)
    return turn(async () => {
      if (opts.signal?.aborted) return cancelled()
      try {
        return await runtime.resume(id, results, opts.timeoutMs)
      } catch (err) {
        const e = err as { code?: string; message?: string }
        const code = e.code === 'UNKNOWN_EXECUTION' ? 'TIMEOUT' : 'INTERNAL_ERROR'
        return errorResult(code, `resume failed (${e.code ?? 'ERROR'}): ${e.message ?? String(err)}`)
      }
    })
  }

  async function run(handler: string | CompiledHandler, context: ExecutionContext, opts: RunOptions = {}): Promise<RunResult> {
    const started = performance.now()
    const out: RunResult = { status: 'error', stateMutations: [], events: [], viewCommands: [], logs: [], segments: 0, durationMs: 0 }
    const turn = opts.turn ?? ((segment: Segment) => segment())
    let seg = await turn(() => runtime.execute(handler, context, opts.timeoutMs))
    for (;;) {
      out.segments++
      out.logs.push(...seg.logs)
      if (seg.status !== 'error') {
        out.stateMutations.push(...seg.stateMutations)
        out.events.push(...seg.events)
        out.viewCommands.push(...seg.viewCommands)
      }
      if (seg.status !== 'suspended') break
      seg = await step(seg, opts, turn)
    }
    out.status = seg.status === 'success' ? 'success' : 'error'
    if (seg.status === 'success') out.returnValue = seg.returnValue
    else out.error = seg.error
    out.durationMs = performance.now() - started
    return out
  }

  return {
    precompile: (source) => runtime.precompile(source),
    execute: (handler, context, timeoutMs) => runtime.execute(handler, context, timeoutMs),
    resume: (id, results, timeoutMs) => runtime.resume(id, results, timeoutMs),
    createState: (initial) => runtime.createState(initial),
    cancel: (id) => runtime.cancel(id),
    stats: () => runtime.getStats(),
    metrics: () => runtime.getMetrics(),
    run,
  }
}

/**
 * Executor plugin: decorates `fastify.executor` with one WasmRuntime (QuickJS in wasmtime) for
 * this app, shut down in `onClose`. Depends on the `extensions` plugin for suspended calls and on
 * `metrics` (the runtime's `wk_runtime_*` metrics go to the app's registry).
 * Registration fails with the runtime's own error when the native addon is not built.
 */
async function executorPlugin(fastify: FastifyInstance, opts: ExecutorPluginOptions): Promise<void> {
  const runtime = new WasmRuntime(opts, { registry: fastify.promRegistry })
  fastify.decorate('executor', createExecutor(fastify, runtime))
  fastify.addHook('onClose', async () => {
    await runtime.shutdown()
  })
}

export default fp(executorPlugin, { name: 'executor', fastify: '5.x', dependencies: ['extensions', 'metrics'] })
