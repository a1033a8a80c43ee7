import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Histogram, type Registry } from 'prom-client'
import { KernelError } from './errors.js'
import { ExtensionError } from './extensions/error.js'
import { createHttpExtension, type HttpExtensionOptions } from './extensions/http.js'

export { ExtensionError }
export { createHttpExtension, type HttpExtensionOptions }

/** Who an extension call is made for. `signal` aborts the call (the run was cancelled). */
export interface ExtensionCallContext {
  panelId?: string
  namespace?: string
  signal?: AbortSignal
}

/**
 * A service handlers reach as `$ext.<name>.<method>(...args)`. `name` and each method must be
 * JavaScript identifiers. `call` gets the arguments as the handler passed them (JSON values) and
 * resolves to a JSON-serialisable value; throw `ExtensionError` for a typed failure (any other
 * error becomes EXTENSION_ERROR). Honour `ctx.signal`: the manager stops waiting when it aborts.
 */
export interface Extension {
  name: string
  methods: string[]
  init?(): Promise<void> | void
  shutdown?(): Promise<void> | void
  call(method: string, args: unknown[], ctx: ExtensionCallContext): Promise<unknown>
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/

function validate(ext: Extension): void {
  if (typeof ext !== 'object' || ext === null || typeof ext.call !== 'function') {
    throw new ExtensionError('INVALID_EXTENSION', 'An extension needs a name, a methods array and a call function')
  }
  if (typeof ext.name !== 'string' || !IDENTIFIER.test(ext.name)) {
    throw new ExtensionError('INVALID_EXTENSION', `Extension name must be a JavaScript identifier, got ${JSON.stringify(ext.name)}`)
  }
  const bad = Array.isArray(ext.methods) ? ext.methods.find((m) => typeof m !== 'string' || !IDENTIFIER.test(m)) : ext.methods
  if (!Array.isArray(ext.methods) || bad !== undefined || ext.methods.length === 0) {
    throw new ExtensionError('INVALID_EXTENSION', `Extension ${ext.name}: methods must be a non-empty array of identifiers`)
  }
}

function toExtensionError(err: unknown, name: string): ExtensionError {
  if (err instanceof ExtensionError) return err
  if (err instanceof KernelError) return new ExtensionError(err.code, err.message)
  const message = err instanceof Error ? err.message : String(err)
  return new ExtensionError('EXTENSION_ERROR', `Extension ${name} failed: ${message}`)
}

/** Sees every finished call (for metrics). `outcome` is 'ok' or the error code; `ms` wall time. */
export type CallObserver = (name: string, method: string, outcome: string, ms: number) => void

/**
 * The registry of extensions of one app (`fastify.extensions`). Calls are tracked so `shutdown`
 * can abort those in flight.
 */
export class ExtensionManager {
  readonly #extensions = new Map<string, Extension>()
  readonly #registering = new Set<string>()
  readonly #inflight = new Set<AbortController>()
  /** methodMap's answer until the next register / unregister (every run asks for it) */
  #methodMap?: Readonly<Record<string, string[]>>
  #closed = false

  constructor(
    private readonly log?: FastifyBaseLogger,
    private readonly observe?: CallObserver,
  ) {}

  /**
   * Validates and registers `ext`, running its `init` first (if `init` throws, nothing is registered).
   * @throws ExtensionError EXTENSION_EXISTS (409), INVALID_EXTENSION (400), SHUTDOWN (503)
   */
  async register(ext: Extension): Promise<void> {
    validate(ext)
    if (this.#closed) throw new ExtensionError('SHUTDOWN', 'The extension manager is shut down')
    if (this.#extensions.has(ext.name) || this.#registering.has(ext.name)) {
      throw new ExtensionError('EXTENSION_EXISTS', `Extension ${ext.name} is already registered`)
    }
    this.#registering.add(ext.name)
    try {
      await ext.init?.()
      this.#extensions.set(ext.name, ext)
      this.#methodMap = undefined
    } finally {
      this.#registering.delete(ext.name)
    }
  }

  /** Removes an extension (running its `shutdown`); false when no such name. */
  async unregister(name: string): Promise<boolean> {
    const ext = this.#extensions.get(name)
    if (!ext) return false
    this.#extensions.delete(name)
    this.#methodMap = undefined
    await ext.shutdown?.()
    return true
  }

  has(name: string): boolean {
    return this.#extensions.has(name)
  }

  get(name: string): Extension | undefined {
    return this.#extensions.get(name)
  }

  /** Every extension and its methods, sorted by name. */
  list(): { name: string; methods: string[] }[] {
    return [...this.#extensions.values()]
      .map((e) => ({ name: e.name, methods: [...e.methods] }))
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  /**
   * `{ name: methods }`: what the executor passes to a handler as its `$ext`. One frozen object
   * per set of registered extensions (methods as they were when listed), rebuilt after a
   * register or unregister.
   */
  methodMap(): Readonly<Record<string, string[]>> {
    this.#methodMap ??= Object.freeze(Object.fromEntries(this.list().map((e) => [e.name, Object.freeze(e.methods) as string[]])))
    return this.#methodMap
  }

  /**
   * Calls `name.method(...args)`. Stops waiting (ABORTED) when `ctx.signal` aborts and (SHUTDOWN)
   * when the manager shuts down, even if the extension ignores its signal.
   * @throws ExtensionError EXTENSION_NOT_FOUND, METHOD_NOT_FOUND, INVALID_REQUEST, ABORTED, SHUTDOWN,
   *   or whatever the extension throws (http: DOMAIN_NOT_ALLOWED, ADDRESS_NOT_ALLOWED, TIMEOUT,
   *   RESPONSE_TOO_LARGE, REQUEST_FAILED, QUEUE_FULL); other errors become EXTENSION_ERROR.
   */
  async call(name: string, method: string, args: unknown[], ctx: ExtensionCallContext = {}): Promise<unknown> {
    const started = performance.now()
    let outcome = 'ok'
    try {
      return await this.#call(name, method, args, ctx)
    } catch (err) {
      const e = toExtensionError(err, name)
      outcome = e.code
      throw e
    } finally {
      this.observe?.(name, method, outcome, performance.now() - started)
    }
  }

  async #call(name: string, method: string, args: unknown[], ctx: ExtensionCallContext): Promise<unknown> {
    if (this.#closed) throw new ExtensionError('SHUTDOWN', 'The extension manager is shut down')
    const ext = this.#extensions.get(name)
    if (!ext) throw new ExtensionError('EXTENSION_NOT_FOUND', `No extension named ${name}`)
    if (!ext.methods.includes(method)) throw new ExtensionError('METHOD_NOT_FOUND', `Extension ${name} has no method ${method}`)
    if (!Array.isArray(args)) throw new ExtensionError('INVALID_REQUEST', 'Extension call arguments must be an array')
    if (ctx.signal?.aborted) throw new ExtensionError('ABORTED', 'The call was cancelled')

    const ac = new AbortController()
    const onAbort = () => ac.abort(new ExtensionError('ABORTED', 'The call was cancelled'))
    ctx.signal?.addEventListener('abort', onAbort, { once: true })
    this.#inflight.add(ac)
    let stop: (() => void) | undefined
    const stopped = new Promise<never>((_, reject) => {
      stop = () => reject(ac.signal.reason)
      ac.signal.addEventListener('abort', stop, { once: true })
    })
    try {
      return await Promise.race([ext.call(method, args, { ...ctx, signal: ac.signal }), stopped])
    } finally {
      ac.signal.removeEventListener('abort', stop!)
      ctx.signal?.removeEventListener('abort', onAbort)
      this.#inflight.delete(ac)
    }
  }

  /** Refuses new calls (SHUTDOWN), aborts those in flight, then shuts every extension down. Idempotent. */
  async shutdown(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const ac of this.#inflight) ac.abort(new ExtensionError('SHUTDOWN', 'The kernel is shutting down'))
    const all = [...this.#extensions.values()]
    this.#extensions.clear()
    const results = await Promise.allSettled(all.map(async (e) => e.shutdown?.()))
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.log?.warn({ err: r.reason, extension: all[i].name }, 'extension shutdown failed')
    })
  }
}

/** Options of the extensions plugin. */
export interface ExtensionsPluginOptions {
  /** Options of the built-in `http` extension; `false` = do not register it. */
  http?: Partial<HttpExtensionOptions> | false
  /** More extensions to register at startup. */
  extensions?: Extension[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's extensions: register / unregister / has / get / list / methodMap / call. */
    extensions: ExtensionManager
  }
}

function callMetrics(registry: Registry): CallObserver {
  const registers = [registry]
  const calls = new Counter({
    name: 'kernel_extension_calls_total',
    help: 'Extension calls by extension, method and outcome (ok or error code)',
    labelNames: ['extension', 'method', 'outcome'],
    registers,
  })
  const duration = new Histogram({
    name: 'kernel_extension_call_duration_seconds',
    help: 'Wall time of extension calls',
    labelNames: ['extension'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  return (extension, method, outcome, ms) => {
    calls.inc({ extension, method, outcome })
    duration.observe({ extension }, ms / 1000)
  }
}

async function extensionsPlugin(fastify: FastifyInstance, opts: ExtensionsPluginOptions): Promise<void> {
  const manager = new ExtensionManager(fastify.log.child({ plugin: 'extensions' }), callMetrics(fastify.promRegistry))
  if (opts.http !== false) await manager.register(createHttpExtension(opts.http ?? {}))
  for (const ext of opts.extensions ?? []) await manager.register(ext)
  fastify.decorate('extensions', manager)
  // preClose: abort outside calls before the panels plugin cancels runs and the executor stops
  fastify.addHook('preClose', async () => manager.shutdown())
  fastify.addHook('onClose', async () => manager.shutdown())
}

/**
 * Extensions: decorates `fastify.extensions` (ExtensionManager) with the built-in `http` extension.
 * Register your own: `await fastify.extensions.register({ name, methods, call })`. Depends on `metrics`.
 */
export default fp(extensionsPlugin, { name: 'extensions', fastify: '5.x', dependencies: ['metrics'] })
