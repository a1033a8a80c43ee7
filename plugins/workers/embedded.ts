import type { InputRequest, InputResult, SpawnRequest, SpawnResult, StopMode, StopResult } from '../../schemas/workers.js'
import { diagnostic, inputOutcome, type CallContext } from './runtime.js'
import { TrackedRuntime, quarterOf, rejectedSpawn, type TrackedWorker, type TranscriptBounds, type WorkerDetails } from './tracked.js'

/** Options of the in-process runtime. */
export interface EmbeddedRuntimeOptions extends TranscriptBounds {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
  /** Workers kept at once (running or stopped), all namespaces together (default 1000). */
  maxWorkers?: number
  /** Workers one namespace may keep (default a quarter of `maxWorkers`). */
  maxWorkersPerNamespace?: number
}

interface EmbeddedWorker extends TrackedWorker {
  status: 'running' | 'stopped' | 'cancelled'
  /** Slow events subscribers holding the worker paused (see `pauseEvents`). */
  pauses: number
  /** While paused: settles when the last pause is released. */
  resumed?: Promise<void>
  resume?: () => void
}

/**
 * `embedded`: in-process workers created from a typed intent. A worker has a role and a profile resolved
 * from the intent, accepts `user` / `system` input into a bounded transcript (sequence + event id), and
 * stops `graceful` → `stopped` or `force` → `cancelled`. It runs nothing: it is the registry's own
 * conversation store, the way an embedding app drives a worker it implements elsewhere. Its producer
 * is whoever sends input, so a slow events subscriber pauses the worker by holding input requests
 * (answered, in order, when the pause ends) the way a process worker blocks on its pipe.
 */
export class EmbeddedRuntime extends TrackedRuntime<EmbeddedWorker> {
  readonly id = 'embedded'

  constructor(options: EmbeddedRuntimeOptions) {
    const maxWorkers = options.maxWorkers ?? 1000
    super({
      workspaceRoot: options.workspaceRoot,
      label: 'Embedded worker runtime',
      kind: 'embedded',
      hostLabel: 'In-process host',
      hostKind: 'embedded_host',
      maxWorkers,
      maxWorkersPerNamespace: options.maxWorkersPerNamespace ?? quarterOf(maxWorkers),
      transcriptMaxItems: options.transcriptMaxItems,
      transcriptMaxBytes: options.transcriptMaxBytes,
      runtimeTranscriptMaxBytes: options.runtimeTranscriptMaxBytes,
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
    const full = this.makeRoom(ctx.namespace)
    if (full) return full
    const worker: EmbeddedWorker = { ...this.newWorker(ctx, request, 'emb-', 'worker'), pauses: 0 }
    this.workers.set(worker.id, worker)
    return this.spawned(worker, 'embedded_worker_created', 'the in-process catalog holds the new worker', request)
  }

  /** Waits while a slow subscriber holds the worker paused (see `pauseEvents`), then records the input. */
  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId)!
    while (worker.resumed && worker.status === 'running') await worker.resumed
    if (this.workers.get(worker.id) !== worker) {
      return inputOutcome('rejected', this.id, workerId, diagnostic('worker_gone', 'warning', 'the worker is gone', workerId))
    }
    return this.notRunning(worker) ?? this.record(worker, request.kind, request.content)
  }

  /**
   * A slow events subscriber holds the worker: input requests wait (in arrival order) until every
   * pause is released. Reference-counted; each release is idempotent. The registry bounds how long
   * one subscriber may hold it (`maxEventsPauseMs`). Undefined for a worker that takes no input.
   */
  pauseEvents(ctx: CallContext, workerId: string): (() => void) | undefined {
    const worker = this.find(ctx, workerId)
    if (!worker || worker.status !== 'running') return undefined
    if (worker.pauses++ === 0) worker.resumed = new Promise<void>((resolve) => (worker.resume = resolve))
    let held = true
    return () => {
      if (!held) return
      held = false
      if (--worker.pauses === 0) wake(worker)
    }
  }

  async close(): Promise<void> {
    for (const worker of this.workers.values()) {
      worker.transcript.clear()
      wake(worker)
    }
    this.workers.clear()
  }

  protected async halt(worker: EmbeddedWorker, mode: StopMode): Promise<StopResult> {
    worker.status = mode === 'force' ? 'cancelled' : 'stopped'
    wake(worker) // held inputs are answered now: a stopped worker takes none
    worker.transcript.emit({ type: 'STATUS', status: worker.status })
    return { state: 'accepted', worker: this.project(worker), diagnostics: [] }
  }

  protected details(): WorkerDetails {
    return {
      workspace: { visibility: 'backend_internal', identity: 'runtime_registry_worker' },
      implementation: { kind: 'embedded', display_hint: 'in-process worker' },
    }
  }

  /**
   * Make room for one more worker of `namespace`: at its quota, or when the runtime is full, evict that
   * namespace's oldest finished worker (never another namespace's). Returns the rejection when there is none.
   */
  private makeRoom(namespace: string): SpawnResult | undefined {
    const atQuota = this.countIn(namespace, false) >= this.maxPerNamespace
    if (!atQuota && this.workers.size < this.maxWorkers) return undefined
    const victim = this.oldestFinished(namespace)
    if (victim) {
      this.forget(victim)
      return undefined
    }
    if (atQuota) return rejectedSpawn('embedded_namespace_quota', `namespace "${namespace}" already keeps ${this.maxPerNamespace} embedded workers, its quota`)
    return rejectedSpawn('embedded_worker_limit', `at most ${this.maxWorkers} embedded workers may be kept at once`)
  }
}

/** Lets the inputs held by a pause go on (on a stop, before the pauses are released: it takes no more input). */
function wake(worker: EmbeddedWorker): void {
  worker.resume?.()
  worker.resumed = worker.resume = undefined
}
