import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type, type TSchema } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { RawData, WebSocket } from 'ws'
import { KernelError, kernelError } from '../plugins/errors.js'
import type { PanelManager } from '../plugins/panels.js'
import type { Session } from '../plugins/panels/sockets.js'
import { encode } from '../plugins/panels/sockets.js'
import { errorReplies } from '../schemas/common.js'
import { wsRoute } from '../schemas/openapi.js'
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

/**
 * TRIGGER → PROGRESS* then RESULT (the run's PATCH/EVENT broadcasts precede it). A run that failed
 * answers ERROR with its code, line/column and the outcome as `details` (seed 001); a refused
 * request (bad args, busy, store failure …) answers ERROR with the request's code.
 */
async function trigger(panels: PanelManager, s: Session, ns: string, panelId: string, msg: Extract<ClientMessage, { type: 'TRIGGER' }>): Promise<void> {
  const { requestId } = msg
  try {
    const result = await panels.trigger(ns, panelId, msg.tool, msg.args, { requestId, socket: s, onProgress: s.progress })
    if (result.status === 'success' || !result.error) return s.send(encode({ type: 'RESULT', requestId, result }))
    const { code, message, line, column } = result.error
    s.send(encode({ type: 'ERROR', requestId, code, message, line, column, details: result }))
  } catch (err) {
    const e = err instanceof KernelError ? err : kernelError('INTERNAL_ERROR', (err as Error).message)
    sendError(s, e.code, e.message, requestId)
  }
}

function onMessage(panels: PanelManager, s: Session, ns: string, panelId: string, data: RawData, parseJson: ParseJson): void {
  const msg = parse(s, data, parseJson)
  if (!msg) return
  switch (msg.type) {
    case 'TRIGGER':
      return void trigger(panels, s, ns, panelId, msg)
    case 'SUBSCRIBE':
      if (!s.subscribe(msg.topics)) sendError(s, 'TOO_MANY_TOPICS', 'SUBSCRIBE would exceed maxTopicsPerSocket; nothing was added', msg.requestId)
      return
    case 'UNSUBSCRIBE':
      return s.unsubscribe(msg.topics)
    case 'PING':
      return s.send(encode({ type: 'PONG', requestId: msg.requestId }))
  }
}

/** `?since=` as a version: a non-negative integer, else undefined (the socket then gets the full state). */
function sinceOf(raw: string | undefined): number | undefined {
  if (raw === undefined || !/^\d{1,15}$/.test(raw)) return undefined
  return Number(raw)
}

/**
 * `GET /panels/:id/ws[?since=<version>]`: the panel WebSocket (protocol in `schemas/ws.ts`). An
 * unknown panel answers 404 before the upgrade; a bad token 401 (auth hook of the parent route
 * plugin). Frames arriving while CONNECTED (and a `since` replay) is being sent wait for it, in
 * order. Frames above the server's maxPayload are closed by ws with 1009.
 */
export default async function panelsWsRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const parseJson: ParseJson = fastify.hasDecorator('parseJson') ? fastify.parseJson : JSON.parse
  app.get('/panels/:id/ws', {
    websocket: true,
    schema: {
      tags: ['panels'],
      summary: 'The panel WebSocket: CONNECTED, then PATCH / EVENT / PROGRESS / RESULT; send TRIGGER, SUBSCRIBE, UNSUBSCRIBE, PING',
      operationId: 'connectPanel',
      params: PanelParams,
      querystring: Type.Object({
        token: Type.Optional(Type.String({ description: 'bearer token for the upgrade when auth is on' })),
        since: Type.Optional(Type.String({ maxLength: 32, description: 'a panel version the client has: the missed PATCHes instead of the state' })),
      }),
      response: errorReplies(401, 404),
      ...wsRoute('WsClientMessage', 'WsServerMessage'),
    },
    // refuse the upgrade with a plain 404 when the panel does not exist (for this namespace)
    preValidation: async (request) => {
      fastify.panels.get(namespaceOf(request), request.params.id)
    },
  }, (socket: WebSocket, request) => {
    const ns = namespaceOf(request)
    const { id } = request.params
    // frames that arrive before CONNECTED (and a `since` replay) is sent wait here, in order; the
    // socket is not read meanwhile, so at most what ws had already read waits
    let session: Session | undefined
    let early: RawData[] | undefined = []
    socket.pause()
    // the upgrade's TCP stream is the one ws writes to: corked per tick to batch frames
    const ready = fastify.panels.connect(ns, id, socket, sinceOf(request.query.since), request.raw.socket)
    ready.then((s) => {
      const waiting = early ?? []
      early = undefined // from now on each frame is handled as it arrives
      session = s
      for (const data of waiting) onMessage(fastify.panels, s, ns, id, data, parseJson)
      socket.resume()
    }, (err: unknown) => {
      early = undefined
      socket.resume() // the closing handshake reads the client's close frame
      const notFound = err instanceof KernelError && err.code === 'PANEL_NOT_FOUND'
      socket.close(notFound ? WsCloseCode.PANEL_DELETED : WsCloseCode.INTERNAL_ERROR, notFound ? 'PANEL_NOT_FOUND' : 'CONNECT_FAILED')
    })
    socket.on('close', () => void ready.then((s) => fastify.panels.disconnect(s), () => undefined))
    socket.on('message', (data) => {
      if (session) onMessage(fastify.panels, session, ns, id, data, parseJson)
      else early?.push(data)
    })
  })
}
