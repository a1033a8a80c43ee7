import type {
  HostSummary,
  InputRequest,
  OperationState,
  RuntimeSummary,
  SpawnRequest,
  SpawnResult,
  StopMode,
  StopResult,
  InputResult,
  TranscriptItem,
  TranscriptPage,
  WorkerDiagnostic,
  WorkerSummary,
} from '../../schemas/workers.js'
import { MAX_DIAGNOSTICS } from '../../schemas/workers.js'

/** Who is asking: every worker belongs to exactly one namespace (from auth claims, else 'default'). */
export interface CallContext {
  namespace: string
}

/** `{ items, diagnostics }`: a bounded list that reports problems instead of failing whole. */
export interface ListResult<T> {
  items: T[]
  diagnostics: WorkerDiagnostic[]
}

/** A live event about one worker, streamed to `…/events` subscribers. */
export type WorkerEvent =
  | { type: 'ITEM'; item: TranscriptItem }
  | { type: 'STATUS'; status: string; exit_code?: number | null }

/**
 * One worker runtime adapter. The registry validates ids and limits, resolves the runtime, and checks
 * that the worker exists in the caller's namespace before calling `stop` / `input` / `transcript` /
 * `subscribe`, so adapters only see well-formed ids of workers they reported. Optional operations that
 * an adapter leaves out are answered by the registry with a typed `unsupported` result.
 * Adapters must never put a filesystem path, file name, socket address, token or session id in a projection.
 */
export interface WorkerRuntime {
  /** Stable public id, 1–120 chars of `[A-Za-z0-9_:-]`, unique in the registry. */
  readonly id: string
  /** The runtime as a caller in `ctx.namespace` sees it; `limit` bounds `host_ids`. */
  summary(ctx: CallContext, limit: number): Promise<RuntimeSummary>
  /** At most `limit` hosts. */
  listHosts(ctx: CallContext, limit: number): Promise<ListResult<HostSummary>>
  /** At most `limit` workers visible in `ctx.namespace`. */
  listWorkers(ctx: CallContext, limit: number): Promise<ListResult<WorkerSummary>>
  /** The worker, or `worker: undefined` when it is not in this runtime and namespace. */
  getWorker(ctx: CallContext, workerId: string): Promise<{ worker?: WorkerSummary; diagnostics: WorkerDiagnostic[] }>
  spawn?(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult>
  stop?(ctx: CallContext, workerId: string, mode: StopMode): Promise<StopResult>
  input?(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult>
  /** Items from 0-based position `start`, at most `limit` of them. */
  transcript?(ctx: CallContext, workerId: string, start: number, limit: number): Promise<TranscriptPage>
  /** Live events for one worker; returns the unsubscribe function. */
  subscribe?(ctx: CallContext, workerId: string, listener: (event: WorkerEvent) => void): () => void
  /**
   * Flow control for a slow events subscriber: stops the worker's producer (a process blocks on its
   * pipe) until the returned release is called; reference-counted across subscribers, release is
   * idempotent. Undefined when there is nothing to pause (the worker has ended or is gone).
   */
  pauseEvents?(ctx: CallContext, workerId: string): (() => void) | undefined
  /** Releases everything the runtime holds (processes, listeners). Called from the plugin's onClose. */
  close?(): Promise<void>
}

/** Builds a diagnostic; `worker_id` names the (opaque) worker it is about. */
export function diagnostic(
  code: string,
  severity: WorkerDiagnostic['severity'],
  message: string,
  workerId?: string,
): WorkerDiagnostic {
  return workerId === undefined ? { code, severity, message } : { code, severity, message, worker_id: workerId }
}

/** Keeps the first 16 diagnostics. */
export function capDiagnostics(list: WorkerDiagnostic[]): WorkerDiagnostic[] {
  return list.slice(0, MAX_DIAGNOSTICS)
}

/** An input result that did nothing. */
export function inputOutcome(
  state: Exclude<OperationState, 'accepted'>,
  runtimeId: string,
  workerId: string,
  diag: WorkerDiagnostic,
): InputResult {
  return { state, runtime_id: runtimeId, worker_id: workerId, diagnostics: [diag] }
}

/** A transcript page that returned nothing. */
export function emptyPage(
  state: Exclude<OperationState, 'accepted'>,
  runtimeId: string,
  workerId: string,
  start: number,
  limit: number,
  diag: WorkerDiagnostic,
): TranscriptPage {
  return {
    state,
    runtime_id: runtimeId,
    worker_id: workerId,
    start,
    limit,
    total_items: 0,
    first_start: 0,
    next_start: null,
    items: [],
    diagnostics: [diag],
  }
}

/** Current time as an ISO-8601 string. */
export function now(): string {
  return new Date().toISOString()
}
