import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { PanelManager, type PanelManagerOptions, type RunObserver } from './panels/manager.js'

export { PanelManager } from './panels/manager.js'
export type { PanelManagerOptions, TriggerOptions } from './panels/manager.js'

/**
 * Options of the panels plugin (times in ms, sizes in bytes):
 * `maxPanels` (default 1000), `suspensionTimeoutMs` (30000), `maxBufferedBytes` per socket (1 MiB),
 * `pingIntervalMs` of the server heartbeat (30000).
 */
export type PanelsPluginOptions = PanelManagerOptions

declare module 'fastify' {
  interface FastifyInstance {
    panels: PanelManager
  }
}

/** Panel metrics on the app's own registry: panels, sockets, suspended runs, runs by status, run duration. */
function registerMetrics(registry: Registry, manager: () => PanelManager): RunObserver {
  const registers = [registry]
  new Gauge({ name: 'kernel_panels', help: 'Panels alive', registers, collect() { this.set(manager().size) } })
  new Gauge({ name: 'kernel_panel_sockets', help: 'Connected panel WebSocket clients', registers, collect() { this.set(manager().sessions.count()) } })
  new Gauge({ name: 'kernel_panel_suspended_runs', help: 'Handler runs waiting on extension calls', registers, collect() { this.set(manager().suspensions.count()) } })
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
 * Panels plugin: decorates `fastify.panels` (PanelManager). Depends on `executor` (and through it
 * `extensions` and `metrics`). Closes sockets (1001) and cancels suspended runs in `preClose`, before the executor goes.
 */
async function panelsPlugin(fastify: FastifyInstance, opts: PanelsPluginOptions): Promise<void> {
  const observer = registerMetrics(fastify.promRegistry, () => manager)
  const manager = new PanelManager(
    fastify.executor,
    () => fastify.extensions.methodMap(),
    fastify.log.child({ plugin: 'panels' }),
    opts,
    observer,
  )
  fastify.decorate('panels', manager)
  fastify.addHook('preClose', async () => {
    manager.close()
  })
}

export default fp(panelsPlugin, { name: 'panels', fastify: '5.x', dependencies: ['executor', 'metrics'] })
