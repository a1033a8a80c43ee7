/**
 * The socket thread of our kernel processes: binds the five ZeroMQ sockets of a Jupyter connection
 * file and relays frames to and from the kernel's main thread, so that heartbeats are echoed, iopub
 * output leaves and interrupt_request is acted on even while the main thread runs a busy cell.
 *
 * Messages with the main thread (worker_threads port):
 *   in  `{ channel, frames }`  send frames on shell/control/stdin (ROUTER) or iopub (PUB), in order
 *   in  `{ close: true }`      drain the send queues, close the sockets (linger 1 s) and end this thread
 *   out `{ ready: true }`      all sockets are bound
 *   out `{ channel, frames }`  frames received on shell, control or stdin
 * An `interrupt_request` on control also raises SIGINT in this process at once (interrupt_mode `message`
 * then behaves like `signal`); the main thread still answers it.
 */
import { parentPort, workerData } from 'node:worker_threads'
import * as zmq from 'zeromq'
import { Wire, type Channel, type ConnectionInfo } from '../wire.js'

type Routed = 'shell' | 'control' | 'stdin'

const info = workerData as ConnectionInfo
const port = parentPort!
const wire = new Wire(info.key, info.signature_scheme)

function endpoint(p: number): string {
  return info.transport === 'ipc' ? `ipc://${info.ip}-${p}` : `tcp://${info.ip}:${p}`
}

const routers: Record<Routed, zmq.Router> = { shell: new zmq.Router(), control: new zmq.Router(), stdin: new zmq.Router() }
const iopub = new zmq.Publisher()
const hb = new zmq.Reply()
const senders: Partial<Record<Channel, zmq.Writable & zmq.Socket>> = { ...routers, iopub }
/** One pending send per socket at a time (zeromq.js rule), in arrival order. */
const queues = new Map<Channel, Promise<void>>()

function send(channel: Channel, frames: Uint8Array[]): void {
  const socket = senders[channel]
  if (!socket) return
  const prev = queues.get(channel) ?? Promise.resolve()
  queues.set(channel, prev.then(() => socket.send(frames)).catch(() => undefined))
}

/** True when control frames carry an interrupt_request (signature checked). */
function isInterrupt(frames: Buffer[]): boolean {
  try {
    return wire.decode(frames).message.header.msg_type === 'interrupt_request'
  } catch {
    return false
  }
}

async function relay(channel: Routed): Promise<void> {
  for await (const frames of routers[channel]) {
    if (channel === 'control' && isInterrupt(frames)) process.kill(process.pid, 'SIGINT')
    port.postMessage({ channel, frames })
  }
}

async function echo(): Promise<void> {
  for await (const frames of hb) await hb.send(frames)
}

async function close(): Promise<void> {
  await Promise.all(queues.values())
  for (const s of [...Object.values(routers), iopub, hb]) {
    s.linger = 1000
    s.close()
  }
  process.exit(0)
}

async function main(): Promise<void> {
  await Promise.all([
    routers.shell.bind(endpoint(info.shell_port)),
    routers.control.bind(endpoint(info.control_port)),
    routers.stdin.bind(endpoint(info.stdin_port)),
    iopub.bind(endpoint(info.iopub_port)),
    hb.bind(endpoint(info.hb_port)),
  ])
  port.on('message', (m: { channel?: Channel; frames?: Uint8Array[]; close?: boolean }) => {
    if (m.close) void close()
    else if (m.channel && m.frames) send(m.channel, m.frames)
  })
  for (const c of ['shell', 'control', 'stdin'] as const) relay(c).catch(() => undefined)
  echo().catch(() => undefined)
  port.postMessage({ ready: true })
}

main().catch((err: Error) => port.postMessage({ error: err.message }))
