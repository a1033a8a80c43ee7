import { Worker } from 'node:worker_threads'
import { type ErrorCode, KernelError, kernelError } from '../errors.js'
import { inferCapabilities } from './capabilities.js'

/** Sources up to this size are parsed on the event loop (well under a millisecond); longer ones on the worker. UTF-16 code units. */
const INLINE_SOURCE_CHARS = 16 * 1024
/** Heap of the inference worker: a syntax tree of the largest accepted handler fits many times over. MiB. */
const WORKER_HEAP_MB = 512

interface Reply {
  id: number
  tokens?: string[]
  error?: { code: ErrorCode; message: string; details?: unknown }
}

interface Pending {
  resolve: (tokens: string[]) => void
  reject: (err: Error) => void
}

/** The worker's entry next to this file (.ts from source, .js once built), loaded through tsx when it is TypeScript. */
function workerBootstrap(): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  const entry = JSON.stringify(new URL(`./inference-worker${ext}`, import.meta.url).href)
  if (ext === '.js') return `import(${entry})`
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'))
  return `import(${tsx}).then(({ register }) => { register(); return import(${entry}) })`
}

/**
 * Capability inference (capabilities.ts) off the event loop: acorn spends ≈ 0.7 s on a 1 MB
 * handler, so sources past a few KiB are parsed on one worker thread, started on first use,
 * with a bounded heap. Jobs queue on that thread in order; a crash of the worker fails the jobs
 * it held (500 INTERNAL_ERROR) and the next job starts a new one. `close()` ends it.
 */
export class CapabilityInference {
  private worker: Worker | undefined
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  /** Jobs sent to the worker and not answered yet. */
  get inFlight(): number {
    return this.pending.size
  }

  /**
   * The capability tokens `source` needs (see `inferCapabilities`).
   * @throws KernelError 400 COMPILATION_ERROR (details: tool, line, column) when acorn cannot parse it;
   *   500 INTERNAL_ERROR when the worker died.
   */
  async infer(source: string, label: string): Promise<string[]> {
    if (source.length <= INLINE_SOURCE_CHARS) return inferCapabilities(source, label)
    const id = this.nextId++
    const result = new Promise<string[]>((resolve, reject) => this.pending.set(id, { resolve, reject }))
    this.start().postMessage({ id, source, label })
    return result
  }

  /** Ends the worker; jobs still queued fail with 503 SHUTDOWN. */
  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.failAll(kernelError('SHUTDOWN', 'the kernel is shutting down'))
    await worker?.terminate()
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(workerBootstrap(), { eval: true, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } })
    worker.unref() // an idle worker never holds the process open
    worker.on('message', (reply: Reply) => this.settle(reply))
    const dead = (why: string) => {
      if (this.worker !== worker) return
      this.worker = undefined
      this.failAll(kernelError('INTERNAL_ERROR', `capability inference failed: ${why}`))
    }
    worker.on('error', (err) => dead(err.message))
    worker.on('exit', (code) => dead(`worker exited with ${code}`))
    this.worker = worker
    return worker
  }

  private settle(reply: Reply): void {
    const job = this.pending.get(reply.id)
    if (!job) return
    this.pending.delete(reply.id)
    if (reply.tokens) return job.resolve(reply.tokens)
    const e = reply.error!
    job.reject(kernelError(e.code, e.message, e.details))
  }

  private failAll(err: KernelError): void {
    for (const job of this.pending.values()) job.reject(err)
    this.pending.clear()
  }
}
