import { Type, type Static } from '@sinclair/typebox'
import { PanelEvent, PatchBatch, RunOutcome } from './panels.js'

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

/**
 * First message on a socket. `tools` are the panel's tool names. `resumed: true` (the socket asked
 * `?since=<version>` and the patch log reaches back): no state, `version` is `since`, and the missed
 * PATCHes follow in order. `resumed: false`: the full `state` at `version`.
 */
export const ConnectedMessage = Type.Object({
  type: Type.Literal('CONNECTED'),
  panelId: Type.String(),
  state: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  version: Type.Integer(),
  resumed: Type.Boolean(),
  tools: Type.Array(Type.String()),
}, { title: 'ConnectedMessage' })
/** Reply to a TRIGGER whose run succeeded (same requestId), after every PATCH/EVENT the run produced; a failed run answers ERROR. */
export const ResultMessage = Type.Object({
  type: Type.Literal('RESULT'),
  requestId: Type.Optional(RequestId),
  result: RunOutcome,
}, { title: 'ResultMessage' })
/** One committed step of state mutations; `version` is the panel version after it. */
export const PatchMessage = Type.Object({ type: Type.Literal('PATCH'), mutations: PatchBatch.properties.mutations, version: Type.Integer() }, { title: 'PatchMessage' })
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
 * TOOL_NOT_FOUND, PANEL_BUSY, NAMESPACE_BUSY, SOCKET_BUSY, TOO_MANY_TOPICS, STATE_TOO_LARGE,
 * STORE_ERROR … or, for a TRIGGER whose run failed (seed 001), the run's own code (EXECUTION_ERROR,
 * TIMEOUT, CANCELLED, PERMISSION_DENIED, RESOURCE_LIMIT, MEMORY_LIMIT …) with `line`/`column` in the handler
 * source when known and `details` = the run's outcome (what RESULT would have carried).
 */
export const ErrorMessage = Type.Object({
  type: Type.Literal('ERROR'),
  code: Type.String(),
  message: Type.String(),
  requestId: Type.Optional(RequestId),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
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
  /** the server could not attach the socket (e.g. the panel state could not be encoded) */
  INTERNAL_ERROR: 1011,
  /** a frame larger than the server's maxPayload (sent by ws itself) */
  MESSAGE_TOO_BIG: 1009,
  /** the panel was deleted */
  PANEL_DELETED: 4004,
} as const
