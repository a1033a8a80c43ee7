/**
 * The panel WebSockets' client side (SessionHub: every socket attached to a panel, its topics, the
 * PATCH / EVENT broadcast, held replay, pings). Not Jupyter's sessions: those are plugins/kernels/sessions.ts.
 */
import type { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { StateMutation, EmittedEvent } from '../../wasm-runtime/types.js'
import type { ConnectedMessage, ProgressMessage, ServerMessage } from '../../schemas/ws.js'

/** Options of client sessions. */
export interface SessionOptions {
  /** A socket whose unsent bytes exceed this bound is dropped (terminated), bytes (default: PanelSocketOptions). */
  maxBufferedBytes: number
  /** Interval of server pings; a socket that has not answered the previous ping is terminated; 0 = off, ms (default: PanelSocketOptions). */
  pingIntervalMs: number
  /** Subscription topics one socket may hold. */
  maxTopicsPerSocket: number
}

/**
 * Frame a JSON text as one unmasked, uncompressed WebSocket text frame (RFC 6455 §5.2: FIN +
 * opcode 1, then the payload length in 7, 7+16 or 7+64 bits), header and payload in one buffer.
 * A server frame is never masked, so the bytes are the same for every recipient.
 */
export function textFrame(json: string): Buffer {
  const length = Buffer.byteLength(json)
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(head + length)
  frame[0] = 0x81
  if (head === 2) frame[1] = length
  else if (head === 4) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  frame.write(json, head, 'utf8')
  return frame
}

/** The JSON payload of a frame from `textFrame` (a view, no copy). */
export function payloadOf(frame: Buffer): Buffer {
  const len7 = frame[1] & 0x7f
  return frame.subarray(len7 === 126 ? 4 : len7 === 127 ? 10 : 2)
}

/** Encode a server message once, as a whole text frame: the same bytes go to every recipient. */
export function encode(msg: ServerMessage): Buffer {
  return textFrame(JSON.stringify(msg))
}

/**
 * Encode a full-state CONNECTED with the state's JSON text spliced in as is (from
 * `PanelState.toJsonText`: never parsed into objects and stringified again).
 */
export function encodeConnected(msg: Omit<ConnectedMessage, 'state'>, stateJson: string): Buffer {
  const rest = JSON.stringify(msg)
  return textFrame(`${rest.slice(0, -1)},"state":${stateJson}}`)
}

const OPEN = 1
/** Bytes of frames kept corked in one tick before they are written at once (see `Session.send`). */
const CORK_MAX_BYTES = 64 * 1024

/**
 * The TCP stream under a WebSocket (`request.raw.socket` of its upgrade, the stream ws itself writes
 * to): corked to batch writes, and written the frames of `encode` directly.
 */
export interface RawStream {
  cork(): void
  uncork(): void
  write(chunk: Buffer): boolean
}

/** One WebSocket client of one panel, with its subscription topics. */
export class Session {
  /** `state`, `events`, and `state:<key>` topics; `state` + `events` by default. */
  readonly topics = new Set<string>(['state', 'events'])
  /** keys of `state:<key>` topics, kept apart for the PATCH filter */
  readonly keys = new Set<string>()
  alive = true
  dropped = false
  /** frames written since the stream was corked go out together on the next tick (see `send`) */
  corked = false
  private corkedBytes = 0
  /** broadcasts held while CONNECTED and a replay are being sent (see `hold`) */
  private held?: Array<{ data: Buffer; version?: number }>
  private heldBytes = 0
  /**
   * The stream to write whole frames to, bypassing ws's per-frame framing: set when the socket
   * negotiated no extension (a permessage-deflate socket, possible when the kernel is embedded in an
   * app whose @fastify/websocket enables it, goes through ws, which compresses).
   */
  private readonly direct?: RawStream
  /** PROGRESS to this client (one function per session, handed to every trigger it sends). */
  readonly progress = (msg: ProgressMessage): void => this.send(encode(msg))

  constructor(
    readonly socket: WebSocket,
    readonly panelKey: string,
    private readonly hub: SessionHub,
    readonly stream?: RawStream,
  ) {
    if (stream && socket.extensions === '') this.direct = stream
  }

  /**
   * Send a frame from `encode`; a client too far behind is dropped instead. The stream is corked
   * until the next tick, so the frames of one job (a trigger's PATCH, its EVENTs and its RESULT)
   * leave in one write instead of one syscall each; the order of frames is unchanged (ws's own
   * frames, pings and close, are written to the same stream in call order; nothing is sent once
   * the socket is closing).
   */
  send(frame: Buffer): void {
    if (this.dropped || this.socket.readyState !== OPEN) return
    if (this.socket.bufferedAmount > this.hub.options.maxBufferedBytes) return this.hub.drop(this)
    if (this.stream && !this.corked) this.hub.cork(this, this.stream)
    if (this.direct) this.direct.write(frame)
    else this.socket.send(payloadOf(frame), { binary: false })
    // a burst (a replay, a large CONNECTED) is written at once, as without the cork, so that corked
    // bytes never count against maxBufferedBytes for a client that is reading
    if (this.corked && (this.corkedBytes += frame.length) > CORK_MAX_BYTES) this.uncork()
  }

  /** End this tick's cork now (idempotent: the stream's cork count never goes below zero). */
  uncork(): void {
    if (!this.corked) return
    this.corked = false
    this.corkedBytes = 0
    this.stream?.uncork()
  }

  /** A broadcast: sent now, or kept while the session is held. `version` is a PATCH's. */
  deliver(data: Buffer, version?: number): void {
    if (!this.held) return this.send(data)
    this.held.push({ data, version })
    this.heldBytes += data.length
    if (this.heldBytes > this.hub.options.maxBufferedBytes) this.hub.drop(this)
  }

  /** Keep broadcasts back (bounded by maxBufferedBytes: past it the client is dropped) until `release`. */
  hold(): void {
    this.held ??= []
  }

  /** Send what was held, leaving out PATCHes the client already has (version ≤ `version`), and go live. */
  release(version: number): void {
    const held = this.held ?? []
    this.held = undefined
    this.heldBytes = 0
    for (const m of held) if (m.version === undefined || m.version > version) this.send(m.data)
  }

  /**
   * Add topics, all or none.
   * @returns false (nothing added) when the socket would hold more than maxTopicsPerSocket
   */
  subscribe(topics: string[]): boolean {
    const fresh = new Set(topics.filter((t) => !this.topics.has(t)))
    if (this.topics.size + fresh.size > this.hub.options.maxTopicsPerSocket) return false
    for (const t of fresh) {
      this.topics.add(t)
      if (t.startsWith('state:')) this.keys.add(t.slice(6))
    }
    return true
  }

  unsubscribe(topics: string[]): void {
    for (const t of topics) {
      this.topics.delete(t)
      if (t.startsWith('state:')) this.keys.delete(t.slice(6))
    }
  }
}

/**
 * All sessions of an app: per-panel sets, encode-once broadcast, slow-consumer drop and
 * the server-side heartbeat (ping every `pingIntervalMs`; no pong by the next tick → terminate).
 */
export class SessionHub {
  private readonly byPanel = new Map<string, Set<Session>>()
  private readonly timer?: NodeJS.Timeout
  private total = 0
  /** sessions whose stream is corked in this tick; one nextTick uncorks them all */
  private corked: Session[] = []

  constructor(
    readonly options: SessionOptions,
    private readonly log: FastifyBaseLogger,
  ) {
    if (options.pingIntervalMs > 0) {
      this.timer = setInterval(() => this.heartbeat(), options.pingIntervalMs)
      this.timer.unref()
    }
  }

  /** @param stream the TCP stream under `socket`, corked per tick to batch its frames (optional) */
  add(panelKey: string, socket: WebSocket, stream?: RawStream): Session {
    const s = new Session(socket, panelKey, this, stream)
    let set = this.byPanel.get(panelKey)
    if (!set) this.byPanel.set(panelKey, (set = new Set()))
    set.add(s)
    this.total++
    socket.on('pong', () => { s.alive = true })
    return s
  }

  remove(s: Session): void {
    const set = this.byPanel.get(s.panelKey)
    if (!set?.delete(s)) return
    this.total--
    if (set.size === 0) this.byPanel.delete(s.panelKey)
  }

  count(panelKey?: string): number {
    return panelKey === undefined ? this.total : (this.byPanel.get(panelKey)?.size ?? 0)
  }

  /** Cork `s`'s stream until the next tick (one tick callback for all sessions of a broadcast). */
  cork(s: Session, stream: RawStream): void {
    s.corked = true
    stream.cork()
    if (this.corked.push(s) === 1) process.nextTick(this.uncorkAll)
  }

  private readonly uncorkAll = (): void => {
    const all = this.corked
    this.corked = []
    for (const s of all) s.uncork()
  }

  drop(s: Session): void {
    s.dropped = true
    this.log.warn({ panel: s.panelKey, buffered: s.socket.bufferedAmount }, 'dropping a WebSocket client that stopped reading')
    s.socket.terminate()
  }

  /**
   * PATCH to the panel's subscribers: `state` subscribers get every mutation; `state:<key>`
   * subscribers get only the mutations of their keys (nothing when none match). Each distinct
   * message is encoded once.
   */
  broadcastPatch(panelKey: string, mutations: StateMutation[], version: number): void {
    const set = this.byPanel.get(panelKey)
    if (!set) return
    let full: Buffer | undefined
    let partial: Map<string, Buffer> | undefined
    for (const s of set) {
      if (s.topics.has('state')) {
        s.deliver((full ??= encode({ type: 'PATCH', mutations, version })), version)
        continue
      }
      if (s.keys.size === 0) continue
      const mine = mutations.filter((m) => s.keys.has(m.key))
      if (mine.length === 0) continue
      const id = mine.map((m) => m.key).join('\u0000')
      partial ??= new Map()
      let buf = partial.get(id)
      if (!buf) partial.set(id, (buf = encode({ type: 'PATCH', mutations: mine, version })))
      s.deliver(buf, version)
    }
  }

  /** EVENT to the panel's `events` subscribers, encoded once per event. */
  broadcastEvent(panelKey: string, event: EmittedEvent): void {
    const set = this.byPanel.get(panelKey)
    if (!set) return
    let buf: Buffer | undefined
    for (const s of set) if (s.topics.has('events')) s.deliver((buf ??= encode({ type: 'EVENT', event })))
  }

  /** Close every socket of a panel (or of all panels) with a code and reason. */
  closeAll(code: number, reason: string, panelKey?: string): void {
    const sets = panelKey === undefined ? [...this.byPanel.values()] : [this.byPanel.get(panelKey) ?? new Set<Session>()]
    for (const set of sets) for (const s of set) s.socket.close(code, reason)
  }

  private heartbeat(): void {
    for (const set of this.byPanel.values()) {
      for (const s of set) {
        if (!s.alive) {
          this.log.info({ panel: s.panelKey }, 'terminating a WebSocket client that missed a ping')
          s.socket.terminate()
          continue
        }
        s.alive = false
        s.socket.ping()
      }
    }
  }

  /** Stop the heartbeat (sockets are closed separately with `closeAll`). */
  stop(): void {
    clearInterval(this.timer)
  }
}
