import { spawn as spawnChild } from 'node:child_process'
import type { Readable } from 'node:stream'
import pty from '@lydell/node-pty'
import { KernelError } from '../errors.js'
import { signalName } from './session.js'

/** What a running child looks like to the manager, whether it has pipes or a PTY. */
export interface ChildHandle {
  readonly pid: number
  readonly tty: boolean
  write(data: Buffer): void
  /** Close stdin (pipes) or send Ctrl-D (PTY). */
  end(): void
  resize(cols: number, rows: number): void
  /** Stop reading output; the child blocks once the OS buffer fills (flow control). */
  pause(): void
  resume(): void
  /** PTY only: name of the foreground process. */
  foreground(): string | undefined
  /** fd 3 of the child, when `StartSpec.control` asked for it. */
  control?: Readable
}

export interface ChildCallbacks {
  output(stream: 'stdout' | 'stderr' | 'pty', data: Buffer): void
  /** The leader process ended (its output may still be draining). */
  leaderExit(): void
  /** All output delivered and the leader reaped: the final status. */
  exit(code: number | null, signal: string | null): void
}

export interface StartSpec {
  file: string
  args: string[]
  cwd: string
  env: Record<string, string>
  tty: boolean
  cols: number
  rows: number
  /** After the leader exits, wait this long for stdio to close before forcing it (ms). */
  drainMs: number
  /** Pipes only: open fd 3 as an extra output pipe (workerd's control channel). */
  control?: boolean
}

/** Start a child as its own session leader. Throws 500 `SPAWN_FAILED` if the OS refuses. */
export async function startChild(spec: StartSpec, cb: ChildCallbacks): Promise<ChildHandle> {
  return spec.tty ? startPty(spec, cb) : startPiped(spec, cb)
}

async function startPiped(spec: StartSpec, cb: ChildCallbacks): Promise<ChildHandle> {
  // detached = setsid(): the child leads a new session and process group we can signal as a whole.
  const stdio = spec.control ? (['pipe', 'pipe', 'pipe', 'pipe'] as const) : (['pipe', 'pipe', 'pipe'] as const)
  const child = spawnChild(spec.file, spec.args, { cwd: spec.cwd, env: spec.env, stdio: [...stdio], detached: true })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (err) => reject(new KernelError(500, 'SPAWN_FAILED', `cannot start ${spec.file}: ${err.message}`)))
  })
  const { stdin, stdout, stderr } = child
  stdin.on('error', () => {}) // EPIPE after the child closed stdin is not our failure
  stdout.on('data', (d: Buffer) => cb.output('stdout', d))
  stderr.on('data', (d: Buffer) => cb.output('stderr', d))
  child.once('exit', () => {
    cb.leaderExit()
    // A grandchild that escaped the session may hold the pipes open forever; stop waiting for it.
    setTimeout(() => {
      for (const stream of child.stdio.slice(1)) stream?.destroy()
    }, spec.drainMs).unref()
  })
  child.once('close', (code, signal) => cb.exit(code, signal))
  return {
    pid: child.pid as number,
    tty: false,
    write: (data) => void stdin.write(data),
    end: () => void stdin.end(),
    resize: () => {
      throw new KernelError(409, 'NOT_A_TTY', `process ${child.pid} has no terminal`)
    },
    pause: () => {
      stdout.pause()
      stderr.pause()
    },
    resume: () => {
      stdout.resume()
      stderr.resume()
    },
    foreground: () => undefined,
    control: spec.control ? (child.stdio[3] as Readable) : undefined,
  }
}

function startPty(spec: StartSpec, cb: ChildCallbacks): ChildHandle {
  let term: pty.IPty
  try {
    // encoding null: raw bytes, aligned to characters by the record like pipe output
    term = pty.spawn(spec.file, spec.args, { name: spec.env.TERM ?? 'xterm-256color', cols: spec.cols, rows: spec.rows, cwd: spec.cwd, env: spec.env, encoding: null })
  } catch (err) {
    throw new KernelError(500, 'SPAWN_FAILED', `cannot start ${spec.file} in a PTY: ${(err as Error).message}`)
  }
  term.onData((d: string | Buffer) => cb.output('pty', typeof d === 'string' ? Buffer.from(d) : d))
  // node-pty reports exit only after the terminal's output has been read.
  term.onExit(({ exitCode, signal }) => {
    cb.leaderExit()
    cb.exit(signal ? null : exitCode, signalName(signal))
  })
  const raw = term as unknown as { write(data: Buffer | string): void }
  return {
    pid: term.pid,
    tty: true,
    write: (data) => raw.write(data),
    end: () => raw.write('\x04'),
    resize: (cols, rows) => term.resize(cols, rows),
    pause: () => term.pause(),
    resume: () => term.resume(),
    foreground: () => term.process,
  }
}
