import type { Readable } from 'node:stream'
import type { ChildHandle } from './child.js'
import type { ManagerLogger } from './manager.js'
import { OutputRing, Utf8Aligner, type RawChunk } from './ring-buffer.js'
import { usageOf } from './process-tree.js'
import type { ExitInfo, ExitReason, OutputSnapshot, ProcessExitEvent, ProcessInfo, ProcessListener, ProcessOutputEvent, ProcessType } from './types.js'

/** Longest argv entry shown in `ProcessInfo.command` (inline code can be large). */
const SHOWN_ARG_CHARS = 200
/** A status read within this long reuses the last /proc walk (ms). */
const USAGE_TTL_MS = 500

export interface RecordInit {
  type: ProcessType
  namespace: string
  /** Internal owner (e.g. `kernels`); undefined for public spawns. */
  owner?: string
  command: string[]
  cwd: string
  bufferBytes: number
  timeoutMs: number
  idleTimeoutMs: number
  log: ManagerLogger
}

/** One process: its child handle, replay buffer, listeners, timers and final status. */
export class ProcessRecord {
  pid = 0
  tty = false
  readonly type: ProcessType
  readonly namespace: string
  readonly owner?: string
  readonly startedAt = new Date()
  droppedEnv: string[] = []
  /** Counts towards its namespace's quota (false for internal spawns that name no namespace). */
  inQuota = true
  /** workerd: where the worker serves, once it listens. */
  url?: string
  exit?: ExitInfo
  /** Resolves with the exit status once the process ended and was reaped. */
  readonly exited: Promise<ExitInfo>
  private resolveExit!: (exit: ExitInfo) => void
  private handle?: ChildHandle
  private size?: { cols: number; rows: number }
  private exitedAt?: Date
  private reason?: ExitReason
  private readonly ring: OutputRing
  private readonly listeners = new Set<ProcessListener>()
  private readonly aligners = new Map<ProcessOutputEvent['stream'], Utf8Aligner>()
  private holds = 0
  private usageCache?: { at: number; value: ProcessInfo['usage'] }
  private timeout?: NodeJS.Timeout
  private idle?: NodeJS.Timeout
  private onTimer: (reason: ExitReason) => void = () => {}

  constructor(private readonly init: RecordInit) {
    this.type = init.type
    this.namespace = init.namespace
    this.owner = init.owner
    this.ring = new OutputRing(init.bufferBytes)
    this.exited = new Promise((resolve) => (this.resolveExit = resolve))
  }

  get running(): boolean {
    return this.exit === undefined
  }

  bind(handle: ChildHandle, size?: { cols: number; rows: number }): void {
    this.handle = handle
    this.pid = handle.pid
    this.tty = handle.tty
    this.size = size
  }

  /** Start the timeout and (with no listener yet) the idle timer; `fire` terminates with the reason. */
  armTimers(fire: (reason: ExitReason) => void): void {
    this.onTimer = fire
    if (this.init.timeoutMs > 0) this.timeout = setTimeout(() => fire('timeout'), this.init.timeoutMs)
    this.armIdle()
  }

  private armIdle(): void {
    clearTimeout(this.idle)
    this.idle = undefined
    if (this.running && this.listeners.size === 0 && this.init.idleTimeoutMs > 0) {
      this.idle = setTimeout(() => this.onTimer('idle'), this.init.idleTimeoutMs)
    }
  }

  /** Remember why the kernel is ending the process (first reason wins). */
  ending(reason: ExitReason): void {
    this.reason ??= reason
  }

  /** Record and broadcast a chunk of output; undefined when it only held part of a character. */
  pushOutput(stream: ProcessOutputEvent['stream'], bytes: Buffer): ProcessOutputEvent | undefined {
    let aligner = this.aligners.get(stream)
    if (!aligner) this.aligners.set(stream, (aligner = new Utf8Aligner()))
    const aligned = aligner.push(bytes)
    return aligned.length ? this.emitChunk(stream, aligned) : undefined
  }

  private emitChunk(stream: ProcessOutputEvent['stream'], bytes: Buffer): ProcessOutputEvent {
    const event = outputEvent(this.pid, this.ring.push(stream, bytes), false)
    for (const listener of this.listeners) this.deliver(listener, event)
    return event
  }

  finish(code: number | null, signal: string | null): ProcessExitEvent {
    for (const [stream, aligner] of this.aligners) {
      const rest = aligner.flush() // a character cut short by the end of the stream
      if (rest) this.emitChunk(stream, rest)
    }
    clearTimeout(this.timeout)
    clearTimeout(this.idle)
    this.exit = { code, signal, reason: this.reason ?? 'exited' }
    this.exitedAt = new Date()
    const event: ProcessExitEvent = { type: 'exit', pid: this.pid, exit: this.exit }
    for (const listener of this.listeners) this.deliver(listener, event)
    this.listeners.clear()
    this.resolveExit(this.exit)
    return event
  }

  write(buf: Buffer, eof: boolean): void {
    this.handle?.write(buf)
    if (eof) this.handle?.end()
    if (this.idle) this.armIdle() // input is activity: restart the idle clock
  }

  pendingInput(): number {
    return this.handle?.pendingInput() ?? 0
  }

  onDrain(fn: () => void): void {
    if (this.handle) this.handle.onDrain(fn)
    else queueMicrotask(fn)
  }

  /** The child's control pipe (fd 3); throws if it was not opened. */
  control(): Readable {
    if (!this.handle?.control) throw new Error(`process ${this.pid} has no control pipe`)
    return this.handle.control
  }

  resize(cols: number, rows: number): void {
    this.handle?.resize(cols, rows)
    this.size = { cols, rows }
  }

  attach(listener: ProcessListener, replay: boolean): () => void {
    if (replay) for (const chunk of this.ring.raw()) this.deliver(listener, outputEvent(this.pid, chunk, true))
    if (this.exit) {
      this.deliver(listener, { type: 'exit', pid: this.pid, exit: this.exit })
      return () => {}
    }
    this.listeners.add(listener)
    this.armIdle()
    return () => {
      if (this.listeners.delete(listener)) this.armIdle()
    }
  }

  hold(): () => void {
    if (this.holds++ === 0) this.handle?.pause()
    let released = false
    return () => {
      if (released) return
      released = true
      if (--this.holds === 0) this.handle?.resume()
    }
  }

  snapshot(): OutputSnapshot {
    return { chunks: this.ring.snapshot(), droppedBytes: this.ring.total - this.ring.bytes, totalBytes: this.ring.total }
  }

  info(): ProcessInfo {
    const info: ProcessInfo = {
      pid: this.pid,
      type: this.type,
      namespace: this.namespace,
      status: this.running ? 'running' : 'exited',
      command: this.init.command.map((a) => (a.length > SHOWN_ARG_CHARS ? `${a.slice(0, SHOWN_ARG_CHARS)}…` : a)),
      cwd: this.init.cwd,
      tty: this.tty,
      startedAt: this.startedAt.toISOString(),
      clients: this.listeners.size,
      outputBytes: this.ring.total,
      bufferedBytes: this.ring.bytes,
      timeoutMs: this.init.timeoutMs,
      idleTimeoutMs: this.init.idleTimeoutMs,
    }
    if (this.size) Object.assign(info, this.size)
    if (this.exit) Object.assign(info, { exit: this.exit, exitedAt: this.exitedAt?.toISOString() })
    if (this.running && this.tty) info.foreground = this.handle?.foreground()
    const usage = this.running ? this.usage() : undefined
    if (usage) info.usage = usage
    if (this.url) info.url = this.url
    if (this.droppedEnv.length) info.droppedEnv = this.droppedEnv
    return info
  }

  /** Usage of the sandbox's programs, read from /proc at most once per {@link USAGE_TTL_MS}. */
  private usage(): ProcessInfo['usage'] {
    const now = Date.now()
    if (!this.usageCache || now - this.usageCache.at > USAGE_TTL_MS) this.usageCache = { at: now, value: usageOf(this.pid) }
    return this.usageCache.value
  }

  private deliver(listener: ProcessListener, event: ProcessOutputEvent | ProcessExitEvent): void {
    try {
      listener(event)
    } catch (err) {
      this.init.log.warn({ err, pid: this.pid }, 'processes: listener threw')
    }
  }
}

/** An output event whose `data` is decoded from `bytes` on first read (binary consumers never pay for it). */
function outputEvent(pid: number, chunk: RawChunk, replay: boolean): ProcessOutputEvent {
  let text: string | undefined
  return {
    type: 'output',
    pid,
    stream: chunk.stream,
    seq: chunk.seq,
    bytes: chunk.bytes,
    ...(replay ? { replay: true } : {}),
    get data() {
      return (text ??= chunk.bytes.toString('utf8'))
    },
  }
}
