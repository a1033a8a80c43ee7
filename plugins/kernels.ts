import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { KernelManager } from './kernels/manager.js'
import { KernelsConfig } from './kernels/options.js'
import { KernelsRuntime } from './kernels/worker-runtime.js'
import { pluginOptions } from './options.js'

export { KernelManager, type StartRequest } from './kernels/manager.js'
export { Kernel, type KernelClient, type KernelModel, type ExecutionState } from './kernels/kernel.js'
export { KernelsConfig } from './kernels/options.js'

/** Transcript bounds of the kernel workers (the registry's defaults). */
const TRANSCRIPT_BOUNDS = { transcriptMaxItems: 1000, transcriptMaxBytes: 1024 * 1024, runtimeTranscriptMaxBytes: 64 * 1024 * 1024 }

/** Options of the kernels plugin: any subset of `KernelsConfig` (defaults filled in). */
export type KernelsOptions = Partial<KernelsConfig>

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Jupyter-compatible code kernels (specs/kernels.md): start, list, interrupt, restart, shut down,
     * channels, sessions, pool and culler, scoped by namespace. See `KernelManager`.
     */
    kernels: KernelManager
  }
}

/** Prometheus series of the kernels (specs/kernels.md section 9), on the app's own registry. */
function registerMetrics(registry: Registry, manager: KernelManager): void {
  new Gauge({
    name: 'wk_kernels', help: 'Kernels by execution state (pooled ones included)', labelNames: ['state'], registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(manager.countByState())) this.set({ state }, n)
    },
  })
  const start = new Histogram({ name: 'wk_kernel_start_seconds', help: 'Kernel start until the first kernel_info_reply, seconds', labelNames: ['kernel', 'pooled'], buckets: [0.005, 0.03, 0.1, 0.3, 1, 3, 10, 30, 60], registers: [registry] })
  const executions = new Counter({ name: 'wk_kernel_executions_total', help: 'execute_reply messages by status', labelNames: ['status'], registers: [registry] })
  const culled = new Counter({ name: 'wk_kernels_culled_total', help: 'Kernels culled, by reason', labelNames: ['reason'], registers: [registry] })
  const restarts = new Counter({ name: 'wk_kernel_restarts_total', help: 'Kernel restarts, by cause (request, crash, heartbeat, memory, stall)', labelNames: ['cause'], registers: [registry] })
  const stalls = new Counter({ name: 'wk_kernel_stalls_total', help: 'Requests busy past maxExecutionMs, by action', labelNames: ['action'], registers: [registry] })
  manager.on('started', (k, seconds, pooled) => start.observe({ kernel: k.spec.name, pooled: String(pooled) }, seconds))
  manager.on('executed', (_k, status) => executions.inc({ status }))
  manager.on('culled', (_k, reason) => culled.inc({ reason }))
  manager.on('restarted', (_k, cause) => restarts.inc({ cause }))
  manager.on('stall', (_k, action) => stalls.inc({ action }))
}

/**
 * Decorates `fastify.kernels` (needs the `processes` plugin: every kernel is an internal spawn of the
 * bridge). Probes the kernelspecs at registration (a missing runtime marks its kind unavailable), fills the
 * prespawn pool once the server listens, and shuts every kernel down on close.
 */
async function kernelsPlugin(fastify: FastifyInstance, options: KernelsOptions): Promise<void> {
  const config = pluginOptions('kernels', KernelsConfig, options)
  const manager = await KernelManager.create(config, fastify.processes, fastify.log)
  fastify.decorate('kernels', manager)
  if (fastify.hasDecorator('promRegistry')) registerMetrics(fastify.promRegistry, manager)
  // the worker registry lists every kernel as a worker of runtime `kernels` (when the registry is there)
  if (fastify.hasDecorator('workers')) {
    fastify.workers.register(new KernelsRuntime(manager, { workspaceRoot: fastify.processes.options.workspaceRoot, ...TRANSCRIPT_BOUNDS }))
  }
  fastify.addHook('onListen', async () => manager.fillPool())
  fastify.addHook('onClose', async () => manager.close())
}

export default fp(kernelsPlugin, { name: 'kernels', fastify: '5.x', dependencies: ['processes'] })
