/**
 * The worker registry's `kernels` runtime (specs/kernels.md section 3): every kernel is a worker of its
 * namespace, however it was started; input `user` executes the content as code; the transcript is the
 * kernel's REST executions (`user` code, `stdout` / `stderr` text, `result` text/plain, `error`); stop
 * `graceful` = shutdown_request, `force` = SIGKILL.
 */
import type { InputRequest, InputResult, SpawnRequest, SpawnResult, StopMode, StopResult } from '../../schemas/workers.js'
import { KernelError } from '../errors.js'
import type { CallContext } from '../workers/runtime.js'
import { diagnostic, inputOutcome } from '../workers/runtime.js'
import { TrackedRuntime, rejectedSpawn, spawnOutcome, type TrackedWorker, type TranscriptBounds, type WorkerDetails } from '../workers/tracked.js'
import type { Execution, NbOutput } from './executions.js'
import type { Kernel } from './kernel.js'
import type { KernelManager } from './manager.js'

interface KernelWorker extends TrackedWorker {
  status: 'running' | 'stopped' | 'cancelled' | 'exited'
  kernel: Kernel
  stopMode?: StopMode
}

/** Options of the runtime. */
export interface KernelsRuntimeOptions extends TranscriptBounds {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
}

/** One transcript item per nbformat output. */
function outputItem(o: NbOutput): [string, string] | undefined {
  if (o.output_type === 'stream') return [o.name === 'stderr' ? 'stderr' : 'stdout', o.text]
  if (o.output_type === 'error') return ['error', `${o.ename}: ${o.evalue}`]
  const text = o.data['text/plain']
  return typeof text === 'string' ? ['result', text] : undefined
}

/**
 * `kernels`: the kernels of `fastify.kernels` as workers.
 *
 * No `pauseEvents`: a kernel cannot be paused for one slow events subscriber. Its output arrives on
 * iopub, a ZeroMQ PUB socket, which never blocks the kernel: a subscriber that stops reading gets its
 * messages dropped at the high-water mark, for the Jupyter clients of the kernel too. The only other
 * pause, SIGSTOP, would stop its heartbeat, shell and control replies for every client (and trip the
 * stall and heartbeat checks). So a slow subscriber of a kernel worker is dropped past 4 MiB unsent
 * (close 1013, routes/workers.ts), as Jupyter Server itself drops iopub past its rate limits.
 */
export class KernelsRuntime extends TrackedRuntime<KernelWorker> {
  readonly id = 'kernels'
  private readonly byKernel = new Map<string, KernelWorker>()

  constructor(private readonly manager: KernelManager, options: KernelsRuntimeOptions) {
    super({
      workspaceRoot: options.workspaceRoot,
      label: 'Code kernels (Jupyter)',
      kind: 'kernels',
      hostLabel: 'Kernel host',
      hostKind: 'kernel_host',
      maxWorkers: manager.options.maxKernels,
      maxWorkersPerNamespace: manager.options.maxKernelsPerNamespace,
      transcriptMaxItems: options.transcriptMaxItems,
      transcriptMaxBytes: options.transcriptMaxBytes,
      runtimeTranscriptMaxBytes: options.runtimeTranscriptMaxBytes,
    })
    manager.on('started', (kernel) => this.adopt(kernel))
  }

  /** A kernel the manager took on becomes a worker, its REST executions its transcript. */
  private adopt(kernel: Kernel): KernelWorker {
    const existing = this.byKernel.get(kernel.id)
    if (existing) return existing
    const intent: SpawnRequest = { intent: { kind: 'workspace_companion' } }
    const worker: KernelWorker = { ...this.newWorker({ namespace: kernel.namespace ?? 'default' }, intent, 'kern-', `${kernel.spec.name} kernel`), kernel }
    this.workers.set(worker.id, worker)
    this.byKernel.set(kernel.id, worker)
    this.manager.executions(kernel).on('submitted', (e) => this.follow(worker, e))
    kernel.once('removed', () => {
      worker.status = worker.stopMode === 'force' ? 'cancelled' : worker.stopMode === 'graceful' ? 'stopped' : 'exited'
      worker.transcript.emit({ type: 'STATUS', status: worker.status })
      this.byKernel.delete(kernel.id)
      this.evictFinished()
    })
    return worker
  }

  private follow(worker: KernelWorker, execution: Execution): void {
    worker.transcript.append('user', execution.code)
    execution.on('output', (o) => {
      const item = outputItem(o)
      if (item) worker.transcript.append(item[0], item[1])
    })
  }

  /** Starts the default kernelspec (intent and name as for every runtime). */
  async spawn(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult> {
    if (request.process) return rejectedSpawn('kernels_runtime_no_process', 'kernel workers start a kernelspec, not a process launch')
    if (request.acceptance?.kind === 'socket_ready') return rejectedSpawn('kernels_runtime_no_socket', 'ask for acceptance "created" (the kernel is ready when the spawn answers)')
    let kernel: Kernel
    try {
      kernel = await this.manager.start(ctx.namespace, {})
    } catch (err) {
      if (!(err instanceof KernelError)) throw err
      const state = err.statusCode === 429 || err.statusCode >= 500 ? 'unavailable' : 'rejected'
      return spawnOutcome(state, diagnostic(`kernels_${err.code.toLowerCase()}`, 'warning', err.message))
    }
    // the manager's `started` already made it a worker: take the spawn's intent and name
    const worker = this.adopt(kernel)
    const { role, profile, label } = this.newWorker(ctx, request, 'kern-', `${kernel.spec.name} kernel`)
    Object.assign(worker, { role, profile, label })
    return this.spawned(worker, 'kernel_info_reply', `the ${kernel.spec.name} kernel answered kernel_info`, request)
  }

  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId) as KernelWorker
    if (request.kind !== 'user') return inputOutcome('unsupported', this.id, workerId, diagnostic('kernels_system_input_unsupported', 'info', 'kernel workers take user input (code to execute)', workerId))
    const refused = this.notRunning(worker)
    if (refused) return refused
    try {
      this.manager.executions(worker.kernel).submit({ code: request.content })
    } catch (err) {
      if (!(err instanceof KernelError)) throw err
      return inputOutcome('rejected', this.id, workerId, diagnostic(`kernels_${err.code.toLowerCase()}`, 'warning', err.message, workerId))
    }
    const item = worker.transcript.page(worker.transcript.total - 1, 1).items[0]
    return { state: 'accepted', runtime_id: this.id, worker_id: workerId, transcript_sequence: item.sequence, event_id: item.event_id, diagnostics: [] }
  }

  protected async halt(worker: KernelWorker, mode: StopMode): Promise<StopResult> {
    worker.stopMode = mode
    await this.manager.shutdown(worker.namespace, worker.kernel.id, mode === 'force' ? 'kill' : 'graceful').catch(() => {})
    return { state: 'accepted', worker: this.project(worker), diagnostics: [] }
  }

  protected details(worker: KernelWorker): WorkerDetails {
    return {
      workspace: { visibility: 'current_workspace', identity: 'kernel_worker' },
      exit_code: null,
      implementation: { kind: 'kernel', display_hint: `${worker.kernel.spec.name} kernel (${worker.kernel.state})` },
    }
  }

  /** Forgets the oldest finished workers so at most 2 × maxWorkers are kept. */
  private evictFinished(): void {
    for (const [id, worker] of this.workers) {
      if (this.workers.size < 2 * this.maxWorkers) return
      if (worker.status !== 'running') this.workers.delete(id)
    }
  }
}
