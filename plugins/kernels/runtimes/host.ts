/**
 * The protocol side of our kernel processes (javascript, typescript, pyodide): reads the connection
 * file named by `-f`, starts the socket thread (io-worker) and answers Jupyter messaging 5.3 requests
 * the way ipykernel does — every request is framed by iopub `status: busy` … `status: idle` with the
 * request as parent; execute_request publishes execute_input, output, execute_result / error and
 * replies with the execution count. What runs the code is an `Executor`.
 */
import { readFileSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { Wire, createMessage, type Channel, type ConnectionInfo, type JupyterMessage } from '../wire.js'
import { sibling, startWorker } from './threads.js'

/** A MIME bundle (`{'text/plain': '2'}`) with its metadata, as in display_data / execute_result. */
export interface DisplayBundle {
  data: Record<string, unknown>
  metadata?: Record<string, unknown>
  transient?: Record<string, unknown>
}

/** Where a running cell's output goes. */
export interface CellIO {
  stream(name: 'stdout' | 'stderr', text: string): void
  display(bundle: DisplayBundle): void
  clearOutput(wait: boolean): void
  /** Ask the client for a line of input (stdin channel); rejects when the request had `allow_stdin: false`. */
  input(prompt: string, password: boolean): Promise<string>
}

/** The result of one cell: `ok` with the last expression's bundle (if any), or an error as Jupyter reports it. */
export type CellOutcome =
  | { status: 'ok'; result?: DisplayBundle }
  | { status: 'error'; ename: string; evalue: string; traceback: string[] }

/** An is_complete_reply's content. */
export type IsComplete = { status: 'complete' | 'incomplete' | 'invalid' | 'unknown'; indent?: string }

/** One language's runtime behind the protocol. */
export interface Executor {
  /** Resolves when code can run; shell requests wait for it (kernel_info_reply then means "ready"). */
  ready: Promise<void>
  kernelInfo(): { implementation: string; implementation_version: string; banner: string; language_info: Record<string, unknown> }
  execute(code: string, io: CellIO, options: { silent: boolean; executionCount: number }): Promise<CellOutcome>
  isComplete(code: string): IsComplete | Promise<IsComplete>
  complete(code: string, cursorPos: number): Promise<{ matches: string[]; cursor_start: number; cursor_end: number }>
  inspect(code: string, cursorPos: number, detailLevel: number): Promise<Record<string, unknown> | undefined>
  /** Set by the host: call it when the runtime is lost; the kernel closes its sockets and exits 1. */
  onFatal?: (reason: string) => void
}

/** The command line of our kernels: `-f <connection file>` plus named options (`--language typescript`). */
export function parseArgs(argv: string[]): { connectionFile: string; options: Record<string, string> } {
  const options: Record<string, string> = {}
  let connectionFile = ''
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-f' || arg === '--connection-file') connectionFile = argv[++i] ?? ''
    else if (arg.startsWith('--') && arg.includes('=')) options[arg.slice(2, arg.indexOf('='))] = arg.slice(arg.indexOf('=') + 1)
    else if (arg.startsWith('--')) options[arg.slice(2)] = argv[++i] ?? ''
  }
  if (!connectionFile) throw new Error('usage: <kernel> -f <connection_file> [--language javascript|typescript]')
  return { connectionFile, options }
}

/** A message received on shell or control, with its ZeroMQ routing identities. */
interface Request {
  channel: 'shell' | 'control'
  identities: Buffer[]
  message: JupyterMessage
}

/** The kernel's protocol state: sockets (via the io worker), session, execution count. */
export class KernelHost {
  private readonly wire: Wire
  private readonly io: Worker
  private readonly session = crypto.randomUUID()
  private executionCount = 1
  private exitCode = 0
  private shellQueue: Promise<void> = Promise.resolve()
  /** Shell requests received so far, and the last one a failed cell aborts (stop_on_error). */
  private received = 0
  private abortThrough = 0
  /** The cell waiting for an input_reply (one cell runs at a time; clients send input_reply without a parent, as ipykernel accepts). */
  private pendingInput: ((value: string) => void) | undefined

  constructor(info: ConnectionInfo, private readonly executor: Executor) {
    this.wire = new Wire(info.key, info.signature_scheme)
    this.io = startWorker(sibling(import.meta.url, 'io-worker'), { workerData: info, env: {} })
    this.io.on('message', (m: { channel?: Channel; frames?: Uint8Array[]; ready?: boolean; error?: string }) => {
      if (m.error) this.fail(m.error)
      else if (m.ready) this.publish('status', { execution_state: 'starting' })
      else if (m.channel && m.frames) this.receive(m.channel, m.frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength)))
    })
    this.io.on('error', (err) => this.fail(err.message))
    this.io.on('exit', () => process.exit(this.exitCode))
    executor.onFatal = (reason) => {
      process.stderr.write(`kernel: ${reason}\n`)
      this.exitCode = 1
      this.io.postMessage({ close: true })
    }
  }

  private fail(reason: string): never {
    process.stderr.write(`kernel: socket thread failed: ${reason}\n`)
    process.exit(1)
  }

  private post(channel: Channel, frames: Buffer[]): void {
    this.io.postMessage({ channel, frames })
  }

  /** Publish an iopub message whose parent is `parent` (topic frame = `kernel.<session>.<type>`, as ipykernel). */
  publish(msgType: string, content: Record<string, unknown>, parent?: JupyterMessage): void {
    const msg = createMessage(msgType, content, { session: this.session, parent })
    this.post('iopub', this.wire.encode(msg, [Buffer.from(`kernel.${this.session}.${msgType}`)]))
  }

  private reply(req: Request, msgType: string, content: Record<string, unknown>): void {
    const msg = createMessage(msgType, content, { session: this.session, parent: req.message })
    this.post(req.channel, this.wire.encode(msg, req.identities))
  }

  private receive(channel: Channel, frames: Buffer[]): void {
    let decoded: { identities: Buffer[]; message: JupyterMessage }
    try {
      decoded = this.wire.decode(frames)
    } catch (err) {
      process.stderr.write(`kernel: dropped a ${channel} message: ${(err as Error).message}\n`)
      return
    }
    if (channel === 'stdin') return this.onInputReply(decoded.message)
    const req: Request = { channel: channel as Request['channel'], ...decoded }
    if (channel === 'control') void this.handle(req)
    else {
      const seq = ++this.received
      this.shellQueue = this.shellQueue.then(() => this.executor.ready).then(() => this.handle(req, seq))
    }
  }

  private async handle(req: Request, seq = Infinity): Promise<void> {
    const type = req.message.header.msg_type
    this.publish('status', { execution_state: 'busy' }, req.message)
    try {
      const content = type === 'execute_request' && seq <= this.abortThrough
        ? { status: 'aborted', execution_count: this.executionCount }
        : await this.dispatch(req)
      if (content) this.reply(req, type.replace(/_request$/, '_reply'), content)
    } catch (err) {
      const e = err as Error
      this.reply(req, type.replace(/_request$/, '_reply'), { status: 'error', ename: e.name, evalue: e.message, traceback: [] })
    }
    this.publish('status', { execution_state: 'idle' }, req.message)
    if (type === 'shutdown_request') this.io.postMessage({ close: true })
  }

  private async dispatch(req: Request): Promise<Record<string, unknown> | undefined> {
    const c = req.message.content as Record<string, any>
    switch (req.message.header.msg_type) {
      case 'kernel_info_request':
        await this.executor.ready
        return { status: 'ok', protocol_version: '5.3', debugger: false, help_links: [], ...this.executor.kernelInfo() }
      case 'execute_request':
        return this.execute(req)
      case 'is_complete_request':
        return await this.executor.isComplete(String(c.code ?? ''))
      case 'complete_request': {
        const code = String(c.code ?? '')
        return { status: 'ok', metadata: {}, ...(await this.executor.complete(code, Number(c.cursor_pos ?? code.length))) }
      }
      case 'inspect_request': {
        const code = String(c.code ?? '')
        const data = await this.executor.inspect(code, Number(c.cursor_pos ?? code.length), Number(c.detail_level ?? 0))
        return { status: 'ok', found: data !== undefined, data: data ?? {}, metadata: {} }
      }
      case 'history_request':
        return { status: 'ok', history: [] }
      case 'comm_info_request':
        return { status: 'ok', comms: {} }
      case 'interrupt_request':
        return { status: 'ok' } // SIGINT was raised by the socket thread on arrival
      case 'shutdown_request':
        return { status: 'ok', restart: Boolean(c.restart) }
      default:
        return undefined // ipykernel ignores unknown message types
    }
  }

  private async execute(req: Request): Promise<Record<string, unknown>> {
    const c = req.message.content as Record<string, any>
    const code = String(c.code ?? '')
    const silent = Boolean(c.silent)
    const storeHistory = !silent && c.store_history !== false
    const count = this.executionCount
    if (storeHistory) this.executionCount++
    if (!silent) this.publish('execute_input', { code, execution_count: count }, req.message)
    const outcome = await this.executor.execute(code, this.cellIO(req, silent), { silent, executionCount: count })
    if (outcome.status === 'error') {
      const { ename, evalue, traceback } = outcome
      this.publish('error', { ename, evalue, traceback }, req.message)
      if (c.stop_on_error !== false) this.abortQueued()
      return { status: 'error', execution_count: count, ename, evalue, traceback }
    }
    if (outcome.result && !silent) {
      this.publish('execute_result', { execution_count: count, metadata: {}, ...outcome.result }, req.message)
    }
    return { status: 'ok', execution_count: count, user_expressions: {}, payload: [] }
  }

  /** As ipykernel's stop_on_error: execute requests already waiting when a cell fails are aborted. */
  private abortQueued(): void {
    setImmediate(() => { this.abortThrough = this.received })
  }

  private cellIO(req: Request, silent: boolean): CellIO {
    const allowStdin = (req.message.content as { allow_stdin?: boolean }).allow_stdin === true
    return {
      stream: (name, text) => { if (!silent && text) this.publish('stream', { name, text }, req.message) },
      display: (b) => { if (!silent) this.publish('display_data', { metadata: {}, transient: {}, ...b }, req.message) },
      clearOutput: (wait) => this.publish('clear_output', { wait }, req.message),
      input: (prompt, password) => this.requestInput(req, prompt, password, allowStdin),
    }
  }

  private requestInput(req: Request, prompt: string, password: boolean, allowed: boolean): Promise<string> {
    if (!allowed) return Promise.reject(Object.assign(new Error('input was requested, but this frontend does not support input requests'), { name: 'StdinNotImplementedError' }))
    const msg = createMessage('input_request', { prompt, password }, { session: this.session, parent: req.message })
    return new Promise((resolve) => {
      this.pendingInput = resolve
      this.post('stdin', this.wire.encode(msg, req.identities))
    })
  }

  private onInputReply(message: JupyterMessage): void {
    const resolve = this.pendingInput
    if (message.header.msg_type !== 'input_reply' || !resolve) return
    this.pendingInput = undefined
    resolve(String((message.content as { value?: unknown }).value ?? ''))
  }
}

/** Read the connection file and run `executor` behind the Jupyter protocol until shutdown. */
export function runKernel(connectionFile: string, executor: Executor): KernelHost {
  const info = JSON.parse(readFileSync(connectionFile, 'utf8')) as ConnectionInfo
  return new KernelHost(info, executor)
}
