import type { InputRequest, InputResult, SpawnRequest, SpawnResult, StopMode, StopResult } from '../../schemas/workers.js'
import type { CallContext } from './runtime.js'
import { TrackedRuntime, rejectedSpawn, type TrackedWorker, type WorkerDetails } from './tracked.js'

/** Options of the in-process runtime. */
export interface EmbeddedRuntimeOptions {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
  /** Items each worker's transcript keeps (older ones are dropped). */
  transcriptMaxItems: number
  /** Workers kept at once, all namespaces together (default 1000); stopped ones are evicted first. */
  maxWorkers?: number
}

interface EmbeddedWorker extends TrackedWorker {
  status: 'running' | 'stopped' | 'cancelled'
}

/**
 * `embedded`: in-process workers created from a typed intent. A worker has a role and a profile resolved
 * from the intent, accepts `user` / `system` input into a bounded transcript (sequence + event id), and
 * stops `graceful` → `stopped` or `force` → `cancelled`. It runs nothing: it is the registry's own
 * conversation store, the way an embedding app drives a worker it implements elsewhere.
 */
export class EmbeddedRuntime extends TrackedRuntime<EmbeddedWorker> {
  readonly id = 'embedded'

  constructor(options: EmbeddedRuntimeOptions) {
    super({
      workspaceRoot: options.workspaceRoot,
      label: 'Embedded worker runtime',
      kind: 'embedded',
      hostLabel: 'In-process host',
      hostKind: 'embedded_host',
      maxWorkers: options.maxWorkers ?? 1000,
      transcriptMaxItems: options.transcriptMaxItems,
    })
  }

  async spawn(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult> {
    if (request.acceptance?.kind === 'socket_ready') {
      const why = 'embedded workers have no socket; ask for acceptance "created"'
      return rejectedSpawn('embedded_runtime_no_socket', why)
    }
    if (request.process) {
      const why = 'embedded workers run no process; use the process runtime'
      return rejectedSpawn('embedded_runtime_no_process', why)
    }
    if (!this.makeRoom()) {
      const why = `at most ${this.maxWorkers} embedded workers may run at once`
      return rejectedSpawn('embedded_worker_limit', why)
    }
    const worker: EmbeddedWorker = this.newWorker(ctx, request, 'emb-', 'worker')
    this.workers.set(worker.id, worker)
    return this.spawned(worker, 'embedded_worker_created', 'the in-process catalog holds the new worker')
  }

  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId)!
    return this.notRunning(worker) ?? this.record(worker, request.kind, request.content)
  }

  async close(): Promise<void> {
    for (const worker of this.workers.values()) worker.transcript.clear()
    this.workers.clear()
  }

  protected async halt(worker: EmbeddedWorker, mode: StopMode): Promise<StopResult> {
    worker.status = mode === 'force' ? 'cancelled' : 'stopped'
    worker.transcript.emit({ type: 'STATUS', status: worker.status })
    return { state: 'accepted', worker: this.project(worker), diagnostics: [] }
  }

  protected details(): WorkerDetails {
    return {
      workspace: { visibility: 'backend_internal', identity: 'runtime_registry_worker' },
      implementation: { kind: 'embedded', display_hint: 'in-process worker' },
    }
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
}
