import { kernelError } from '../errors.js'
import type {
  HostSummary,
  InputRequest,
  InputResult,
  RuntimeSummary,
  SpawnRequest,
  SpawnResult,
  StopMode,
  StopResult,
  TranscriptPage,
  WorkerSummary,
} from '../../schemas/workers.js'
import { assertValidId } from './ids.js'
import {
  capDiagnostics,
  diagnostic,
  emptyPage,
  inputOutcome,
  type CallContext,
  type ListResult,
  type WorkerEvent,
  type WorkerRuntime,
} from './runtime.js'

/**
 * List bounds: `limit` defaults to `defaultLimit`; above `maxLimit` it is a 400. `maxEventsPauseMs`:
 * how long one events subscriber may hold its worker paused (ms) before it is dropped.
 */
export interface RegistryLimits {
  maxLimit: number
  defaultLimit: number
  maxEventsPauseMs: number
}

/**
 * Holds a worker's producer for one slow subscriber. `pause()` stops the producer (undefined: there
 * is nothing to pause); if the returned release is not called within `maxMs`, the producer is
 * released anyway and `overdue` is called (the caller drops its subscriber), so one socket that
 * never reads cannot hold a worker, and every other subscriber of it, for good.
 */
function boundedPause(pause: () => (() => void) | undefined, maxMs: number, overdue: () => void): (() => void) | undefined {
  const release = pause()
  if (!release) return undefined
  const timer = setTimeout(() => {
    release()
    overdue()
  }, maxMs)
  timer.unref()
  return () => {
    clearTimeout(timer)
    release()
  }
}

/**
 * The worker-runtime registry: an ordered list of adapters, each owning its hosts and workers.
 * It validates every incoming id and limit, scopes worker lookups by runtime id and namespace, and
 * answers operations an adapter does not implement with a typed `unsupported` result.
 *
 * Errors (KernelError): 400 INVALID_IDENTIFIER (malformed id), 400 LIMIT_TOO_LARGE (limit above the max,
 * message names the max), 404 UNKNOWN_RUNTIME, 404 UNKNOWN_WORKER (not in that runtime and namespace),
 * 409 DUPLICATE_RUNTIME (register with an id already taken).
 */
export class WorkerRegistry {
  private readonly runtimes: WorkerRuntime[] = []

  constructor(private readonly limits: RegistryLimits) {}

  /** Adds an adapter; it is listed after those already registered. */
  register(runtime: WorkerRuntime): void {
    assertValidId('runtime_id', runtime.id)
    if (this.runtimes.some((r) => r.id === runtime.id)) {
      throw kernelError('DUPLICATE_RUNTIME', `a runtime with id "${runtime.id}" is already registered`)
    }
    this.runtimes.push(runtime)
  }

  /** Checks `limit` against the bounds; returns the limit to use. */
  limit(limit: number | undefined): number {
    const value = limit ?? this.limits.defaultLimit
    if (!Number.isInteger(value) || value < 0) throw kernelError('INVALID_LIMIT', 'limit must be an integer ≥ 0')
    if (value > this.limits.maxLimit) {
      throw kernelError('LIMIT_TOO_LARGE', `limit ${value} exceeds the maximum of ${this.limits.maxLimit}`, {
        max: this.limits.maxLimit,
      })
    }
    return value
  }

  /** Up to `limit` runtimes; their own diagnostics are gathered (at most 16). */
  async listRuntimes(ctx: CallContext, limit?: number): Promise<ListResult<RuntimeSummary>> {
    const max = this.limit(limit)
    const items = await Promise.all(this.runtimes.slice(0, max).map((r) => this.safeSummary(r, ctx, max)))
    return { items, diagnostics: capDiagnostics(items.flatMap((r) => r.diagnostics)) }
  }

  async getRuntime(ctx: CallContext, runtimeId: string): Promise<RuntimeSummary> {
    return this.safeSummary(this.runtime(runtimeId), ctx, this.limits.defaultLimit)
  }

  async listHosts(ctx: CallContext, runtimeId: string, limit?: number): Promise<ListResult<HostSummary>> {
    const runtime = this.runtime(runtimeId)
    const max = this.limit(limit)
    return bounded(await guard(runtime, () => runtime.listHosts(ctx, max)), max)
  }

  async listWorkers(ctx: CallContext, runtimeId: string, limit?: number): Promise<ListResult<WorkerSummary>> {
    const runtime = this.runtime(runtimeId)
    const max = this.limit(limit)
    return bounded(await guard(runtime, () => runtime.listWorkers(ctx, max)), max)
  }

  /** The worker, scoped by runtime id and namespace. */
  async getWorker(ctx: CallContext, runtimeId: string, workerId: string): Promise<WorkerSummary> {
    return (await this.resolve(ctx, runtimeId, workerId)).worker
  }

  async spawn(ctx: CallContext, runtimeId: string, request: SpawnRequest): Promise<SpawnResult> {
    const runtime = this.runtime(runtimeId)
    if (!runtime.spawn) {
      const why = `runtime "${runtime.id}" cannot spawn workers`
      return { state: 'unsupported', acceptance_evidence: [], diagnostics: [diagnostic('spawn_unsupported', 'info', why)] }
    }
    return runtime.spawn(ctx, request)
  }

  async stop(ctx: CallContext, runtimeId: string, workerId: string, mode: StopMode): Promise<StopResult> {
    const { runtime, worker } = await this.resolve(ctx, runtimeId, workerId)
    if (!runtime.stop) {
      const why = `workers of runtime "${runtime.id}" cannot be stopped`
      return { state: 'unsupported', worker, diagnostics: [diagnostic('stop_unsupported', 'info', why, workerId)] }
    }
    return runtime.stop(ctx, workerId, mode)
  }

  async input(ctx: CallContext, runtimeId: string, workerId: string, request: InputRequest): Promise<InputResult> {
    const { runtime } = await this.resolve(ctx, runtimeId, workerId)
    if (!runtime.input) {
      const why = `workers of runtime "${runtime.id}" take no input`
      return inputOutcome('unsupported', runtime.id, workerId, diagnostic('input_unsupported', 'info', why, workerId))
    }
    return runtime.input(ctx, workerId, { kind: request.kind ?? 'user', content: request.content })
  }

  async transcript(ctx: CallContext, runtimeId: string, workerId: string, start = 0, limit?: number): Promise<TranscriptPage> {
    const { runtime } = await this.resolve(ctx, runtimeId, workerId)
    const max = this.limit(limit)
    if (!runtime.transcript) {
      const why = `workers of runtime "${runtime.id}" keep no transcript`
      return emptyPage('unsupported', runtime.id, workerId, start, max, diagnostic('transcript_unsupported', 'info', why, workerId))
    }
    return runtime.transcript(ctx, workerId, start, max)
  }

  /**
   * Subscribes to a worker's live events after resolving it.
   * @returns the worker and the unsubscribe function, or `unsubscribe: undefined` when the runtime streams
   * nothing; `pause` (when the runtime can pause the worker's producer, see `WorkerRuntime.pauseEvents`)
   * holds the producer until the release it returns is called, at most `maxEventsPauseMs`: then the
   * producer is released and `overdue` called (the subscriber is to be dropped).
   */
  async subscribe(
    ctx: CallContext,
    runtimeId: string,
    workerId: string,
    listener: (event: WorkerEvent) => void,
  ): Promise<{ worker: WorkerSummary; unsubscribe?: () => void; pause?: (overdue: () => void) => (() => void) | undefined }> {
    const { runtime, worker } = await this.resolve(ctx, runtimeId, workerId)
    const maxMs = this.limits.maxEventsPauseMs
    const pause = runtime.pauseEvents ? (overdue: () => void) => boundedPause(() => runtime.pauseEvents!(ctx, workerId), maxMs, overdue) : undefined
    return { worker, unsubscribe: runtime.subscribe?.(ctx, workerId, listener), pause }
  }

  /** How long one events subscriber may hold its worker paused before it is dropped, ms. */
  get maxEventsPauseMs(): number {
    return this.limits.maxEventsPauseMs
  }

  /** Closes every adapter (kills processes, drops listeners); one failing does not stop the others. */
  async close(): Promise<void> {
    await Promise.allSettled(this.runtimes.map((r) => r.close?.()))
  }

  private runtime(runtimeId: string): WorkerRuntime {
    assertValidId('runtime_id', runtimeId)
    const runtime = this.runtimes.find((r) => r.id === runtimeId)
    if (!runtime) throw kernelError('UNKNOWN_RUNTIME', `no runtime "${runtimeId}"`)
    return runtime
  }

  private async resolve(ctx: CallContext, runtimeId: string, workerId: string) {
    const runtime = this.runtime(runtimeId)
    assertValidId('worker_id', workerId)
    const { worker } = await runtime.getWorker(ctx, workerId)
    if (!worker) throw kernelError('UNKNOWN_WORKER', `runtime "${runtimeId}" has no worker "${workerId}"`)
    return { runtime, worker }
  }

  /** A summary that never throws: a failing adapter is listed as `unavailable` with a diagnostic. */
  private async safeSummary(runtime: WorkerRuntime, ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    try {
      const summary = await runtime.summary(ctx, limit)
      return { ...summary, host_ids: summary.host_ids.slice(0, limit), diagnostics: capDiagnostics(summary.diagnostics) }
    } catch {
      return failedSummary(runtime.id)
    }
  }
}

/** Runs an adapter's list; an adapter that throws yields an empty list with a diagnostic, not a 500. */
async function guard<T>(runtime: WorkerRuntime, list: () => Promise<ListResult<T>>): Promise<ListResult<T>> {
  try {
    return await list()
  } catch {
    return { items: [], diagnostics: [diagnostic('runtime_list_failed', 'error', `runtime "${runtime.id}" failed to list`)] }
  }
}

function bounded<T>(list: ListResult<T>, limit: number): ListResult<T> {
  return { items: list.items.slice(0, limit), diagnostics: capDiagnostics(list.diagnostics) }
}

function failedSummary(runtimeId: string): RuntimeSummary {
  return {
    runtime_id: runtimeId,
    label: runtimeId,
    kind: 'unknown',
    status: 'unavailable',
    identity_authority: 'registry_projection',
    host_ids: [],
    capabilities: {
      can_list_hosts: false,
      can_list_workers: false,
      can_get_worker: false,
      can_spawn: false,
      can_stop: false,
      can_accept_input: false,
      can_stream_events: false,
      can_read_transcript: false,
      max_workers: 0,
    },
    diagnostics: [diagnostic('runtime_summary_failed', 'error', `runtime "${runtimeId}" failed to describe itself`)],
  }
}
