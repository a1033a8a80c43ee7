import { spawn as spawnChild } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import pty from '@lydell/node-pty'
import { KernelError } from '../errors.js'
import { exitStatus, signalName } from './process-tree.js'

/** What a running child looks like to the manager, whether it has pipes or a PTY. */
export interface ChildHandle {
  /** Host pid of the sandbox's outer bwrap process. */
  readonly pid: number
  readonly tty: boolean
  write(data: Buffer): void
  /** Bytes written but not yet taken by the child (stdin backpressure). */
  pendingInput(): number
  /** Call `fn` once the pending input has drained. */
  onDrain(fn: () => void): void
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
  /** All output delivered and the sandbox reaped: the final status. */
  exit(code: number | null, signal: string | null): void
}

export interface StartSpec {
  /** The sandbox command (`sandboxCommand`): an absolute host path and its argv. */
  file: string
  args: string[]
  /** Host directory the launcher starts in (the program's own cwd is set inside the sandbox). */
  cwd: string
  /** TERM for the PTY; the program's environment is passed to bwrap in `args`. */
  term: string
  tty: boolean
  cols: number
  rows: number
  /** After the sandbox exits, wait this long for stdio to close before forcing it (ms). */
  drainMs: number
  /** Pipes only: open fd 3 as an extra output pipe (workerd's control channel). */
  control?: boolean
}

/** Launcher environment: the sandbox clears it (`--clearenv`), so only what prlimit and bwrap need. */
const LAUNCH_ENV = { PATH: '/usr/bin:/bin' }

/** Start a sandbox as its own session leader. Throws 500 `SPAWN_FAILED` if the OS refuses. */
export async function startChild(spec: StartSpec, cb: ChildCallbacks): Promise<ChildHandle> {
  return spec.tty ? startPty(spec, cb) : startPiped(spec, cb)
}

async function startPiped(spec: StartSpec, cb: ChildCallbacks): Promise<ChildHandle> {
  const stdio = spec.control ? (['pipe', 'pipe', 'pipe', 'pipe'] as const) : (['pipe', 'pipe', 'pipe'] as const)
  const child = spawnChild(spec.file, spec.args, { cwd: spec.cwd, env: LAUNCH_ENV, stdio: [...stdio], detached: true })
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', (err) => reject(new KernelError(500, 'SPAWN_FAILED', `cannot start the sandbox: ${err.message}`)))
  })
  const { stdin, stdout, stderr } = child
  stdin.on('error', () => {}) // EPIPE after the child closed stdin is not our failure
  stdout.on('data', (d: Buffer) => cb.output('stdout', d))
  stderr.on('data', (d: Buffer) => cb.output('stderr', d))
  child.once('exit', () => {
    // The PID namespace is gone, so nothing inside holds the pipes; this only guards against a stall.
    setTimeout(() => {
      for (const stream of child.stdio.slice(1)) stream?.destroy()
    }, spec.drainMs).unref()
  })
  child.once('close', (code, signal) => {
    const status = exitStatus(code, signal)
    cb.exit(status.code, status.signal)
  })
  return {
    pid: child.pid as number,
    tty: false,
    ...inputQueue(stdin),
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
    term = pty.spawn(spec.file, spec.args, { name: spec.term, cols: spec.cols, rows: spec.rows, cwd: spec.cwd, env: LAUNCH_ENV, encoding: null })
  } catch (err) {
    throw new KernelError(500, 'SPAWN_FAILED', `cannot start the sandbox in a PTY: ${(err as Error).message}`)
  }
  term.onData((d: string | Buffer) => cb.output('pty', typeof d === 'string' ? Buffer.from(d) : d))
  // node-pty reports exit only after the terminal's output has been read.
  term.onExit(({ exitCode, signal }) => {
    const status = exitStatus(signal ? null : exitCode, signalName(signal))
    cb.exit(status.code, status.signal)
  })
  // node-pty writes to the master fd through this socket (flow control is off); its queue is the PTY's stdin backlog.
  const raw = term as unknown as { write(data: Buffer | string): void; _socket: Writable }
  return {
    pid: term.pid,
    tty: true,
    ...inputQueue(raw._socket),
    end: () => raw.write('\x04'),
    resize: (cols, rows) => term.resize(cols, rows),
    pause: () => term.pause(),
    resume: () => term.resume(),
    foreground: () => term.process,
  }
}

/** Writes to a child's stdin that know how much is still queued, and who waits for it to empty. */
function inputQueue(stream: Writable): Pick<ChildHandle, 'write' | 'pendingInput' | 'onDrain'> {
  const waiters: Array<() => void> = []
  // A write's callback runs once its bytes reached the OS, with the rest still counted in writableLength.
  const settle = () => {
    if (stream.writableLength === 0) for (const fn of waiters.splice(0)) fn()
  }
  stream.once('close', () => {
    for (const fn of waiters.splice(0)) fn() // the child is gone: nobody waits for it any more
  })
  return {
    write: (data) => void stream.write(data, settle),
    pendingInput: () => stream.writableLength,
    onDrain: (fn) => {
      if (stream.writableLength === 0) queueMicrotask(fn)
      else waiters.push(fn)
    },
  }
}
