/**
 * The Jupyter wire protocol over ZeroMQ: signing, encoding and decoding of multipart messages.
 * Shared by the server side (plugins/kernels) and our own kernel processes (plugins/kernels/runtimes).
 * Pure functions over Buffers; the ZeroMQ sockets live with their callers.
 *
 * Source: Jupyter messaging specification 5.3, "The Wire Protocol"
 * (https://jupyter-client.readthedocs.io/en/stable/messaging.html#the-wire-protocol):
 *
 *     [ ...zmq identities, b'<IDS|MSG>', HMAC hex signature, header, parent_header, metadata, content, ...buffers ]
 *
 * The signature is HMAC (scheme `hmac-sha256`) over the four JSON frames in order, keyed by the
 * connection file's `key`; an empty key means messages are not signed (signature frame empty).
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'

/** The frame separating ZeroMQ routing identities from the message. */
export const DELIMITER = Buffer.from('<IDS|MSG>')
/** The messaging protocol version we speak and put in every header. */
export const PROTOCOL_VERSION = '5.3'

/** The five channels of a kernel connection. */
export type Channel = 'shell' | 'control' | 'iopub' | 'stdin' | 'hb'

/** A message header (messaging spec "General Message Format"). `date` is ISO 8601 with `Z`. */
export interface MessageHeader {
  msg_id: string
  session: string
  username: string
  date: string
  msg_type: string
  version: string
  subshell_id?: string | null
}

/** One Jupyter message. `parent_header` is `{}` when the message answers nothing. */
export interface JupyterMessage<C = Record<string, unknown>> {
  header: MessageHeader
  parent_header: MessageHeader | Record<string, never>
  metadata: Record<string, unknown>
  content: C
  buffers: Buffer[]
  /** Set by callers that know which socket the message came from or goes to (not on the wire). */
  channel?: Channel
}

/** The connection file a kernel is started with (jupyter_client `write_connection_file`). Ports are TCP ports. */
export interface ConnectionInfo {
  transport: 'tcp' | 'ipc'
  ip: string
  shell_port: number
  iopub_port: number
  stdin_port: number
  control_port: number
  hb_port: number
  key: string
  signature_scheme: 'hmac-sha256'
  kernel_name?: string
}

/** A frame set that is not a valid message: `BAD_SIGNATURE` (wrong or missing HMAC) or `MALFORMED`. */
export class WireError extends Error {
  readonly code: 'BAD_SIGNATURE' | 'MALFORMED'

  constructor(code: 'BAD_SIGNATURE' | 'MALFORMED', message: string) {
    super(message)
    this.name = 'WireError'
    this.code = code
  }
}

const EMPTY = Buffer.alloc(0)

function parseFrame(frame: Buffer, name: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(frame.toString('utf8'))
  } catch {
    throw new WireError('MALFORMED', `${name} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WireError('MALFORMED', `${name} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

function isHeader(h: Record<string, unknown>): boolean {
  return typeof h.msg_id === 'string' && typeof h.msg_type === 'string' && typeof h.session === 'string'
}

/**
 * Signs and checks the messages of one connection. Construct it with the connection file's `key`
 * and `signature_scheme`.
 * @throws WireError MALFORMED for a scheme other than `hmac-sha256`
 */
export class Wire {
  private readonly key: Buffer

  constructor(key: string, signatureScheme = 'hmac-sha256') {
    if (signatureScheme !== 'hmac-sha256') throw new WireError('MALFORMED', `unsupported signature scheme "${signatureScheme}"`)
    this.key = Buffer.from(key, 'utf8')
  }

  /** Hex HMAC-SHA256 of header, parent_header, metadata and content frames; '' when the key is empty. */
  sign(parts: Buffer[]): string {
    if (this.key.length === 0) return ''
    const hmac = createHmac('sha256', this.key)
    for (const p of parts) hmac.update(p)
    return hmac.digest('hex')
  }

  /** The frames of `msg`, routed to `identities` (ROUTER sockets) when given. */
  encode(msg: JupyterMessage, identities: Buffer[] = []): Buffer[] {
    const parts = [msg.header, msg.parent_header, msg.metadata, msg.content].map((p) => Buffer.from(JSON.stringify(p ?? {})))
    return [...identities, DELIMITER, Buffer.from(this.sign(parts)), ...parts, ...(msg.buffers ?? [])]
  }

  /**
   * Parse received frames: identities before the delimiter, then signature (checked in constant time), four
   * JSON frames and any binary buffers.
   * @throws WireError MALFORMED (no delimiter, missing or non-JSON frames, header without msg_id/msg_type/session),
   *   BAD_SIGNATURE (signature does not match)
   */
  decode(frames: Buffer[]): { identities: Buffer[]; message: JupyterMessage } {
    const at = frames.findIndex((f) => f.equals(DELIMITER))
    if (at < 0) throw new WireError('MALFORMED', 'no <IDS|MSG> delimiter')
    if (frames.length < at + 6) throw new WireError('MALFORMED', 'fewer than the six frames a message needs')
    const signature = frames[at + 1] ?? EMPTY
    const parts = frames.slice(at + 2, at + 6)
    if (this.key.length > 0) {
      const expected = Buffer.from(this.sign(parts))
      if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
        throw new WireError('BAD_SIGNATURE', 'message signature does not match')
      }
    }
    const header = parseFrame(parts[0], 'header')
    if (!isHeader(header)) throw new WireError('MALFORMED', 'header lacks msg_id, msg_type or session')
    const parent = parseFrame(parts[1], 'parent_header')
    const message: JupyterMessage = {
      header: header as unknown as MessageHeader,
      parent_header: parent as MessageHeader | Record<string, never>,
      metadata: parseFrame(parts[2], 'metadata'),
      content: parseFrame(parts[3], 'content'),
      buffers: frames.slice(at + 6),
    }
    return { identities: frames.slice(0, at), message }
  }
}

/** A new header: random msg_id, the current time, PROTOCOL_VERSION. */
export function createHeader(msgType: string, session: string, username = 'workspace-kernel'): MessageHeader {
  return { msg_id: randomUUID(), session, username, date: new Date().toISOString(), msg_type: msgType, version: PROTOCOL_VERSION }
}

/** Options of `createMessage`. `parent` (a message or its header) becomes `parent_header`. */
export interface CreateMessageOptions {
  session: string
  parent?: JupyterMessage | MessageHeader
  metadata?: Record<string, unknown>
  buffers?: Buffer[]
  username?: string
  channel?: Channel
}

/** A new message of type `msgType` with `content`. */
export function createMessage<C>(msgType: string, content: C, opts: CreateMessageOptions): JupyterMessage<C> {
  const parent = opts.parent && 'header' in opts.parent ? opts.parent.header : opts.parent
  return {
    header: createHeader(msgType, opts.session, opts.username),
    parent_header: parent ?? {},
    metadata: opts.metadata ?? {},
    content,
    buffers: opts.buffers ?? [],
    ...(opts.channel ? { channel: opts.channel } : {}),
  }
}

/** A random connection key: 32 bytes as hex (what jupyter_client generates). */
export function newKey(): string {
  return randomBytes(32).toString('hex')
}
