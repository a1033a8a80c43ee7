/**
 * Server-side execution records (specs/kernels.md section 3; the fix for jupyter/notebook #641): one per
 * execute_request sent through the REST API, holding nbformat outputs bounded by `executionOutputMaxBytes`
 * (head + tail kept, `truncated: true`), the reply's status and error. A record outlives the client that
 * asked for it; each kernel keeps its newest `executionsKept`.
 */
import { EventEmitter } from 'node:events'
import { kernelError } from '../errors.js'
import type { Kernel, KernelClient } from './kernel.js'
import type { Channel, JupyterMessage } from './wire.js'

/** One nbformat output (v4 `outputs[]` entry). */
export type NbOutput =
  | { output_type: 'stream'; name: string; text: string }
  | { output_type: 'execute_result'; execution_count: number | null; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'display_data'; data: Record<string, unknown>; metadata: Record<string, unknown> }
  | { output_type: 'error'; ename: string; evalue: string; traceback: string[] }

/** The record's shape in replies (schemas/kernels.ts `ExecutionRecord`). Times ISO, `durationMs` in ms. */
export interface ExecutionView {
  execution_id: string
  seq: number
  kernel_id: string
  code: string
  status: 'running' | 'ok' | 'error' | 'aborted'
  execution_count: number | null
  outputs: NbOutput[]
  error?: { ename: string; evalue: string; traceback: string[] }
  truncated: boolean
  started: string
  finished?: string
  durationMs?: number
}

/** Options of a REST execution (the seed's `/execute`). */
export interface ExecuteOptions {
  code: string
  silent?: boolean
  storeHistory?: boolean
}

const size = (o: NbOutput) => JSON.stringify(o).length

/** Events: `output` (each nbformat output as it arrives), `done` (the final view). */
interface ExecutionEvents {
  output: [output: NbOutput]
  done: [view: ExecutionView]
}

/** One execute_request and what came back. */
export class Execution extends EventEmitter<ExecutionEvents> implements KernelClient {
  readonly id: string
  private readonly started = new Date()
  private finished?: Date
  status: ExecutionView['status'] = 'running'
  private executionCount: number | null = null
  private error?: ExecutionView['error']
  private readonly head: NbOutput[] = []
  private readonly tail: NbOutput[] = []
  private headBytes = 0
  private tailBytes = 0
  private truncated = false
  private replied = false
  private idle = false
  private outcome: ExecutionView['status'] = 'ok'
  /** Resolves when the execution is over (reply and iopub idle, or aborted). */
  readonly done: Promise<ExecutionView>
  private resolveDone!: (view: ExecutionView) => void

  constructor(readonly seq: number, private readonly kernelId: string, readonly code: string, msgId: string, private readonly maxBytes: number) {
    super()
    this.id = msgId
    this.done = new Promise((resolve) => (this.resolveDone = resolve))
  }

  get running(): boolean {
    return this.status === 'running'
  }

  /** Receives iopub (filtered by parent) and the shell reply. */
  deliver(channel: Channel, msg: JupyterMessage): void {
    if ((msg.parent_header as { msg_id?: string }).msg_id !== this.id || !this.running) return
    const c = msg.content as Record<string, any>
    if (channel === 'shell' && msg.header.msg_type === 'execute_reply') {
      this.replied = true
      this.executionCount = typeof c.execution_count === 'number' ? c.execution_count : this.executionCount
      if (c.status === 'error') this.error = { ename: String(c.ename), evalue: String(c.evalue), traceback: c.traceback ?? [] }
      this.outcome = c.status === 'error' ? 'error' : c.status === 'aborted' ? 'aborted' : 'ok'
    } else if (channel === 'iopub') this.onIopub(msg.header.msg_type, c)
    // over once the reply came and iopub went idle (all output for the request delivered)
    if (this.replied && this.idle) this.finish(this.outcome)
  }

  private onIopub(type: string, c: Record<string, any>): void {
    switch (type) {
      case 'status':
        if (c.execution_state === 'idle') this.idle = true
        return
      case 'execute_input':
        this.executionCount = typeof c.execution_count === 'number' ? c.execution_count : null
        return
      case 'stream':
        return this.push({ output_type: 'stream', name: String(c.name), text: String(c.text) })
      case 'execute_result':
        return this.push({ output_type: 'execute_result', execution_count: c.execution_count ?? null, data: c.data ?? {}, metadata: c.metadata ?? {} })
      case 'display_data':
        return this.push({ output_type: 'display_data', data: c.data ?? {}, metadata: c.metadata ?? {} })
      case 'error':
        return this.push({ output_type: 'error', ename: String(c.ename), evalue: String(c.evalue), traceback: c.traceback ?? [] })
      case 'clear_output':
        this.head.length = this.tail.length = this.headBytes = this.tailBytes = 0
        return
    }
  }

  /** Keeps the first half of the budget as head, the newest as tail. */
  private push(output: NbOutput): void {
    this.emit('output', output)
    const n = size(output)
    const half = this.maxBytes / 2
    if (!this.truncated && this.headBytes + n <= half) {
      this.head.push(output)
      this.headBytes += n
      return
    }
    this.truncated ||= this.headBytes + n > half
    this.tail.push(output)
    this.tailBytes += n
    while (this.tailBytes > half && this.tail.length > 0) this.tailBytes -= size(this.tail.shift() as NbOutput)
  }

  /** Ends the record (idempotent): reply + idle seen, or the kernel restarted / went away (`aborted`). */
  finish(status: ExecutionView['status']): void {
    if (!this.running) return
    this.status = status
    this.finished = new Date()
    const view = this.view()
    this.emit('done', view)
    this.resolveDone(view)
  }

  view(): ExecutionView {
    return {
      execution_id: this.id,
      seq: this.seq,
      kernel_id: this.kernelId,
      code: this.code,
      status: this.status,
      execution_count: this.executionCount,
      outputs: [...this.head, ...this.tail],
      ...(this.error ? { error: this.error } : {}),
      truncated: this.truncated,
      started: this.started.toISOString(),
      ...(this.finished ? { finished: this.finished.toISOString(), durationMs: this.finished.getTime() - this.started.getTime() } : {}),
    }
  }

  /** How long it has run so far, ms. */
  get elapsedMs(): number {
    return (this.finished ?? new Date()).getTime() - this.started.getTime()
  }
}

/** Options of a kernel's record store. */
export interface ExecutionStoreOptions {
  executionsKept: number
  executionOutputMaxBytes: number
  maxQueuedExecutions: number
}

/** The execution records of one kernel. Emits `submitted` for each new execution (the worker registry's transcript). */
export class ExecutionStore extends EventEmitter<{ submitted: [execution: Execution] }> {
  private readonly records = new Map<string, Execution>()
  private seq = 0
  private readonly unsubscribe: () => void

  constructor(private readonly kernel: Kernel, private readonly options: ExecutionStoreOptions) {
    super()
    this.unsubscribe = kernel.subscribe({ deliver: (ch, msg) => this.route(ch, msg) })
    // a restart or death ends whatever ran: its reply will never come
    kernel.on('state', (state) => {
      if (state === 'restarting' || state === 'dead') for (const e of this.records.values()) e.finish('aborted')
    })
  }

  private route(channel: Channel, msg: JupyterMessage): void {
    const parent = (msg.parent_header as { msg_id?: string }).msg_id
    if (parent) this.records.get(parent)?.deliver(channel, msg)
  }

  /** Executions not yet finished. */
  ongoing(): Execution[] {
    return [...this.records.values()].filter((e) => e.running)
  }

  /**
   * Sends an execute_request (allow_stdin false: `input()` fails inside the kernel) and records it.
   * Throws 429 EXECUTION_QUEUE_FULL at `maxQueuedExecutions` unfinished ones, the kernel's 409 KERNEL_DEAD.
   */
  submit(opts: ExecuteOptions): Execution {
    if (this.ongoing().length >= this.options.maxQueuedExecutions) {
      throw kernelError('EXECUTION_QUEUE_FULL', `kernel ${this.kernel.id} already has ${this.options.maxQueuedExecutions} executions waiting`)
    }
    const msg = this.kernel.message('execute_request', {
      code: opts.code, silent: opts.silent ?? false, store_history: opts.storeHistory ?? true, user_expressions: {}, allow_stdin: false, stop_on_error: true,
    })
    const execution = new Execution(++this.seq, this.kernel.id, opts.code, msg.header.msg_id, this.options.executionOutputMaxBytes)
    this.kernel.send('shell', msg, execution)
    this.records.set(execution.id, execution)
    this.trim()
    this.emit('submitted', execution)
    return execution
  }

  /** Forgets the oldest finished records beyond `executionsKept`. */
  private trim(): void {
    for (const e of this.records.values()) {
      if (this.records.size <= this.options.executionsKept) return
      if (!e.running) this.records.delete(e.id)
    }
  }

  /** Throws 404 EXECUTION_NOT_FOUND. */
  get(id: string): Execution {
    const e = this.records.get(id)
    if (!e) throw kernelError('EXECUTION_NOT_FOUND', `no execution ${id} on kernel ${this.kernel.id}`)
    return e
  }

  /** Records with `seq > since`, oldest first, at most `limit`. */
  list(since = 0, limit = this.options.executionsKept): ExecutionView[] {
    return [...this.records.values()].filter((e) => e.seq > since).slice(0, limit).map((e) => e.view())
  }

  /** Stops listening (the kernel is gone) and aborts what ran. */
  close(): void {
    this.unsubscribe()
    for (const e of this.records.values()) e.finish('aborted')
  }
}
