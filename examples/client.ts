import WebSocket from 'ws'
import type { ServerMessage } from '../schemas/ws.js'

type Msg = ServerMessage
type Waiter = { match: (m: Msg) => boolean; resolve: (m: Msg) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/**
 * A minimal client of the panel WebSocket protocol (JSON frames, see schemas/ws.ts).
 * Every received message is kept in `messages` (in order) and passed to `onMessage`.
 */
export class PanelClient {
  readonly messages: Msg[] = []
  onMessage?: (m: Msg) => void
  private waiters: Waiter[] = []
  private seq = 0
  closed?: { code: number; reason: string }

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Msg
      this.messages.push(m)
      this.onMessage?.(m)
      for (const w of [...this.waiters]) {
        if (w.match(m)) {
          clearTimeout(w.timer)
          this.waiters.splice(this.waiters.indexOf(w), 1)
          w.resolve(m)
        }
      }
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.failAll(new Error(`socket closed (${code} ${reason.toString()})`))
    })
  }

  private failAll(err: Error): void {
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(err)
    }
  }

  /** Open a socket and wait for CONNECTED. `url` is the `wsUrl` of POST /panels (add `?token=` when auth is on). */
  static async connect(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ client: PanelClient; connected: Extract<Msg, { type: 'CONNECTED' }> }> {
    const ws = new WebSocket(url, opts)
    const client = new PanelClient(ws)
    const connected = client.next((m) => m.type === 'CONNECTED')
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', resolve)
        ws.once('error', reject)
        ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
      })
    } catch (err) {
      connected.catch(() => undefined)
      client.failAll(err as Error)
      ws.terminate()
      throw err
    }
    return { client, connected: (await connected) as Extract<Msg, { type: 'CONNECTED' }> }
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg))
  }

  /** The next message (from now on, or already received when `fromStart`) that matches. */
  next(match: (m: Msg) => boolean, timeoutMs = 10_000, fromStart = false): Promise<Msg> {
    if (fromStart) {
      const found = this.messages.find(match)
      if (found) return Promise.resolve(found)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer)
        reject(new Error('timed out waiting for a message'))
      }, timeoutMs)
      this.waiters.push({ match, resolve, reject, timer })
    })
  }

  /** TRIGGER a tool and wait for its RESULT or ERROR (matched by requestId). */
  trigger(tool: string, args?: unknown, requestId = `r${++this.seq}`): Promise<Msg> {
    const reply = this.next((m) => (m.type === 'RESULT' || m.type === 'ERROR') && m.requestId === requestId)
    this.send({ type: 'TRIGGER', tool, args, requestId })
    return reply
  }

  /** PING and wait for the PONG: everything sent before it has been handled. */
  ping(requestId = `p${++this.seq}`): Promise<Msg> {
    const reply = this.next((m) => m.type === 'PONG' && m.requestId === requestId)
    this.send({ type: 'PING', requestId })
    return reply
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve())
      this.ws.close()
    })
  }
}
