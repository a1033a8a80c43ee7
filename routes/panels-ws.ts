import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { RawData, WebSocket } from 'ws'
import { KernelError } from '../plugins/errors.js'
import type { PanelManager } from '../plugins/panels.js'
import type { Session } from '../plugins/panels/sessions.js'
import { encode } from '../plugins/panels/sessions.js'
import { PanelParams } from '../schemas/panels.js'
import { ClientMessages, WsCloseCode, type ClientMessage, type ClientMessageType } from '../schemas/ws.js'

const checkers: Record<ClientMessageType, TypeCheck<TSchema>> = {
  TRIGGER: TypeCompiler.Compile(ClientMessages.TRIGGER),
  SUBSCRIBE: TypeCompiler.Compile(ClientMessages.SUBSCRIBE),
  UNSUBSCRIBE: TypeCompiler.Compile(ClientMessages.UNSUBSCRIBE),
  PING: TypeCompiler.Compile(ClientMessages.PING),
}

const KNOWN = Object.keys(ClientMessages).join(', ')

/** The caller's namespace: set by the auth plugin, else 'default'. */
export function namespaceOf(request: FastifyRequest): string {
  const ns = (request as { namespace?: unknown }).namespace
  return typeof ns === 'string' && ns !== '' ? ns : 'default'
}

function sendError(s: Session, code: string, message: string, requestId?: string): void {
  s.send(encode({ type: 'ERROR', code, message, requestId }))
}

/** A client's requestId, echoed on errors when it is a sane string. */
function requestIdOf(msg: unknown): string | undefined {
  const id = (msg as { requestId?: unknown } | null)?.requestId
  return typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : undefined
}

/** `JSON.parse` with the edge's depth limit (see plugins/json-limits.ts). */
type ParseJson = (text: string) => unknown

/**
 * Parse and check one frame: PARSE_ERROR (not JSON), JSON_TOO_DEEP, UNKNOWN_MESSAGE (no/unknown
 * `type`), INVALID_MESSAGE (known type, wrong shape). Returns the message, or undefined after replying ERROR.
 */
function parse(s: Session, data: RawData, parseJson: ParseJson): ClientMessage | undefined {
  let msg: unknown
  try {
    msg = parseJson(data.toString())
  } catch (err) {
    if (err instanceof KernelError) sendError(s, err.code, err.message)
    else sendError(s, 'PARSE_ERROR', 'message is not valid JSON')
    return undefined
  }
  const requestId = requestIdOf(msg)
  const type = (msg as { type?: unknown } | null)?.type
  if (typeof type !== 'string' || !Object.hasOwn(checkers, type)) {
    sendError(s, 'UNKNOWN_MESSAGE', `unknown message type ${JSON.stringify(type ?? null)}; expected one of ${KNOWN}`, requestId)
    return undefined
  }
  const check = checkers[type as ClientMessageType]
  if (!check.Check(msg)) {
    const first = check.Errors(msg).First()
    sendError(s, 'INVALID_MESSAGE', `${type}: ${first?.path || '/'} ${first?.message ?? 'is invalid'}`, requestId)
    return undefined
  }
  return msg as ClientMessage
}

/** TRIGGER → PROGRESS* then RESULT (the run's PATCH/EVENT broadcasts precede it); request errors → ERROR. */
function trigger(panels: PanelManager, s: Session, ns: string, panelId: string, msg: Extract<ClientMessage, { type: 'TRIGGER' }>): void {
  const { requestId } = msg
  panels
    .trigger(ns, panelId, msg.tool, msg.args, { requestId, onProgress: (p) => s.send(encode(p)) })
    .then((result) => s.send(encode({ type: 'RESULT', requestId, result })))
    .catch((err: unknown) => {
      const e = err instanceof KernelError ? err : new KernelError(500, 'INTERNAL_ERROR', (err as Error).message)
      sendError(s, e.code, e.message, requestId)
    })
}

function onMessage(panels: PanelManager, s: Session, ns: string, panelId: string, data: RawData, parseJson: ParseJson): void {
  const msg = parse(s, data, parseJson)
  if (!msg) return
  switch (msg.type) {
    case 'TRIGGER':
      return trigger(panels, s, ns, panelId, msg)
    case 'SUBSCRIBE':
      return s.subscribe(msg.topics)
    case 'UNSUBSCRIBE':
      return s.unsubscribe(msg.topics)
    case 'PING':
      return s.send(encode({ type: 'PONG', requestId: msg.requestId }))
  }
}

/**
 * `GET /panels/:id/ws`: the panel WebSocket (protocol in `schemas/ws.ts`). An unknown panel
 * answers 404 before the upgrade; a bad token 401 (auth hook of the parent route plugin).
 * Frames above the server's maxPayload are closed by ws with 1009.
 */
export default async function panelsWsRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const parseJson: ParseJson = fastify.hasDecorator('parseJson') ? fastify.parseJson : JSON.parse
  app.get('/panels/:id/ws', {
    websocket: true,
    schema: { params: PanelParams, querystring: Type.Object({ token: Type.Optional(Type.String()) }) },
    // refuse the upgrade with a plain 404 when the panel does not exist (for this namespace)
    preValidation: async (request) => {
      fastify.panels.get(namespaceOf(request), request.params.id)
    },
  }, (socket: WebSocket, request) => {
    const ns = namespaceOf(request)
    const { id } = request.params
    let session: Session
    try {
      session = fastify.panels.connect(ns, id, socket)
    } catch {
      socket.close(WsCloseCode.PANEL_DELETED, 'PANEL_NOT_FOUND')
      return
    }
    socket.on('close', () => fastify.panels.disconnect(session))
    socket.on('message', (data) => onMessage(fastify.panels, session, ns, id, data, parseJson))
  })
}
