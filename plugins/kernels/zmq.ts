/**
 * The client side of one kernel's ZeroMQ sockets (npm `zeromq` v6), as jupyter_client connects them:
 * DEALER sockets for shell, control and stdin (shell and stdin share one routing id, so the kernel's
 * `input_request` reaches us), a SUBSCRIBER on iopub subscribed to everything, and a DEALER on hb that
 * pings the kernel's heartbeat echo (jupyter_client's HBChannel). Messages are signed and checked by
 * `Wire` (HMAC-SHA256 with the connection file's key).
 */
import { randomUUID } from 'node:crypto'
import { Dealer, Subscriber } from 'zeromq'
import { Wire, WireError, type Channel, type ConnectionInfo, type JupyterMessage } from './wire.js'

/** A channel a client sends on. */
export type SendChannel = 'shell' | 'control' | 'stdin'

/**
 * Receives every decoded message with its channel and the raw frames after the signature
 * (header, parent, metadata, content, buffers), which the v1 WebSocket codec passes through unparsed.
 */
export type MessageSink = (channel: Channel, message: JupyterMessage, parts: Buffer[]) => void

/** Receives frames that failed to decode (bad signature, malformed): counted, never fatal. */
export type ErrorSink = (channel: Channel, err: WireError) => void

/** One kernel's socket set. `close()` ends every receive loop; sends after it are dropped. */
export class ZmqSession {
  readonly wire: Wire
  private readonly dealers: Record<SendChannel, Dealer>
  private readonly iopub: Subscriber
  private readonly hb = new Dealer({ linger: 0 })
  private pings = 0
  private echoed = 0
  private pinging = false
  private readonly queues: Record<SendChannel, Promise<void>> = { shell: Promise.resolve(), control: Promise.resolve(), stdin: Promise.resolve() }
  private closed = false

  constructor(info: ConnectionInfo, private readonly sink: MessageSink, private readonly onError: ErrorSink) {
    this.wire = new Wire(info.key, info.signature_scheme)
    const url = (port: number) => `${info.transport}://${info.ip}:${port}`
    const identity = randomUUID()
    this.dealers = {
      shell: new Dealer({ routingId: identity, linger: 0 }),
      control: new Dealer({ routingId: randomUUID(), linger: 0 }),
      stdin: new Dealer({ routingId: identity, linger: 0 }),
    }
    this.dealers.shell.connect(url(info.shell_port))
    this.dealers.control.connect(url(info.control_port))
    this.dealers.stdin.connect(url(info.stdin_port))
    this.iopub = new Subscriber({ linger: 0 })
    this.iopub.connect(url(info.iopub_port))
    this.iopub.subscribe()
    this.hb.connect(url(info.hb_port))
    void this.echoes()
    for (const [channel, socket] of [...Object.entries(this.dealers), ['iopub', this.iopub]] as Array<[Channel, Dealer | Subscriber]>) {
      void this.receive(channel, socket)
    }
  }

  private async receive(channel: Channel, socket: Dealer | Subscriber): Promise<void> {
    try {
      for await (const frames of socket) this.dispatch(channel, frames)
    } catch (err) {
      if (!this.closed) throw err
    }
  }

  private dispatch(channel: Channel, frames: Buffer[]): void {
    let decoded: ReturnType<Wire['decode']>
    try {
      decoded = this.wire.decode(frames)
    } catch (err) {
      if (err instanceof WireError) return this.onError(channel, err)
      throw err
    }
    const at = decoded.identities.length + 2
    decoded.message.channel = channel
    this.sink(channel, decoded.message, frames.slice(at))
  }

  /** Counts the kernel's heartbeat echoes (a REP or ROUTER echo answers `['', n]` with the same frames). */
  private async echoes(): Promise<void> {
    try {
      for await (const [, payload] of this.hb) {
        const n = Number(payload?.toString())
        if (n > this.echoed) this.echoed = n
      }
    } catch (err) {
      if (!this.closed) throw err
    }
  }

  /** Whether every heartbeat ping sent so far has been echoed (true before the first). */
  get beating(): boolean {
    return this.echoed >= this.pings
  }

  /**
   * Sends the next heartbeat ping (none while the previous send is still pending). A DEALER, not
   * jupyter_client's REQ, so a ping that is never answered does not wedge the socket.
   */
  ping(): void {
    if (this.closed || this.pinging) return
    this.pinging = true
    this.hb.send(['', String(++this.pings)]).catch(() => {}).finally(() => (this.pinging = false))
  }

  /** Signs and sends `message` on `channel`; sends on one socket are serialised (zeromq allows one at a time). */
  send(channel: SendChannel, message: JupyterMessage): Promise<void> {
    if (this.closed) return Promise.resolve()
    const frames = this.wire.encode(message)
    const socket = this.dealers[channel]
    const next = this.queues[channel].then(() => (this.closed ? undefined : socket.send(frames))).catch(() => {})
    this.queues[channel] = next
    return next
  }

  /** Closes every socket (linger 0: unsent messages are dropped). Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const socket of [...Object.values(this.dealers), this.iopub, this.hb]) socket.close()
  }
}
