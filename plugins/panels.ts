import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { pluginOptions } from './options.js'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { PanelManager, type RunObserver } from './panels/manager.js'
import { PanelsOptions } from './panels/options.js'
import type { Executor } from './executor.js'

export { PanelManager } from './panels/manager.js'
export type { TriggerOptions } from './panels/manager.js'
export { PanelLimits, PanelsOptions } from './panels/options.js'

/** Options of the panels plugin (`PanelsOptions`: counts, bytes, ms; every field has a default). */
export type PanelsPluginOptions = Partial<PanelsOptions>

declare module 'fastify' {
  interface FastifyInstance {
    panels: PanelManager
  }
}

/** Panel metrics on the app's own registry: panels, sockets, suspended runs, queued segments, runs by status, run duration. */
function registerMetrics(registry: Registry, manager: () => PanelManager, executor: Executor): RunObserver {
  const registers = [registry]
  new Gauge({ name: 'kernel_panels', help: 'Panels alive', registers, collect() { this.set(manager().size) } })
  new Gauge({ name: 'kernel_panel_sockets', help: 'Connected panel WebSocket clients', registers, collect() { this.set(manager().sessions.count()) } })
  new Gauge({ name: 'kernel_panel_suspended_runs', help: 'Handler runs waiting on extension calls', registers, collect() { this.set(executor.suspended()) } })
  new Gauge({ name: 'kernel_panel_queued_segments', help: 'Run segments waiting in panel queues', registers, collect() { this.set(manager().queued()) } })
  new Gauge({ name: 'kernel_panel_triggers_in_flight', help: 'Triggers admitted and not yet answered', registers, collect() { this.set(manager().quotas.inFlight()) } })
  new Gauge({ name: 'kernel_capability_inferences_in_flight', help: 'Handlers whose capabilities are being inferred on the worker thread', registers, collect() { this.set(manager().inference.inFlight) } })
  const runs = new Counter({ name: 'kernel_handler_runs_total', help: 'Finished handler runs by status', labelNames: ['status'], registers })
  const suspensions = new Counter({ name: 'kernel_handler_suspensions_total', help: 'Times a handler suspended on extension calls', registers })
  const duration = new Histogram({
    name: 'kernel_handler_run_duration_seconds',
    help: 'Wall time of handler runs including extension calls',
    labelNames: ['status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  })
  return {
    runFinished(status, ms) {
      runs.inc({ status })
      duration.observe({ status }, ms / 1000)
    },
    suspended: () => suspensions.inc(),
  }
}

/**
 * Panels plugin: decorates `fastify.panels` (PanelManager) and restores every panel of
 * `fastify.store` (mount is not run again). Depends on `executor` (and through it `extensions`),
 * `metrics` and `store`. Closes sockets (1001) and cancels suspended runs in `preClose`, before the executor goes.
 * @throws KernelError STORE_ERROR / RESTORE_FAILED when a stored panel cannot be brought back
 */
async function panelsPlugin(fastify: FastifyInstance, options: PanelsPluginOptions): Promise<void> {
  const opts = pluginOptions('panels', PanelsOptions, options)
  const observer = registerMetrics(fastify.promRegistry, () => manager, fastify.executor)
  const log = fastify.log.child({ plugin: 'panels' })
  const manager = new PanelManager(fastify.executor, () => fastify.extensions.methodMap(), fastify.store, log, opts, observer)
  const restored = await manager.restore()
  if (restored > 0) log.info({ panels: restored }, 'restored panels from the store')
  fastify.decorate('panels', manager)
  fastify.addHook('preClose', async () => {
    manager.close()
  })
  fastify.addHook('onClose', async () => manager.inference.close())
}

export default fp(panelsPlugin, { name: 'panels', fastify: '5.x', dependencies: ['executor', 'metrics', 'store'] })
