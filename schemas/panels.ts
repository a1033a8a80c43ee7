import { Type, type Static } from '@sinclair/typebox'
import { Literals } from './common.js'

/*
 * REST payloads of the panels API. Only top-level payloads carry an `$id`: ajv refuses a
 * schema whose nested `$id` also appears in another route, so shared fragments stay anonymous.
 */

/** Panel id: 1–64 chars of `[A-Za-z0-9_-]`. */
export const PanelIdString = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })
/** Tool name: an identifier-like word of at most 64 chars. */
export const ToolNameString = Type.String({ pattern: '^[A-Za-z_$][A-Za-z0-9_$.-]{0,63}$' })

/** A capability token: `*`, `state:read:<key>`, `state:write:<key>`, `events:emit:<name>`, `view:update:<id>`, `ext:<name>`. */
export const CapabilityString = Type.String({
  pattern: '^(\\*|state:(read|write):\\S+|events:emit:\\S+|view:update:\\S+|ext:\\S+)$',
  maxLength: 200,
})

/** Largest handler source accepted by the API, bytes (the runtime has its own cap too). */
export const MAX_HANDLER_CHARS = 262_144

const ToolDefinitionFields = Type.Object(
  {
    name: ToolNameString,
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    /** JSON Schema of the tool's args; absent = any value. */
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** Body of an async function; globals `$state $args $scope $emit $view $ext $log`. */
    handler: Type.String({ minLength: 1, maxLength: MAX_HANDLER_CHARS }),
    /** Capability tokens; omitted = inferred from the handler source. */
    capabilities: Type.Optional(Type.Array(CapabilityString, { maxItems: 256 })),
    /** Wall-clock budget of each run segment, ms. */
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 300_000 })),
  },
  { title: 'ToolDefinition', additionalProperties: false },
)

/** Body of `POST /panels`. */
export const PanelDefinition = Type.Object(
  {
    id: Type.Optional(PanelIdString),
    kind: Type.String({ minLength: 1, maxLength: 64 }),
    title: Type.Optional(Type.String({ maxLength: 200 })),
    initialState: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    tools: Type.Array(ToolDefinitionFields, { maxItems: 128 }),
    lifecycle: Type.Optional(
      Type.Object(
        {
          mount: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_HANDLER_CHARS })),
          unmount: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_HANDLER_CHARS })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { $id: 'PanelDefinition', additionalProperties: false },
)
export type PanelDefinition = Static<typeof PanelDefinition>
export type ToolDefinition = Static<typeof ToolDefinitionFields>

/** `ready` = idle, `running` = a handler segment is executing, `suspended` = every live run awaits an extension call, `closing` = being deleted. */
export const PanelStatusString = Literals(['ready', 'running', 'suspended', 'closing'], { title: 'PanelStatus' })
export type PanelStatus = Static<typeof PanelStatusString>

const ToolInfo = Type.Object({
  name: Type.String(),
  description: Type.Optional(Type.String()),
  args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  capabilities: Type.Array(Type.String()),
  /** true when `capabilities` were inferred from the source rather than declared */
  capabilitiesInferred: Type.Boolean(),
  timeoutMs: Type.Optional(Type.Integer()),
}, { title: 'ToolInfo' })
export type ToolInfo = Static<typeof ToolInfo>

const SummaryFields = {
  id: Type.String(),
  kind: Type.String(),
  title: Type.Optional(Type.String()),
  status: PanelStatusString,
  /** bumped on every commit of state mutations */
  version: Type.Integer(),
  /** connected WebSocket clients */
  clients: Type.Integer(),
  /** live (running or suspended) handler runs */
  activeRuns: Type.Integer(),
  /** run segments waiting in the panel's queue (bounded by maxQueuedRunsPerPanel) */
  queuedRuns: Type.Integer(),
  /** ISO 8601 */
  createdAt: Type.String(),
}

/** An entry of `GET /panels`. */
const PanelSummaryFields = Type.Object({ ...SummaryFields, tools: Type.Array(Type.String()) }, { title: 'PanelSummary' })
export type PanelSummary = Static<typeof PanelSummaryFields>

/** Reply of `GET /panels`. */
export const PanelList = Type.Object({ panels: Type.Array(PanelSummaryFields) }, { $id: 'PanelList' })
export type PanelList = Static<typeof PanelList>

/** Capabilities of a lifecycle handler; `capabilitiesInferred` as for a tool. */
const HandlerCapabilities = Type.Object(
  { capabilities: Type.Array(Type.String()), capabilitiesInferred: Type.Boolean() },
  { title: 'HandlerCapabilities' },
)
const LifecycleInfo = Type.Object(
  { mount: Type.Optional(HandlerCapabilities), unmount: Type.Optional(HandlerCapabilities) },
  { title: 'LifecycleInfo' },
)

const DescriptionFields = {
  ...SummaryFields,
  namespace: Type.String(),
  tools: Type.Array(ToolInfo),
  lifecycle: LifecycleInfo,
}

/** Reply of `GET /panels/:id`: the panel description, including each tool's (inferred) capabilities. */
export const PanelDescription = Type.Object(DescriptionFields, { $id: 'PanelDescription', title: 'Panel' })
export type PanelDescription = Static<typeof PanelDescription>

/** Reply of `POST /panels` (201): the description plus the WebSocket URL (it includes any route prefix). */
export const CreatePanelReply = Type.Object({ ...DescriptionFields, wsUrl: Type.String() }, { $id: 'CreatePanelReply' })
export type CreatePanelReply = Static<typeof CreatePanelReply>

/** Reply of `GET /panels/:id/state`. */
export const PanelStateReply = Type.Object(
  { panelId: Type.String(), state: Type.Record(Type.String(), Type.Unknown()), version: Type.Integer() },
  { $id: 'PanelStateReply' },
)
export type PanelStateReply = Static<typeof PanelStateReply>

/** Reply of `DELETE /panels/:id`: `unmount` tells how the unmount handler ended, when there was one. */
export const DeletePanelReply = Type.Object(
  {
    id: Type.String(),
    deleted: Type.Literal(true),
    unmount: Type.Optional(Type.Union([Type.Literal('success'), Type.Literal('error')])),
  },
  { $id: 'DeletePanelReply' },
)
export type DeletePanelReply = Static<typeof DeletePanelReply>

/** Body of `POST /panels/:id/trigger/:tool`. */
export const TriggerBody = Type.Object(
  { args: Type.Optional(Type.Unknown()) },
  { $id: 'TriggerBody', additionalProperties: false },
)
export type TriggerBody = Static<typeof TriggerBody>

/** Error of a handler run: a runtime code (TIMEOUT, CANCELLED, PERMISSION_DENIED, EXECUTION_ERROR, …) with 1-based line/column in the handler source when known. */
export const RunErrorFields = Type.Object({
  code: Type.String(),
  message: Type.String(),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
}, { title: 'RunError' })

/** An event a handler emitted with `$emit(name, payload)`. */
export const PanelEvent = Type.Object({ name: Type.String(), payload: Type.Optional(Type.Unknown()) }, { title: 'PanelEvent' })

const RunOutcomeFields = {
  status: Type.Union([Type.Literal('success'), Type.Literal('error')]),
  returnValue: Type.Optional(Type.Unknown()),
  error: Type.Optional(RunErrorFields),
  /** panel version after the run's last commit */
  version: Type.Integer(),
  events: Type.Array(PanelEvent),
  viewCommands: Type.Array(
    Type.Object({ type: Type.String(), viewId: Type.Optional(Type.String()), payload: Type.Optional(Type.Unknown()) }, { title: 'ViewCommand' }),
  ),
  /** `timestamp` in ms since the epoch */
  logs: Type.Array(Type.Object({ level: Type.String(), message: Type.String(), timestamp: Type.Number() }, { title: 'LogEntry' })),
  /** run segments (1 + number of suspensions) */
  segments: Type.Integer(),
  /** wall time of the whole run including extension calls, ms */
  durationMs: Type.Number(),
}

/** Reply of `POST /panels/:id/trigger/:tool` (200 even when the handler failed: see `status`). Also the `result` of a WS RESULT. */
export const TriggerReply = Type.Object(RunOutcomeFields, { $id: 'TriggerReply', title: 'RunOutcome' })
export type TriggerReply = Static<typeof TriggerReply>
/** Same shape as TriggerReply, without an `$id`, for embedding in other schemas. */
export const RunOutcome = Type.Object(RunOutcomeFields, { title: 'RunOutcome' })
export type RunOutcome = Static<typeof RunOutcome>

const Mutation = Type.Object({
  key: Type.String(),
  value: Type.Optional(Type.Unknown()),
  operation: Type.Union([Type.Literal('set'), Type.Literal('delete')]),
}, { title: 'Mutation' })

/** One committed batch of state mutations; `version` is the panel version after it (a PATCH carries the same). */
export const PatchBatch = Type.Object({ version: Type.Integer(), mutations: Type.Array(Mutation) }, { title: 'PatchBatch' })

/** Query of `GET /panels/:id/patches`: batches after version `since`, at most `limit` (default 100). */
export const PatchesQuery = Type.Object({
  since: Type.Integer({ minimum: 0, description: 'a panel version the client has; batches after it are returned' }),
  limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: 'most batches returned' }),
})

/** Reply of `GET /panels/:id/patches`: `version` is the panel's current version. */
export const PatchesReply = Type.Object(
  { panelId: Type.String(), since: Type.Integer(), version: Type.Integer(), patches: Type.Array(PatchBatch) },
  { $id: 'PatchesReply' },
)
export type PatchesReply = Static<typeof PatchesReply>

export const PanelParams = Type.Object({ id: Type.String() })
export const ToolParams = Type.Object({ id: Type.String(), tool: Type.String() })
