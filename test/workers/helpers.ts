import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { request } from 'undici'
import WebSocket from 'ws'
import { errorHandler } from '../../plugins/errors.js'
import workers, { type WorkersOptions } from '../../plugins/workers.js'
import workersRoutes from '../../routes/workers.js'

/** A real server on 127.0.0.1 with the workers plugin and routes; `before` registers extra plugins first. */
export async function startServer(
  opts: WorkersOptions,
  before?: (app: FastifyInstance) => Promise<void> | void,
): Promise<{ app: FastifyInstance; base: string; wsBase: string }> {
  // Public ids may be 120 chars; Fastify's default maxParamLength (100) would answer 414.
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 256 } })
  await app.register(errorHandler)
  await app.register(websocket)
  if (before) await before(app)
  await app.register(workers, opts)
  await app.register(workersRoutes)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, base: `http://127.0.0.1:${port}`, wsBase: `ws://127.0.0.1:${port}` }
}

/** JSON request; returns status, parsed body and the raw text (for leak checks). */
export async function call(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; text: string }> {
  const res = await request(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined, text }
}

/** A WebSocket client that collects JSON messages; `next(pred)` waits for the first unread match. */
export function wsClient(url: string) {
  const ws = new WebSocket(url)
  const messages: any[] = []
  let waiters: Array<() => void> = []
  ws.on('message', (data) => {
    messages.push(JSON.parse(String(data)))
    const w = waiters
    waiters = []
    for (const fn of w) fn()
  })
  let read = 0
  const next = (pred: (m: any) => boolean = () => true, timeoutMs = 5000): Promise<any> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message; got ${JSON.stringify(messages)}`)), timeoutMs)
      const check = () => {
        while (read < messages.length) {
          const m = messages[read++]
          if (pred(m)) {
            clearTimeout(timer)
            return resolve(m)
          }
        }
        waiters.push(check)
      }
      check()
    })
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  return { ws, messages, next, opened }
}

/** Resolves with the HTTP status of a refused upgrade. */
export function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      ws.terminate()
    })
    ws.on('open', () => {
      ws.close()
      reject(new Error('upgrade was accepted'))
    })
    ws.on('error', () => {})
  })
}

/** Throws if `text` contains any of `terms` (case-insensitive). */
export function leaks(text: string, terms: string[]): string[] {
  const lower = text.toLowerCase()
  return terms.filter((t) => lower.includes(t.toLowerCase()))
}
