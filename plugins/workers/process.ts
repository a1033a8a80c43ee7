import { KernelError } from '../errors.js'
import type { InputRequest, InputResult, SpawnRequest, SpawnResult, StopMode, StopResult } from '../../schemas/workers.js'
import type { ExitInfo, ProcessInfo, SpawnRequest as ProcessSpawnRequest } from '../../schemas/processes.js'
import type { ProcessEvent } from '../processes/types.js'
import { diagnostic, inputOutcome, type CallContext } from './runtime.js'
import { TrackedRuntime, quarterOf, rejectedSpawn, spawnOutcome, type TrackedWorker, type TranscriptBounds, type WorkerDetails } from './tracked.js'

/** The part of the process bridge (`fastify.processes`, a ProcessManager) this adapter uses. */
export interface ProcessBridge {
  /** Starts a process; throws KernelError 400 (bad launch), 429 TOO_MANY_PROCESSES, 503 SHUTTING_DOWN. */
  spawn(request: ProcessSpawnRequest, scope?: { namespace?: string }): Promise<ProcessInfo>
  /** Writes stdin; throws 409 PROCESS_EXITED, 413 INPUT_TOO_LARGE. */
  write(pid: number, data: string, opts?: { namespace?: string }): number
  /** Signals, waits until reaped, forgets; throws 404 PROCESS_NOT_FOUND synchronously. */
  kill(pid: number, signal: 'SIGTERM' | 'SIGKILL', scope?: { namespace?: string }): Promise<ProcessInfo>
  /** Output (replayed first) and exit events; returns the detach function. */
  attach(pid: number, listener: (event: ProcessEvent) => void, opts?: { namespace?: string; replay?: boolean }): () => void
  /** Stops reading the process's output until the returned release is called (the child blocks). */
  pauseOutput(pid: number, scope?: { namespace?: string }): () => void
}

/** Output bytes turned into transcript lines per event-loop turn; the rest waits for the next turn. */
const BATCH_BYTES = 64 * 1024
/** Unprocessed output above which the process is paused until the backlog is worked off. */
const BACKLOG_HIGH_BYTES = 256 * 1024

/** Options of the process-backed runtime. */
export interface ProcessRuntimeOptions extends TranscriptBounds {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
  /** Live process workers at once (default 32). */
  maxWorkers?: number
  /** Live process workers of one namespace at once (default a quarter of `maxWorkers`). */
  maxWorkersPerNamespace?: number
  /** Returns the bridge, or undefined when the processes plugin is not registered (checked per call). */
  bridge: () => ProcessBridge | undefined
  /** Longest transcript line (characters); a longer run of output is split. Default 16384. */
  maxLineChars?: number
  /** How long a stop waits for the process to exit before answering (ms). Default 5000. */
  stopWaitMs?: number
}

interface ProcessWorker extends TrackedWorker {
  status: 'running' | 'exited' | 'stopped' | 'cancelled'
  pid: number
  kind: string
  exitCode: number | null
  stopMode?: StopMode
  partial: Map<string, string>
  /** Output (and finally the exit) not yet turned into transcript items, oldest first. */
  backlog: ProcessEvent[]
  backlogBytes: number
  draining: boolean
  /** Releases the bridge's output pause while the backlog is high. */
  release?: () => void
  detach?: () => void
  exited: Promise<void>
  markExited: () => void
}

/**
 * `process`: each worker is a real process started through the process bridge. Input of kind `user`
 * is written to stdin as one line (and recorded in the transcript), the transcript holds output lines
 * (`stdout` / `stderr` / `pty`), stop sends SIGTERM (`graceful` → `stopped`) or SIGKILL (`force` →
 * `cancelled`); a process that ends by itself is `exited` with its exit code. Pids, commands and working
 * directories are never projected. Without the bridge the runtime is `unavailable`, with a diagnostic.
 */
export class ProcessRuntime extends TrackedRuntime<ProcessWorker> {
  readonly id = 'process'
  private readonly maxLine: number

  constructor(private readonly options: ProcessRuntimeOptions) {
    const maxWorkers = options.maxWorkers ?? 32
    super({
      workspaceRoot: options.workspaceRoot,
      label: 'Process worker runtime',
      kind: 'process',
      hostLabel: 'Process bridge host',
      hostKind: 'process_host',
      maxWorkers,
      maxWorkersPerNamespace: options.maxWorkersPerNamespace ?? quarterOf(maxWorkers),
      transcriptMaxItems: options.transcriptMaxItems,
      transcriptMaxBytes: options.transcriptMaxBytes,
      runtimeTranscriptMaxBytes: options.runtimeTranscriptMaxBytes,
    })
    this.maxLine = options.maxLineChars ?? 16_384
  }

  /** @throws the bridge's KernelError for a bad launch (e.g. 400 CWD_OUTSIDE_WORKSPACE, 429 TOO_MANY_PROCESSES). */
  async spawn(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult> {
    const bridge = this.options.bridge()
    if (!bridge) return spawnOutcome('unavailable', bridgeMissing())
    if (!request.process) {
      return rejectedSpawn('process_launch_missing', 'a process worker needs `process: { type, code?, args?, cwd? }`')
    }
    if (request.acceptance?.kind === 'socket_ready') {
      return rejectedSpawn('process_runtime_no_socket', 'process workers talk over stdin/stdout; ask for acceptance "created" or "run_accepted"')
    }
    const full = this.admit(ctx.namespace)
    if (full) return full
    const { type, code, args, cwd } = request.process
    let info: ProcessInfo
    try {
      info = await bridge.spawn({ type, code, args, cwd }, { namespace: ctx.namespace })
    } catch (err) {
      const outcome = asOutcome(err)
      if (!outcome) throw err
      return spawnOutcome(outcome.state, outcome.diagnostic)
    }
    const worker = this.track(ctx, request, info)
    worker.detach = bridge.attach(info.pid, (event) => this.enqueue(bridge, worker, event), { namespace: ctx.namespace, replay: true })
    return this.spawned(worker, 'process_started', 'the process bridge started the process', request)
  }

  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId)!
    if (request.kind !== 'user') {
      const why = 'process workers only take user input (written to stdin)'
      return inputOutcome('unsupported', this.id, workerId, diagnostic('process_system_input_unsupported', 'info', why, workerId))
    }
    const refused = this.notRunning(worker)
    if (refused) return refused
    const bridge = this.options.bridge()
    if (!bridge) return inputOutcome('unavailable', this.id, workerId, bridgeMissing())
    try {
      bridge.write(worker.pid, `${request.content}\n`, { namespace: worker.namespace })
    } catch (err) {
      const outcome = asOutcome(err, workerId)
      if (!outcome) throw err
      return inputOutcome(outcome.state, this.id, workerId, outcome.diagnostic)
    }
    return this.record(worker, 'user', request.content)
  }

  /** A slow events subscriber holds the process: the bridge stops reading its output (reference-counted) until released. */
  pauseEvents(ctx: CallContext, workerId: string): (() => void) | undefined {
    const worker = this.find(ctx, workerId)
    const bridge = this.options.bridge()
    if (!worker || !bridge || worker.status !== 'running') return undefined
    try {
      return bridge.pauseOutput(worker.pid, { namespace: worker.namespace })
    } catch {
      return undefined // already forgotten by the bridge: nothing more will come
    }
  }

  /** Kills every running worker's process and drops all listeners. */
  async close(): Promise<void> {
    const bridge = this.options.bridge()
    const kills: Promise<void>[] = []
    for (const worker of this.workers.values()) {
      worker.detach?.()
      worker.release?.()
      if (bridge && worker.status === 'running') kills.push(this.signal(bridge, worker, 'SIGKILL').catch(() => {}))
      worker.transcript.clear()
    }
    this.workers.clear()
    await Promise.all(kills)
  }

  protected async halt(worker: ProcessWorker, mode: StopMode): Promise<StopResult> {
    const bridge = this.options.bridge()
    if (!bridge) return { state: 'unavailable', worker: this.project(worker), diagnostics: [bridgeMissing()] }
    worker.stopMode = mode
    await this.signal(bridge, worker, mode === 'force' ? 'SIGKILL' : 'SIGTERM')
    const waited = await Promise.race([worker.exited.then(() => true), delay(this.options.stopWaitMs ?? 5000, false)])
    const diagnostics = waited ? [] : [diagnostic('process_exit_pending', 'warning', 'the signal was sent; the process has not exited yet', worker.id)]
    return { state: 'accepted', worker: this.project(worker), diagnostics }
  }

  protected details(worker: ProcessWorker): WorkerDetails {
    return {
      workspace: { visibility: 'current_workspace', identity: 'process_bridge_worker' },
      exit_code: worker.exitCode,
      implementation: { kind: 'process', display_hint: `${worker.kind} process` },
    }
  }

  protected downReason() {
    return this.options.bridge() ? undefined : bridgeMissing()
  }

  private track(ctx: CallContext, request: SpawnRequest, info: ProcessInfo): ProcessWorker {
    let markExited = () => {}
    const exited = new Promise<void>((resolve) => (markExited = resolve))
    const worker: ProcessWorker = {
      ...this.newWorker(ctx, request, 'proc-', `${info.type} worker`),
      pid: info.pid,
      kind: info.type,
      exitCode: null,
      partial: new Map(),
      backlog: [],
      backlogBytes: 0,
      draining: false,
      exited,
      markExited,
    }
    this.workers.set(worker.id, worker)
    return worker
  }

  /**
   * Flow control: output is queued and turned into transcript lines at most {@link BATCH_BYTES} per
   * event-loop turn, so a process printing flat out cannot hold the loop; while more than
   * {@link BACKLOG_HIGH_BYTES} wait, the bridge stops reading the process (it blocks on its pipe).
   */
  private enqueue(bridge: ProcessBridge, worker: ProcessWorker, event: ProcessEvent): void {
    worker.backlog.push(event)
    if (event.type === 'output') worker.backlogBytes += event.bytes.length
    if (!worker.release && worker.backlogBytes > BACKLOG_HIGH_BYTES && worker.status === 'running') {
      try {
        worker.release = bridge.pauseOutput(worker.pid, { namespace: worker.namespace })
      } catch {
        // already forgotten by the bridge: nothing more will come
      }
    }
    if (!worker.draining) {
      worker.draining = true
      setImmediate(() => this.drain(worker))
    }
  }

  private drain(worker: ProcessWorker): void {
    let budget = BATCH_BYTES
    while (budget > 0 && worker.backlog.length > 0) {
      const event = worker.backlog.shift()!
      if (event.type === 'output') {
        budget -= event.bytes.length
        worker.backlogBytes -= event.bytes.length
      }
      this.onProcessEvent(worker, event)
    }
    if (worker.release && worker.backlogBytes <= BACKLOG_HIGH_BYTES / 2) {
      worker.release()
      worker.release = undefined
    }
    if (worker.backlog.length > 0) setImmediate(() => this.drain(worker))
    else worker.draining = false
  }

  private onProcessEvent(worker: ProcessWorker, event: ProcessEvent): void {
    if (event.type === 'output') return this.addOutput(worker, event.stream, event.data)
    for (const [stream, rest] of worker.partial) if (rest !== '') worker.transcript.append(stream, rest)
    worker.partial.clear()
    this.finish(worker, event.exit)
  }

  /** Splits output into lines per stream (long ones cut at `maxLineChars`); a trailing partial line waits for more (or the exit). */
  private addOutput(worker: ProcessWorker, stream: string, data: string): void {
    const text = (worker.partial.get(stream) ?? '') + data.replace(/\r\n/g, '\n')
    const lines = text.split('\n')
    let rest = lines.pop() ?? ''
    const items: string[] = []
    for (const line of lines) for (let i = 0; i < line.length || i === 0; i += this.maxLine) items.push(line.slice(i, i + this.maxLine))
    while (rest.length > this.maxLine) {
      items.push(rest.slice(0, this.maxLine))
      rest = rest.slice(this.maxLine)
    }
    worker.transcript.appendAll(stream, items)
    worker.partial.set(stream, rest)
  }

  private finish(worker: ProcessWorker, exit: ExitInfo): void {
    worker.detach?.()
    worker.detach = undefined
    worker.release?.()
    worker.release = undefined
    worker.exitCode = exit.code
    worker.status = worker.stopMode === 'force' ? 'cancelled' : worker.stopMode === 'graceful' ? 'stopped' : 'exited'
    worker.transcript.emit({ type: 'STATUS', status: worker.status, exit_code: exit.code })
    worker.markExited()
  }

  /** Signals the process and waits until the bridge has reaped it (SIGTERM escalates to SIGKILL there). */
  private async signal(bridge: ProcessBridge, worker: ProcessWorker, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    try {
      await bridge.kill(worker.pid, signal, { namespace: worker.namespace })
    } catch (err) {
      // Already gone from the bridge (reaped and forgotten): nothing left to signal.
      if (!(err instanceof KernelError && err.statusCode === 404)) throw err
    }
  }

  /**
   * Check the caps before a spawn of `namespace`: at most `maxWorkers` running in all, at most the
   * namespace's quota running in it; and keep at most twice each in all (finished ones included),
   * evicting only that namespace's oldest finished worker. Returns the rejection, or undefined.
   */
  private admit(namespace: string): SpawnResult | undefined {
    if (this.countRunning() >= this.maxWorkers) {
      return rejectedSpawn('process_worker_limit', `at most ${this.maxWorkers} process workers may run at once`)
    }
    if (this.countIn(namespace, true) >= this.maxPerNamespace) {
      return rejectedSpawn('process_namespace_quota', `namespace "${namespace}" already runs ${this.maxPerNamespace} process workers, its quota`)
    }
    const full = this.countIn(namespace, false) >= 2 * this.maxPerNamespace || this.workers.size >= 2 * this.maxWorkers
    if (!full) return undefined
    const victim = this.oldestFinished(namespace)
    if (victim) return void this.forget(victim)
    return rejectedSpawn('process_worker_limit', `at most ${2 * this.maxWorkers} process workers may be kept at once; stop and let finished ones go first`)
  }

  private countRunning(): number {
    let n = 0
    for (const worker of this.workers.values()) if (worker.status === 'running') n++
    return n
  }
}

/**
 * Bridge errors that are operation outcomes rather than bad requests: 409 → `rejected`,
 * 503 → `unavailable` (e.g. SHUTTING_DOWN). Anything else is rethrown.
 */
function asOutcome(err: unknown, workerId?: string) {
  if (!(err instanceof KernelError)) return undefined
  const state = ({ 409: 'rejected', 503: 'unavailable' } as const)[err.statusCode as 409 | 503]
  if (!state) return undefined
  const code = err.code === 'PROCESS_EXITED' ? 'worker_not_running' : `process_${err.code.toLowerCase()}`
  return { state, diagnostic: diagnostic(code, 'warning', err.message, workerId) }
}

function bridgeMissing() {
  return diagnostic('process_bridge_unavailable', 'warning', 'the process bridge plugin is not registered, so process workers cannot run')
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref())
}
