import { randomUUID } from 'node:crypto'
import { KernelError } from '../errors.js'
import type {
  HostSummary,
  InputRequest,
  InputResult,
  RuntimeCapabilities,
  RuntimeSummary,
  SpawnRequest,
  SpawnResult,
  StopMode,
  StopResult,
  TranscriptPage,
  WorkerSummary,
} from '../../schemas/workers.js'
import type { ExitInfo, ProcessInfo, SpawnRequest as ProcessSpawnRequest } from '../../schemas/processes.js'
import type { ProcessEvent } from '../processes/types.js'
import { resolveIntent } from './embedded.js'
import { opaqueId, safeHint } from './ids.js'
import { Transcript } from './transcript.js'
import {
  diagnostic,
  emptyPage,
  inputOutcome,
  now,
  type CallContext,
  type ListResult,
  type WorkerEvent,
  type WorkerRuntime,
} from './runtime.js'

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
}

/** Options of the process-backed runtime. */
export interface ProcessRuntimeOptions {
  /** Hashed into the host id; never shown. */
  workspaceRoot: string
  /** Output lines (and inputs) each worker's transcript keeps. */
  transcriptMaxItems: number
  /** Live process workers at once (default 32). */
  maxWorkers?: number
  /** Returns the bridge, or undefined when the processes plugin is not registered (checked per call). */
  bridge: () => ProcessBridge | undefined
  /** Longest transcript line (characters); a longer run of output is split. Default 16384. */
  maxLineChars?: number
  /** How long a stop waits for the process to exit before answering (ms). Default 5000. */
  stopWaitMs?: number
}

type ProcessStatus = 'running' | 'exited' | 'stopped' | 'cancelled'

interface ProcessWorker {
  id: string
  namespace: string
  pid: number
  role: string
  profile: string
  label: string
  kind: string
  status: ProcessStatus
  exitCode: number | null
  stopMode?: StopMode
  createdAt: string
  transcript: Transcript
  partial: Map<string, string>
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
export class ProcessRuntime implements WorkerRuntime {
  readonly id = 'process'
  private readonly hostId: string
  private readonly workers = new Map<string, ProcessWorker>()
  private readonly maxWorkers: number
  private readonly maxLine: number
  private eventId = 0

  constructor(private readonly options: ProcessRuntimeOptions) {
    this.hostId = opaqueId('process-', 'host', `process\0${options.workspaceRoot}`)
    this.maxWorkers = options.maxWorkers ?? 32
    this.maxLine = options.maxLineChars ?? 16_384
  }

  async summary(_ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    const up = this.options.bridge() !== undefined
    return {
      runtime_id: this.id,
      label: 'Process worker runtime',
      kind: 'process',
      status: up ? 'available' : 'unavailable',
      identity_authority: 'registry_projection',
      host_ids: limit > 0 ? [this.hostId] : [],
      capabilities: this.capabilities(up),
      diagnostics: up ? [] : [bridgeMissing()],
    }
  }

  async listHosts(_ctx: CallContext, limit: number): Promise<ListResult<HostSummary>> {
    if (limit === 0) return { items: [], diagnostics: [] }
    const up = this.options.bridge() !== undefined
    const diagnostics = up ? [] : [bridgeMissing()]
    const host: HostSummary = {
      runtime_id: this.id,
      host_id: this.hostId,
      label: 'Process bridge host',
      kind: 'process_host',
      status: up ? 'available' : 'unavailable',
      observed_at: now(),
      capabilities: this.capabilities(up),
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

  /** @throws the bridge's KernelError for a bad launch (e.g. 400 CWD_OUTSIDE_WORKSPACE, 429 TOO_MANY_PROCESSES). */
  async spawn(ctx: CallContext, request: SpawnRequest): Promise<SpawnResult> {
    const bridge = this.options.bridge()
    if (!bridge) return { state: 'unavailable', acceptance_evidence: [], diagnostics: [bridgeMissing()] }
    if (!request.process) {
      return rejectedSpawn('process_launch_missing', 'a process worker needs `process: { type, code?, args?, cwd? }`')
    }
    if (request.acceptance?.kind === 'socket_ready') {
      return rejectedSpawn('process_runtime_no_socket', 'process workers talk over stdin/stdout; ask for acceptance "created"')
    }
    if (this.running() >= this.maxWorkers) {
      return rejectedSpawn('process_worker_limit', `at most ${this.maxWorkers} process workers may run at once`)
    }
    const { type, code, args, cwd } = request.process
    let info: ProcessInfo
    try {
      info = await bridge.spawn({ type, code, args, cwd }, { namespace: ctx.namespace })
    } catch (err) {
      const outcome = asOutcome(err)
      if (!outcome) throw err
      return { state: outcome.state, acceptance_evidence: [], diagnostics: [outcome.diagnostic] }
    }
    const worker = this.track(ctx, request, info)
    worker.detach = bridge.attach(info.pid, (event) => this.onProcessEvent(worker, event), { namespace: ctx.namespace, replay: true })
    return {
      state: 'accepted',
      worker: this.project(worker),
      acceptance_evidence: [{ kind: 'process_started', detail: 'the process bridge started the process' }],
      diagnostics: [],
    }
  }

  async stop(ctx: CallContext, workerId: string, mode: StopMode): Promise<StopResult> {
    const worker = this.find(ctx, workerId)!
    if (worker.status !== 'running') {
      const note = diagnostic('worker_already_stopped', 'info', `the worker is already ${worker.status}`, workerId)
      return { state: 'accepted', worker: this.project(worker), diagnostics: [note] }
    }
    const bridge = this.options.bridge()
    if (!bridge) return { state: 'unavailable', worker: this.project(worker), diagnostics: [bridgeMissing()] }
    worker.stopMode = mode
    await this.signal(bridge, worker, mode === 'force' ? 'SIGKILL' : 'SIGTERM')
    const waited = await Promise.race([worker.exited.then(() => true), delay(this.options.stopWaitMs ?? 5000, false)])
    const diagnostics = waited ? [] : [diagnostic('process_exit_pending', 'warning', 'the signal was sent; the process has not exited yet', workerId)]
    return { state: 'accepted', worker: this.project(worker), diagnostics }
  }

  async input(ctx: CallContext, workerId: string, request: Required<InputRequest>): Promise<InputResult> {
    const worker = this.find(ctx, workerId)!
    if (request.kind !== 'user') {
      const why = 'process workers only take user input (written to stdin)'
      return inputOutcome('unsupported', this.id, workerId, diagnostic('process_system_input_unsupported', 'info', why, workerId))
    }
    if (worker.status !== 'running') {
      const why = `the worker is ${worker.status} and takes no input`
      return inputOutcome('rejected', this.id, workerId, diagnostic('worker_not_running', 'warning', why, workerId))
    }
    const bridge = this.options.bridge()
    if (!bridge) return inputOutcome('unavailable', this.id, workerId, bridgeMissing())
    try {
      bridge.write(worker.pid, `${request.content}\n`, { namespace: worker.namespace })
    } catch (err) {
      const outcome = asOutcome(err, workerId)
      if (!outcome) throw err
      return inputOutcome(outcome.state, this.id, workerId, outcome.diagnostic)
    }
    const item = worker.transcript.append('user', request.content)
    return { state: 'accepted', runtime_id: this.id, worker_id: workerId, transcript_sequence: item.sequence, event_id: item.event_id, diagnostics: [] }
  }

  async transcript(ctx: CallContext, workerId: string, start: number, limit: number): Promise<TranscriptPage> {
    const worker = this.find(ctx, workerId)
    if (!worker) return emptyPage('rejected', this.id, workerId, start, limit, diagnostic('worker_gone', 'warning', 'the worker is gone', workerId))
    return { state: 'accepted', runtime_id: this.id, worker_id: workerId, ...worker.transcript.page(start, limit), diagnostics: [] }
  }

  subscribe(ctx: CallContext, workerId: string, listener: (event: WorkerEvent) => void): () => void {
    return this.find(ctx, workerId)!.transcript.subscribe(listener)
  }

  /** Kills every running worker's process and drops all listeners. */
  async close(): Promise<void> {
    const bridge = this.options.bridge()
    const kills: Promise<void>[] = []
    for (const worker of this.workers.values()) {
      worker.detach?.()
      if (bridge && worker.status === 'running') kills.push(this.signal(bridge, worker, 'SIGKILL').catch(() => {}))
      worker.transcript.clear()
    }
    this.workers.clear()
    await Promise.all(kills)
  }

  private track(ctx: CallContext, request: SpawnRequest, info: ProcessInfo): ProcessWorker {
    this.evictFinished()
    const { role, profile } = resolveIntent(request.intent)
    let markExited = () => {}
    const exited = new Promise<void>((resolve) => (markExited = resolve))
    const worker: ProcessWorker = {
      id: opaqueId('proc-', role, randomUUID()),
      namespace: ctx.namespace,
      pid: info.pid,
      role,
      profile,
      kind: info.type,
      label: request.requested_worker_name ? safeHint(request.requested_worker_name) : `${role} ${info.type} worker`,
      status: 'running',
      exitCode: null,
      createdAt: now(),
      transcript: new Transcript(this.options.transcriptMaxItems, () => ++this.eventId),
      partial: new Map(),
      exited,
      markExited,
    }
    this.workers.set(worker.id, worker)
    return worker
  }

  private onProcessEvent(worker: ProcessWorker, event: ProcessEvent): void {
    if (event.type === 'output') return this.addOutput(worker, event.stream, event.data)
    for (const [stream, rest] of worker.partial) if (rest !== '') worker.transcript.append(stream, rest)
    worker.partial.clear()
    this.finish(worker, event.exit)
  }

  /** Splits output into lines per stream; a trailing partial line waits for more (or the exit). */
  private addOutput(worker: ProcessWorker, stream: string, data: string): void {
    const text = (worker.partial.get(stream) ?? '') + data.replace(/\r\n/g, '\n')
    const lines = text.split('\n')
    let rest = lines.pop() ?? ''
    for (const line of lines) this.appendLine(worker, stream, line)
    while (rest.length > this.maxLine) {
      worker.transcript.append(stream, rest.slice(0, this.maxLine))
      rest = rest.slice(this.maxLine)
    }
    worker.partial.set(stream, rest)
  }

  private appendLine(worker: ProcessWorker, stream: string, line: string): void {
    for (let i = 0; i < line.length || i === 0; i += this.maxLine) worker.transcript.append(stream, line.slice(i, i + this.maxLine))
  }

  private finish(worker: ProcessWorker, exit: ExitInfo): void {
    worker.detach?.()
    worker.detach = undefined
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

  private running(): number {
    let n = 0
    for (const worker of this.workers.values()) if (worker.status === 'running') n++
    return n
  }

  /** Forgets the oldest finished workers so at most 2 × maxWorkers are kept. */
  private evictFinished(): void {
    for (const [id, worker] of this.workers) {
      if (this.workers.size < 2 * this.maxWorkers) return
      if (worker.status !== 'running') this.workers.delete(id), worker.transcript.clear()
    }
  }

  private find(ctx: CallContext, workerId: string): ProcessWorker | undefined {
    const worker = this.workers.get(workerId)
    return worker && worker.namespace === ctx.namespace ? worker : undefined
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

  private project(worker: ProcessWorker): WorkerSummary {
    const live = worker.status === 'running' && this.options.bridge() !== undefined
    return {
      runtime_id: this.id,
      worker_id: worker.id,
      host_id: this.hostId,
      label: worker.label,
      role: worker.role,
      profile: worker.profile,
      workspace: { visibility: 'current_workspace', identity: 'process_bridge_worker' },
      status: worker.status,
      exit_code: worker.exitCode,
      created_at: worker.createdAt,
      implementation: { kind: 'process', display_hint: `${worker.kind} process` },
      capabilities: { can_accept_input: live, can_stop: live, can_stream_events: true, can_read_transcript: true },
      diagnostics: [],
    }
  }
}

/**
 * Bridge errors that are operation outcomes rather than bad requests: 409 → `rejected`,
 * 501 → `unsupported`, 503 → `unavailable` (e.g. SHUTTING_DOWN). Anything else is rethrown.
 */
function asOutcome(err: unknown, workerId?: string) {
  if (!(err instanceof KernelError)) return undefined
  const state = ({ 409: 'rejected', 501: 'unsupported', 503: 'unavailable' } as const)[err.statusCode as 409 | 501 | 503]
  if (!state) return undefined
  const code = err.code === 'PROCESS_EXITED' ? 'worker_not_running' : `process_${err.code.toLowerCase()}`
  return { state, diagnostic: diagnostic(code, 'warning', err.message, workerId) }
}

function bridgeMissing() {
  return diagnostic('process_bridge_unavailable', 'warning', 'the process bridge plugin is not registered, so process workers cannot run')
}

function rejectedSpawn(code: string, message: string): SpawnResult {
  return { state: 'rejected', acceptance_evidence: [], diagnostics: [diagnostic(code, 'warning', message)] }
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref())
}
