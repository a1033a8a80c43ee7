import { Type, type Static } from '@sinclair/typebox'
import { Nullable } from './common.js'

/** Kinds of process the bridge can run. `shell` is bash in a PTY; the others use pipes. */
export const ProcessType = Type.Union(
  [Type.Literal('node'), Type.Literal('python'), Type.Literal('shell'), Type.Literal('workerd')],
  { $id: 'ProcessType', description: 'node (inline code or script, heap-limited), python (python3 -u), shell (bash in a PTY), workerd (one ES-module worker on a loopback port)' },
)
export type ProcessType = Static<typeof ProcessType>

/** Signals a client may send. Anything else is rejected with 400 `INVALID_SIGNAL`. */
export const ProcessSignal = Type.Union(
  ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGSTOP', 'SIGCONT', 'SIGWINCH'].map((s) => Type.Literal(s)),
  { $id: 'ProcessSignal' },
)
export type ProcessSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2' | 'SIGSTOP' | 'SIGCONT' | 'SIGWINCH'

const Dimension = (what: string) => Type.Integer({ minimum: 1, maximum: 1000, description: `terminal ${what}` })

/**
 * Body of POST /processes and argument of `ProcessManager.spawn`.
 * Per type: `code` is inline source (node -e, python -c, bash -c, or the workerd module);
 * `script` a file path relative to `cwd` that must stay inside the workspace root.
 * `args` are passed as argv entries, never through a shell (for node, always after `--`).
 * Every process runs in a bubblewrap sandbox: the workspace is `/workspace` inside it.
 */
export const SpawnRequest = Type.Object(
  {
    type: ProcessType,
    code: Type.Optional(Type.String({ maxLength: 1_048_576, description: 'inline source' })),
    script: Type.Optional(Type.String({ minLength: 1, maxLength: 4096, description: 'script path relative to cwd, inside the workspace' })),
    args: Type.Optional(Type.Array(Type.String({ maxLength: 65_536 }), { maxItems: 256, description: 'argv entries (no shell interpolation)' })),
    cwd: Type.Optional(Type.String({ maxLength: 4096, description: 'working directory relative to the workspace root (default ".")' })),
    env: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ maxLength: 32_768 }), {
        description: 'extra variables; keys outside the allow-list are dropped (reported in droppedEnv)',
      }),
    ),
    network: Type.Optional(
      Type.Boolean({
        description: 'node, python, shell: share the host network (true) or run in a new network namespace with no interfaces, not even loopback (false, the default); workerd always shares it',
      }),
    ),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 0, description: 'kill after this many ms (0 = no limit)' })),
    idleTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, description: 'kill after this many ms with no attached client and no input (0 = never)' })),
    cols: Type.Optional(Dimension('columns (shell only, default 80)')),
    rows: Type.Optional(Dimension('rows (shell only, default 24)')),
    heapMb: Type.Optional(Type.Integer({ minimum: 16, maximum: 16_384, description: 'node only: --max-old-space-size in MiB' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65_535, description: 'workerd only: loopback port (0 or absent = pick a free one)' })),
    compatibilityDate: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'workerd only' })),
  },
  { $id: 'SpawnRequest', additionalProperties: false },
)
export type SpawnRequest = Static<typeof SpawnRequest>

/** Why a process ended: on its own, or which kernel action ended it. */
export const ExitReason = Type.Union(
  [Type.Literal('exited'), Type.Literal('killed'), Type.Literal('timeout'), Type.Literal('idle'), Type.Literal('shutdown')],
  { $id: 'ExitReason' },
)
export type ExitReason = Static<typeof ExitReason>

/** How a process ended: exit code or signal name (one of them is null), and why. */
export const ExitInfo = Type.Object(
  {
    code: Nullable(Type.Integer()),
    signal: Nullable(Type.String()),
    reason: ExitReason,
  },
  { $id: 'ExitInfo' },
)
export type ExitInfo = Static<typeof ExitInfo>

/** Status of one process, as returned by every process route and `ProcessManager.get`. */
export const ProcessInfo = Type.Object(
  {
    pid: Type.Integer({ description: 'host process id of the sandbox (bwrap); the program inside has its own PID namespace' }),
    type: ProcessType,
    namespace: Type.String(),
    status: Type.Union([Type.Literal('running'), Type.Literal('exited')]),
    command: Type.Array(Type.String(), { description: 'argv as run (long entries shortened)' }),
    cwd: Type.String({ description: 'relative to the workspace root (inside the sandbox: /workspace/<cwd>)' }),
    tty: Type.Boolean(),
    cols: Type.Optional(Type.Integer()),
    rows: Type.Optional(Type.Integer()),
    startedAt: Type.String({ format: 'date-time' }),
    exitedAt: Type.Optional(Type.String({ format: 'date-time' })),
    exit: Type.Optional(ExitInfo),
    clients: Type.Integer({ description: 'attached listeners (WebSocket clients and in-process subscribers)' }),
    outputBytes: Type.Integer({ description: 'bytes of output produced so far' }),
    bufferedBytes: Type.Integer({ description: 'bytes held in the replay buffer' }),
    timeoutMs: Type.Integer({ description: '0 = none' }),
    idleTimeoutMs: Type.Integer({ description: '0 = never' }),
    foreground: Type.Optional(Type.String({ description: 'shell only: name of the foreground process' })),
    usage: Type.Optional(Type.Object({ cpuMs: Type.Number(), rssBytes: Type.Integer() }, { description: 'running processes, where /proc is available' })),
    url: Type.Optional(Type.String({ description: 'workerd only: http://127.0.0.1:<port>' })),
    droppedEnv: Type.Optional(Type.Array(Type.String(), { description: 'env keys from the request that the allow-list dropped' })),
  },
  { $id: 'ProcessInfo' },
)
export type ProcessInfo = Static<typeof ProcessInfo>

export const ProcessList = Type.Object({ processes: Type.Array(ProcessInfo) }, { title: 'ProcessList' })
export type ProcessList = Static<typeof ProcessList>

export const PidParams = Type.Object({ pid: Type.Integer({ minimum: 1 }) })
export type PidParams = Static<typeof PidParams>

/** Body of POST /processes/:pid/input. `eof` closes stdin afterwards (Ctrl-D for a PTY). */
export const InputRequest = Type.Object(
  {
    data: Type.String({ description: 'bytes to write, in `encoding`' }),
    encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])),
    eof: Type.Optional(Type.Boolean()),
  },
  { title: 'ProcessInputRequest', additionalProperties: false },
)
export type InputRequest = Static<typeof InputRequest>
export const InputReply = Type.Object({ pid: Type.Integer(), bytes: Type.Integer() }, { title: 'ProcessInputReply' })

export const ResizeRequest = Type.Object({ cols: Dimension('columns'), rows: Dimension('rows') }, { title: 'ResizeRequest', additionalProperties: false })
export type ResizeRequest = Static<typeof ResizeRequest>

export const SignalRequest = Type.Object({ signal: ProcessSignal }, { title: 'SignalRequest', additionalProperties: false })
export type SignalRequest = Static<typeof SignalRequest>

export const WsQuery = Type.Object({
  token: Type.Optional(Type.String({ description: 'bearer token for WebSocket upgrades when auth is on' })),
  replay: Type.Optional(Type.Boolean({ default: true, description: 'send buffered output first' })),
  binary: Type.Optional(
    Type.Boolean({
      default: false,
      description: 'send OUTPUT as binary frames: byte 0 = stream (1 stdout, 2 stderr, 3 pty; +0x80 when replayed), then the raw bytes. Other messages stay JSON text frames.',
    }),
  ),
})

const Id = Type.Optional(Type.Union([Type.String({ maxLength: 128 }), Type.Number()], { description: 'echoed in ACK/ERROR' }))

/** Messages a WebSocket client sends on /processes/:pid/ws. */
export const ProcessClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('STDIN'), id: Id, data: Type.String(), encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])), eof: Type.Optional(Type.Boolean()) }, { title: 'StdinMessage' }),
  Type.Object({ type: Type.Literal('RESIZE'), id: Id, cols: Dimension('columns'), rows: Dimension('rows') }, { title: 'ResizeMessage' }),
  Type.Object({ type: Type.Literal('SIGNAL'), id: Id, signal: ProcessSignal }, { title: 'SignalMessage' }),
  Type.Object({ type: Type.Literal('DETACH'), id: Id }, { title: 'DetachMessage' }),
])
export type ProcessClientMessage = Static<typeof ProcessClientMessage>

/** One chunk of output. `stream` is `pty` for terminals; `seq` counts chunks per process from 1. */
export const OutputChunk = Type.Object({
  stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr'), Type.Literal('pty')]),
  data: Type.String(),
  seq: Type.Integer(),
})
export type OutputChunk = Static<typeof OutputChunk>

/**
 * Messages the server sends: ATTACHED once (with `droppedBytes` of output the replay buffer no
 * longer holds), OUTPUT chunks (`replay: true` for buffered ones), ACK per request with an `id`,
 * EXIT once (then the socket closes with 1000), ERROR with a stable code.
 */
export const ProcessServerMessage = Type.Union([
  Type.Object({ type: Type.Literal('ATTACHED'), process: ProcessInfo, droppedBytes: Type.Integer() }, { title: 'AttachedMessage' }),
  Type.Object({ type: Type.Literal('OUTPUT'), stream: OutputChunk.properties.stream, data: Type.String(), seq: Type.Integer(), replay: Type.Optional(Type.Boolean()) }, { title: 'OutputMessage' }),
  Type.Object({ type: Type.Literal('ACK'), id: Id }, { title: 'AckMessage' }),
  Type.Object({ type: Type.Literal('EXIT'), exit: ExitInfo }, { title: 'ExitMessage' }),
  Type.Object({ type: Type.Literal('ERROR'), id: Id, code: Type.String(), message: Type.String() }, { title: 'ProcessErrorMessage' }),
])
export type ProcessServerMessage = Static<typeof ProcessServerMessage>
