import { EventEmitter } from 'node:events'
import { realpathSync, statSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { KernelError } from '../errors.js'
import { ProcessSignal as ProcessSignalSchema } from '../../schemas/processes.js'
import { startChild } from './child.js'
import { checkRequest, planCommand, type Plan } from './plan.js'
import { ProcessRecord } from './record.js'
import { buildEnv, resolveCwd } from './sandbox.js'
import { sessionMembers, signalSession, signalTarget, trySignal } from './session.js'
import {
  DEFAULT_ENV_ALLOW_LIST,
  type AttachOptions,
  type ExitInfo,
  type ExitReason,
  type InternalSpawnRequest,
  type OutputSnapshot,
  type ProcessInfo,
  type ProcessListener,
  type ProcessManagerEvents,
  type ProcessesOptions,
  type ProcessSignal,
  type ResolvedProcessesOptions,
  type Scope,
  type SpawnRequest,
  type WriteOptions,
} from './types.js'
import { waitForListen } from './workerd.js'

/** Signals accepted by `signal()`, from the `ProcessSignal` schema. */
export const SIGNALS: readonly ProcessSignal[] = ProcessSignalSchema.anyOf.map((s) => s.const as ProcessSignal)

/** Minimal logger (pino and fastify's logger fit). */
export interface ManagerLogger {
  warn(obj: object, msg?: string): void
}

/** Fill in defaults and check option values. Throws `Error` for an invalid workspace root. */
export function resolveOptions(options: ProcessesOptions = {}): ResolvedProcessesOptions {
  const root = resolve(options.workspaceRoot ?? process.cwd())
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`processes: workspaceRoot is not a directory: ${root}`)
  return {
    workspaceRoot: realpathSync(root),
    maxProcesses: options.maxProcesses ?? 32,
    outputBufferBytes: options.outputBufferBytes ?? 1024 * 1024,
    maxInputBytes: options.maxInputBytes ?? 64 * 1024,
    defaultTimeoutMs: options.defaultTimeoutMs ?? 0,
    idleTimeoutMs: options.idleTimeoutMs ?? 10 * 60_000,
    envAllowList: options.envAllowList ?? [...DEFAULT_ENV_ALLOW_LIST],
    killGraceMs: options.killGraceMs ?? 2000,
    retainExited: options.retainExited ?? 64,
    nodeHeapMb: options.nodeHeapMb ?? 512,
  }
}

/**
 * The process bridge, usable without HTTP (`fastify.processes`).
 *
 * Every method taking a `pid` throws 404 `PROCESS_NOT_FOUND` when the pid is unknown or belongs to
 * another namespace (`scope.namespace`, default `'default'`); methods that need a live process
 * throw 409 `PROCESS_EXITED` after it ended. Exited processes stay inspectable until `kill()`
 * forgets them or `retainExited` newer ones push them out.
 *
 * Events: `on('spawn', info)`, `on('output', event)`, `on('exit', event, info)` for all namespaces;
 * per process, use `attach()`.
 */
export class ProcessManager extends EventEmitter<ProcessManagerEvents> {
  readonly options: ResolvedProcessesOptions
  private readonly records = new Map<number, ProcessRecord>()
  private readonly sweeps = new Set<Promise<void>>()
  private starting = 0
  private readonly inflight = new Set<Promise<unknown>>()
  private closing = false

  constructor(options: ProcessesOptions = {}, private readonly log: ManagerLogger = { warn: () => {} }) {
    super()
    this.options = resolveOptions(options)
  }

  /**
   * Start a process. Resolves once it runs (workerd: once its port accepts connections).
   * Throws 400 `UNKNOWN_PROCESS_TYPE`, `INVALID_SPAWN_REQUEST`, `CWD_OUTSIDE_WORKSPACE`, `INVALID_CWD`,
   * `SCRIPT_OUTSIDE_WORKSPACE`, `SCRIPT_NOT_FOUND`, `WORKERD_START_FAILED`; 429 `TOO_MANY_PROCESSES`
   * when `maxProcesses` are live; 503 `SHUTTING_DOWN`; 500 `SPAWN_FAILED`. On any error nothing keeps running.
   */
  spawn(req: SpawnRequest, scope: Scope = {}): Promise<ProcessInfo> {
    const task = this.doSpawn(req, scope)
    this.inflight.add(task)
    const forget = () => this.inflight.delete(task)
    task.then(forget, forget)
    return task
  }

  /**
   * Start a process for another plugin (see `InternalSpawnRequest`); reach it afterwards with
   * `{ owner }` as the scope. Throws 429 `TOO_MANY_PROCESSES`, 503 `SHUTTING_DOWN`, 500 `SPAWN_FAILED`.
   */
  spawnInternal(req: InternalSpawnRequest): Promise<ProcessInfo> {
    const task = (async () => {
      this.checkCapacity()
      this.starting++
      try {
        const plan: Plan = { file: req.file, args: req.args, tty: false, cols: 0, rows: 0 }
        const spawnReq = { type: req.type, timeoutMs: 0, idleTimeoutMs: 0 }
        const rec = await this.start(spawnReq, plan, relative(this.options.workspaceRoot, req.cwd) || '.', req.cwd, req.env, { owner: req.owner })
        if (this.closing) {
          await this.terminate(rec, 'shutdown')
          throw new KernelError(503, 'SHUTTING_DOWN', 'the process bridge is shutting down')
        }
        return rec.info()
      } finally {
        this.starting--
      }
    })()
    this.inflight.add(task)
    const forget = () => this.inflight.delete(task)
    task.then(forget, forget)
    return task
  }

  private checkCapacity(): void {
    if (this.closing) throw new KernelError(503, 'SHUTTING_DOWN', 'the process bridge is shutting down')
    if (this.liveCount() + this.starting >= this.options.maxProcesses) {
      throw new KernelError(429, 'TOO_MANY_PROCESSES', `limit of ${this.options.maxProcesses} live processes reached; kill one first`)
    }
  }

  private async doSpawn(req: SpawnRequest, scope: Scope): Promise<ProcessInfo> {
    checkRequest(req)
    this.checkCapacity()
    const { workspaceRoot: root } = this.options
    const cwd = resolveCwd(root, req.cwd)
    const { env, dropped } = buildEnv(this.options.envAllowList, process.env, req.env)
    this.starting++ // reserve the slot across the awaits below
    let plan: Plan | undefined
    try {
      plan = planCommand(req, { root, cwd: cwd.abs, nodeHeapMb: this.options.nodeHeapMb })
      if (plan.tty && !env.TERM) env.TERM = 'xterm-256color'
      const rec = await this.start(req, plan, cwd.rel, cwd.abs, env, scope)
      rec.droppedEnv = dropped
      if (this.closing) {
        // close() began while the child was starting: it must not outlive the app.
        await this.terminate(rec, 'shutdown')
        throw new KernelError(503, 'SHUTTING_DOWN', 'the process bridge is shutting down')
      }
      if (plan.control) await this.awaitWorkerd(rec)
      const info = rec.info()
      this.emit('spawn', info)
      return info
    } catch (err) {
      plan?.cleanup?.()
      throw err
    } finally {
      this.starting--
    }
  }

  private async start(req: SpawnRequest, plan: Plan, cwdRel: string, cwdAbs: string, env: Record<string, string>, scope: Scope): Promise<ProcessRecord> {
    const rec = new ProcessRecord({
      type: req.type,
      namespace: scope.namespace ?? 'default',
      owner: scope.owner,
      command: [plan.file, ...plan.args],
      cwd: cwdRel,
      bufferBytes: this.options.outputBufferBytes,
      timeoutMs: req.timeoutMs ?? this.options.defaultTimeoutMs,
      idleTimeoutMs: req.idleTimeoutMs ?? this.options.idleTimeoutMs,
      log: this.log,
    })
    const handle = await startChild(
      { file: plan.file, args: plan.args, cwd: cwdAbs, env, tty: plan.tty, cols: plan.cols, rows: plan.rows, drainMs: this.options.killGraceMs, control: plan.control },
      {
        output: (stream, data) => {
          const event = rec.pushOutput(stream, data)
          if (event && this.listenerCount('output') > 0) this.emit('output', event)
        },
        leaderExit: () => this.sweep(rec.pid),
        exit: (code, signal) => this.finish(rec, code, signal, plan.cleanup),
      },
    )
    rec.bind(handle, plan.tty ? { cols: plan.cols, rows: plan.rows } : undefined)
    this.records.set(rec.pid, rec)
    rec.armTimers((reason) => void this.terminate(rec, reason))
    return rec
  }

  /** Hold the spawn until workerd listens; if it cannot, kill it and forget it before throwing. */
  private async awaitWorkerd(rec: ProcessRecord): Promise<void> {
    try {
      const port = await waitForListen(rec.control(), rec.exited, () => rec.snapshot().chunks.map((c) => c.data).join(''))
      rec.url = `http://127.0.0.1:${port}`
    } catch (err) {
      await this.terminate(rec, 'killed')
      this.records.delete(rec.pid)
      throw err
    }
  }

  private finish(rec: ProcessRecord, code: number | null, signal: string | null, cleanup?: () => void): void {
    cleanup?.()
    const event = rec.finish(code, signal)
    this.emit('exit', event, rec.info())
    this.forgetOldExited()
  }

  /** Processes of a namespace, oldest first: running and retained exited ones (`running: true`: only live). */
  list(scope: Scope & { running?: boolean } = {}): ProcessInfo[] {
    const ns = scope.namespace ?? 'default'
    return [...this.records.values()].filter((r) => r.namespace === ns && r.owner === scope.owner && (!scope.running || r.running)).map((r) => r.info())
  }

  /** Status of one process. */
  get(pid: number, scope: Scope = {}): ProcessInfo {
    return this.find(pid, scope).info()
  }

  /**
   * Write to stdin (bytes; strings as UTF-8). Returns the byte count written. Counts as activity
   * for idle reaping. Throws 413 `INPUT_TOO_LARGE` above `maxInputBytes`, 409 `PROCESS_EXITED`.
   */
  write(pid: number, data: string | Buffer, opts: WriteOptions = {}): number {
    const rec = this.findLive(pid, opts)
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    if (buf.length > this.options.maxInputBytes) {
      throw new KernelError(413, 'INPUT_TOO_LARGE', `input of ${buf.length} bytes exceeds the ${this.options.maxInputBytes}-byte limit`)
    }
    rec.write(buf, opts.eof === true)
    return buf.length
  }

  /** Resize a PTY (1–1000 each). Throws 409 `NOT_A_TTY` for piped processes, 400 `INVALID_SIZE`. */
  resize(pid: number, cols: number, rows: number, scope: Scope = {}): ProcessInfo {
    const rec = this.findLive(pid, scope)
    for (const n of [cols, rows]) {
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new KernelError(400, 'INVALID_SIZE', 'cols and rows must be integers from 1 to 1000')
    }
    rec.resize(cols, rows)
    return rec.info()
  }

  /**
   * Deliver a signal: to the terminal's foreground process group for a PTY (like a keyboard
   * Ctrl-C), else to the process's group. Throws 400 `INVALID_SIGNAL` for signals outside `SIGNALS`.
   */
  signal(pid: number, signal: string, scope: Scope = {}): ProcessInfo {
    if (!SIGNALS.includes(signal as ProcessSignal)) throw new KernelError(400, 'INVALID_SIGNAL', `signal must be one of ${SIGNALS.join(', ')}`)
    const rec = this.findLive(pid, scope)
    const target = signalTarget(pid, rec.tty)
    if (!trySignal(-target, signal as NodeJS.Signals)) trySignal(pid, signal as NodeJS.Signals)
    return rec.info()
  }

  /**
   * Terminate, wait until reaped, then forget the process; resolves with its final status (never
   * rejects). `SIGTERM` (default) goes to the whole session with SIGKILL after `killGraceMs`;
   * `SIGKILL` kills at once. An exited process is just forgotten. Throws 404 `PROCESS_NOT_FOUND`
   * synchronously, so a caller that does not await still sees it.
   */
  kill(pid: number, scope?: Scope): Promise<ProcessInfo>
  kill(pid: number, signal: 'SIGTERM' | 'SIGKILL', scope?: Scope): Promise<ProcessInfo>
  kill(pid: number, signalOrScope?: 'SIGTERM' | 'SIGKILL' | Scope, maybeScope?: Scope): Promise<ProcessInfo> {
    const force = signalOrScope === 'SIGKILL'
    const scope = typeof signalOrScope === 'object' ? signalOrScope : (maybeScope ?? {})
    const rec = this.find(pid, scope)
    return this.terminate(rec, 'killed', force).then(() => {
      if (this.records.get(pid) === rec) this.records.delete(pid)
      return rec.info()
    })
  }

  /** Resolves with the exit status once the process has ended and been reaped. */
  wait(pid: number, scope: Scope = {}): Promise<ExitInfo> {
    return this.find(pid, scope).exited
  }

  /**
   * Subscribe to a process's output and exit. With `replay` (default) the buffered output is
   * delivered first, synchronously, marked `replay: true`; for an exited process the exit event
   * follows at once. Attached listeners count as clients (no idle reaping while any is attached).
   * Returns the detach function (idempotent).
   */
  attach(pid: number, listener: ProcessListener, opts: AttachOptions = {}): () => void {
    return this.find(pid, opts).attach(listener, opts.replay !== false)
  }

  /** Replay buffer contents. */
  output(pid: number, scope: Scope = {}): OutputSnapshot {
    return this.find(pid, scope).snapshot()
  }

  /**
   * Flow control: stop reading the process's output until the returned release function is called
   * (reference-counted; the child blocks when the OS pipe fills). Used by slow WebSocket clients.
   */
  pauseOutput(pid: number, scope: Scope = {}): () => void {
    return this.find(pid, scope).hold()
  }

  /** Terminate every process (as `kill`, in parallel), sweep their sessions, refuse new spawns. */
  async close(): Promise<void> {
    this.closing = true
    const terminateAll = () => Promise.all([...this.records.values()].map((rec) => this.terminate(rec, 'shutdown')))
    await terminateAll()
    await Promise.allSettled([...this.inflight]) // spawns that were already past the closing check
    await terminateAll()
    for (const rec of this.records.values()) this.sweep(rec.pid)
    await Promise.all([...this.sweeps])
  }

  private liveCount(): number {
    let n = 0
    for (const rec of this.records.values()) if (rec.running) n++
    return n
  }

  private find(pid: number, scope: Scope): ProcessRecord {
    const rec = this.records.get(pid)
    if (!rec || rec.namespace !== (scope.namespace ?? 'default') || rec.owner !== scope.owner) throw new KernelError(404, 'PROCESS_NOT_FOUND', `no process ${pid}`)
    return rec
  }

  private findLive(pid: number, scope: Scope): ProcessRecord {
    const rec = this.find(pid, scope)
    if (!rec.running) throw new KernelError(409, 'PROCESS_EXITED', `process ${pid} has exited`)
    return rec
  }

  private async terminate(rec: ProcessRecord, reason: ExitReason, force = false): Promise<ExitInfo> {
    if (!rec.running) return rec.exited
    rec.ending(reason)
    if (force) signalSession(rec.pid, 'SIGKILL')
    signalSession(rec.pid, 'SIGTERM')
    if (rec.tty) trySignal(rec.pid, 'SIGHUP') // an interactive bash ignores TERM but exits on HUP
    signalSession(rec.pid, 'SIGCONT') // stopped processes only see TERM once continued
    const settled = await Promise.race([rec.exited.then(() => true), delay(this.options.killGraceMs, false)])
    if (!settled) signalSession(rec.pid, 'SIGKILL')
    return rec.exited
  }

  /**
   * After a leader exits, processes left in its session (background jobs, daemons) get SIGTERM,
   * then SIGKILL after `killGraceMs`, so nothing outlives its process record.
   */
  private sweep(sid: number): void {
    const task = (async () => {
      if (sessionMembers(sid).length === 0) return
      signalSession(sid, 'SIGTERM')
      const deadline = Date.now() + this.options.killGraceMs
      while (Date.now() < deadline && sessionMembers(sid).length > 0) await delay(50)
      for (const pid of sessionMembers(sid)) trySignal(pid, 'SIGKILL')
    })().catch((err: Error) => this.log.warn({ err, sid }, 'processes: session sweep failed'))
    this.sweeps.add(task)
    void task.finally(() => this.sweeps.delete(task))
  }

  private forgetOldExited(): void {
    const exited = [...this.records.values()].filter((r) => !r.running)
    for (const rec of exited.slice(0, Math.max(0, exited.length - this.options.retainExited))) this.records.delete(rec.pid)
  }
}
