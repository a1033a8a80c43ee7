import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { errorReplies } from '../schemas/common.js'
import { CreateSessionRequest, PatchSessionRequest, Session, SessionList, SessionParams } from '../schemas/kernels.js'
import { acceptEmptyJson, authenticated, rejectInvalid } from './kernels.js'
import { namespaceOf } from './processes.js'

const tags = ['sessions']

/**
 * Jupyter sessions `/api/sessions[/:id]` over `fastify.kernels.sessions`: POST creates (201) or returns
 * the session of the same `path`; DELETE 204 shuts its kernel down (410 KERNEL_GONE when it already was);
 * 404 SESSION_NOT_FOUND; 501 when the kernel cannot start (Jupyter's answer).
 */
export default async function sessionsRoutes(fastify: FastifyInstance): Promise<void> {
  authenticated(fastify)
  acceptEmptyJson(fastify)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const sm = () => fastify.kernels.sessions

  app.get('/api/sessions', {
    schema: { tags, operationId: 'listSessions', summary: 'Sessions of your namespace', response: { 200: SessionList, ...errorReplies(401) } },
  }, async (request) => sm().list(namespaceOf(request)))

  app.post('/api/sessions', {
    attachValidation: true,
    schema: { tags, operationId: 'createSession', summary: 'Create a session (or get the one for this path)', body: CreateSessionRequest, response: { 201: Session, ...errorReplies(400, 401, 404, 429, 501, 503) } },
  }, async (request, reply) => {
    rejectInvalid(request, 'INVALID_SESSION_REQUEST')
    const { session } = await sm().create(namespaceOf(request), request.body)
    return reply.code(201).header('location', `${request.url.split('?')[0].replace(/\/$/, '')}/${session.id}`).send(session)
  })

  app.get('/api/sessions/:id', {
    schema: { tags, operationId: 'getSession', summary: 'A session', params: SessionParams, response: { 200: Session, ...errorReplies(401, 404, 410) } },
  }, async (request) => sm().get(namespaceOf(request), request.params.id))

  app.patch('/api/sessions/:id', {
    attachValidation: true,
    schema: { tags, operationId: 'patchSession', summary: 'Rename, retype or rebind the kernel ({id} existing, {name} new)', params: SessionParams, body: PatchSessionRequest, response: { 200: Session, ...errorReplies(400, 401, 404, 410, 429, 501) } },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_SESSION_REQUEST')
    return sm().patch(namespaceOf(request), request.params.id, request.body)
  })

  app.delete('/api/sessions/:id', {
    schema: { tags, operationId: 'deleteSession', summary: 'Delete a session and shut its kernel down', params: SessionParams, response: { 204: { type: 'null' }, ...errorReplies(401, 404, 410) } },
  }, async (request, reply) => {
    await sm().delete(namespaceOf(request), request.params.id)
    return reply.code(204).send()
  })
}
