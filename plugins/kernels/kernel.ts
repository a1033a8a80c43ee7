/**
 * One kernel: its process (through the bridge), its ZeroMQ sockets, the state machine
 * `starting → idle ⇄ busy → (restarting → idle) | dead`, reply routing by parent msg_id, activity
 * tracking with Jupyter Server's rules, auto-restart after a crash (jupyter_client's KernelRestarter:
 * up to `restartLimit` within `stableStartMs`), the heartbeat and RSS watchdog (a kernel that stops
 * echoing its hb channel within `timeToDeadMs`, or outgrows `maxRssBytes`, is killed and restarted
 * under the same policy), and the busy limit `maxExecutionMs` (specs/kernels.md 1, 3, 5).
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { kernelError } from '../errors.js'
import type { ProcessManager } from '../processes/manager.js'
import { KERNEL_OWNER, launch, type Launched } from './launch.js'
import type { KernelsConfig } from './options.js'
import type { KernelSpec } from './specs.js'
import { createMessage, type Channel, type JupyterMessage } from './wire.js'
import { ZmqSession, type SendChannel } from './zmq.js'

export type ExecutionState = 'starting' | 'idle' | 'busy' | 'restarting' | 'dead'

/** Something that receives a kernel's messages: a WebSocket connection, a REST execution, the server itself. */
export interface KernelClient {
  deliver(channel: Channel, message: JupyterMessage, parts?: Buffer[]): void
}

/** Jupyter Server's `untracked_message_types`: neither they nor their children count as activity or change the state. */
const UNTRACKED = new Set([
  'comm_info_request', 'comm_info_reply', 'kernel_info_request', 'kernel_info_reply', 'shutdown_request', 'shutdown_reply',
  'interrupt_request', 'interrupt_reply', 'debug_request', 'debug_reply', 'stream', 'display_data', 'update_display_data',
  'execute_input', 'execute_result', 'error', 'status', 'clear_output', 'debug_event', 'input_request', 'input_reply',
])

/** Requests whose originator we remember at most (oldest forgotten first): bounds the routing map. */
const MAX_PENDING_ROUTES = 1000
/** How often a starting kernel is sent `kernel_info_request` until it answers (Jupyter's "nudge"), ms. */
const NUDGE_INTERVAL_MS = 100
/** Stderr lines quoted in KERNEL_START_FAILED. */
const STDERR_LINES = 10

/** `promise`'s value, or undefined after `ms` (the timer is cleared either way, so it never holds the process open). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Per-kernel settings a client may give at creation (and PATCH later). */
export interface KernelSettings {
  inactivityTimeoutMs?: number
  maxExecutionMs?: number
}

/** What a kernel needs from its manager. */
export interface KernelInit {
  spec: KernelSpec
  namespace: string | undefined
  cwd: string
  env: Record<string, string>
  settings: KernelSettings
  processes: ProcessManager
  options: KernelsConfig
  log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void }
}

/** The Kernel model of Jupyter Server's REST API plus our extras (schemas/kernels.ts `Kernel`). */
export interface KernelModel {
  id: string
  name: string
  last_activity: string
  execution_state: ExecutionState
  connections: number
  reason?: string
  created: string
  language: string
  mode: string
}

/** Why a kernel restarted: asked (REST, stall) or on its own (its process exited, heart failure, memory). */
export type RestartCause = 'crash' | 'heartbeat' | 'memory' | 'request' | 'stall'

/** A failure the monitor saw before it killed the process: the exit that follows restarts for this cause. */
interface Failure {
  cause: 'heartbeat' | 'memory'
  /** The kernel model's `reason` while it restarts and after (`memory: …`, `heartbeat: …`). */
  reason: string
}

/** Events a kernel emits (the manager counts them in metrics; the channels route closes on `removed`). */
export interface KernelEvents {
  state: [state: ExecutionState]
  restarted: [cause: RestartCause]
  dead: [reason: string]
  stall: [action: string]
  /** An execute_reply went by (`ok`, `error`, `aborted`). */
  executed: [status: string]
  /** Deleted or culled: gone from the manager; WebSocket connections close (4004). */
  removed: []
}

/** A running kernel. Create with `new Kernel(init)` then `await start()`. */
export class Kernel extends EventEmitter<KernelEvents> {
  readonly id = randomUUID()
  readonly spec: KernelSpec
  readonly created = new Date()
  namespace: string | undefined
  settings: KernelSettings
  state: ExecutionState = 'starting'
  reason?: string
  lastActivity = new Date()
  /** WebSocket connections (kept by the channels route). */
  connections = 0
  /** Restarts since creation (requested, crash or stall). */
  restarts = 0
  /** Ran user code (a pooled kernel must not have). */
  used = false
  busySince?: number
  private launched?: Launched
  private zmq?: ZmqSession
  private readonly session = randomUUID()
  private readonly clients = new Set<KernelClient>()
  private readonly routes = new Map<string, KernelClient>()
  private iopubSeen = false
  private expectingExit = false
  private crashes: number[] = []
  private startedAt = 0
  private stallTimer?: NodeJS.Timeout
  private monitor?: NodeJS.Timeout
  private failure?: Failure
  private aborted = false
  private busyParent?: string
  private transition?: Promise<void>

  constructor(private readonly init: KernelInit) {
    super()
    this.spec = init.spec
    this.namespace = init.namespace
    this.settings = init.settings
  }

  get pid(): number | undefined {
    return this.launched?.pid
  }

  /**
   * Launches the process and waits for its first kernel_info_reply (and an iopub message).
   * Throws 500 KERNEL_START_FAILED (exit + last stderr lines), 504 KERNEL_START_TIMEOUT, or the bridge's
   * 429 / 503; on error nothing is left running.
   */
  async start(): Promise<void> {
    this.expectingExit = false
    this.iopubSeen = false
    const launched = await launch(this.init.processes, this.spec, { cwd: this.init.cwd, env: this.init.env })
    this.launched = launched
    this.zmq = new ZmqSession(launched.connection, (ch, msg, parts) => this.onMessage(ch, msg, parts), (ch, err) => this.init.log.warn({ kernel: this.id, channel: ch, code: err.code }, 'kernels: dropped an invalid message'))
    const exited = this.init.processes.wait(launched.pid, { owner: KERNEL_OWNER })
    try {
      await this.nudge(exited)
    } catch (err) {
      await this.stopProcess(0)
      throw err
    }
    this.startedAt = Date.now()
    void exited.then((exit) => this.onExit(launched, exit.code, exit.signal))
    this.watch(launched, this.zmq)
    this.setState('idle')
  }

  private async nudge(exited: Promise<{ code: number | null; signal: string | null }>): Promise<void> {
    let replied = false
    const probe: KernelClient = { deliver: (_ch, msg) => void (replied ||= msg.header.msg_type === 'kernel_info_reply') }
    let gone: { code: number | null; signal: string | null } | undefined
    void exited.then((e) => (gone = e))
    const deadline = Date.now() + this.init.options.startupTimeoutMs
    while (!(replied && this.iopubSeen)) {
      if (this.aborted) throw kernelError('SHUTTING_DOWN', `the start of kernel ${this.spec.name} was abandoned`)
      if (gone) throw kernelError('KERNEL_START_FAILED', `kernel ${this.spec.name} exited at start (${gone.signal ?? `code ${gone.code}`}): ${this.stderrTail()}`)
      if (Date.now() > deadline) throw kernelError('KERNEL_START_TIMEOUT', `kernel ${this.spec.name} did not answer kernel_info within ${this.init.options.startupTimeoutMs} ms: ${this.stderrTail()}`)
      // until iopub is seen too: status messages published before our SUB joined are lost (slow joiner)
      this.send('shell', this.message('kernel_info_request', {}), probe)
      await Promise.race([delay(NUDGE_INTERVAL_MS), exited])
    }
  }

  /**
   * Every `timeToDeadMs` while this process runs: with `maxRssBytes`, the resident memory of the
   * kernel's sandbox, and a heartbeat (jupyter_client's HBChannel: a ping not echoed by the next tick
   * is a heart failure). A tick that comes late (our own event loop was blocked, so an echo may sit
   * unread) judges nothing and pings again.
   */
  private watch(launched: Launched, zmq: ZmqSession): void {
    const every = this.init.options.timeToDeadMs
    const max = this.init.options.maxRssBytes
    let last = Date.now()
    this.monitor = setInterval(() => {
      const now = Date.now()
      const late = now - last > every * 1.5
      last = now
      const watching = () => this.launched === launched && this.zmq === zmq && !this.failure
      if (!watching()) return
      const rss = max > 0 ? this.rssBytes(launched.pid) : undefined
      if (rss !== undefined && rss > max) return this.fail(launched, { cause: 'memory', reason: `memory: resident ${rss} bytes, over maxRssBytes ${max}` })
      if (zmq.beating || late) return zmq.ping()
      // timers run before socket reads in a loop turn: judge once an echo already here has been read
      setImmediate(() => {
        if (!watching()) return
        if (zmq.beating) return zmq.ping()
        this.fail(launched, { cause: 'heartbeat', reason: `heartbeat: no echo on the hb channel within ${every} ms (timeToDeadMs)` })
      })
    }, every)
    this.monitor.unref()
    zmq.ping()
  }

  private rssBytes(pid: number): number | undefined {
    try {
      return this.init.processes.get(pid, { owner: KERNEL_OWNER }).usage?.rssBytes
    } catch {
      return undefined // already gone: onExit handles it
    }
  }

  /** Kills the process at once (a stopped one cannot take SIGTERM); its exit restarts it for `failure`'s cause. */
  private fail(launched: Launched, failure: Failure): void {
    this.failure = failure
    clearInterval(this.monitor)
    this.init.log.warn({ kernel: this.id, cause: failure.cause }, `kernels: ${failure.reason}; killing the kernel`)
    void this.forget(launched.pid, true)
  }

  /** The last stderr lines of the process, with the kernel's temp folder redacted. */
  private stderrTail(): string {
    if (!this.launched) return ''
    try {
      const out = this.init.processes.output(this.launched.pid, { owner: KERNEL_OWNER })
      const text = out.chunks.filter((c) => c.stream === 'stderr').map((c) => c.data).join('')
      return text.replaceAll(this.launched.dir, '<runtime>').trim().split('\n').slice(-STDERR_LINES).join('\n') || '(no output)'
    } catch {
      return '(no output)'
    }
  }

  /** Abandons a start in progress (server shutdown): `start()` then fails with 503 and stops its process. */
  abort(): void {
    this.aborted = true
  }

  /** A message from this server's own session (nudges, REST executions, synthesized status). */
  message<C>(msgType: string, content: C, parent?: JupyterMessage): JupyterMessage<C> {
    return createMessage(msgType, content, { session: this.session, parent, username: 'workspace-kernel' })
  }

  private onMessage(channel: Channel, msg: JupyterMessage, parts: Buffer[]): void {
    const parent = msg.parent_header as { msg_id?: string; msg_type?: string }
    if (channel === 'iopub') {
      this.iopubSeen = true
      this.track(msg, parent)
      for (const l of this.clients) l.deliver(channel, msg, parts)
      return
    }
    if (msg.header.msg_type === 'execute_reply') this.emit('executed', String((msg.content as { status?: unknown }).status ?? 'unknown'))
    const origin = parent.msg_id ? this.routes.get(parent.msg_id) : undefined
    if (origin && msg.header.msg_type.endsWith('_reply') && parent.msg_id) this.routes.delete(parent.msg_id)
    origin?.deliver(channel, msg, parts)
  }

  /** Jupyter Server's activity monitor: last_activity and execution_state from iopub traffic. */
  private track(msg: JupyterMessage, parent: { msg_id?: string; msg_type?: string }): void {
    const type = msg.header.msg_type
    const parentType = parent.msg_type ?? ''
    if (!UNTRACKED.has(type) || !UNTRACKED.has(parentType) || this.state === 'busy') this.lastActivity = new Date()
    if (type !== 'status' || UNTRACKED.has(parentType)) return
    const next = (msg.content as { execution_state?: string }).execution_state
    if ((next === 'busy' || next === 'idle') && (this.state === 'busy' || this.state === 'idle')) {
      if (next === 'busy') this.onBusy(parent.msg_id)
      else this.onIdle()
      this.setState(next)
    }
  }

  private onBusy(parentId: string | undefined): void {
    this.busySince = Date.now()
    this.busyParent = parentId
    clearTimeout(this.stallTimer)
    const limit = this.settings.maxExecutionMs ?? this.init.options.maxExecutionMs
    if (limit > 0) this.stallTimer = setTimeout(() => this.onStall(parentId), limit)
  }

  private onIdle(): void {
    this.busySince = undefined
    this.busyParent = undefined
    clearTimeout(this.stallTimer)
  }

  /** Busy past `maxExecutionMs` on one request: interrupt, then restart if it is still on it (EG #665). */
  private onStall(parentId: string | undefined): void {
    if (this.state !== 'busy' || this.busyParent !== parentId) return
    const action = this.init.options.onStall
    this.emit('stall', action)
    if (action === 'event') return
    if (action === 'restart') return void this.restart('stall').catch(() => {})
    void this.interrupt()
    this.stallTimer = setTimeout(() => {
      if (this.state === 'busy' && this.busyParent === parentId) void this.restart('stall').catch(() => {})
    }, this.init.options.shutdownWaitMs)
  }

  private setState(state: ExecutionState): void {
    if (this.state === state) return
    this.state = state
    this.emit('state', state)
  }

  /** Sends a status message of our own to every listener (Jupyter does this for `restarting` and `dead`). */
  private announce(executionState: 'restarting' | 'dead' | 'starting'): void {
    const msg = this.message('status', { execution_state: executionState })
    msg.channel = 'iopub'
    for (const l of this.clients) l.deliver('iopub', msg)
  }

  /** Receive every iopub message (and `restarting`/`dead` status). Returns the unsubscribe function. */
  subscribe(client: KernelClient): () => void {
    this.clients.add(client)
    return () => void this.clients.delete(client)
  }

  /**
   * Sends a client's message; replies (and stdin requests) whose parent is it go to `from` only.
   * Throws 409 KERNEL_DEAD.
   */
  send(channel: SendChannel, msg: JupyterMessage, from?: KernelClient): void {
    if (this.state === 'dead') throw kernelError('KERNEL_DEAD', `kernel ${this.id} is dead${this.reason ? `: ${this.reason}` : ''}; restart it`)
    if (from && channel !== 'stdin') {
      if (this.routes.size >= MAX_PENDING_ROUTES) this.routes.delete(this.routes.keys().next().value as string)
      this.routes.set(msg.header.msg_id, from)
    }
    if (msg.header.msg_type === 'execute_request') this.used = true
    void this.zmq?.send(channel, msg)
  }

  /** Interrupts what runs (SIGINT to the process group, or `interrupt_request` for message-mode specs). Idle: a no-op. */
  async interrupt(): Promise<void> {
    this.assertUsable()
    if (!this.launched) return
    if (this.spec.spec.interrupt_mode === 'message') return this.send('control', this.message('interrupt_request', {}))
    this.init.processes.signal(this.launched.pid, 'SIGINT', { owner: KERNEL_OWNER })
  }

  private assertUsable(): void {
    if (this.state === 'dead') throw kernelError('KERNEL_DEAD', `kernel ${this.id} is dead${this.reason ? `: ${this.reason}` : ''}; restart it`)
    if (this.state === 'restarting' || this.state === 'starting') throw kernelError('KERNEL_RESTARTING', `kernel ${this.id} is ${this.state}`)
  }

  /**
   * Restarts with the same id and settings and a fresh process (iopub `restarting`, then `idle`).
   * A dead kernel is revived. Throws 409 KERNEL_RESTARTING while a restart runs, 500 KERNEL_START_FAILED.
   */
  async restart(cause: 'request' | 'stall' = 'request'): Promise<void> {
    if (this.state === 'restarting' || this.state === 'starting') throw kernelError('KERNEL_RESTARTING', `kernel ${this.id} is already ${this.state}`)
    this.crashes = []
    await this.relaunch(cause, this.init.options.shutdownWaitMs)
  }

  private async relaunch(cause: RestartCause, waitMs: number, reason?: string): Promise<void> {
    this.reason = reason
    this.setState('restarting')
    this.announce('restarting')
    this.onIdle()
    const run = (async () => {
      await this.stopProcess(waitMs)
      this.restarts++
      this.used = false
      await this.start()
      this.emit('restarted', cause)
    })()
    this.transition = run
    try {
      await run
    } catch (err) {
      this.die(`restart failed: ${(err as Error).message}`)
      throw err
    } finally {
      this.transition = undefined
    }
  }

  private onExit(launched: Launched, code: number | null, signal: string | null): void {
    clearInterval(this.monitor)
    const failure = this.failure
    this.failure = undefined
    if (this.launched !== launched || this.expectingExit) return
    this.zmq?.close()
    launched.cleanup()
    void this.forget(launched.pid)
    const now = Date.now()
    if (now - this.startedAt >= this.init.options.stableStartMs) this.crashes = []
    this.crashes.push(now)
    const what = failure?.reason ?? signal ?? `exit code ${code}`
    if (this.crashes.length > this.init.options.restartLimit) {
      this.die(`kernel died (${what}) ${this.crashes.length} times within ${this.init.options.stableStartMs} ms; not restarted`)
      return
    }
    this.init.log.info({ kernel: this.id, exit: what }, 'kernels: kernel died, restarting')
    void this.relaunch(failure?.cause ?? 'crash', 0, failure?.reason).catch(() => {})
  }

  private die(reason: string): void {
    this.reason = reason
    this.setState('dead')
    this.announce('dead')
    this.emit('dead', reason)
  }

  /** Ends the process: `shutdown_request` on control, `waitMs` to exit, then TERM→KILL (or at once KILL with `force`). */
  private async stopProcess(waitMs: number, force = false): Promise<void> {
    const launched = this.launched
    if (!launched) return
    clearInterval(this.monitor)
    this.expectingExit = true
    const scope = { owner: KERNEL_OWNER }
    let exited: Promise<unknown> | undefined
    try {
      exited = this.init.processes.wait(launched.pid, scope)
    } catch {
      exited = undefined // already forgotten by the bridge
    }
    if (exited && waitMs > 0) {
      await this.zmq?.send('control', this.message('shutdown_request', { restart: false }))
      await within(exited, waitMs)
    }
    this.zmq?.close()
    this.zmq = undefined
    await this.forget(launched.pid, force)
    launched.cleanup()
  }

  /** Kill (if still running) and forget the process in the bridge; a pid it already forgot is fine. */
  private async forget(pid: number, force = false): Promise<void> {
    try {
      await this.init.processes.kill(pid, force ? 'SIGKILL' : 'SIGTERM', { owner: KERNEL_OWNER })
    } catch {
      // already forgotten
    }
  }

  /**
   * Shuts the kernel down for good: `graceful` (shutdown_request, `shutdownWaitMs`, TERM→KILL), `now`
   * (TERM→KILL), `kill` (SIGKILL). Idempotent.
   */
  async shutdown(how: 'graceful' | 'now' | 'kill' = 'graceful'): Promise<void> {
    clearTimeout(this.stallTimer)
    await this.transition?.catch(() => {})
    await this.stopProcess(how === 'graceful' ? this.init.options.shutdownWaitMs : 0, how === 'kill')
    if (this.state !== 'dead') this.die('shut down')
    this.clients.clear()
    this.routes.clear()
  }

  /** The REST model. */
  model(): KernelModel {
    return {
      id: this.id,
      name: this.spec.name,
      last_activity: this.lastActivity.toISOString(),
      execution_state: this.state,
      connections: this.connections,
      // dead: why; alive: why it last restarted on its own, when the monitor caused it (memory, heartbeat)
      ...(this.reason ? { reason: this.reason } : {}),
      created: this.created.toISOString(),
      language: this.spec.spec.language,
      mode: this.spec.spec.metadata.wk.mode,
    }
  }
}
