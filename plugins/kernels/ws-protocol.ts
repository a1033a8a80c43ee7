/**
 * The kernel channels WebSocket (jupyter_server `services/kernels/connection`): the
 * `v1.kernel.websocket.jupyter.org` binary codec, the legacy JSON codec (with its binary form for
 * buffers), and the per-kernel hub that fans iopub out to every connection, routes replies to the
 * requesting one, and buffers messages for a session that went away until it reconnects.
 */
import type { Kernel, KernelClient } from './kernel.js'
import type { Channel, JupyterMessage } from './wire.js'

/** The subprotocol JupyterLab offers (and we select when offered). */
export const V1_PROTOCOL = 'v1.kernel.websocket.jupyter.org'

/** A message from a client, decoded. */
export interface ClientMessage {
  channel: string
  message: JupyterMessage
}

/** Thrown for frames that are not a message (they are dropped; 10 in a row close the socket with 1007). */
export class BadFrame extends Error {}

function readU64(buf: Buffer, at: number): number {
  if (at + 8 > buf.length) throw new BadFrame('truncated offset table')
  const n = buf.readBigUInt64LE(at)
  if (n > BigInt(buf.length)) throw new BadFrame('offset past the end of the frame')
  return Number(n)
}

function parseJson(buf: Buffer | string, what: string): Record<string, unknown> {
  let v: unknown
  try {
    v = JSON.parse(buf.toString())
  } catch {
    throw new BadFrame(`${what} is not JSON`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadFrame(`${what} is not an object`)
  return v as Record<string, unknown>
}

function checkHeader(h: Record<string, unknown>): JupyterMessage['header'] {
  if (typeof h.msg_id !== 'string' || typeof h.msg_type !== 'string') throw new BadFrame('header lacks msg_id or msg_type')
  return h as unknown as JupyterMessage['header']
}

/** v1: u64-LE count, u64-LE offsets, then channel, header, parent, metadata, content, buffers. */
export function decodeV1(buf: Buffer): ClientMessage {
  const count = readU64(buf, 0)
  if (count < 6 || count > 1024) throw new BadFrame(`bad offset count ${count}`)
  const offsets = Array.from({ length: count }, (_, i) => readU64(buf, 8 * (i + 1)))
  const parts: Buffer[] = []
  for (let i = 0; i < count - 1; i++) {
    if (offsets[i + 1] < offsets[i]) throw new BadFrame('offsets not ascending')
    parts.push(buf.subarray(offsets[i], offsets[i + 1]))
  }
  const [channel, header, parent, metadata, content, ...buffers] = parts
  return {
    channel: channel.toString(),
    message: { header: checkHeader(parseJson(header, 'header')), parent_header: parseJson(parent, 'parent_header') as JupyterMessage['parent_header'], metadata: parseJson(metadata, 'metadata'), content: parseJson(content, 'content'), buffers },
  }
}

/** v1 encoding of a kernel message; `parts` (header…buffers as received from ZeroMQ) pass through unparsed. */
export function encodeV1(channel: Channel, msg: JupyterMessage, parts?: Buffer[]): Buffer {
  const body = parts ?? [msg.header, msg.parent_header, msg.metadata, msg.content].map((p) => Buffer.from(JSON.stringify(p))).concat(msg.buffers ?? [])
  const list = [Buffer.from(channel), ...body]
  const head = 8 * (1 + list.length + 1)
  const table = Buffer.alloc(head)
  table.writeBigUInt64LE(BigInt(list.length + 1), 0)
  let at = head
  table.writeBigUInt64LE(BigInt(at), 8)
  list.forEach((p, i) => {
    at += p.length
    table.writeBigUInt64LE(BigInt(at), 8 * (i + 2))
  })
  return Buffer.concat([table, ...list])
}

/** Legacy: a JSON text frame, or (with buffers) u32-BE count + offsets, the JSON, then the buffers. */
export function decodeLegacy(data: Buffer, isBinary: boolean): ClientMessage {
  let json: Buffer = data
  let buffers: Buffer[] = []
  if (isBinary) {
    if (data.length < 4) throw new BadFrame('truncated binary message')
    const n = data.readUInt32BE(0)
    if (n < 1 || 4 * (n + 1) > data.length) throw new BadFrame('bad buffer count')
    const offsets = Array.from({ length: n }, (_, i) => data.readUInt32BE(4 * (i + 1)))
    offsets.push(data.length)
    if (offsets.some((o, i) => o > data.length || (i > 0 && o < offsets[i - 1]))) throw new BadFrame('bad offsets')
    json = data.subarray(offsets[0], offsets[1])
    buffers = offsets.slice(1, -1).map((o, i) => data.subarray(o, offsets[i + 2]))
  }
  const m = parseJson(json, 'message')
  const header = checkHeader(typeof m.header === 'object' && m.header !== null ? (m.header as Record<string, unknown>) : {})
  return {
    channel: typeof m.channel === 'string' ? m.channel : 'shell',
    message: {
      header,
      parent_header: (m.parent_header ?? {}) as JupyterMessage['parent_header'],
      metadata: (m.metadata ?? {}) as Record<string, unknown>,
      content: (m.content ?? {}) as Record<string, unknown>,
      buffers,
    },
  }
}

/** Legacy encoding: JSON text (with `msg_id`, `msg_type`, `channel` at the top, as jupyter_server sends), binary form when there are buffers. */
export function encodeLegacy(channel: Channel, msg: JupyterMessage): string | Buffer {
  const body = { header: msg.header, msg_id: msg.header.msg_id, msg_type: msg.header.msg_type, parent_header: msg.parent_header, metadata: msg.metadata, content: msg.content, buffers: [], channel }
  const json = JSON.stringify(body)
  if (!msg.buffers?.length) return json
  const parts = [Buffer.from(json), ...msg.buffers]
  const table = Buffer.alloc(4 * (parts.length + 1))
  table.writeUInt32BE(parts.length, 0)
  let at = table.length
  parts.forEach((p, i) => {
    table.writeUInt32BE(at, 4 * (i + 1))
    at += p.length
  })
  return Buffer.concat([table, ...parts])
}

/** A socket the hub writes to (a `ws` WebSocket fits). */
export interface Sink {
  send(data: string | Buffer): void
}

interface Buffered {
  channel: Channel
  message: JupyterMessage
  parts?: Buffer[]
}

/** Options of a hub (kernels options of the same names). Rates per second, 0 = off. */
export interface HubOptions {
  bufferOfflineMessages: boolean
  offlineBufferBytes: number
  iopubMsgRateLimit: number
  iopubDataRateLimit: number
  rateLimitWindowS: number
}

/** iopub messages the rate limit never drops (jupyter_server's exemptions). */
const UNLIMITED = new Set(['status', 'comm_open', 'execute_input'])

/**
 * jupyter_server's iopub rate limit for one connection: message and stream-byte rates averaged over
 * `rateLimitWindowS`; above either limit messages are dropped (with one stderr notice) until the rate is
 * back under 80 % of it. `check` says whether to send.
 */
export class IopubRateLimit {
  private readonly window: Array<[at: number, bytes: number]> = []
  private bytes = 0
  private limited = false

  constructor(private readonly options: HubOptions, private readonly notify: (text: string, parent: JupyterMessage['parent_header']) => void) {}

  check(message: JupyterMessage, parts?: Buffer[]): boolean {
    const { iopubMsgRateLimit: msgLimit, iopubDataRateLimit: dataLimit, rateLimitWindowS: windowS } = this.options
    if ((msgLimit <= 0 && dataLimit <= 0) || UNLIMITED.has(message.header.msg_type)) return true
    const now = Date.now() / 1000
    const size = message.header.msg_type === 'stream' ? (parts ? parts.reduce((n, p) => n + p.length, 0) : String((message.content as { text?: unknown }).text ?? '').length) : 0
    this.window.push([now, size])
    this.bytes += size
    while (this.window.length > 0 && this.window[0][0] < now - windowS) this.bytes -= (this.window.shift() as [number, number])[1]
    const msgRate = this.window.length / windowS
    const dataRate = this.bytes / windowS
    const over = (msgLimit > 0 && msgRate > msgLimit) || (dataLimit > 0 && dataRate > dataLimit)
    const under = (msgLimit <= 0 || msgRate < 0.8 * msgLimit) && (dataLimit <= 0 || dataRate < 0.8 * dataLimit)
    if (over && !this.limited) {
      this.limited = true
      this.notify(`IOPub rate exceeded (limits: ${msgLimit} msgs/s, ${dataLimit} bytes/s over ${windowS} s; kernels.iopubMsgRateLimit / iopubDataRateLimit); output is dropped until the rate falls.\n`, message.parent_header)
    } else if (this.limited && under) this.limited = false
    return !this.limited
  }
}

/** One WebSocket connection to a kernel: a KernelClient that encodes for its protocol. */
export class ChannelsConnection implements KernelClient {
  open = true
  private readonly limit: IopubRateLimit

  constructor(private readonly hub: ChannelsHub, readonly sessionId: string, readonly v1: boolean, private readonly socket: Sink, options: HubOptions, notice: (text: string, parent: JupyterMessage['parent_header']) => JupyterMessage) {
    this.limit = new IopubRateLimit(options, (text, parent) => this.send('iopub', notice(text, parent)))
  }

  deliver(channel: Channel, message: JupyterMessage, parts?: Buffer[]): void {
    if (!this.open) return this.hub.buffer(this.sessionId, channel, message, parts)
    if (channel === 'iopub' && !this.limit.check(message, parts)) return
    this.send(channel, message, parts)
  }

  private send(channel: Channel, message: JupyterMessage, parts?: Buffer[]): void {
    this.socket.send(this.v1 ? encodeV1(channel, message, parts) : encodeLegacy(channel, message))
  }
}

/**
 * The WebSocket side of one kernel. One offline buffer per kernel, as jupyter_server keeps: for the
 * session that last went away (iopub and replies to its requests), bounded by `offlineBufferBytes`
 * (oldest dropped first), replayed when that `session_id` connects again.
 */
export class ChannelsHub {
  private readonly connections = new Set<ChannelsConnection>()
  private offline?: { sessionId: string; items: Buffered[]; bytes: number; unsubscribe: () => void }

  constructor(private readonly kernel: Kernel, private readonly options: HubOptions) {}

  /** Registers a connection; replays the offline buffer when it is the absent session coming back. */
  connect(sessionId: string, v1: boolean, socket: Sink): { connection: ChannelsConnection; unsubscribe: () => void } {
    const notice = (text: string, parent: JupyterMessage['parent_header']) => {
      const msg = this.kernel.message('stream', { name: 'stderr', text })
      msg.parent_header = parent
      return msg
    }
    const connection = new ChannelsConnection(this, sessionId, v1, socket, this.options, notice)
    const replay = this.offline?.sessionId === sessionId ? this.offline : undefined
    if (replay) {
      replay.unsubscribe()
      this.offline = undefined
      for (const item of replay.items) connection.deliver(item.channel, item.message, item.parts)
    }
    this.connections.add(connection)
    const unsubscribe = this.kernel.subscribe(connection)
    return { connection, unsubscribe }
  }

  /** The connection closed: later messages for its session go to the offline buffer (when enabled). */
  disconnect(connection: ChannelsConnection): void {
    connection.open = false
    this.connections.delete(connection)
    const same = [...this.connections].some((c) => c.sessionId === connection.sessionId)
    if (!this.options.bufferOfflineMessages || same || connection.sessionId === '') return
    this.offline?.unsubscribe()
    const offline = { sessionId: connection.sessionId, items: [] as Buffered[], bytes: 0, unsubscribe: () => {} }
    offline.unsubscribe = this.kernel.subscribe({ deliver: (ch, msg, parts) => this.buffer(connection.sessionId, ch, msg, parts) })
    this.offline = offline
  }

  /** Keeps a message for the absent session (replies reach here through the closed connection). */
  buffer(sessionId: string, channel: Channel, message: JupyterMessage, parts?: Buffer[]): void {
    const off = this.offline
    if (!off || off.sessionId !== sessionId) return
    const size = parts ? parts.reduce((n, p) => n + p.length, 0) : JSON.stringify(message.content).length
    off.items.push({ channel, message, parts })
    off.bytes += size
    while (off.bytes > this.options.offlineBufferBytes && off.items.length > 0) {
      const dropped = off.items.shift() as Buffered
      off.bytes -= dropped.parts ? dropped.parts.reduce((n, p) => n + p.length, 0) : JSON.stringify(dropped.message.content).length
    }
  }

  /** Drops the offline buffer (kernel gone). */
  close(): void {
    this.offline?.unsubscribe()
    this.offline = undefined
  }
}
