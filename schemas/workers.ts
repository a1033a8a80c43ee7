import { Type, type Static, type TProperties, type TSchema } from '@sinclair/typebox'
import { Literals, Nullable } from './common.js'
import { ProcessType } from './processes.js'

/**
 * Worker-runtime registry contract: runtimes → hosts → workers.
 * Every id here is an opaque registry projection (≤ 120 chars of `[A-Za-z0-9_:-]`), never a path,
 * socket address, raw name, token or session id. Field names are snake_case, as in the wire contract.
 */

/** Longest public id (characters). */
export const MAX_ID_LENGTH = 120
/** Pattern every public runtime / host / worker id matches. */
export const ID_PATTERN = '^[A-Za-z0-9_:-]{1,120}$'
/** Most diagnostics any single reply carries. */
export const MAX_DIAGNOSTICS = 16
/** Longest input `content` accepted (characters). */
export const MAX_INPUT_CHARS = 65_536

/** A `$ref` to a schema registered with `addSchema`, typed as the schema itself. */
const ref = <T extends TSchema>(schema: T) => Type.Unsafe<Static<T>>(Type.Ref(schema.$id as string))

/** A non-fatal finding attached to a reply instead of failing it. */
export const WorkerDiagnostic = Type.Object(
  {
    code: Type.String({ description: 'stable snake_case code, e.g. local_metadata_invalid' }),
    severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error')]),
    message: Type.String(),
    worker_id: Type.Optional(Type.String({ description: 'opaque id of the worker the finding is about' })),
  },
  { $id: 'WorkerDiagnostic' },
)
export type WorkerDiagnostic = Static<typeof WorkerDiagnostic>

const Diagnostics = Type.Array(ref(WorkerDiagnostic), { maxItems: MAX_DIAGNOSTICS })

/** What a runtime can do; every flag is truthful for the caller's namespace at the time of the call. */
export const RuntimeCapabilities = Type.Object(
  {
    can_list_hosts: Type.Boolean(),
    can_list_workers: Type.Boolean(),
    can_get_worker: Type.Boolean(),
    can_spawn: Type.Boolean(),
    can_stop: Type.Boolean(),
    can_accept_input: Type.Boolean(),
    can_stream_events: Type.Boolean(),
    can_read_transcript: Type.Boolean(),
    max_workers: Type.Integer({ minimum: 0, description: 'most live workers the runtime keeps' }),
  },
  { $id: 'WorkerRuntimeCapabilities' },
)
export type RuntimeCapabilities = Static<typeof RuntimeCapabilities>

/** Availability of a runtime or host. */
export const AvailabilityStatus = Literals(['available', 'degraded', 'unavailable'], { $id: 'WorkerAvailabilityStatus' })
export type AvailabilityStatus = Static<typeof AvailabilityStatus>

/**
 * A runtime or host summary: `runtime_id`, then `head`, its availability, `tail`, its capabilities and
 * diagnostics (in this order, which is the order of the documented properties).
 */
const availabilitySummary = <H extends TProperties, T extends TProperties>(head: H, tail: T, $id: string) =>
  Type.Object(
    {
      runtime_id: Type.String(),
      ...head,
      status: ref(AvailabilityStatus),
      ...tail,
      capabilities: ref(RuntimeCapabilities),
      diagnostics: Diagnostics,
    },
    { $id },
  )

/** One registered runtime (adapter). */
export const RuntimeSummary = availabilitySummary(
  { label: Type.String(), kind: Type.String({ description: 'embedded | process | local | an embedding app’s own kind' }) },
  { identity_authority: Type.Literal('registry_projection'), host_ids: Type.Array(Type.String()) },
  'WorkerRuntimeSummary',
)
export type RuntimeSummary = Static<typeof RuntimeSummary>

/** One host of a runtime (where its workers live). */
export const HostSummary = availabilitySummary(
  { host_id: Type.String(), label: Type.String(), kind: Type.String() },
  { observed_at: Type.String({ format: 'date-time' }) },
  'WorkerHostSummary',
)
export type HostSummary = Static<typeof HostSummary>

/** What a single worker accepts right now. */
export const WorkerCapabilities = Type.Object(
  {
    can_accept_input: Type.Boolean(),
    can_stop: Type.Boolean(),
    can_stream_events: Type.Boolean(),
    can_read_transcript: Type.Boolean(),
  },
  { $id: 'WorkerCapabilities' },
)
export type WorkerCapabilities = Static<typeof WorkerCapabilities>

/** A worker as the registry projects it. */
export const WorkerSummary = Type.Object(
  {
    runtime_id: Type.String(),
    worker_id: Type.String(),
    host_id: Type.String(),
    label: Type.String(),
    role: Nullable(Type.String()),
    profile: Nullable(Type.String()),
    workspace: Type.Object({ visibility: Type.String(), identity: Type.String() }),
    status: Type.String({ description: 'running | stopped | cancelled | exited | active | metadata_only …' }),
    exit_code: Type.Optional(Nullable(Type.Integer())),
    created_at: Nullable(Type.String({ format: 'date-time' })),
    implementation: Type.Object({ kind: Type.String(), display_hint: Type.String() }),
    capabilities: ref(WorkerCapabilities),
    diagnostics: Diagnostics,
  },
  { $id: 'WorkerSummary' },
)
export type WorkerSummary = Static<typeof WorkerSummary>

/** A `{ items, diagnostics }` list reply of `item`s (each a `$ref`). */
const listOf = <T extends TSchema>(item: T, $id: string) =>
  Type.Object({ items: Type.Array(ref(item)), diagnostics: Diagnostics }, { $id })

export const RuntimeList = listOf(RuntimeSummary, 'WorkerRuntimeList')
export type RuntimeList = Static<typeof RuntimeList>
export const HostList = listOf(HostSummary, 'WorkerHostList')
export type HostList = Static<typeof HostList>
export const WorkerList = listOf(WorkerSummary, 'WorkerList')
export type WorkerList = Static<typeof WorkerList>

/** Outcome of an operation: `accepted` (done), `rejected` (refused, nothing changed), `unsupported` (runtime cannot), `unavailable` (runtime down). */
export const OperationState = Literals(['accepted', 'rejected', 'unsupported', 'unavailable'], { $id: 'WorkerOperationState' })
export type OperationState = Static<typeof OperationState>

/** Ticket roles a `ticket_role` spawn intent may name. */
export const TicketRole = Literals(['intake', 'orchestrator', 'coder', 'reviewer'])
export type TicketRole = Static<typeof TicketRole>

/**
 * Why a worker is spawned; the runtime resolves role and profile from it.
 * (Union branches carry no `additionalProperties: false`: Fastify's Ajv would strip a later branch's fields while trying an earlier one.)
 */
export const SpawnIntent = Type.Union(
  [
    Type.Object({ kind: Type.Literal('workspace_companion') }),
    Type.Object({ kind: Type.Literal('workspace_orchestrator') }),
    Type.Object(
      {
        kind: Type.Literal('ticket_role'),
        ticket_id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
        role: TicketRole,
      },
    ),
  ],
  { $id: 'WorkerSpawnIntent' },
)
export type SpawnIntent = Static<typeof SpawnIntent>

/**
 * What the `process` runtime starts, handed to the process bridge (which resolves the executable,
 * sandboxes the environment and keeps `cwd` inside the workspace root). `code` is inline source.
 */
export const ProcessLaunch = Type.Object(
  {
    type: Type.Union(ProcessType.anyOf, { description: 'a process-bridge kind: node | python | shell | workerd' }),
    code: Type.Optional(Type.String({ maxLength: 1_048_576 })),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 65_536 }), { maxItems: 64 })),
    cwd: Type.Optional(Type.String({ maxLength: 1024, description: 'relative to the workspace root' })),
  },
  { $id: 'WorkerProcessLaunch', additionalProperties: false },
)
export type ProcessLaunch = Static<typeof ProcessLaunch>

/** POST /runtimes/:runtimeId/workers body. */
export const SpawnRequest = Type.Object(
  {
    intent: ref(SpawnIntent),
    requested_worker_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    acceptance: Type.Optional(
      Type.Union(
        [
          Type.Object({ kind: Type.Literal('created') }),
          Type.Object({ kind: Type.Literal('socket_ready') }),
          Type.Object({
            kind: Type.Literal('run_accepted'),
            expected_segments: Type.Integer({ minimum: 0, maximum: 1_000_000, description: 'run segments the caller expects (seed 003)' }),
          }),
        ],
        { description: 'when the spawn counts as done: created (default), socket_ready (no built-in runtime has a socket: rejected), or run_accepted (seed 003)' },
      ),
    ),
    process: Type.Optional(ref(ProcessLaunch)),
  },
  { $id: 'WorkerSpawnRequest', additionalProperties: false },
)
export type SpawnRequest = Static<typeof SpawnRequest>

/** Reply to a spawn: 201 accepted, 409 rejected or unsupported, 503 unavailable. */
export const SpawnResult = Type.Object(
  {
    state: ref(OperationState),
    worker: Type.Optional(ref(WorkerSummary)),
    acceptance_evidence: Type.Array(Type.Object({ kind: Type.String(), detail: Type.String() })),
    diagnostics: Diagnostics,
  },
  { $id: 'WorkerSpawnResult' },
)
export type SpawnResult = Static<typeof SpawnResult>

/** POST …/stop body: `graceful` (TERM / stopped) or `force` (KILL / cancelled). */
export const StopRequest = Type.Object(
  { mode: Type.Optional(Type.Union([Type.Literal('graceful'), Type.Literal('force')], { default: 'graceful' })) },
  { $id: 'WorkerStopRequest', additionalProperties: false },
)
export type StopRequest = Static<typeof StopRequest>
export type StopMode = 'graceful' | 'force'

/** Reply to a stop: 200 accepted, 409 rejected or unsupported, 503 unavailable. */
export const StopResult = Type.Object(
  { state: ref(OperationState), worker: Type.Optional(ref(WorkerSummary)), diagnostics: Diagnostics },
  { $id: 'WorkerStopResult' },
)
export type StopResult = Static<typeof StopResult>

/** POST …/input body. */
export const InputRequest = Type.Object(
  {
    kind: Type.Optional(Type.Union([Type.Literal('user'), Type.Literal('system')], { default: 'user' })),
    content: Type.String({ maxLength: MAX_INPUT_CHARS }),
  },
  { $id: 'WorkerInputRequest', additionalProperties: false },
)
export type InputRequest = Static<typeof InputRequest>
export type InputKind = 'user' | 'system'

/** Reply to an input: 200 accepted (with the transcript sequence and event id), else 409 (rejected, unsupported) / 503. */
export const InputResult = Type.Object(
  {
    state: ref(OperationState),
    runtime_id: Type.String(),
    worker_id: Type.String(),
    transcript_sequence: Type.Optional(Type.Integer()),
    event_id: Type.Optional(Type.Integer()),
    diagnostics: Diagnostics,
  },
  { $id: 'WorkerInputResult' },
)
export type InputResult = Static<typeof InputResult>

/** One transcript entry. `sequence` starts at 1 per worker; `event_id` orders events across a runtime. */
export const TranscriptItem = Type.Object(
  {
    sequence: Type.Integer({ minimum: 1 }),
    role: Type.String({ description: 'user | system | stdout | stderr' }),
    content: Type.String(),
    event_id: Type.Integer({ minimum: 1 }),
    at: Type.String({ format: 'date-time' }),
  },
  { $id: 'WorkerTranscriptItem' },
)
export type TranscriptItem = Static<typeof TranscriptItem>

/**
 * A page of a worker's transcript. `start` is a 0-based position among all items ever appended
 * (item `sequence` = position + 1); `first_start` is the oldest position still retained (older items
 * were dropped by the per-worker bound); `next_start` is null when there is nothing after this page.
 */
export const TranscriptPage = Type.Object(
  {
    state: ref(OperationState),
    runtime_id: Type.String(),
    worker_id: Type.String(),
    start: Type.Integer({ minimum: 0 }),
    limit: Type.Integer({ minimum: 0 }),
    total_items: Type.Integer({ minimum: 0 }),
    first_start: Type.Integer({ minimum: 0 }),
    next_start: Nullable(Type.Integer({ minimum: 0 })),
    items: Type.Array(ref(TranscriptItem)),
    diagnostics: Diagnostics,
  },
  { $id: 'WorkerTranscriptPage' },
)
export type TranscriptPage = Static<typeof TranscriptPage>

/** Server → client messages on `GET …/workers/:workerId/events` (WebSocket, JSON text frames). */
export const WorkerEventMessage = Type.Union(
  [
    Type.Object({
      type: Type.Literal('CONNECTED'),
      runtime_id: Type.String(),
      worker_id: Type.String(),
      status: Type.String(),
      total_items: Type.Integer(),
    }, { title: 'WorkerConnectedMessage' }),
    Type.Object({ type: Type.Literal('ITEM'), item: ref(TranscriptItem) }, { title: 'WorkerItemMessage' }),
    Type.Object({
      type: Type.Literal('STATUS'),
      status: Type.String(),
      exit_code: Type.Optional(Nullable(Type.Integer())),
    }, { title: 'WorkerStatusMessage' }),
    Type.Object({ type: Type.Literal('ERROR'), code: Type.String(), message: Type.String() }, { title: 'WorkerErrorMessage' }),
  ],
  { $id: 'WorkerEventMessage' },
)
export type WorkerEventMessage = Static<typeof WorkerEventMessage>

/** Route params. Ids are checked by the registry (400 INVALID_IDENTIFIER), not by the schema, so the code is typed. */
export const RuntimeParams = Type.Object({ runtimeId: Type.String({ description: `opaque id, ${ID_PATTERN}` }) })
export type RuntimeParams = Static<typeof RuntimeParams>
export const WorkerParams = Type.Object({
  runtimeId: Type.String({ description: `opaque id, ${ID_PATTERN}` }),
  workerId: Type.String({ description: `opaque id, ${ID_PATTERN}` }),
})
export type WorkerParams = Static<typeof WorkerParams>

/** `?limit=` on lists (default and max come from the plugin options; over the max → 400 LIMIT_TOO_LARGE). */
export const ListQuery = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 0 })) })
export type ListQuery = Static<typeof ListQuery>
/** `?start=&limit=` on transcript reads. */
export const TranscriptQuery = Type.Object({
  start: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 0 })),
})
export type TranscriptQuery = Static<typeof TranscriptQuery>
/** `?start=` on the events socket: replay retained items from this position before live ones. */
export const EventsQuery = Type.Object({
  start: Type.Optional(Type.Integer({ minimum: 0 })),
  token: Type.Optional(Type.String({ description: 'bearer token for the upgrade when auth is on' })),
})
export type EventsQuery = Static<typeof EventsQuery>

/** Every schema with an `$id`, for `fastify.addSchema`. */
export const workerSchemas = [
  WorkerDiagnostic,
  RuntimeCapabilities,
  AvailabilityStatus,
  RuntimeSummary,
  HostSummary,
  WorkerCapabilities,
  WorkerSummary,
  RuntimeList,
  HostList,
  WorkerList,
  OperationState,
  SpawnIntent,
  ProcessLaunch,
  SpawnRequest,
  SpawnResult,
  StopRequest,
  StopResult,
  InputRequest,
  InputResult,
  TranscriptItem,
  TranscriptPage,
  WorkerEventMessage,
]
