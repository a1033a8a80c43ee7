import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import processesPlugin, { type ProcessesOptions } from '../../plugins/processes.js'
import processesRoutes from '../../routes/processes.js'
import { record } from '../helpers/ws.js'

/** The slice of a tap `t` the helpers need. */
interface T {
  teardown(fn: () => unknown): void
}

export interface Server {
  app: FastifyInstance
  root: string
  base: string
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>
  ws(path: string): Promise<Client>
}

/** A fresh workspace directory, removed at teardown. */
export function workspace(t: T): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'wk-proc-test-')))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A real server on 127.0.0.1 with @fastify/websocket, the processes plugin and its routes;
 * `before` registers other plugins first (auth, error handler, swagger) where a test needs them.
 */
export async function startServer(t: T, options: ProcessesOptions = {}, before?: (app: FastifyInstance) => Promise<void>): Promise<Server> {
  const root = options.workspaceRoot ?? workspace(t)
  const app = Fastify({ logger: false })
  await before?.(app)
  await app.register(websocket)
  await app.register(processesPlugin, { killGraceMs: 500, ...options, workspaceRoot: root })
  await app.register(processesRoutes)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  return {
    app,
    root,
    base,
    async request(method, path, body, headers = {}) {
      const res = await fetch(base + path, {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      return { status: res.status, body: await res.json() }
    },
    ws: (path) => connect(t, base.replace('http', 'ws') + path),
  }
}

export type Message = Record<string, any>

/** A real `ws` client that records every message and can wait for one. */
export interface Client {
  socket: WebSocket
  messages: Message[]
  send(msg: unknown): void
  /** First message (already received or future) matching `pred`; rejects after `ms`. */
  waitFor(pred: (m: Message) => boolean, ms?: number): Promise<Message>
  /** All OUTPUT data so far, concatenated. */
  output(): string
  /** Resolves with the close code. */
  closed: Promise<number>
}

export async function connect(t: T, url: string): Promise<Client> {
  const socket = new WebSocket(url)
  // Binary OUTPUT frames (?binary=true): byte 0 = stream id (+0x80 when replayed), then the bytes.
  const decode = (raw: Buffer, isBinary: boolean): Message =>
    isBinary ? { type: 'BINARY', stream: raw[0] & 0x7f, replay: (raw[0] & 0x80) !== 0, data: raw.subarray(1).toString() } : JSON.parse(raw.toString())
  const { messages, waitFor, closed } = await record(t, socket, decode, (all) => JSON.stringify(all).slice(-600), 10_000)
  return {
    socket,
    messages,
    closed,
    waitFor,
    send: (msg) => socket.send(JSON.stringify(msg)),
    output: () => messages.filter((m) => m.type === 'OUTPUT').map((m) => m.data).join(''),
  }
}

/** Poll `fn` until it returns a truthy value; rejects after `ms`. */
export async function until<V>(fn: () => V | Promise<V>, ms = 10_000, what = 'condition'): Promise<V> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** Pids whose parent is this test process (children the bridge started and has not reaped). */
export function children(): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) out.push(Number(name))
    } catch {
      // gone while scanning
    }
  }
  return out
}

/** Host pids of live processes whose argv is exactly `argv` (to find a sandboxed program from the host side). */
export function running(argv: string[]): number[] {
  const want = argv.join('\0')
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0$/, '') === want && !/\) Z /.test(readFileSync(`/proc/${name}/stat`, 'utf8'))) out.push(Number(name))
    } catch {
      // gone while scanning
    }
  }
  return out
}
