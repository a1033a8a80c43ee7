/**
 * Options of the kernels plugin: one TypeBox schema with every default (composed into KernelConfig by
 * config.ts as `kernels`, so `cullIdleTimeoutS` is `WK_KERNELS_CULL_IDLE_TIMEOUT_S`). Names, defaults and
 * anchors follow specs/kernels.md section 5 (Jupyter Server's culler, jupyter_client's restarter, KG's pool).
 */
import { Type, type Static } from '@sinclair/typebox'

const Int = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, description })
/** Longest timer Node can arm: setTimeout / setInterval fire after 1 ms past it. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** A time in ms that arms or bounds a timer. */
const Ms = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, maximum: MAX_TIMER_MS, description })
/** A time in s (Jupyter's unit) that arms a timer. */
const Seconds = (def: number, min: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: Math.floor(MAX_TIMER_MS / 1000), description })
const Bool = (def: boolean, description: string) => Type.Boolean({ default: def, description })
const Names = (def: string[], description: string) => Type.Array(Type.String({ minLength: 1 }), { default: def, description })

/** Every option of `fastify.kernels`. Times in ms unless the name ends in `S` (seconds, Jupyter's unit); sizes in bytes. */
export const KernelsConfig = Type.Object(
  {
    allowed: Names(['python3', 'pyodide', 'javascript', 'typescript'], 'kernelspecs clients may start (of those available)'),
    defaultName: Type.Optional(Type.String({ minLength: 1, description: 'kernelspec used when a request names none (unset: python3 if available, else pyodide)' })),
    maxKernels: Int(16, 1, 'live kernels at once, pooled ones included (one more: 429 TOO_MANY_KERNELS)'),
    maxKernelsPerNamespace: Int(8, 1, 'live kernels of one namespace (one more: 429 NAMESPACE_KERNEL_LIMIT)'),
    startupTimeoutMs: Ms(60_000, 1, 'time for a new kernel to answer kernel_info before 504 KERNEL_START_TIMEOUT, ms'),
    cullIdleTimeoutS: Seconds(3600, 0, 'shut down kernels idle this long (0 = never), s'),
    cullIntervalS: Seconds(300, 1, 'how often the culler looks, s'),
    cullBusy: Bool(false, 'cull kernels that are busy too (by idle time)'),
    cullConnected: Bool(false, 'cull kernels with WebSocket connections too'),
    maxExecutionMs: Ms(0, 0, 'longest a kernel may stay busy on one request before onStall (0 = no limit), ms'),
    onStall: Type.Union([Type.Literal('interrupt'), Type.Literal('restart'), Type.Literal('event')], {
      default: 'interrupt',
      description: 'at maxExecutionMs: interrupt (then restart if still busy after shutdownWaitMs), restart, or only report',
    }),
    poolSize: Int(0, 0, 'prespawned kernels kept ready per preloaded kernelspec (0 = no pool; the standalone server keeps 1)'),
    poolPreload: Names(['python3'], 'kernelspecs with a prespawn pool'),
    poolAutoRefill: Bool(true, 'start a replacement after a pooled kernel is claimed and ready'),
    restartLimit: Int(5, 0, 'crashes within stableStartMs that are restarted before the kernel is dead'),
    stableStartMs: Ms(10_000, 0, 'a kernel that lived this long after (re)start counts as stable (crash count resets), ms'),
    timeToDeadMs: Ms(3000, 100, "heartbeat: the kernel's hb channel is pinged this often; no echo by the next ping restarts it like a crash (jupyter_client time_to_dead), ms"),
    shutdownWaitMs: Ms(5000, 0, 'time a kernel gets to exit after shutdown_request before SIGTERM/SIGKILL, ms'),
    bufferOfflineMessages: Bool(true, 'keep messages for a WebSocket session that went away and replay them when it reconnects'),
    offlineBufferBytes: Int(1024 * 1024, 0, 'bytes buffered per absent session (oldest dropped first)'),
    iopubMsgRateLimit: Int(1000, 0, 'iopub messages per second per WebSocket before dropping (0 = off)'),
    iopubDataRateLimit: Int(1_000_000, 0, 'iopub bytes per second per WebSocket before dropping (0 = off)'),
    rateLimitWindowS: Seconds(3, 1, 'window the iopub rates are averaged over, s'),
    wsMaxPayloadBytes: Int(10 * 1024 * 1024, 1, "largest frame a kernel channels WebSocket accepts, bytes (bigger: close 1009); Jupyter Server's is tornado's websocket_max_message_size, 10 MiB"),
    allowedMessageTypes: Names([], 'shell/control/stdin message types clients may send (empty = all)'),
    clientEnvAllowList: Names(['KERNEL_*'], 'env keys a client may pass when starting a kernel; `PREFIX_*` matches a prefix'),
    executionsKept: Int(100, 1, 'execution records kept per kernel (oldest dropped first)'),
    executionOutputMaxBytes: Int(1024 * 1024, 1, 'output kept per execution record (head + tail beyond it)'),
    maxCodeBytes: Int(1024 * 1024, 1, 'largest code of a REST execute (bigger: 413 CODE_TOO_LARGE)'),
    maxQueuedExecutions: Int(64, 1, 'REST executions waiting on one kernel (more: 429 EXECUTION_QUEUE_FULL)'),
    maxExecuteWaitMs: Ms(600_000, 1, 'longest timeoutMs a REST execute may wait, ms'),
    nodeHeapMb: Int(1024, 16, 'heap of our Node kernels (javascript, typescript, pyodide), MiB'),
    maxRssBytes: Int(0, 0, "resident memory of a kernel's sandbox above which it is restarted with reason memory (0 = off; checked every timeToDeadMs), bytes"),
    python: Type.String({ default: 'python3', minLength: 1, description: "interpreter with ipykernel; `python3` = the project's .venv when present, else PATH" }),
  },
  { default: {}, additionalProperties: false },
)

export type KernelsConfig = Static<typeof KernelsConfig>
