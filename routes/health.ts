import type { FastifyInstance } from 'fastify'
import { HealthReply } from '../schemas/common.js'

/** Options of the health route. */
export interface HealthRoutesOptions {
  version: string
  authEnabled: boolean
}

/** `GET /health`: liveness, no auth. During shutdown Fastify answers 503 instead. */
export default async function healthRoutes(fastify: FastifyInstance, opts: HealthRoutesOptions): Promise<void> {
  const started = Date.now()
  fastify.get(
    '/health',
    { schema: { tags: ['kernel'], summary: 'Liveness', operationId: 'getHealth', response: { 200: HealthReply } } },
    async (): Promise<HealthReply> => ({
      status: 'ok',
      version: opts.version,
      uptimeMs: Date.now() - started,
      authEnabled: opts.authEnabled,
      extensions: fastify.hasDecorator('extensions') ? fastify.extensions.list().map((e) => e.name) : [],
    }),
  )
}
