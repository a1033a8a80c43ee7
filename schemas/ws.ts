import { Type, type Static } from '@sinclair/typebox'
import { PanelEvent, RunOutcome } from './panels.js'

/*
 * WebSocket protocol of `GET /panels/:id/ws` (JSON text frames, one message per frame).
 * Client → server: TRIGGER, SUBSCRIBE, UNSUBSCRIBE, PING.
 * Server → client: CONNECTED, RESULT, PATCH, EVENT, PROGRESS, PONG, ERROR.
 */

const RequestId = Type.String({ minLength: 1, maxLength: 128 })

/** A subscription topic: `state` (every PATCH), `events` (every EVENT) or `state:<key>` (PATCHes touching that key, filtered to it). */
export const Topic = Type.String({ pattern: '^(state|events|state:.{1,200})$' })

export const TriggerMessage = Type.Object({
  type: Type.Literal('TRIGGER'),
  tool: Type.String({ minLength: 1, maxLength: 64 }),
  args: Type.Optional(Type.Unknown()),
  requestId: Type.Optional(RequestId),
}, { title: 'TriggerMessage' })
export const SubscribeMessage = Type.Object({
  type: Type.Literal('SUBSCRIBE'),
  topics: Type.Array(Topic, { minItems: 1, maxItems: 64 }),
  requestId: Type.Optional(RequestId),
}, { title: 'SubscribeMessage' })
export const UnsubscribeMessage = Type.Object({
  type: Type.Literal('UNSUBSCRIBE'),
  topics: Type.Array(Topic, { minItems: 1, maxItems: 64 }),
  requestId: Type.Optional(RequestId),
}, { title: 'UnsubscribeMessage' })
export const PingMessage = Type.Object({ type: Type.Literal('PING'), requestId: Type.Optional(RequestId) }, { title: 'PingMessage' })

/** Every message a client may send, keyed by `type`. */
export const ClientMessages = {
  TRIGGER: TriggerMessage,
  SUBSCRIBE: SubscribeMessage,
  UNSUBSCRIBE: UnsubscribeMessage,
  PING: PingMessage,
} as const
export type ClientMessageType = keyof typeof ClientMessages
export const ClientMessage = Type.Union(Object.values(ClientMessages), { $id: 'WsClientMessage' })
export type ClientMessage = Static<typeof ClientMessage>

const Mutation = Type.Object({
  key: Type.String(),
  value: Type.Optional(Type.Unknown()),
  operation: Type.Union([Type.Literal('set'), Type.Literal('delete')]),
}, { title: 'Mutation' })

/** First message on a socket. `tools` are the panel's tool names. */
export const ConnectedMessage = Type.Object({
  type: Type.Literal('CONNECTED'),
  panelId: Type.String(),
  state: Type.Record(Type.String(), Type.Unknown()),
  version: Type.Integer(),
  tools: Type.Array(Type.String()),
}, { title: 'ConnectedMessage' })
/** Reply to the TRIGGER with the same requestId, after every PATCH/EVENT the run produced. */
export const ResultMessage = Type.Object({
  type: Type.Literal('RESULT'),
  requestId: Type.Optional(RequestId),
  result: RunOutcome,
}, { title: 'ResultMessage' })
/** One committed step of state mutations; `version` is the panel version after it. */
export const PatchMessage = Type.Object({ type: Type.Literal('PATCH'), mutations: Type.Array(Mutation), version: Type.Integer() }, { title: 'PatchMessage' })
/** An event emitted by a handler with `$emit(name, payload)`. */
export const EventMessage = Type.Object({
  type: Type.Literal('EVENT'),
  event: PanelEvent,
}, { title: 'EventMessage' })
/** Sent to the caller of a TRIGGER while its run waits on extension calls (`suspended`) and when it goes on (`resumed`). */
export const ProgressMessage = Type.Object({
  type: Type.Literal('PROGRESS'),
  requestId: Type.Optional(RequestId),
  tool: Type.String(),
  phase: Type.Union([Type.Literal('suspended'), Type.Literal('resumed')]),
  pendingCalls: Type.Array(Type.Object({ extension: Type.String(), method: Type.String() })),
}, { title: 'ProgressMessage' })
export const PongMessage = Type.Object({ type: Type.Literal('PONG'), requestId: Type.Optional(RequestId) }, { title: 'PongMessage' })
/**
 * A typed error: PARSE_ERROR, UNKNOWN_MESSAGE, INVALID_MESSAGE, INVALID_ARGS, PANEL_NOT_FOUND,
 * TOOL_NOT_FOUND, or a handler's own error code (EXECUTION_ERROR, TIMEOUT, PERMISSION_DENIED, …)
 * with `details: { line, column }` when known.
 */
export const ErrorMessage = Type.Object({
  type: Type.Literal('ERROR'),
  code: Type.String(),
  message: Type.String(),
  requestId: Type.Optional(RequestId),
  details: Type.Optional(Type.Unknown()),
}, { title: 'ErrorMessage' })

export const ServerMessage = Type.Union(
  [ConnectedMessage, ResultMessage, PatchMessage, EventMessage, ProgressMessage, PongMessage, ErrorMessage],
  { $id: 'WsServerMessage' },
)
export type ServerMessage = Static<typeof ServerMessage>
export type ConnectedMessage = Static<typeof ConnectedMessage>
export type ErrorMessage = Static<typeof ErrorMessage>
export type ProgressMessage = Static<typeof ProgressMessage>

/** Close codes the kernel uses on panel sockets. */
export const WsCloseCode = {
  /** the server is shutting down */
  GOING_AWAY: 1001,
  /** a frame larger than the server's maxPayload (sent by ws itself) */
  MESSAGE_TOO_BIG: 1009,
  /** the panel was deleted */
  PANEL_DELETED: 4004,
} as const
