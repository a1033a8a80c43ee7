/**
 * Our pyodide kernel (the seed's "worker-python"). Started like any Jupyter kernel:
 *
 *   pyodide: ["node", "<pkg>/dist/plugins/kernels/runtimes/pyodide-kernel.js", "-f", "{connection_file}"]
 *   (interrupt_mode "signal", the default; "message" works too; in a clone: "--import", "tsx" and the .ts source)
 *
 * The main thread speaks the protocol (host.ts; sockets on the io worker); Python runs in a second
 * worker (pyodide-worker.ts, `env: {}`) so a busy cell never blocks the protocol. SIGINT sets the
 * shared interrupt buffer to 2 (SIGINT's number) and Pyodide raises KeyboardInterrupt in the cell.
 * Pyodide is not a security boundary — its `js` module reaches Node's APIs; the process sandbox is.
 */
import type { Worker } from 'node:worker_threads'
import { parseArgs, runKernel, type CellIO, type CellOutcome, type Executor, type IsComplete } from './host.js'
import { sibling, startWorker } from './threads.js'

/** Bytes of input_reply text one `input()` can receive (longer replies are cut). */
const STDIN_BYTES = 1 << 20

type Answer = Record<string, any> | null

/** Runs cells in Pyodide on a worker thread. */
export class PyodideExecutor implements Executor {
  readonly ready: Promise<void>
  private version = ''
  private readonly worker: Worker
  private readonly interrupt = new Int32Array(new SharedArrayBuffer(4))
  private readonly stdin = new SharedArrayBuffer(8 + STDIN_BYTES)
  private readonly waiting = new Map<number, (answer: Answer) => void>()
  private nextId = 0
  private io: CellIO | undefined
  private running = false
  onFatal?: (reason: string) => void
  private pending: { name: 'stdout' | 'stderr'; text: string } | undefined

  constructor() {
    this.worker = startWorker(sibling(import.meta.url, 'pyodide-worker'), {
      env: {},
      workerData: { interrupt: this.interrupt.buffer, stdin: this.stdin },
    })
    this.ready = new Promise((resolve) => {
      this.worker.on('message', (m) => {
        if (m.ready) { this.version = m.ready.version; resolve() }
        else this.onMessage(m)
      })
    })
    this.worker.on('error', (err) => this.die(err.message))
    this.worker.on('exit', (code) => this.die(`Python worker exited (${code})`))
    process.on('SIGINT', () => {
      if (!this.running) return
      Atomics.store(this.interrupt, 0, 2)
      Atomics.notify(this.interrupt, 0) // wakes an interruptible time.sleep
      this.worker.postMessage({ interrupt: true }) // cancels a cell that awaits (no bytecode runs to notice the buffer)
    })
  }

  private die(reason: string): void {
    if (this.onFatal) this.onFatal(reason)
    else process.exit(1)
  }

  private onMessage(m: Record<string, any>): void {
    if (m.failed) this.die(`Pyodide failed to load: ${m.failed}`)
    else if (m.stream) this.stream(m.stream.name, m.stream.text)
    else if (m.input) this.answerInput(m.input.prompt, m.input.password)
    else if (m.display) { this.flush(); this.io?.display(m.display) }
    else if (typeof m.id === 'number') {
      this.flush()
      this.waiting.get(m.id)?.(m.result)
      this.waiting.delete(m.id)
    }
  }

  /** Writes that arrive together become one stream message (as ipykernel's buffered stdout). */
  private stream(name: 'stdout' | 'stderr', text: string): void {
    if (this.pending && this.pending.name !== name) this.flush()
    if (!this.pending) {
      this.pending = { name, text: '' }
      setImmediate(() => this.flush())
    }
    this.pending.text += text
  }

  private flush(): void {
    const p = this.pending
    this.pending = undefined
    if (p) this.io?.stream(p.name, p.text)
  }

  private answerInput(prompt: string, password: boolean): void {
    this.flush()
    const state = new Int32Array(this.stdin, 0, 2)
    const done = (code: number, text: string) => {
      const bytes = new TextEncoder().encode(text).subarray(0, STDIN_BYTES)
      new Uint8Array(this.stdin, 8).set(bytes)
      state[1] = bytes.length
      Atomics.store(state, 0, code)
      Atomics.notify(state, 0)
    }
    if (!this.io) return done(2, '')
    this.io.input(prompt, password).then((text) => done(1, text), () => done(2, ''))
  }

  private ask(op: string, code: string, extra: Record<string, unknown> = {}): Promise<Answer> {
    const id = this.nextId++
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.worker.postMessage({ id, op, code, ...extra })
    })
  }

  kernelInfo() {
    return {
      implementation: 'workspace-kernel-pyodide',
      implementation_version: '0.1.0',
      banner: `Pyodide (Python ${this.version}) kernel (workspace-kernel) — standard library only`,
      language_info: {
        name: 'python', version: this.version, mimetype: 'text/x-python', file_extension: '.py',
        pygments_lexer: 'ipython3', codemirror_mode: { name: 'ipython', version: 3 }, nbconvert_exporter: 'python',
      },
    }
  }

  async execute(code: string, io: CellIO, options: { executionCount: number }): Promise<CellOutcome> {
    this.io = io
    this.running = true
    const r = (await this.ask('execute', code, { filename: `<cell[${options.executionCount}]>` }).finally(() => { this.running = false }))!
    if (r.status === 'error') return { status: 'error', ename: r.ename, evalue: r.evalue, traceback: r.traceback }
    return r.data === undefined ? { status: 'ok' } : { status: 'ok', result: { data: r.data, metadata: {} } }
  }

  isComplete(code: string) {
    return this.ask('isComplete', code) as Promise<IsComplete>
  }

  async complete(code: string, cursorPos: number) {
    return (await this.ask('complete', code, { cursorPos })) as { matches: string[]; cursor_start: number; cursor_end: number }
  }

  async inspect(code: string, cursorPos: number) {
    return (await this.ask('inspect', code, { cursorPos })) ?? undefined
  }
}

const { connectionFile } = parseArgs(process.argv.slice(2))
runKernel(connectionFile, new PyodideExecutor())
