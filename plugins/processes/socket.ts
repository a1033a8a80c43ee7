import type { FastifyBaseLogger } from 'fastify'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { WebSocket } from 'ws'
import { KernelError, kernelError } from '../errors.js'
import { ProcessClientMessage, type ProcessServerMessage } from '../../schemas/processes.js'
import type { ProcessManager } from './manager.js'
import type { ProcessEvent } from './types.js'

const checkMessage = TypeCompiler.Compile(ProcessClientMessage)

/** Unsent bytes per socket above which the process's output is paused, and below which it resumes. */
const HIGH_WATER = 4 * 1024 * 1024
const LOW_WATER = 1024 * 1024

type Id = string | number | undefined

/** Stream ids of binary OUTPUT frames (first byte); 0x80 marks a replayed chunk. */
export const STREAM_IDS = { stdout: 1, stderr: 2, pty: 3 } as const
export const REPLAY_FLAG = 0x80

/** Options of one attached socket. */
export interface SocketOptions {
  /** Send the replay buffer first. */
  replay: boolean
  /** OUTPUT as binary frames (see `STREAM_IDS`) instead of JSON. */
  binary: boolean
  /** Parses a text frame: the edge's depth-limited JSON.parse (plugins/json-limits.ts); default JSON.parse. */
  parseJson?: (text: string) => unknown
}

/**
 * Bridge one WebSocket to one process: ATTACHED, replayed then live OUTPUT, EXIT (then close 1000);
 * STDIN / RESIZE / SIGNAL / DETACH from the client, each ACKed when it carries an `id`, errors as
 * `{ type: 'ERROR', id?, code, message }`. A slow client pauses the process's output (flow control)
 * instead of buffering without bound, for at most `maxOutputPauseMs`: then it is dropped (close 1013)
 * and the process resumes for its other clients; a process that does not read its stdin makes the socket stop
 * reading (the client's frames wait in TCP) until the backlog drains, and a write past the bound is
 * refused with ERROR `INPUT_BACKLOG_FULL`.
 */
export function attachSocket(pm: ProcessManager, socket: WebSocket, pid: number, namespace: string, opts: SocketOptions, log: FastifyBaseLogger): void {
  const { replay, binary } = opts
  const scope = { namespace }
  let unsent = 0
  let release: (() => void) | undefined
  let detach = () => {}

  const sendRaw = (frame: string | Buffer) => {
    if (socket.readyState !== socket.OPEN) return
    unsent += frame.length
    socket.send(frame, { binary: typeof frame !== 'string' }, () => {
      unsent -= frame.length
      if (release && unsent < LOW_WATER) {
        release()
        release = undefined
      }
    })
    if (!release && unsent > HIGH_WATER) release = boundedPause()
  }
  /** Pauses the output for this client, at most maxOutputPauseMs: then drops it, and the process goes on for the others. */
  const boundedPause = () => {
    const resume = pm.pauseOutput(pid, scope)
    const ms = pm.options.maxOutputPauseMs
    const timer = setTimeout(() => {
      release = undefined
      resume()
      detach()
      log.warn({ pid, unsent }, 'processes: dropping a client that held its process paused too long')
      socket.close(1013, `client too slow: held the process paused for ${ms} ms`) // queued behind the unread bytes
    }, ms)
    return () => {
      clearTimeout(timer)
      resume()
    }
  }
  const send = (msg: ProcessServerMessage) => sendRaw(JSON.stringify(msg))
  const fail = (id: Id, err: unknown) => {
    if (err instanceof KernelError) return send({ type: 'ERROR', id, code: err.code, message: err.message })
    log.error({ err, pid }, 'processes: websocket request failed')
    send({ type: 'ERROR', id, code: 'INTERNAL_ERROR', message: 'internal error' })
  }

  const onEvent = (event: ProcessEvent) => {
    if (event.type === 'output' && binary) return sendRaw(binaryFrame(event.stream, event.bytes, event.replay === true))
    if (event.type === 'output') {
      send({ type: 'OUTPUT', stream: event.stream, data: event.data, seq: event.seq, ...(event.replay ? { replay: true } : {}) })
      return
    }
    send({ type: 'EXIT', exit: event.exit })
    socket.close(1000, 'process exited')
  }

  try {
    send({ type: 'ATTACHED', process: pm.get(pid, scope), droppedBytes: replay ? pm.output(pid, scope).droppedBytes : 0 })
    detach = pm.attach(pid, onEvent, { namespace, replay })
  } catch (err) {
    fail(undefined, err) // the process was forgotten between the upgrade and now
    socket.close(1011, 'attach failed')
    return
  }

  let reading = true
  /** Backpressure on stdin: stop reading frames while the child has not taken its input. */
  const throttle = () => {
    if (!reading || socket.readyState !== socket.OPEN) return
    let backlog = 0
    try {
      backlog = pm.inputBacklog(pid, scope)
    } catch {
      return // exited: nothing to wait for
    }
    if (backlog === 0) return
    reading = false
    socket.pause()
    pm.onInputDrain(pid, resumeReading, scope)
  }
  const resumeReading = () => {
    if (reading) return
    reading = true
    socket.resume()
  }
  // A close from our side (app shutdown, EXIT) needs the peer's close frame: read again first.
  const close = socket.close.bind(socket)
  socket.close = (code?: number, reason?: string | Buffer) => {
    resumeReading()
    close(code, reason)
  }

  socket.on('message', (raw: Buffer, isBinary: boolean) => {
    if (socket.readyState !== socket.OPEN) return // closing: frames still queued in TCP are dropped
    if (isBinary) {
      handle(() => pm.write(pid, raw, scope), undefined)
      return throttle()
    }
    let msg: unknown
    try {
      msg = (opts.parseJson ?? JSON.parse)(raw.toString('utf8'))
    } catch (err) {
      return fail(undefined, err instanceof KernelError ? err : kernelError('INVALID_MESSAGE', 'messages must be JSON objects'))
    }
    const id = idOf(msg)
    if (!checkMessage.Check(msg)) {
      const first = checkMessage.Errors(msg).First()
      return fail(id, kernelError('INVALID_MESSAGE', first ? `${first.path || '/'}: ${first.message}` : 'invalid message'))
    }
    handle(() => apply(pm, pid, scope, msg, () => socket.close(1000, 'detached')), msg.id)
    if (msg.type === 'STDIN') throttle()
  })
  socket.on('close', () => {
    detach()
    release?.()
    release = undefined
  })

  function handle(action: () => unknown, id: Id): void {
    try {
      action()
      if (id !== undefined) send({ type: 'ACK', id })
    } catch (err) {
      fail(id, err)
    }
  }
}

function apply(pm: ProcessManager, pid: number, scope: { namespace: string }, msg: ProcessClientMessage, close: () => void): void {
  switch (msg.type) {
    case 'STDIN':
      pm.write(pid, Buffer.from(msg.data, msg.encoding ?? 'utf8'), { ...scope, eof: msg.eof })
      return
    case 'RESIZE':
      pm.resize(pid, msg.cols, msg.rows, scope)
      return
    case 'SIGNAL':
      pm.signal(pid, msg.signal, scope)
      return
    case 'DETACH':
      // Close after the ACK is queued (handle() sends it right after this returns).
      setImmediate(close)
  }
}

/** One binary OUTPUT frame: the stream byte, then the chunk's raw bytes. */
function binaryFrame(stream: keyof typeof STREAM_IDS, bytes: Buffer, replay: boolean): Buffer {
  const frame = Buffer.allocUnsafe(1 + bytes.length)
  frame[0] = STREAM_IDS[stream] | (replay ? REPLAY_FLAG : 0)
  bytes.copy(frame, 1)
  return frame
}

function idOf(msg: unknown): Id {
  const id = (msg as { id?: unknown } | null)?.id
  return typeof id === 'string' || typeof id === 'number' ? id : undefined
}
