import { randomUUID } from 'node:crypto'
import type {
  HostSummary,
  InputRequest,
  InputResult,
  RuntimeCapabilities,
  RuntimeSummary,
  SpawnIntent,
  SpawnRequest,
  SpawnResult,
  StopMode,
  StopResult,
  TranscriptPage,
  WorkerSummary,
} from '../../schemas/workers.js'
import { opaqueId, safeHint } from './ids.js'
import { Transcript } from './transcript.js'
import { diagnostic, inputOutcome, now, type CallContext, type ListResult, type WorkerEvent, type WorkerRuntime } from './runtime.js'

/** Options of the in-process runtime. */
export interface EmbeddedRuntimeOptions {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
  /** Items each worker's transcript keeps (older ones are dropped). */
  transcriptMaxItems: number
  /** Workers kept at once, all namespaces together (default 1000); stopped ones are evicted first. */
  maxWorkers?: number
}

type EmbeddedStatus = 'running' | 'stopped' | 'cancelled'

interface EmbeddedWorker {
  id: string
  namespace: string
  role: string
  profile: string
  label: string
  status: EmbeddedStatus
  createdAt: string
  transcript: Transcript
}

/**
 * `embedded`: in-process workers created from a typed intent. A worker has a role and a profile resolved
 * from the intent, accepts `user` / `system` input into a bounded transcript (sequence + event id), and
 * stops `graceful` → `stopped` or `force` → `cancelled`. It runs nothing: it is the registry's own
 * conversation store, the way an embedding app drives a worker it implements elsewhere.
 */
export class EmbeddedRuntime implements WorkerRuntime {
  readonly id = 'embedded'
  private readonly hostId: string
  private readonly workers = new Map<string, EmbeddedWorker>()
  private readonly maxWorkers: number
  private eventId = 0

  constructor(private readonly options: EmbeddedRuntimeOptions) {
    this.hostId = opaqueId('embedded-', 'host', `embedded\0${options.workspaceRoot}`)
    this.maxWorkers = options.maxWorkers ?? 1000
  }

  async summary(_ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    return {
      runtime_id: this.id,
      label: 'Embedded worker runtime',
      kind: 'embedded',
      status: 'available',
      identity_authority: 'registry_projection',
      host_ids: limit > 0 ? [this.hostId] : [],
      capabilities: this.capabilities(),
      diagnostics: [],
    }
  }

  async listHosts(_ctx: CallContext, limit: number): Promise<ListResult<HostSummary>> {
    if (limit === 0) return { items: [], diagnostics: [] }
    const host: HostSummary = {
      runtime_id: this.id,
      host_id: this.hostId,
      label: 'In-process host',
      kind: 'embedded_host',
      status: 'available',
      observed_at: now(),
      capabilities: this.capabilities(),
      diagnostics: [],
    }
    return { items: [host], diagnostics: [] }
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

  async spawn(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult> {
    if (request.acceptance?.kind === 'socket_ready') {
      const why = 'embedded workers have no socket; ask for acceptance "created"'
      return rejected(diagnostic('embedded_runtime_no_socket', 'warning', why))
    }
    if (request.process) {
      return rejected(diagnostic('embedded_runtime_no_process', 'warning', 'embedded workers run no process; use the process runtime'))
    }
    if (!this.makeRoom()) {
      return rejected(diagnostic('embedded_worker_limit', 'warning', `at most ${this.maxWorkers} embedded workers may run at once`))
    }
    const { role, profile } = resolveIntent(request.intent)
    const worker: EmbeddedWorker = {
      id: opaqueId('emb-', role, randomUUID()),
      namespace: ctx.namespace,
      role,
      profile,
      label: request.requested_worker_name ? safeHint(request.requested_worker_name) : `${role} worker`,
      status: 'running',
      createdAt: now(),
      transcript: new Transcript(this.options.transcriptMaxItems, () => ++this.eventId),
    }
    this.workers.set(worker.id, worker)
    return {
      state: 'accepted',
      worker: this.project(worker),
      acceptance_evidence: [{ kind: 'embedded_worker_created', detail: 'the in-process catalog holds the new worker' }],
      diagnostics: [],
    }
  }

  async stop(ctx: CallContext, workerId: string, mode: StopMode): Promise<StopResult> {
    const worker = this.find(ctx, workerId)!
    if (worker.status !== 'running') {
      const note = diagnostic('worker_already_stopped', 'info', `the worker is already ${worker.status}`, workerId)
      return { state: 'accepted', worker: this.project(worker), diagnostics: [note] }
    }
    worker.status = mode === 'force' ? 'cancelled' : 'stopped'
    worker.transcript.emit({ type: 'STATUS', status: worker.status })
    return { state: 'accepted', worker: this.project(worker), diagnostics: [] }
  }

  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId)!
    if (worker.status !== 'running') {
      const why = `the worker is ${worker.status} and takes no input`
      return inputOutcome('rejected', this.id, workerId, diagnostic('worker_not_running', 'warning', why, workerId))
    }
    const item = worker.transcript.append(request.kind, request.content)
    return {
      state: 'accepted',
      runtime_id: this.id,
      worker_id: workerId,
      transcript_sequence: item.sequence,
      event_id: item.event_id,
      diagnostics: [],
    }
  }

  async transcript(ctx: CallContext, workerId: string, start: number, limit: number): Promise<TranscriptPage> {
    const page = this.find(ctx, workerId)!.transcript.page(start, limit)
    return { state: 'accepted', runtime_id: this.id, worker_id: workerId, ...page, diagnostics: [] }
  }

  subscribe(ctx: CallContext, workerId: string, listener: (event: WorkerEvent) => void): () => void {
    return this.find(ctx, workerId)!.transcript.subscribe(listener)
  }

  async close(): Promise<void> {
    for (const worker of this.workers.values()) worker.transcript.clear()
    this.workers.clear()
  }

  private find(ctx: CallContext, workerId: string): EmbeddedWorker | undefined {
    const worker = this.workers.get(workerId)
    return worker && worker.namespace === ctx.namespace ? worker : undefined
  }

  /** Evicts the oldest finished worker when full; false when every slot holds a running worker. */
  private makeRoom(): boolean {
    if (this.workers.size < this.maxWorkers) return true
    for (const [id, worker] of this.workers) {
      if (worker.status !== 'running') {
        worker.transcript.clear()
        this.workers.delete(id)
        return true
      }
    }
    return false
  }

  private capabilities(): RuntimeCapabilities {
    return {
      can_list_hosts: true,
      can_list_workers: true,
      can_get_worker: true,
      can_spawn: true,
      can_stop: true,
      can_accept_input: true,
      can_stream_events: true,
      can_read_transcript: true,
      max_workers: this.maxWorkers,
    }
  }

  private project(worker: EmbeddedWorker): WorkerSummary {
    const running = worker.status === 'running'
    return {
      runtime_id: this.id,
      worker_id: worker.id,
      host_id: this.hostId,
      label: worker.label,
      role: worker.role,
      profile: worker.profile,
      workspace: { visibility: 'backend_internal', identity: 'runtime_registry_worker' },
      status: worker.status,
      created_at: worker.createdAt,
      implementation: { kind: 'embedded', display_hint: 'in-process worker' },
      capabilities: { can_accept_input: running, can_stop: running, can_stream_events: true, can_read_transcript: true },
      diagnostics: [],
    }
  }
}

/** Role and profile an intent resolves to: ticket roles get `builtin:<role>`, workspace intents the default. */
export function resolveIntent(intent: SpawnIntent): { role: string; profile: string } {
  if (intent.kind === 'ticket_role') return { role: intent.role, profile: `builtin:${intent.role}` }
  return { role: intent.kind, profile: 'runtime_default' }
}

function rejected(diag: ReturnType<typeof diagnostic>): SpawnResult {
  return { state: 'rejected', acceptance_evidence: [], diagnostics: [diag] }
}
