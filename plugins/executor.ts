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
  StateMutation,
  ViewCommand,
} from '../wasm-runtime/types.js'
import { Gate, type Source } from './executor/gate.js'
import { executorOptions, type ExecutorOptions } from './executor/options.js'
import { Suspensions } from './executor/suspensions.js'

export type { Source } from './executor/gate.js'
export { ExecutorOptions, ExecutorPolicyOptions } from './executor/options.js'

/** Options of the executor plugin (`ExecutorOptions`: the sandbox's limits plus its policy; sizes in bytes, times in ms; every field has a default). */
export type ExecutorPluginOptions = Partial<ExecutorOptions>

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
  /**
   * Aborting it cancels the run: pending extension calls see the signal, a suspended execution is
   * cancelled at once (its instance freed), a resume waiting for its turn ends when the turn comes.
   */
  signal?: AbortSignal
  /**
   * Runs each segment (the execute, then every resume) in the caller's serial order: the caller
   * calls `segment` when its turn comes, commits its outcome to the context's state, and resolves
   * with it; the run's next segment is only asked for after that. A rejection ends the run with
   * that error (a suspended execution is cancelled). Default: run at once, commit nothing
   * (DESIGN.md "State consistency").
   */
  turn?: (segment: Segment) => Promise<ExecutionResult>
  /** Called when the extension calls of a suspension have settled, before the resume is queued. */
  onResume?: (calls: PendingCall[]) => void
  callContext?: RunCallContext
  /** Who the run is for, for fair shares at the gate (default: namespace `default`, no socket). */
  source?: Source
  /** Groups the run's suspensions for `Executor.suspended` (a panel's key). */
  owner?: string
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

/**
 * `fastify.executor`: one WasmRuntime per app (the mechanism) plus the policy around it, each
 * concern in one place: the admission gate (executor/gate.ts), the table of suspended runs with
 * its one timer per suspension (executor/suspensions.ts), and the suspend → call extensions →
 * resume loop.
 */
export interface Executor {
  /** @throws RuntimeError COMPILATION_ERROR (with line/column) or INVALID_INPUT */
  precompile(source: string): Promise<CompiledHandler>
  /** A panel's committed state for `ExecutionContext.state`. @throws RuntimeError INVALID_INPUT */
  createState(initial?: Record<string, unknown>): PanelState
  /**
   * Run a handler to completion, each segment through `options.turn` and the gate: each time it
   * suspends, its pending extension calls run in parallel through `fastify.extensions` (a failed
   * call settles as `{ ok: false, error: { message, code } }`, which the handler can catch), then
   * it is resumed. Calls that have not settled within `suspensionTimeoutMs` end the run with
   * TIMEOUT (the instance freed at once). Execution outcomes come back in the result; only
   * runtime misuse is thrown.
   * @throws RuntimeError CAPACITY_EXCEEDED (the gate's queue is full) / SHUTDOWN / INVALID_INPUT
   */
  run(handler: string | CompiledHandler, context: ExecutionContext, options?: RunOptions): Promise<RunResult>
  /** Runs waiting on extension calls now: all, or those of one `RunOptions.owner`. */
  suspended(owner?: string): number
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

const DEFAULT_SOURCE: Source = { namespace: 'default' }

/** `RunOptions.turn` when none is given: run at once, commit nothing. */
function runAtOnce(segment: Segment): Promise<ExecutionResult> {
  return segment()
}

function toCallError(err: unknown): { message: string; code?: string } {
  const e = err as { message?: unknown; code?: unknown }
  return {
    message: typeof e?.message === 'string' ? e.message : String(err),
    code: typeof e?.code === 'string' ? e.code : 'EXTENSION_ERROR',
  }
}

/**
 * One run's hold on the gate and on its suspended execution, so that every way a run can end
 * frees its instance exactly once (at the gate and in the sandbox).
 */
class Lease {
  private instance = false
  /** the execution id while the run is suspended */
  private executionId?: string

  constructor(private readonly gate: Gate, private readonly runtime: WasmRuntime, private readonly src: Source) {}

  /** Runs one segment once the gate grants it (`first`: the execute, which also takes an instance). */
  async segment(first: boolean, run: () => Promise<ExecutionResult>): Promise<ExecutionResult> {
    const granted = this.gate.acquire(this.src, first)
    if (granted) await granted // an idle gate grants at once: no microtask
    if (first) this.instance = true
    this.executionId = undefined // a resume consumes the id
    let seg: ExecutionResult | undefined
    try {
      seg = await run()
      return seg
    } finally {
      this.gate.releaseSegment()
      if (seg?.status === 'suspended') this.executionId = seg.executionId
      else this.end()
    }
  }

  /** Cancels the suspended execution, if any, and frees the instance. Idempotent. */
  end(): void {
    if (this.executionId) this.runtime.cancel(this.executionId)
    this.executionId = undefined
    if (this.instance) this.gate.releaseInstance()
    this.instance = false
  }
}

function createExecutor(fastify: FastifyInstance, runtime: WasmRuntime, gate: Gate, suspensions: Suspensions): Executor {
  function callAll(calls: PendingCall[], opts: RunOptions, signal: AbortSignal): Promise<CallResult[]> {
    const ctx = { ...opts.callContext, signal }
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

  const cancelled = (opts: RunOptions) =>
    errorResult('CANCELLED', `run cancelled while waiting on extension calls: ${String(opts.signal?.reason ?? 'aborted')}`)

  async function resume(id: string, results: CallResult[], timeoutMs?: number): Promise<ExecutionResult> {
    try {
      return await runtime.resume(id, results, timeoutMs)
    } catch (err) {
      runtime.cancel(id) // a resume that failed leaves nothing suspended (INVALID_INPUT keeps it)
      const e = err as { code?: string; message?: string }
      return errorResult('INTERNAL_ERROR', `resume failed (${e.code ?? 'ERROR'}): ${e.message ?? String(err)}`)
    }
  }

  /**
   * One step after a suspension: call extensions (the suspension's timer runs only while they
   * are pending), then resume in a turn. An expired or cancelled wait ends the run as an error
   * segment, the instance freed at once.
   */
  async function step(seg: ExecutionResult, opts: RunOptions, turn: (segment: Segment) => Promise<ExecutionResult>, lease: Lease): Promise<ExecutionResult> {
    const calls = new AbortController()
    // the run's signal may be long-lived (a panel's): forward it for this wait only, no dependent signal left on it
    const forward = () => calls.abort(opts.signal?.reason)
    if (opts.signal?.aborted) forward()
    else opts.signal?.addEventListener('abort', forward, { once: true })
    const results = await suspensions
      .wait(callAll(seg.pendingCalls, opts, calls.signal), opts.owner, opts.signal)
      .finally(() => opts.signal?.removeEventListener('abort', forward))
    if (results === 'aborted') {
      lease.end()
      return cancelled(opts)
    }
    if (results === 'expired') {
      const message = `the run waited on its extension calls longer than suspensionTimeoutMs (${suspensions.timeoutMs} ms)`
      calls.abort(new Error(message))
      lease.end()
      return errorResult('TIMEOUT', message)
    }
    opts.onResume?.(seg.pendingCalls)
    return turn(async () => {
      if (!opts.signal?.aborted) return lease.segment(false, () => resume(seg.executionId as string, results, opts.timeoutMs))
      lease.end()
      return cancelled(opts)
    })
  }

  async function run(handler: string | CompiledHandler, context: ExecutionContext, opts: RunOptions = {}): Promise<RunResult> {
    const started = performance.now()
    const out: RunResult = { status: 'error', stateMutations: [], events: [], viewCommands: [], logs: [], segments: 0, durationMs: 0 }
    const turn = opts.turn ?? runAtOnce
    const lease = new Lease(gate, runtime, opts.source ?? DEFAULT_SOURCE)
    try {
      let seg = await turn(() => lease.segment(true, () => runtime.execute(handler, context, opts.timeoutMs)))
      for (;;) {
        out.segments++
        out.logs.push(...seg.logs)
        if (seg.status !== 'error') {
          out.stateMutations.push(...seg.stateMutations)
          out.events.push(...seg.events)
          out.viewCommands.push(...seg.viewCommands)
        }
        if (seg.status !== 'suspended') break
        seg = await step(seg, opts, turn, lease)
      }
      out.status = seg.status === 'success' ? 'success' : 'error'
      if (seg.status === 'success') out.returnValue = seg.returnValue
      else out.error = seg.error
    } finally {
      lease.end() // a turn that threw (e.g. its commit failed) leaves nothing suspended behind
    }
    out.durationMs = performance.now() - started
    return out
  }

  return {
    precompile: (source) => runtime.precompile(source),
    createState: (initial) => runtime.createState(initial),
    run,
    suspended: (owner) => suspensions.count(owner),
  }
}

/**
 * Executor plugin: decorates `fastify.executor` with one WasmRuntime (QuickJS in wasmtime) for
 * this app and the policy around it (`ExecutorOptions`), shut down in `onClose`. Depends on the
 * `extensions` plugin for suspended calls and on `metrics` (the runtime's `wk_runtime_*` metrics
 * go to the app's registry).
 * Registration fails with the runtime's own error when the native addon is not built.
 */
async function executorPlugin(fastify: FastifyInstance, options: ExecutorPluginOptions): Promise<void> {
  const { suspensionTimeoutMs, maxConcurrentSegments, ...runtimeOptions } = executorOptions(options)
  const runtime = new WasmRuntime(runtimeOptions, { registry: fastify.promRegistry })
  const { maxInstances, maxQueue } = runtime.config
  const gate = new Gate({ maxConcurrentSegments, maxInstances, maxQueue })
  const suspensions = new Suspensions(suspensionTimeoutMs)
  fastify.decorate('executor', createExecutor(fastify, runtime, gate, suspensions))
  fastify.addHook('onClose', async () => {
    suspensions.abortAll()
    gate.close()
    await runtime.shutdown()
  })
}

export default fp(executorPlugin, { name: 'executor', fastify: '5.x', dependencies: ['extensions', 'metrics'] })
