import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { type ErrorCode, kernelError } from '../plugins/errors.js'
import { errorReplies } from '../schemas/common.js'
import {
  CreatePanelReply,
  DeletePanelReply,
  PanelDefinition,
  PanelDescription,
  PanelList,
  PanelParams,
  PanelStateReply,
  PatchesQuery,
  PatchesReply,
  ToolParams,
  TriggerBody,
  TriggerReply,
} from '../schemas/panels.js'
import panelsWsRoutes, { namespaceOf } from './panels-ws.js'

const tags = ['panels']

/** A body that failed its TypeBox schema becomes a 400 with the route's own code. */
function rejectInvalid(request: FastifyRequest, code: ErrorCode): void {
  if (request.validationError) throw kernelError(code, request.validationError.message)
}

/**
 * Send text that already is the reply's JSON (of the route's 200 schema): with a JSON content
 * type Fastify sends a string as is, past the serializer.
 */
function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(text)
}

/**
 * Panel REST routes (+ the WebSocket route, registered from here so both share the prefix).
 * Needs the `panels` plugin and `@fastify/websocket`. Errors are `{ statusCode, code, error, message }`:
 * 400 INVALID_DEFINITION / COMPILATION_ERROR / INVALID_ARGS / INVALID_BODY / INVALID_QUERY / INVALID_SINCE,
 * 404 PANEL_NOT_FOUND / TOOL_NOT_FOUND, 409 PANEL_EXISTS, 410 PATCHES_EXPIRED, 413 STATE_TOO_LARGE,
 * 429 TOO_MANY_PANELS / NAMESPACE_QUOTA / PANEL_BUSY / NAMESPACE_BUSY, 503 CAPACITY_EXCEEDED / STORE_ERROR.
 */
export default async function panelsRoutes(fastify: FastifyInstance): Promise<void> {
  if (fastify.hasDecorator('authenticate')) fastify.addHook('onRequest', fastify.getDecorator<onRequestHookHandler>('authenticate'))
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const panels = () => fastify.panels
  const wsUrl = (request: FastifyRequest, id: string) =>
    `${request.protocol === 'https' ? 'wss' : 'ws'}://${request.host}${fastify.prefix}/panels/${encodeURIComponent(id)}/ws`

  app.post('/panels', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Create a panel: compile its handlers, infer missing capabilities, run mount',
      operationId: 'createPanel',
      body: PanelDefinition,
      response: { 201: CreatePanelReply, ...errorReplies(400, 401, 409, 413, 429, 503) },
    },
  }, async (request, reply) => {
    rejectInvalid(request, 'INVALID_DEFINITION')
    const panel = await panels().create(request.body, namespaceOf(request))
    return reply.code(201).send({ ...panel, wsUrl: wsUrl(request, panel.id) })
  })

  app.get('/panels', {
    schema: { tags, summary: "List the caller's panels", operationId: 'listPanels', response: { 200: PanelList, ...errorReplies(401) } },
  }, async (request) => ({ panels: panels().list(namespaceOf(request)) }))

  app.get('/panels/:id', {
    schema: {
      tags,
      summary: 'Describe a panel, with each tool’s (inferred) capabilities',
      operationId: 'getPanel',
      params: PanelParams,
      response: { 200: PanelDescription, ...errorReplies(401, 404) },
    },
  }, async (request) => panels().get(namespaceOf(request), request.params.id))

  app.get('/panels/:id/state', {
    schema: { tags, summary: 'A panel’s committed state and version', operationId: 'getPanelState', params: PanelParams, response: { 200: PanelStateReply, ...errorReplies(401, 404) } },
  }, async (request, reply) => sendJsonText(reply, panels().getState(namespaceOf(request), request.params.id)))

  app.get('/panels/:id/patches', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Committed batches of state mutations after version `since`, oldest first (what a PATCH carries)',
      operationId: 'listPanelPatches',
      params: PanelParams,
      querystring: PatchesQuery,
      response: { 200: PatchesReply, ...errorReplies(400, 401, 404, 410, 503) },
    },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_QUERY')
    const { since, limit } = request.query
    return panels().patches(namespaceOf(request), request.params.id, since, limit)
  })

  app.delete('/panels/:id', {
    schema: {
      tags,
      summary: 'Delete a panel: cancel its runs, run unmount, close its sockets (4004)',
      operationId: 'deletePanel',
      params: PanelParams,
      response: { 200: DeletePanelReply, ...errorReplies(401, 404, 503) },
    },
  }, async (request) => panels().delete(namespaceOf(request), request.params.id))

  app.post('/panels/:id/trigger/:tool', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Run a tool; 200 with status "error" when the handler itself failed',
      operationId: 'triggerTool',
      params: ToolParams,
      body: TriggerBody,
      response: { 200: TriggerReply, ...errorReplies(400, 401, 404, 413, 429, 503) },
    },
  }, (request) => {
    // not async: trigger's own promise is the reply (one promise fewer per trigger); a throw here is a 400 all the same
    // a bodyless POST means "no args"; any body present must match TriggerBody
    if (request.body !== undefined) rejectInvalid(request, 'INVALID_BODY')
    const { id, tool } = request.params
    return panels().trigger(namespaceOf(request), id, tool, request.body?.args)
  })

  await fastify.register(panelsWsRoutes)
}
