/**
 * Payloads of the kernels API: Jupyter Server's REST shapes (services/api/api.yaml) plus the seed's
 * extensions (specs/kernels.md section 4). Extra fields on requests are ignored, as Jupyter does.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Literals, Nullable } from './common.js'

const Iso = (description: string) => Type.String({ description: `${description} (ISO 8601, UTC)` })

/** Jupyter's Kernel model plus `created`, `language`, `mode`. */
export const Kernel = Type.Object(
  {
    id: Type.String({ description: 'kernel UUID' }),
    name: Type.String({ description: 'kernelspec name' }),
    last_activity: Iso('last activity (Jupyter Server activity rules)'),
    execution_state: Literals(['starting', 'idle', 'busy', 'restarting', 'dead']),
    connections: Type.Integer({ minimum: 0, description: 'open WebSocket connections' }),
    reason: Type.Optional(Type.String({ description: 'why it is dead; while alive, why it last restarted on its own when the monitor caused it (`heartbeat: …`, `memory: …`)' })),
    created: Iso('start time'),
    language: Type.String(),
    mode: Type.String({ description: 'process (own OS process) or worker (Pyodide in a worker thread of a kernel process)' }),
  },
  { $id: 'Kernel' },
)
export type Kernel = Static<typeof Kernel>

export const KernelList = Type.Array(Kernel, { $id: 'KernelList' })

/** POST /api/kernels. `kernel_id` is refused (400); `mode` + `lang` are the seed's kernel types. */
export const StartKernelRequest = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, description: 'kernelspec (default: the server default)' })),
    path: Type.Optional(Type.String({ description: 'working directory, relative to the workspace root' })),
    env: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'extra environment; keys must match kernels.clientEnvAllowList' })),
    mode: Type.Optional(Type.String({ description: 'seed kernel mode: worker | process (main_thread is refused)' })),
    lang: Type.Optional(Type.String({ description: 'seed kernel language: python | javascript | typescript' })),
    kernel_id: Type.Optional(Type.Unknown({ description: 'not accepted: ids are the server\'s' })),
    pool: Type.Optional(Type.Boolean({ description: 'false: never take a prespawned kernel' })),
    inactivityTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, description: 'cull after this long idle (0 = never), ms' })),
    maxExecutionMs: Type.Optional(Type.Integer({ minimum: 0, description: 'busy limit of one request (0 = none), ms' })),
  },
  { $id: 'StartKernelRequest' },
)
export type StartKernelRequest = Static<typeof StartKernelRequest>

export const KernelParams = Type.Object({ id: Type.String() })
export type KernelParams = Static<typeof KernelParams>

/** One kernelspec, Jupyter's shape; `available`/`reason` appear with `?all=true`. */
export const KernelSpecEntry = Type.Object({
  name: Type.String(),
  spec: Type.Object({
    argv: Type.Array(Type.String()),
    display_name: Type.String(),
    language: Type.String(),
    interrupt_mode: Type.String(),
    env: Type.Record(Type.String(), Type.String()),
    metadata: Type.Object({ wk: Type.Object({ mode: Type.String(), sandbox: Type.String() }) }),
  }),
  resources: Type.Record(Type.String(), Type.String()),
  available: Type.Optional(Type.Boolean()),
  reason: Type.Optional(Type.String()),
})

export const KernelSpecs = Type.Object(
  { default: Type.String(), kernelspecs: Type.Record(Type.String(), KernelSpecEntry) },
  { $id: 'KernelSpecs' },
)
export type KernelSpecs = Static<typeof KernelSpecs>

export const KernelSpecsQuery = Type.Object({ all: Type.Optional(Type.Boolean({ description: 'also list unavailable kernelspecs, with the reason' })) })

/** GET /api (Jupyter's `/api/`). */
export const ApiVersion = Type.Object({ version: Type.String() }, { $id: 'ApiVersion' })

/** GET /api/status: the caller's namespace. */
export const ApiStatus = Type.Object(
  { started: Iso('server start'), last_activity: Iso('latest kernel activity'), connections: Type.Integer(), kernels: Type.Integer() },
  { $id: 'ApiStatus' },
)
export type ApiStatus = Static<typeof ApiStatus>

/** Jupyter's Session model. */
export const Session = Type.Object(
  {
    id: Type.String(),
    path: Type.String(),
    name: Type.String(),
    type: Type.String(),
    kernel: Kernel,
    notebook: Type.Object({ path: Type.String(), name: Type.String() }),
  },
  { $id: 'Session' },
)
export type Session = Static<typeof Session>

export const SessionList = Type.Array(Session, { $id: 'SessionList' })

const KernelRef = Type.Object({
  id: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
})

/** POST /api/sessions (the same `path` returns the existing session). */
export const CreateSessionRequest = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    name: Type.Optional(Type.String()),
    type: Type.Optional(Type.String()),
    kernel: Type.Optional(KernelRef),
  },
  { $id: 'CreateSessionRequest' },
)
export type CreateSessionRequest = Static<typeof CreateSessionRequest>

/** PATCH /api/sessions/:id: rename, retype, or bind another kernel (`{id}` existing, `{name}` new). */
export const PatchSessionRequest = Type.Object(
  { path: Type.Optional(Type.String({ minLength: 1 })), name: Type.Optional(Type.String()), type: Type.Optional(Type.String()), kernel: Type.Optional(KernelRef) },
  { $id: 'PatchSessionRequest' },
)
export type PatchSessionRequest = Static<typeof PatchSessionRequest>

export const SessionParams = Type.Object({ id: Type.String() })

/** One nbformat v4 output. */
export const NbOutput = Type.Object(
  {
    output_type: Literals(['stream', 'execute_result', 'display_data', 'error']),
    name: Type.Optional(Type.String()),
    text: Type.Optional(Type.String()),
    execution_count: Type.Optional(Nullable(Type.Integer())),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    ename: Type.Optional(Type.String()),
    evalue: Type.Optional(Type.String()),
    traceback: Type.Optional(Type.Array(Type.String())),
  },
  { $id: 'NbOutput' },
)

/** A server-side execution record (outlives the client; head + tail kept past executionOutputMaxBytes). */
export const ExecutionRecord = Type.Object(
  {
    execution_id: Type.String({ description: 'msg_id of the execute_request' }),
    seq: Type.Integer({ minimum: 1, description: 'position among the kernel\'s executions (for ?since=)' }),
    kernel_id: Type.String(),
    code: Type.String(),
    status: Literals(['running', 'ok', 'error', 'aborted']),
    execution_count: Nullable(Type.Integer()),
    outputs: Type.Array(NbOutput),
    error: Type.Optional(Type.Object({ ename: Type.String(), evalue: Type.String(), traceback: Type.Array(Type.String()) })),
    truncated: Type.Boolean(),
    started: Type.String(),
    finished: Type.Optional(Type.String()),
    durationMs: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { $id: 'ExecutionRecord' },
)

export const ExecutionList = Type.Array(ExecutionRecord, { $id: 'ExecutionList' })

/** POST /api/kernels/:id/execute and /executions. `timeoutMs` ≤ kernels.maxExecuteWaitMs. */
export const ExecuteRequest = Type.Object(
  {
    code: Type.String({ description: 'source to run (≤ kernels.maxCodeBytes bytes)' }),
    silent: Type.Optional(Type.Boolean()),
    storeHistory: Type.Optional(Type.Boolean()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, description: 'how long /execute waits before answering 202 (default and cap: maxExecuteWaitMs), ms' })),
    interruptOnTimeout: Type.Optional(Type.Boolean({ description: 'at timeoutMs interrupt the kernel and answer with the interrupted record' })),
  },
  { $id: 'ExecuteRequest' },
)
export type ExecuteRequest = Static<typeof ExecuteRequest>

export const ExecutionAccepted = Type.Object({ execution_id: Type.String(), status: Type.Literal('running') }, { $id: 'ExecutionAccepted' })

export const ExecutionParams = Type.Object({ id: Type.String(), eid: Type.String() })
export const ExecutionListQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'only records with a greater seq' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
})
export const ExecutionWaitQuery = Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: 30_000, description: 'long-poll until it finishes, ms (≤ 30 s)' })) })

/** GET /api/kernels/:id/info. */
export const KernelInfo = Type.Composite([
  Kernel,
  Type.Object({
    usage: Type.Optional(Type.Object({ rssBytes: Type.Integer(), cpuMs: Type.Number() })),
    executions: Type.Object({ ongoing: Type.Integer(), longestMs: Type.Integer(), stuck: Type.Boolean({ description: 'busy past maxExecutionMs' }) }),
    restarts: Type.Integer(),
    culls_at: Nullable(Type.String(), { description: 'when the culler would take it as things stand (null: never)' }),
    settings: Type.Object({ inactivityTimeoutMs: Type.Optional(Type.Integer()), maxExecutionMs: Type.Optional(Type.Integer()) }),
  }),
], { $id: 'KernelInfo' })

export const PingReply = Type.Object({ last_activity: Type.String(), culls_at: Nullable(Type.String()) }, { $id: 'PingReply' })

/** PATCH /api/kernels/:id. */
export const PatchKernelRequest = Type.Object(
  { inactivityTimeoutMs: Type.Optional(Type.Integer({ minimum: 0 })), maxExecutionMs: Type.Optional(Type.Integer({ minimum: 0 })) },
  { $id: 'PatchKernelRequest', additionalProperties: false },
)

export const PoolStatus = Type.Record(Type.String(), Type.Object({ target: Type.Integer(), ready: Type.Integer(), starting: Type.Integer() }), { $id: 'PoolStatus' })
