/**
 * `fastify.kernels`: the kernels of every namespace, their kernelspecs, quotas, the prespawn pool and the
 * culler. Kernels are keyed by UUID and belong to one namespace; another namespace's id is a 404
 * (specs/kernels.md sections 4–6).
 */
import { EventEmitter } from 'node:events'
import { kernelError } from '../errors.js'
import type { ProcessManager } from '../processes/manager.js'
import { allowedKey, resolveCwd } from '../processes/workspace.js'
import { toCull, type CullReason } from './culler.js'
import { ExecutionStore, type Execution } from './executions.js'
import { Kernel, type KernelSettings } from './kernel.js'
import type { KernelsConfig } from './options.js'
import { KernelPool, type PoolStatus } from './pool.js'
import { SessionManager } from './sessions.js'
import { ChannelsHub } from './ws-protocol.js'
import { loadSpecs, pythonPath, specForMode, type KernelSpec } from './specs.js'

/** Env keys a client may never set, whatever the allow-list says (specs/kernels.md section 5). */
const DENIED_ENV = ['PATH', 'LD_*', 'DYLD_*', 'PYTHON*', 'NODE_*', 'DENO_*', 'JPY_*']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** POST /api/kernels (Jupyter's `{name, path}` plus the seed's extras). */
export interface StartRequest {
  name?: string
  path?: string
  env?: Record<string, string>
  mode?: string
  lang?: string
  kernel_id?: unknown
  pool?: boolean
  inactivityTimeoutMs?: number
  maxExecutionMs?: number
}

/** Logger the manager writes to (pino / Fastify's fit). */
export interface ManagerLog {
  warn(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
}

/** Events for metrics: `started` (seconds, from pool?), `culled` (reason), `restarted`, `state` changes. */
export interface KernelManagerEvents {
  started: [kernel: Kernel, seconds: number, pooled: boolean]
  culled: [kernel: Kernel, reason: CullReason]
  restarted: [kernel: Kernel, cause: string]
  executed: [kernel: Kernel, status: string]
  stall: [kernel: Kernel, action: string]
  changed: []
}

/** The kernel manager. Create with `KernelManager.create(options, processes, log)`. */
export class KernelManager extends EventEmitter<KernelManagerEvents> {
  readonly started = new Date()
  readonly kernels = new Map<string, Kernel>()
  readonly pool: KernelPool
  readonly sessions = new SessionManager(this)
  private readonly hubs = new Map<string, ChannelsHub>()
  private readonly stores = new Map<string, ExecutionStore>()
  private reserved = new Map<string, number>()
  /** Cold starts in progress (abandoned at close). */
  private readonly startingKernels = new Set<Kernel>()
  private cullTimer?: NodeJS.Timeout
  private closing = false

  private constructor(
    readonly options: KernelsConfig,
    readonly specs: Map<string, KernelSpec>,
    private readonly processes: ProcessManager,
    private readonly log: ManagerLog,
  ) {
    super()
    const preload = options.poolPreload.filter((n) => this.isStartable(n))
    this.pool = new KernelPool({
      size: options.poolSize,
      names: options.poolSize > 0 ? preload : [],
      autoRefill: options.poolAutoRefill,
      create: (name) => this.create(this.spec(name), undefined, {}, {}, this.processes.options.workspaceRoot),
      hasRoom: () => this.liveCount() + this.reservedCount() < options.maxKernels,
      log,
    })
    this.cullTimer = setInterval(() => void this.cull(), options.cullIntervalS * 1000)
    this.cullTimer.unref()
  }

  /** Probes the kernelspecs (python3 through `options.python`) and builds the manager. */
  static async create(options: KernelsConfig, processes: ProcessManager, log: ManagerLog): Promise<KernelManager> {
    const specs = await loadSpecs({ python: options.python, nodeHeapMb: options.nodeHeapMb })
    return new KernelManager(options, specs, processes, log)
  }

  /** The interpreter python3 kernels run with. */
  get python(): string {
    return pythonPath(this.options.python)
  }

  private isStartable(name: string): boolean {
    return this.options.allowed.includes(name) && this.specs.get(name)?.available === true
  }

  /** Kernelspec names clients may start (allowed and available). */
  available(): KernelSpec[] {
    return [...this.specs.values()].filter((s) => this.isStartable(s.name))
  }

  /** `defaultName`, else python3 when startable, else pyodide. */
  get defaultName(): string {
    return this.options.defaultName ?? (this.isStartable('python3') ? 'python3' : 'pyodide')
  }

  private spec(name: string): KernelSpec {
    const spec = this.specs.get(name)
    if (!spec || !this.options.allowed.includes(name)) {
      const names = this.available().map((s) => s.name)
      throw kernelError('UNKNOWN_KERNEL_NAME', `unknown kernel name ${JSON.stringify(name)}; available: ${names.join(', ') || '(none)'}`)
    }
    if (!spec.available) throw kernelError('KERNEL_UNAVAILABLE', `kernel ${name} is unavailable: ${spec.reason}`)
    return spec
  }

  /** Checks a start request before anything runs. Throws the 400s of specs/kernels.md section 6. */
  private check(req: StartRequest): { spec: KernelSpec; env: Record<string, string>; cwd: string } {
    if (req.kernel_id !== undefined) throw kernelError('INVALID_KERNEL_REQUEST', 'kernel_id is chosen by the server; leave it out')
    let name = req.name ?? this.defaultName
    if (req.mode !== undefined) {
      const mapped = specForMode(req.mode, req.lang)
      if (mapped === null) throw kernelError('UNSUPPORTED_KERNEL_MODE', 'main_thread mode would block the server; use worker or process')
      if (mapped === undefined) throw kernelError('UNSUPPORTED_KERNEL_MODE', `unknown mode/lang ${req.mode}-${req.lang ?? 'python'}`)
      name = req.name ?? mapped
    }
    const spec = this.spec(name)
    const env = req.env ?? {}
    for (const key of Object.keys(env)) {
      if (allowedKey(DENIED_ENV, key) || !allowedKey(this.options.clientEnvAllowList, key)) {
        throw kernelError('ENV_NOT_ALLOWED', `env key ${key} is not allowed (allowed: ${this.options.clientEnvAllowList.join(', ')})`)
      }
    }
    const cwd = resolveCwd(this.processes.options.workspaceRoot, req.path === undefined || req.path === '' ? '.' : req.path).abs
    return { spec, env, cwd }
  }

  private liveCount(ns?: string): number {
    let n = ns === undefined ? this.pool.size : 0
    for (const k of this.kernels.values()) if (k.state !== 'dead' && (ns === undefined || k.namespace === ns)) n++
    return n
  }

  private reservedCount(ns?: string): number {
    if (ns !== undefined) return this.reserved.get(ns) ?? 0
    let n = 0
    for (const v of this.reserved.values()) n += v
    return n
  }

  private checkNamespaceQuota(ns: string): void {
    if (this.closing) throw kernelError('SHUTTING_DOWN', 'the server is shutting down')
    if (this.liveCount(ns) + this.reservedCount(ns) >= this.options.maxKernelsPerNamespace) {
      throw kernelError('NAMESPACE_KERNEL_LIMIT', `namespace ${ns} already has ${this.options.maxKernelsPerNamespace} kernels; shut one down first`)
    }
  }

  /** A claim from the pool does not add a kernel; a cold start does. */
  private checkGlobalQuota(): void {
    if (this.liveCount() + this.reservedCount() >= this.options.maxKernels) {
      throw kernelError('TOO_MANY_KERNELS', `limit of ${this.options.maxKernels} kernels reached; shut one down first`)
    }
  }

  /**
   * Starts a kernel for `ns` (from the pool when the request allows it: no env, path or timeouts).
   * Throws 400 INVALID_KERNEL_REQUEST / UNKNOWN_KERNEL_NAME / UNSUPPORTED_KERNEL_MODE / ENV_NOT_ALLOWED /
   * CWD_OUTSIDE_WORKSPACE / INVALID_CWD, 503 KERNEL_UNAVAILABLE, 429 TOO_MANY_KERNELS / NAMESPACE_KERNEL_LIMIT,
   * 500 KERNEL_START_FAILED, 504 KERNEL_START_TIMEOUT. Nothing is left running on error.
   */
  async start(ns: string, req: StartRequest): Promise<Kernel> {
    const { spec, env, cwd } = this.check(req)
    const settings: KernelSettings = { inactivityTimeoutMs: req.inactivityTimeoutMs, maxExecutionMs: req.maxExecutionMs }
    const poolable = req.pool !== false && req.env === undefined && !req.path && settings.inactivityTimeoutMs === undefined && settings.maxExecutionMs === undefined
    this.checkNamespaceQuota(ns)
    const t0 = performance.now()
    const pooled = poolable ? this.pool.claim(spec.name) : undefined
    if (pooled) {
      pooled.namespace = ns
      this.adopt(pooled)
      this.emit('started', pooled, (performance.now() - t0) / 1000, true)
      return pooled
    }
    this.checkGlobalQuota()
    this.reserved.set(ns, (this.reserved.get(ns) ?? 0) + 1)
    try {
      const kernel = await this.launch(spec, ns, env, settings, cwd)
      this.adopt(kernel)
      this.emit('started', kernel, (performance.now() - t0) / 1000, false)
      return kernel
    } finally {
      this.reserved.set(ns, (this.reserved.get(ns) ?? 1) - 1)
    }
  }

  private create(spec: KernelSpec, ns: string | undefined, env: Record<string, string>, settings: KernelSettings, cwd: string): Kernel {
    return new Kernel({ spec, namespace: ns, cwd, env, settings, processes: this.processes, options: this.options, log: this.log })
  }

  private async launch(spec: KernelSpec, ns: string | undefined, env: Record<string, string>, settings: KernelSettings, cwd: string): Promise<Kernel> {
    const kernel = this.create(spec, ns, env, settings, cwd)
    this.startingKernels.add(kernel)
    try {
      await kernel.start()
    } finally {
      this.startingKernels.delete(kernel)
    }
    if (this.closing) {
      await kernel.shutdown('now')
      throw kernelError('SHUTTING_DOWN', 'the server is shutting down')
    }
    return kernel
  }

  private adopt(kernel: Kernel): void {
    this.kernels.set(kernel.id, kernel)
    kernel.on('state', () => this.emit('changed'))
    kernel.on('restarted', (cause) => this.emit('restarted', kernel, cause))
    kernel.on('executed', (status) => this.emit('executed', kernel, status))
    kernel.on('stall', (action) => this.emit('stall', kernel, action))
    kernel.once('removed', () => {
      this.hubs.get(kernel.id)?.close()
      this.hubs.delete(kernel.id)
      this.stores.get(kernel.id)?.close()
      this.stores.delete(kernel.id)
    })
    this.emit('changed')
  }

  /** The kernel `id` of namespace `ns`. Throws 404 KERNEL_NOT_FOUND (malformed, unknown, other namespace alike). */
  get(ns: string, id: string): Kernel {
    const kernel = UUID.test(id) ? this.kernels.get(id) : undefined
    if (!kernel || kernel.namespace !== ns) throw kernelError('KERNEL_NOT_FOUND', `no kernel ${id}`)
    return kernel
  }

  /** The kernels of `ns`, oldest first. */
  list(ns: string): Kernel[] {
    return [...this.kernels.values()].filter((k) => k.namespace === ns)
  }

  /**
   * Shuts the kernel down (default: shutdown_request, `shutdownWaitMs`, then TERM→KILL; `kill`: SIGKILL) and
   * forgets it. Throws 404 KERNEL_NOT_FOUND.
   */
  async shutdown(ns: string, id: string, how: 'graceful' | 'kill' = 'graceful'): Promise<void> {
    await this.remove(this.get(ns, id), how)
  }

  private async remove(kernel: Kernel, how: 'graceful' | 'now' | 'kill' = 'graceful'): Promise<void> {
    if (!this.kernels.delete(kernel.id)) return
    await kernel.shutdown(how)
    kernel.emit('removed')
    this.emit('changed')
  }

  /** Starts filling the pool (the plugin calls it once the server listens). */
  fillPool(): void {
    this.pool.fill()
  }

  /** One culler pass: culls idle kernels (Jupyter's rules) and dead ones. */
  async cull(now = Date.now()): Promise<void> {
    const rules = { idleTimeoutMs: this.options.cullIdleTimeoutS * 1000, cullBusy: this.options.cullBusy, cullConnected: this.options.cullConnected }
    await Promise.all(toCull(this.kernels.values(), rules, now).map(async ([kernel, reason]) => {
      this.log.info({ kernel: kernel.id, reason }, 'kernels: culling kernel')
      this.emit('culled', kernel, reason)
      await this.remove(kernel, reason === 'dead' ? 'now' : 'graceful')
    }))
  }

  /** Every kernel by state, pooled ones included (for `wk_kernels{state}`). */
  countByState(): Record<string, number> {
    const out: Record<string, number> = { starting: 0, idle: 0, busy: 0, restarting: 0, dead: 0 }
    for (const k of this.kernels.values()) out[k.state]++
    for (const s of Object.values(this.pool.status())) {
      out.idle += s.ready
      out.starting += s.starting
    }
    return out
  }

  /** The WebSocket hub of a kernel (created on first use, dropped with the kernel). */
  channels(kernel: Kernel): ChannelsHub {
    let hub = this.hubs.get(kernel.id)
    if (!hub) this.hubs.set(kernel.id, (hub = new ChannelsHub(kernel, this.options)))
    return hub
  }

  /** The execution records of a kernel (created on first use, dropped with the kernel). */
  executions(kernel: Kernel): ExecutionStore {
    let store = this.stores.get(kernel.id)
    if (!store) this.stores.set(kernel.id, (store = new ExecutionStore(kernel, this.options)))
    return store
  }

  /** Unfinished REST executions of a kernel (none when it never had a store). */
  ongoing(kernel: Kernel): Execution[] {
    return this.stores.get(kernel.id)?.ongoing() ?? []
  }

  /** Pool status per preloaded kernelspec. */
  poolStatus(): Record<string, PoolStatus> {
    return this.pool.status()
  }

  /** Shuts every kernel down (in parallel) and stops the culler; refuses new starts. */
  async close(): Promise<void> {
    this.closing = true
    clearInterval(this.cullTimer)
    for (const kernel of this.startingKernels) kernel.abort()
    await Promise.all([this.pool.close(), ...[...this.kernels.values()].map((k) => this.remove(k))])
  }
}
