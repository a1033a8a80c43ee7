/**
 * Public TypeScript types of the wasm-runtime: the sandbox that runs panel handlers
 * (QuickJS compiled to WebAssembly, run by wasmtime through an N-API addon).
 * Behaviour follows ../shared/DESIGN.md ("The sandbox") and seed 000 (executor).
 */
import type { RuntimeOptions } from './options.js'
import type { PanelState } from './state.js'

/**
 * Error codes an execution can end with (`ExecutionResult.error.code`). `CANCELLED` is the executor's:
 * the run's signal aborted while it waited (its panel deleted, the kernel shutting down).
 */
export type ExecutionErrorCode =
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'MEMORY_LIMIT'
  | 'PERMISSION_DENIED'
  | 'EXECUTION_ERROR'
  | 'COMPILATION_ERROR'
  | 'INVALID_HANDLER'
  | 'RESOURCE_LIMIT'
  | 'INTERNAL_ERROR'

/**
 * Codes of `RuntimeError`, thrown (never returned) when a call to the runtime itself is wrong:
 * `INVALID_INPUT` (bad source, bytecode or context shape), `UNKNOWN_EXECUTION` (resume/cancel of
 * an id that is not suspended), `CAPACITY_EXCEEDED` (maxInstances executions live; behind the executor's gate: its wait queue full),
 * `SHUTDOWN` (the runtime was shut down), `COMPILATION_ERROR` from `precompile`, and
 * `INTERNAL_ERROR` (the addon is not built, or failed in a way that is a bug).
 */
export type RuntimeErrorCode =
  | 'INTERNAL_ERROR'
  | 'INVALID_INPUT'
  | 'UNKNOWN_EXECUTION'
  | 'CAPACITY_EXCEEDED'
  | 'SHUTDOWN'
  | 'COMPILATION_ERROR'

/**
 * Options of a runtime: the `RuntimeOptions` TypeBox schema (options.ts), which documents each
 * field and holds its default. Sizes in bytes, times in ms; every field is optional.
 */
export type RuntimeConfig = Partial<RuntimeOptions>

/**
 * What a handler runs against. `state` is the panel's committed state, read lazily by the
 * handler: a `PanelState` (state.ts), or a plain object, which is copied into a private
 * `PanelState` for this one execution (and costs its size in serialization).
 */
export interface ExecutionContext {
  panelId: string
  handlerName: string
  state: PanelState | Record<string, unknown>
  args: unknown
  scope?: Record<string, unknown>
  /** Capability tokens, e.g. `state:write:count`, `ext:http`, `*`. */
  capabilities: string[]
  /** Extensions visible as `$ext.<name>.<method>`. */
  extensions?: Record<string, string[]>
}

export interface StateMutation {
  key: string
  value?: unknown
  operation: 'set' | 'delete'
}

export interface EmittedEvent {
  name: string
  payload: unknown
}

export interface ViewCommand {
  type: 'setFilter' | 'scrollTo' | 'focus' | 'custom'
  viewId?: string
  payload?: unknown
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error'
  message: string
  /** ms since the Unix epoch */
  timestamp: number
}

/** An extension call a suspended handler is waiting for. */
export interface PendingCall {
  callId: number
  extension: string
  method: string
  args: unknown[]
}

export interface ExecutionError {
  code: ExecutionErrorCode
  message: string
  /** 1-based line in the handler's own source, when known */
  line?: number
  /** 1-based column in the handler's own source, when known */
  column?: number
  stack?: string
}

export interface ExecutionMetrics {
  /** wall time of this segment, µs */
  durationUs: number
  /** fuel consumed (≈ wasm instructions) */
  instructionCount: number
  /** peak linear memory of the instance, bytes */
  memoryPeakBytes: number
  hostCalls: number
  /** whether compiled bytecode came from the cache */
  cacheHit: boolean
}

/**
 * Outcome of `execute` or `resume`. Mutations, events, view commands and logs are those of this
 * segment only. When `status` is `suspended`, `executionId` names it for `resume`/`cancel`.
 */
export interface ExecutionResult {
  status: 'success' | 'error' | 'suspended'
  executionId?: string
  returnValue?: unknown
  stateMutations: StateMutation[]
  events: EmittedEvent[]
  viewCommands: ViewCommand[]
  logs: LogEntry[]
  pendingCalls: PendingCall[]
  error?: ExecutionError
  metrics: ExecutionMetrics
}

/** A handler compiled to QuickJS bytecode. `cacheKey` is the SHA-256 (hex) of the source. */
export interface CompiledHandler {
  bytecode: Buffer
  cacheKey: string
  /** µs spent compiling (0 on a cache hit) */
  compileTimeUs: number
  cacheHit: boolean
}

/** The settlement of one pending call, given to `resume`. */
export type CallResult =
  | { callId: number; ok: true; value?: unknown }
  | { callId: number; ok: false; error: { message: string; code?: string } }

/**
 * Where `WasmRuntime.execute` runs a first segment: `inline` on the calling (event-loop) thread
 * for at most `inlineSliceMs`, then from the start on a worker thread if it has not finished;
 * `pool` straight on a worker thread (the caller saw one idle: `WasmRuntime.idleThreads`).
 */
export type Placement = 'inline' | 'pool'

export interface RuntimeStats {
  executions: number
  /** first segments by where they ran to their end (an inline slice that ran out counts as `pool`) */
  byPlacement: Record<Placement, number>
  suspended: number
  /** calls running on a worker thread now */
  running: number
  /** calls waiting for an instance slot or for a worker thread */
  queued: number
  /** worker threads */
  threads: number
  cacheEntries: number
  cacheHits: number
  cacheMisses: number
  byStatus: Record<'success' | 'error' | 'suspended', number>
}
