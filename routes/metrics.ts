import type { FastifyInstance } from 'fastify'

/**
 * `GET /metrics`: the app's Prometheus registry (`fastify.promRegistry`, text exposition format), public like
 * /health. Needs the `metrics` plugin in this or a parent context. Not timed itself (`disableMetrics`).
 */
export default async function metricsRoutes(fastify: FastifyInstance): Promise<void> {
  fastify.get(
    '/metrics',
    {
      schema: {
        tags: ['kernel'],
        summary: 'Prometheus metrics (text exposition format)',
        operationId: 'getMetrics',
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
      config: { disableMetrics: true },
    },
    async (_request, reply) => reply.type(fastify.promRegistry.contentType).send(await fastify.promRegistry.metrics()),
  )
}
