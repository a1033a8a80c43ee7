import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import { Registry } from 'prom-client'
import metricsRoutes from '../routes/metrics.js'

/** Options of the metrics plugin. */
export interface MetricsPluginOptions {
  /** Also serve GET /metrics (routes/metrics.ts) in this context. Default true; the kernel serves it under its prefix. */
  route?: boolean
  /** Collect Node process metrics (CPU, memory, event loop) too. Default true. */
  defaultMetrics?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * This app's own prom-client Registry (never the global one, so several apps can live in one
     * process). Plugins that list `metrics` in their dependencies add their metrics to it.
     */
    promRegistry: Registry
  }
}

// fastify-metrics is CommonJS with `exports.default`: under Node's ESM interop the plugin is `.default`
const fastifyMetrics = fastifyMetricsModule.default

async function metricsPlugin(fastify: FastifyInstance, opts: MetricsPluginOptions): Promise<void> {
  const registry = new Registry()
  fastify.decorate('promRegistry', registry)
  // fastify-metrics times every route; all its collectors go to our registry, none to the global.
  // Only its histogram (http_request_duration_seconds; quantiles come from its buckets): the
  // summary it would add as well keeps a t-digest per label set, a tree insert on every request
  // of the trigger path, for the same information (it is still created, empty: on our registry).
  await fastify.register(fastifyMetrics, {
    name: 'httpMetrics',
    endpoint: null,
    defaultMetrics: { enabled: opts.defaultMetrics ?? true, register: registry },
    routeMetrics: {
      enabled: { histogram: true, summary: false },
      overrides: { histogram: { registers: [registry] }, summary: { registers: [registry] } },
    },
  })
  if (opts.route ?? true) await fastify.register(metricsRoutes)
  fastify.addHook('onClose', async () => registry.clear())
}

/** Metrics: `fastify.promRegistry` and GET /metrics (HTTP route timings via fastify-metrics). */
export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' })
