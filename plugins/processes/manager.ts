import { EventEmitter } from 'node:events'
import { realpathSync, statSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { kernelError } from '../errors.js'
import { ProcessSignal as ProcessSignalSchema } from '../../schemas/processes.js'
import { prefixOutsideUsr, probeSandboxHost, sandboxCommand, type SandboxHost } from './bubblewrap.js'
import { startChild } from './child.js'
import { checkRequest, planCommand, resolveInterpreters, type Interpreters, type Plan } from './plan.js'
import { ProcessRecord } from './record.js'
import { killSandbox, signalSandbox } from './process-tree.js'
import {
  DEFAULT_ENV_ALLOW_LIST,
  DEFAULT_MAX_OUTPUT_PAUSE_MS,
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
  type ProcessType,
  type ResolvedProcessesOptions,
  type Scope,
  type SpawnRequest,
  type WriteOptions,
} from './types.js'
import { waitForListen } from './workerd.js'
import { buildEnv, resolveCwd } from './workspace.js'

/** Signals accepted by `signal()`, from the `ProcessSignal` schema. */
export const SIGNALS: readonly ProcessSignal[] = ProcessSignalSchema.anyOf.map((s) => s.const as ProcessSignal)

/** Minimal logger (pino and fastify's logger fit). */
export interface ManagerLogger {
  warn(obj: object, msg?: string): void
}

const GiB = 1024 ** 3

/** Fill in defaults and check option values. Throws `Error` for an invalid workspace root. */
export function resolveOptions(options: ProcessesOptions = {}): ResolvedProcessesOptions {
  const root = resolve(options.workspaceRoot ?? process.cwd())
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`processes: workspaceRoot is not a directory: ${root}`)
  const maxProcesses = options.maxProcesses ?? 32
  return {
    workspaceRoot: realpathSync(root),
    maxProcesses,
    maxProcessesPerNamespace: options.maxProcessesPerNamespace ?? Math.max(1, Math.floor(maxProcesses / 4)),
    outputBufferBytes: options.outputBufferBytes ?? 1024 * 1024,
    maxInputBytes: options.maxInputBytes ?? 64 * 1024,
    maxPendingInputBytes: options.maxPendingInputBytes ?? 1024 * 1024,
    defaultTimeoutMs: options.defaultTimeoutMs ?? 0,
    idleTimeoutMs: options.idleTimeoutMs ?? 10 * 60_000,
    envAllowList: options.envAllowList ?? [...DEFAULT_ENV_ALLOW_LIST],
    killGraceMs: options.killGraceMs ?? 2000,
    retainExited: options.retainExited ?? 64,
    nodeHeapMb: options.nodeHeapMb ?? 512,
    addressSpaceBytes: options.addressSpaceBytes ?? 4 * GiB,
    maxOpenFiles: options.maxOpenFiles ?? 1024,
    maxTasks: options.maxTasks ?? 256,
    maxOutputPauseMs: options.maxOutputPauseMs ?? DEFAULT_MAX_OUTPUT_PAUSE_MS,
  }
}

/** What `launch` starts: a planned command with its record fields. */
interface Launch {
  type: ProcessType
  plan: Plan
  cwdRel: string
  env: Record<string, string>
  timeoutMs: number
  idleTimeoutMs: number
}

/**
 * The process bridge, usable without HTTP (`fastify.processes`). Every process runs in its own
 * bubblewrap sandbox (see bubblewrap.ts and the README's "Processes" security section).
 *
 * Every method taking a `pid` throws 404 `PROCESS_NOT_FOUND` when the pid is unknown, belongs to
 * another namespace (`scope.namespace`, default `'default'`) or to an internal owner other than
 * `scope.owner`; methods that need a live process throw 409 `PROCESS_EXITED` after it ended.
 * Exited processes stay inspectable until `kill()` forgets them or `retainExited` newer ones push them out.
 * `pid` is the host pid of the sandbox (bwrap); the program inside sees itself under another pid.
 *
 * Events: `on('spawn', info)`, `on('output', event)`, `on('exit', event, info)` for all namespaces;
 * per process, use `attach()`.
 */
export class ProcessManager extends EventEmitter<ProcessManagerEvents> {
  readonly options: ResolvedProcessesOptions
  private readonly records = new Map<number, ProcessRecord>()
  /** Spawns past the cap checks but not yet recorded, per namespace (reserved slots). */
  private readonly starting = new Map<string, number>()
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly host: SandboxHost
  private readonly interpreters: Interpreters
  private closing = false

  /** Throws `Error` for a bad workspace root or when bubblewrap / prlimit are not installed. */
  constructor(options: ProcessesOptions = {}, private readonly log: ManagerLogger = { warn: () => {} }) {
    super()
    this.options = resolveOptions(options)
    this.host = probeSandboxHost()
    this.interpreters = resolveInterpreters()
  }

  /** How processes are confined here: whether a pids cgroup bounds each sandbox's tasks (else only RLIMIT_NPROC, which Linux ignores for root). */
  get sandbox(): { pidsCgroup: boolean } {
    return { pidsCgroup: this.host.pids !== undefined }
  }

  /**
   * Start a process. Resolves once it runs (workerd: once its port accepts connections).
   * Throws 400 `UNKNOWN_PROCESS_TYPE`, `INVALID_SPAWN_REQUEST`, `CWD_OUTSIDE_WORKSPACE`, `INVALID_CWD`,
   * `SCRIPT_OUTSIDE_WORKSPACE`, `SCRIPT_NOT_FOUND`, `WORKERD_START_FAILED`; 429 `TOO_MANY_PROCESSES`
   * when `maxProcesses` are live, 429 `NAMESPACE_QUOTA_EXCEEDED` when the namespace holds
   * `maxProcessesPerNamespace`; 503 `SHUTTING_DOWN`; 500 `SPAWN_FAILED`. On any error nothing keeps running.
   */
  spawn(req: SpawnRequest, scope: Scope = {}): Promise<ProcessInfo> {
    return this.track(async () => {
      checkRequest(req)
      const { workspaceRoot: root } = this.options
      const cwd = resolveCwd(root, req.cwd)
      const { env, dropped } = buildEnv(this.options.envAllowList, process.env, req.env)
      const plan = () => planCommand(req, { root, cwd: cwd.abs, nodeHeapMb: this.options.nodeHeapMb, interpreters: this.interpreters })
      const timeouts = { timeoutMs: req.timeoutMs ?? this.options.defaultTimeoutMs, idleTimeoutMs: req.idleTimeoutMs ?? this.options.idleTimeoutMs }
      const rec = await this.launch(scope, () => {
        const planned = plan()
        if (planned.tty && !env.TERM) env.TERM = 'xterm-256color'
        return { type: req.type, plan: planned, cwdRel: cwd.rel, env, ...timeouts }
      })
      rec.droppedEnv = dropped
      return rec
    })
  }

  /**
   * Start a program for another plugin (see `InternalSpawnRequest`); reach it afterwards with
   * `{ owner }` as the scope. Throws 400 `CWD_OUTSIDE_WORKSPACE` / `INVALID_CWD`, 429
   * `TOO_MANY_PROCESSES` / `NAMESPACE_QUOTA_EXCEEDED`, 503 `SHUTTING_DOWN`, 500 `SPAWN_FAILED`.
   */
  spawnInternal(req: InternalSpawnRequest): Promise<ProcessInfo> {
    return this.track(async () => {
      const root = this.options.workspaceRoot
      const cwd = resolveCwd(root, relative(root, resolve(root, req.cwd)) || '.')
      const { PATH } = buildEnv([], {}).env
      const box = req.sandbox ?? {}
      const prefix = prefixOutsideUsr(realpathSync(req.file))
      const plan: Plan = {
        file: req.file,
        args: req.args,
        tty: false,
        cols: 0,
        rows: 0,
        network: box.network === 'host',
        readOnlyPaths: [...(box.readOnlyPaths ?? []), ...(prefix ? [prefix] : [])],
        writablePaths: box.writablePaths ?? [],
        mounts: [],
        addressSpaceBytes: req.addressSpaceBytes,
      }
      const launch = { type: req.type, plan, cwdRel: cwd.rel, env: { ...req.env, PATH }, timeoutMs: 0, idleTimeoutMs: 0 }
      return this.launch({ namespace: req.namespace, owner: req.owner }, () => launch, req.namespace !== undefined)
    })
  }

  private track(spawn: () => Promise<ProcessRecord>): Promise<ProcessInfo> {
    const task = (async () => {
      if (this.closing) throw kernelError('SHUTTING_DOWN', 'the process bridge is shutting down')
      const info = (await spawn()).info()
      this.emit('spawn', info)
      return info
    })()
    this.inflight.add(task)
    const forget = () => this.inflight.delete(task)
    task.then(forget, forget)
    return task
  }

  /**
   * Reserve a slot (the global cap, and the namespace quota unless `quota` is false), plan, start the
   * sandbox, and wait for workerd; on any error nothing runs.
   */
  private async launch(scope: Scope, prepare: () => Launch, quota = true): Promise<ProcessRecord> {
    const ns = scope.namespace ?? 'default'
    const key = quota ? ns : '' // '' holds the reservations that only count globally
    this.admit(ns, quota)
    this.starting.set(key, (this.starting.get(key) ?? 0) + 1) // reserve the slot across the awaits below
    let plan: Plan | undefined
    try {
      const launch = prepare()
      plan = launch.plan
      const rec = await this.start(ns, scope.owner, launch)
      rec.inQuota = quota
      if (this.closing) {
        // close() began while the child was starting: it must not outlive the app.
        await this.terminate(rec, 'shutdown')
        throw kernelError('SHUTTING_DOWN', 'the process bridge is shutting down')
      }
      if (plan.control) await this.awaitWorkerd(rec)
      return rec
    } catch (err) {
      plan?.cleanup?.()
      throw err
    } finally {
      const left = (this.starting.get(key) ?? 1) - 1
      if (left === 0) this.starting.delete(key)
      else this.starting.set(key, left)
    }
  }

  /** Throws 429 when the global cap or (with `quota`) the namespace's quota is reached (live + starting). */
  private admit(ns: string, quota: boolean): void {
    const { maxProcesses, maxProcessesPerNamespace } = this.options
    let live = 0
    let mine = 0
    for (const rec of this.records.values()) {
      if (!rec.running) continue
      live++
      if (rec.inQuota && rec.namespace === ns) mine++
    }
    for (const n of this.starting.values()) live += n
    mine += this.starting.get(ns) ?? 0
    if (live >= maxProcesses) throw kernelError('TOO_MANY_PROCESSES', `limit of ${maxProcesses} live processes reached; kill one first`)
    if (quota && mine >= maxProcessesPerNamespace) {
      throw kernelError('NAMESPACE_QUOTA_EXCEEDED', `namespace "${ns}" already runs ${mine} processes, its quota; kill one first`)
    }
  }

  private async start(namespace: string, owner: string | undefined, launch: Launch): Promise<ProcessRecord> {
    const { plan } = launch
    const rec = new ProcessRecord({
      type: launch.type,
      namespace,
      owner,
      command: [plan.file, ...plan.args],
      cwd: launch.cwdRel,
      bufferBytes: this.options.outputBufferBytes,
      timeoutMs: launch.timeoutMs,
      idleTimeoutMs: launch.idleTimeoutMs,
      log: this.log,
    })
    const limits = {
      addressSpaceBytes: Math.max(this.options.addressSpaceBytes, plan.addressSpaceBytes ?? 0),
      openFiles: this.options.maxOpenFiles,
      processes: this.options.maxTasks,
    }
    const spec = { ...plan, cwd: launch.cwdRel, env: launch.env, limits }
    const command = sandboxCommand(this.host, this.options.workspaceRoot, spec)
    const term = launch.env.TERM ?? 'xterm-256color'
    try {
      const handle = await startChild(
        { file: command.file, args: command.args, cwd: this.options.workspaceRoot, term, tty: plan.tty, cols: plan.cols, rows: plan.rows, drainMs: this.options.killGraceMs, control: plan.control },
        {
          output: (stream, data) => {
            const event = rec.pushOutput(stream, data)
            if (event && this.listenerCount('output') > 0) this.emit('output', event)
          },
          exit: (code, signal) => this.finish(rec, code, signal, () => (plan.cleanup?.(), command.release())),
        },
      )
      rec.bind(handle, plan.tty ? { cols: plan.cols, rows: plan.rows } : undefined)
    } catch (err) {
      command.release()
      throw err
    }
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

  private finish(rec: ProcessRecord, code: number | null, signal: string | null, cleanup: () => void): void {
    cleanup()
    const event = rec.finish(code, signal)
    this.emit('exit', event, rec.info())
    this.forgetOldExited()
  }

  /** Processes of a namespace, oldest first: running and retained exited ones (`running: true`: only live). */
  list(scope: Scope & { running?: boolean } = {}): ProcessInfo[] {
    const ns = scope.namespace ?? 'default'
    const mine = (r: ProcessRecord) => r.namespace === ns && r.owner === scope.owner && (!scope.running || r.running)
    return [...this.records.values()].filter(mine).map((r) => r.info())
  }

  /** Status of one process. */
  get(pid: number, scope: Scope = {}): ProcessInfo {
    return this.find(pid, scope).info()
  }

  /**
   * Write to stdin (bytes; strings as UTF-8). Returns the byte count written. Counts as activity
   * for idle reaping. Throws 413 `INPUT_TOO_LARGE` above `maxInputBytes`, 409 `PROCESS_EXITED`,
   * 429 `INPUT_BACKLOG_FULL` when the child has not read `maxPendingInputBytes` already written
   * (nothing is written then; `inputBacklog` / `onInputDrain` tell when to retry).
   */
  write(pid: number, data: string | Buffer, opts: WriteOptions = {}): number {
    const rec = this.findLive(pid, opts)
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    if (buf.length > this.options.maxInputBytes) {
      throw kernelError('INPUT_TOO_LARGE', `input of ${buf.length} bytes exceeds the ${this.options.maxInputBytes}-byte limit`)
    }
    const pending = rec.pendingInput()
    if (pending > 0 && pending + buf.length > this.options.maxPendingInputBytes) {
      const why = `process ${pid} has not read ${pending} bytes of stdin yet (bound ${this.options.maxPendingInputBytes}); retry once it drains`
      throw kernelError('INPUT_BACKLOG_FULL', why)
    }
    rec.write(buf, opts.eof === true)
    return buf.length
  }

  /** Bytes of stdin written to a live process that it has not read yet. */
  inputBacklog(pid: number, scope: Scope = {}): number {
    return this.findLive(pid, scope).pendingInput()
  }

  /** Call `fn` once a live process has read all pending stdin (at once if there is none). */
  onInputDrain(pid: number, fn: () => void, scope: Scope = {}): void {
    this.findLive(pid, scope).onDrain(fn)
  }

  /** Resize a PTY (1–1000 each). Throws 409 `NOT_A_TTY` for piped processes, 400 `INVALID_SIZE`. */
  resize(pid: number, cols: number, rows: number, scope: Scope = {}): ProcessInfo {
    const rec = this.findLive(pid, scope)
    for (const n of [cols, rows]) {
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw kernelError('INVALID_SIZE', 'cols and rows must be integers from 1 to 1000')
    }
    rec.resize(cols, rows)
    return rec.info()
  }

  /**
   * Deliver a signal to the programs in the sandbox: for a PTY to the terminal's foreground job
   * (like a keyboard Ctrl-C), else to every process inside. Throws 400 `INVALID_SIGNAL` for signals
   * outside `SIGNALS`.
   */
  signal(pid: number, signal: string, scope: Scope = {}): ProcessInfo {
    if (!SIGNALS.includes(signal as ProcessSignal)) throw kernelError('INVALID_SIGNAL', `signal must be one of ${SIGNALS.join(', ')}`)
    const rec = this.findLive(pid, scope)
    signalSandbox(pid, signal as NodeJS.Signals, rec.tty)
    return rec.info()
  }

  /**
   * Terminate, wait until reaped, then forget the process; resolves with its final status (never
   * rejects). `SIGTERM` (default) goes to every process in the sandbox, then the sandbox is killed
   * after `killGraceMs`; `SIGKILL` kills the sandbox (its PID namespace, every descendant) at once. An exited process is just forgotten. Throws 404 `PROCESS_NOT_FOUND`
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

  /** Terminate every process (as `kill`, in parallel), refuse new spawns, release the sandbox host's files. */
  async close(): Promise<void> {
    this.closing = true
    const terminateAll = () => Promise.all([...this.records.values()].map((rec) => this.terminate(rec, 'shutdown')))
    await terminateAll()
    await Promise.allSettled([...this.inflight]) // spawns that were already past the closing check
    await terminateAll()
    this.host.close()
  }

  private find(pid: number, scope: Scope): ProcessRecord {
    const rec = this.records.get(pid)
    if (!rec || rec.namespace !== (scope.namespace ?? 'default') || rec.owner !== scope.owner) throw kernelError('PROCESS_NOT_FOUND', `no process ${pid}`)
    return rec
  }

  private findLive(pid: number, scope: Scope): ProcessRecord {
    const rec = this.find(pid, scope)
    if (!rec.running) throw kernelError('PROCESS_EXITED', `process ${pid} has exited`)
    return rec
  }

  private async terminate(rec: ProcessRecord, reason: ExitReason, force = false): Promise<ExitInfo> {
    if (!rec.running) return rec.exited
    rec.ending(reason)
    if (force) {
      killSandbox(rec.pid)
      return rec.exited
    }
    if (signalSandbox(rec.pid, 'SIGTERM') === 0) {
      killSandbox(rec.pid) // nothing inside yet (bwrap still setting up) or only bwrap left: no one to be graceful with
      return rec.exited
    }
    if (rec.tty) signalSandbox(rec.pid, 'SIGHUP') // an interactive bash ignores TERM but exits on HUP
    signalSandbox(rec.pid, 'SIGCONT') // stopped processes only see TERM once continued
    const settled = await Promise.race([rec.exited.then(() => true), delay(this.options.killGraceMs, false)])
    if (!settled) killSandbox(rec.pid)
    return rec.exited
  }

  private forgetOldExited(): void {
    const exited = [...this.records.values()].filter((r) => !r.running)
    for (const rec of exited.slice(0, Math.max(0, exited.length - this.options.retainExited))) this.records.delete(rec.pid)
  }
}
