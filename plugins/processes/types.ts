import type { ExitInfo, OutputChunk, ProcessInfo, ProcessType } from '../../schemas/processes.js'

export type { ExitInfo, ExitReason, OutputChunk, ProcessInfo, ProcessSignal, ProcessType, SpawnRequest } from '../../schemas/processes.js'

/** Options of the processes plugin (and of `new ProcessManager`). Times in ms, sizes in bytes. Config names: README "Configuration". */
export interface ProcessesOptions {
  /** Directory every `cwd` and `script` must stay inside (symlinks resolved). Default `process.cwd()`. */
  workspaceRoot?: string
  /** Live processes allowed at once; one more spawn answers 429 `TOO_MANY_PROCESSES`. Default 32. */
  maxProcesses?: number
  /**
   * Live processes one namespace may hold; one more answers 429 `NAMESPACE_QUOTA_EXCEEDED`, so one
   * namespace cannot take every slot. Default a quarter of `maxProcesses` (at least 1).
   */
  maxProcessesPerNamespace?: number
  /** stdin bytes written but not yet read by the child; a write past it answers 429 `INPUT_BACKLOG_FULL`. Default 1 MiB. */
  maxPendingInputBytes?: number
  /** RLIMIT_AS of each sandboxed process, bytes (workerd gets at least 16 GiB: V8 reserves it). Default 4 GiB. */
  addressSpaceBytes?: number
  /** RLIMIT_NOFILE of each sandboxed process. Default 1024. */
  maxOpenFiles?: number
  /** Tasks (processes + threads) of one sandbox: a pids cgroup where the host has one, and RLIMIT_NPROC. Default 256. */
  maxTasks?: number
  /** Replay buffer per process, in bytes (oldest output is dropped first). Default 1 MiB. */
  outputBufferBytes?: number
  /** Largest single stdin write, in bytes; larger → 413 `INPUT_TOO_LARGE`. Default 64 KiB. */
  maxInputBytes?: number
  /** Timeout for spawns that do not give `timeoutMs`; 0 = none. Default 0. */
  defaultTimeoutMs?: number
  /** Kill a process after this long with no attached client and no input; 0 = never. Default 10 min. */
  idleTimeoutMs?: number
  /** Environment keys a child may receive (from the kernel's env or the request). `PREFIX_*` matches a prefix. */
  envAllowList?: string[]
  /** Time between SIGTERM and SIGKILL when a process is killed or the app closes. Default 2000. */
  killGraceMs?: number
  /** Exited processes kept for inspection (oldest forgotten first). Default 64. */
  retainExited?: number
  /** Heap limit for node processes that do not give `heapMb`, in MiB. Default 512. */
  nodeHeapMb?: number
  /**
   * Longest one slow client (a WebSocket that stopped reading) may hold a process's output paused, ms; then its
   * pause is released (the process goes on for the other clients) and the client is dropped. Default
   * `DEFAULT_MAX_OUTPUT_PAUSE_MS`.
   */
  maxOutputPauseMs?: number
}

/** Default of `maxOutputPauseMs` (as the workers' events subscribers' `maxEventsPauseMs`), ms. */
export const DEFAULT_MAX_OUTPUT_PAUSE_MS = 30_000

/** PATH and HOME are always the sandbox's own (see workspace.ts); listing them here changes nothing. */
export const DEFAULT_ENV_ALLOW_LIST: readonly string[] = ['LANG', 'LANGUAGE', 'LC_*', 'TERM', 'TZ', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR']

/** `ProcessesOptions` with every default filled in. */
export type ResolvedProcessesOptions = Required<ProcessesOptions>

/**
 * Output chunk delivered to listeners; `replay` marks chunks from the buffer at attach time.
 * `bytes` are the raw UTF-8 bytes (chunks never split a character); `data` is them decoded, on first read.
 */
export interface ProcessOutputEvent extends OutputChunk {
  type: 'output'
  pid: number
  bytes: Buffer
  replay?: boolean
}

/** Sent once, after the last output chunk, when the process has ended and been reaped. */
export interface ProcessExitEvent {
  type: 'exit'
  pid: number
  exit: ExitInfo
}

export type ProcessEvent = ProcessOutputEvent | ProcessExitEvent

/** Receives a process's events. Exceptions it throws are logged and otherwise ignored. */
export type ProcessListener = (event: ProcessEvent) => void

/** Manager-wide events (`manager.on(...)`), for every namespace. */
export interface ProcessManagerEvents {
  spawn: [info: ProcessInfo]
  output: [event: ProcessOutputEvent]
  exit: [event: ProcessExitEvent, info: ProcessInfo]
}

/**
 * Caller scope: resources of another namespace answer 404. Default namespace is `'default'`.
 * `owner` names an internal owner (e.g. `kernels`): its processes are only found with the same owner.
 */
export interface Scope {
  namespace?: string
  owner?: string
}

/**
 * A process another plugin starts for itself (e.g. a code kernel): explicit argv and environment
 * (not filtered by `envAllowList`; PATH is still the sandbox's), an absolute `cwd` inside the
 * workspace, no timeout, no idle reaping, in the same bubblewrap sandbox as public spawns. Hidden
 * from everyone but `owner` (404 elsewhere, absent from lists), counted in `maxProcesses` (and in the
 * quota of `namespace` when one is given), killed and reaped at close like any other. `type` labels it in `ProcessInfo`.
 */
export interface InternalSpawnRequest {
  type: 'node' | 'python'
  /** Absolute program path; it must be visible inside (under /usr, a `sandbox` path, or the workspace). Its prefix is bound read-only when it lies outside /usr. */
  file: string
  args: string[]
  /** Absolute host directory inside the workspace root. */
  cwd: string
  env: Record<string, string>
  owner: string
  /** Namespace it belongs to and counts against (its quota); without one it is in 'default' and counts only towards `maxProcesses`. */
  namespace?: string
  /**
   * What the sandbox lets through beyond a public spawn: the host network (`'host'`: loopback TCP to
   * the kernel), host paths bound read-only at the same path (a virtualenv, a script folder,
   * node_modules), and host paths bound read-write at the same path (a connection-file folder).
   */
  sandbox?: { network?: 'host'; readOnlyPaths?: string[]; writablePaths?: string[] }
  /** RLIMIT_AS at least this (V8 reserves ~10 GiB per WebAssembly memory, so a Node program with wasm needs more than the default), bytes. */
  addressSpaceBytes?: number
}
export interface AttachOptions extends Scope {
  /** Deliver the buffered output first (synchronously, before `attach` returns). Default true. */
  replay?: boolean
}

export interface WriteOptions extends Scope {
  /** Close stdin after writing (sends Ctrl-D to a PTY). */
  eof?: boolean
}

/** Snapshot of the replay buffer. `droppedBytes` = output produced but no longer buffered. */
export interface OutputSnapshot {
  chunks: OutputChunk[]
  droppedBytes: number
  totalBytes: number
}
