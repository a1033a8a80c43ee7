import { randomUUID } from 'node:crypto'
import type {
  HostSummary,
  InputKind,
  InputResult,
  OperationState,
  RuntimeCapabilities,
  RuntimeSummary,
  SpawnIntent,
  SpawnRequest,
  SpawnResult,
  StopMode,
  StopResult,
  TranscriptPage,
  WorkerDiagnostic,
  WorkerSummary,
} from '../../schemas/workers.js'
import { opaqueId, safeHint } from './ids.js'
import { Transcript, TranscriptPool } from './transcript.js'
import { diagnostic, emptyPage, inputOutcome, now, type CallContext, type ListResult, type WorkerEvent, type WorkerRuntime } from './runtime.js'

/** What every worker a {@link TrackedRuntime} keeps has; `status` is `running` until it is stopped or ends. */
export interface TrackedWorker {
  id: string
  namespace: string
  role: string
  profile: string
  label: string
  status: string
  createdAt: string
  transcript: Transcript
}

/** Fixed facts of a tracked runtime: its labels and kinds, and how many live workers it keeps. */
export interface TrackedRuntimeInfo {
  /** Hashed with the kind into the host id; never shown. */
  workspaceRoot: string
  label: string
  kind: string
  hostLabel: string
  hostKind: string
  /** Live workers at once (reported as `max_workers`). */
  maxWorkers: number
  /** Workers one namespace may hold at once (so one namespace cannot fill `maxWorkers`). */
  maxWorkersPerNamespace: number
  /** Items each worker's transcript keeps. */
  transcriptMaxItems: number
  /** Bytes each worker's transcript keeps (see `ITEM_OVERHEAD_BYTES`). */
  transcriptMaxBytes: number
  /** Bytes all transcripts of the runtime keep together. */
  runtimeTranscriptMaxBytes: number
}

/** Transcript bounds shared by the built-in runtimes' options. */
export interface TranscriptBounds {
  /** Items each worker's transcript keeps (older ones are dropped). */
  transcriptMaxItems: number
  /** Bytes each worker's transcript keeps. */
  transcriptMaxBytes: number
  /** Bytes all of a runtime's transcripts keep together. */
  runtimeTranscriptMaxBytes: number
}

/** A quarter of `max` (at least 1): the default per-namespace share of a cap. */
export function quarterOf(max: number): number {
  return Math.max(1, Math.floor(max / 4))
}

/** The part of a worker projection that differs between runtimes. */
export type WorkerDetails = Pick<WorkerSummary, 'workspace' | 'implementation' | 'exit_code'>

/**
 * A runtime that keeps its workers in memory, scoped by namespace, each with a bounded transcript
 * (event ids count across the runtime). It answers summary, hosts, lists, lookups, transcript pages and
 * subscriptions the same way for every kind; a subclass spawns, stops and feeds its own workers.
 * While {@link downReason} names a reason, the runtime and its host are `unavailable` and no worker is live.
 */
export abstract class TrackedRuntime<W extends TrackedWorker> implements WorkerRuntime {
  abstract readonly id: string
  protected readonly hostId: string
  protected readonly maxWorkers: number
  protected readonly maxPerNamespace: number
  protected readonly workers = new Map<string, W>()
  /** Byte budget of every transcript of this runtime together. */
  readonly transcripts: TranscriptPool
  private eventId = 0

  constructor(private readonly info: TrackedRuntimeInfo) {
    this.hostId = opaqueId(`${info.kind}-`, 'host', `${info.kind}\0${info.workspaceRoot}`)
    this.maxWorkers = info.maxWorkers
    this.maxPerNamespace = info.maxWorkersPerNamespace
    this.transcripts = new TranscriptPool(info.runtimeTranscriptMaxBytes)
  }

  async summary(_ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    const down = this.downReason()
    return {
      runtime_id: this.id,
      label: this.info.label,
      kind: this.info.kind,
      status: down ? 'unavailable' : 'available',
      identity_authority: 'registry_projection',
      host_ids: limit > 0 ? [this.hostId] : [],
      capabilities: this.capabilities(!down),
      diagnostics: down ? [down] : [],
    }
  }

  async listHosts(_ctx: CallContext, limit: number): Promise<ListResult<HostSummary>> {
    if (limit === 0) return { items: [], diagnostics: [] }
    const down = this.downReason()
    const diagnostics = down ? [down] : []
    const host: HostSummary = {
      runtime_id: this.id,
      host_id: this.hostId,
      label: this.info.hostLabel,
      kind: this.info.hostKind,
      status: down ? 'unavailable' : 'available',
      observed_at: now(),
      capabilities: this.capabilities(!down),
      diagnostics,
    }
    return { items: [host], diagnostics }
  }

  async listWorkers(ctx: CallContext, limit: number): Promise<ListResult<WorkerSummary>> {
    const items: WorkerSummary[] = []
    for (const worker of this.workers.values()) {
      if (items.length >= limit) break
      if (worker.namespace === ctx.namespace) items.push(this.project(worker))
    }
    return { items, diagnostics: [] }
  }

  async getWorker(ctx: CallContext, workerId: string) {
    const worker = this.find(ctx, workerId)
    return { worker: worker && this.project(worker), diagnostics: [] }
  }

  /** Stopping a worker that is no longer running is accepted with an info note; otherwise {@link halt} stops it. */
  async stop(ctx: CallContext, workerId: string, mode: StopMode): Promise<StopResult> {
    const worker = this.find(ctx, workerId)!
    if (worker.status !== 'running') {
      const note = diagnostic('worker_already_stopped', 'info', `the worker is already ${worker.status}`, workerId)
      return { state: 'accepted', worker: this.project(worker), diagnostics: [note] }
    }
    return this.halt(worker, mode)
  }

  /** A worker gone since the registry resolved it (evicted meanwhile) gets a `rejected` empty page. */
  async transcript(ctx: CallContext, workerId: string, start: number, limit: number): Promise<TranscriptPage> {
    const worker = this.find(ctx, workerId)
    if (!worker) return emptyPage('rejected', this.id, workerId, start, limit, diagnostic('worker_gone', 'warning', 'the worker is gone', workerId))
    return { state: 'accepted', runtime_id: this.id, worker_id: workerId, ...worker.transcript.page(start, limit), diagnostics: [] }
  }

  subscribe(ctx: CallContext, workerId: string, listener: (event: WorkerEvent) => void): () => void {
    return this.find(ctx, workerId)!.transcript.subscribe(listener)
  }

  /** Stops a running worker (`graceful` or `force`). */
  protected abstract halt(worker: W, mode: StopMode): Promise<StopResult>

  /** How a worker is shown beyond the common fields. */
  protected abstract details(worker: W): WorkerDetails

  /** Why the runtime cannot act now (a diagnostic), or undefined when it can. */
  protected downReason(): WorkerDiagnostic | undefined {
    return undefined
  }

  /** Workers of `namespace` kept now: all of them, or only those `running`. */
  protected countIn(namespace: string, running: boolean): number {
    let n = 0
    for (const worker of this.workers.values()) if (worker.namespace === namespace && (!running || worker.status === 'running')) n++
    return n
  }

  /** Forget a worker for good (its transcript's bytes go back to the pool). */
  protected forget(worker: W): void {
    worker.transcript.clear()
    this.workers.delete(worker.id)
  }

  /** The oldest worker of `namespace` that is no longer running (eviction never crosses namespaces). */
  protected oldestFinished(namespace: string): W | undefined {
    for (const worker of this.workers.values()) if (worker.namespace === namespace && worker.status !== 'running') return worker
    return undefined
  }

  protected find(ctx: CallContext, workerId: string): W | undefined {
    const worker = this.workers.get(workerId)
    return worker && worker.namespace === ctx.namespace ? worker : undefined
  }

  /**
   * The common fields of a new running worker for `request`: an opaque id `<idPrefix><role>…`, role and
   * profile from the intent, and the requested name (made safe) or `<role> <noun>` as its label.
   */
  protected newWorker(ctx: CallContext, request: SpawnRequest, idPrefix: string, noun: string): TrackedWorker & { status: 'running' } {
    const { role, profile } = resolveIntent(request.intent)
    return {
      id: opaqueId(idPrefix, role, randomUUID()),
      namespace: ctx.namespace,
      role,
      profile,
      label: request.requested_worker_name ? safeHint(request.requested_worker_name) : `${role} ${noun}`,
      status: 'running',
      createdAt: now(),
      transcript: new Transcript(
        { maxItems: this.info.transcriptMaxItems, maxBytes: this.info.transcriptMaxBytes },
        (n = 1) => (this.eventId += n),
        this.transcripts,
        ctx.namespace,
      ),
    }
  }

  /**
   * The `accepted` reply to a spawn of `worker`, with one piece of evidence, plus a `run_accepted`
   * one when the request asked for that acceptance (seed 003's `{ kind: 'run_accepted', expected_segments }`).
   */
  protected spawned(worker: W, kind: string, detail: string, request: SpawnRequest): SpawnResult {
    const evidence = [{ kind, detail }]
    if (request.acceptance?.kind === 'run_accepted') {
      const n = request.acceptance.expected_segments
      evidence.push({ kind: 'run_accepted', detail: `the worker accepts runs now (${n} segment${n === 1 ? '' : 's'} expected)` })
    }
    return { state: 'accepted', worker: this.project(worker), acceptance_evidence: evidence, diagnostics: [] }
  }

  /** `rejected` when the worker is not running (it takes no input), else undefined. */
  protected notRunning(worker: W): InputResult | undefined {
    if (worker.status === 'running') return undefined
    const why = `the worker is ${worker.status} and takes no input`
    return inputOutcome('rejected', this.id, worker.id, diagnostic('worker_not_running', 'warning', why, worker.id))
  }

  /** Appends an accepted input to the transcript; the result carries its sequence and event id. */
  protected record(worker: W, kind: InputKind, content: string): InputResult {
    const item = worker.transcript.append(kind, content)
    return {
      state: 'accepted',
      runtime_id: this.id,
      worker_id: worker.id,
      transcript_sequence: item.sequence,
      event_id: item.event_id,
      diagnostics: [],
    }
  }

  protected project(worker: W): WorkerSummary {
    const live = worker.status === 'running' && !this.downReason()
    return {
      runtime_id: this.id,
      worker_id: worker.id,
      host_id: this.hostId,
      label: worker.label,
      role: worker.role,
      profile: worker.profile,
      status: worker.status,
      created_at: worker.createdAt,
      ...this.details(worker),
      capabilities: { can_accept_input: live, can_stop: live, can_stream_events: true, can_read_transcript: true },
      diagnostics: [],
    }
  }

  private capabilities(up: boolean): RuntimeCapabilities {
    return {
      can_list_hosts: true,
      can_list_workers: true,
      can_get_worker: true,
      can_spawn: up,
      can_stop: up,
      can_accept_input: up,
      can_stream_events: true,
      can_read_transcript: true,
      max_workers: this.maxWorkers,
    }
  }
}

/** Role and profile an intent resolves to: ticket roles get `builtin:<role>`, workspace intents the default. */
export function resolveIntent(intent: SpawnIntent): { role: string; profile: string } {
  if (intent.kind === 'ticket_role') return { role: intent.role, profile: `builtin:${intent.role}` }
  return { role: intent.kind, profile: 'runtime_default' }
}

/** A spawn that started nothing, with the one diagnostic saying why. */
export function spawnOutcome(state: Exclude<OperationState, 'accepted'>, diag: WorkerDiagnostic): SpawnResult {
  return { state, acceptance_evidence: [], diagnostics: [diag] }
}

/** A spawn refused with a `warning` diagnostic `code`. */
export function rejectedSpawn(code: string, message: string): SpawnResult {
  return spawnOutcome('rejected', diagnostic(code, 'warning', message))
}
