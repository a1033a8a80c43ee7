import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { buildApp } from '../../app.js'
import type { KernelsConfig } from '../../plugins/kernels/options.js'
import { createMessage, type JupyterMessage } from '../../plugins/kernels/wire.js'
import { V1_PROTOCOL, decodeV1, encodeV1 } from '../../plugins/kernels/ws-protocol.js'
import { record } from '../helpers/ws.js'
import { until as poll } from '../processes/helpers.js'

export { alive } from '../processes/helpers.js'

/** Poll `fn` until it returns a truthy value (default 20 s: kernels start slowly on a shared machine). */
export const until = <V>(fn: () => V | Promise<V>, ms = 20_000, what?: string) => poll(fn, ms, what)

/** The slice of a tap `t` the helpers need. */
interface T {
  teardown(fn: () => unknown): void
}

export const SECRET = 'kernels-test-secret-0123456789'

export interface Server {
  app: FastifyInstance
  base: string
  root: string
  /** A JWT for `namespace` (auth is on in every test server). */
  token(namespace?: string): string
  request(method: string, path: string, opts?: { body?: unknown; token?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>
}

/** A real server on 127.0.0.1 with auth on and the pool off unless `kernels` says otherwise. */
export async function startServer(t: T, kernels: Partial<KernelsConfig> = {}, extra: Record<string, unknown> = {}): Promise<Server> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'wk-kernels-test-')))
  const app = await buildApp({
    logger: false,
    authEnabled: true,
    jwtSecret: SECRET,
    processes: { workspaceRoot: root, killGraceMs: 500 },
    kernels: { poolSize: 0, shutdownWaitMs: 1000, ...kernels },
    ...extra,
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    rmSync(root, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const token = (namespace = 'alpha') => app.jwt.sign({ namespace })
  return {
    app,
    base,
    root,
    token,
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? token()}`, ...opts.headers }
      if (opts.body !== undefined) headers['content-type'] = 'application/json'
      const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers }
    },
  }
}

/** A raw channels client (`ws`), v1 subprotocol or legacy JSON, that records every message. */
export interface Channels {
  socket: WebSocket
  messages: Array<JupyterMessage & { channel: string }>
  session: string
  /** Sends a request; returns its msg_id. */
  send(channel: string, msgType: string, content: Record<string, unknown>): string
  /** First message (already received or future) matching `pred`. */
  waitFor(pred: (m: JupyterMessage & { channel: string }) => boolean, ms?: number): Promise<JupyterMessage & { channel: string }>
  /** Sends an execute_request and resolves with the reply and every iopub message up to status idle. */
  execute(code: string): Promise<{ reply: JupyterMessage; iopub: JupyterMessage[] }>
  closed: Promise<number>
}

/** Opens `/api/kernels/:id/channels` as a raw client. */
export async function channels(t: T, server: Server, kernelId: string, opts: { v1?: boolean; session?: string; token?: string } = {}): Promise<Channels> {
  const session = opts.session ?? `s-${Math.random().toString(36).slice(2)}`
  const url = `${server.base.replace('http', 'ws')}/api/kernels/${kernelId}/channels?session_id=${session}&token=${opts.token ?? server.token()}`
  const socket = opts.v1 ? new WebSocket(url, [V1_PROTOCOL]) : new WebSocket(url)
  const decode = (data: Buffer, isBinary: boolean): Channels['messages'][number] => {
    if (!(opts.v1 && isBinary)) return JSON.parse(data.toString())
    const { channel, message } = decodeV1(data)
    return { ...message, channel } as Channels['messages'][number]
  }
  const describe = (all: Channels['messages']) => all.map((m) => `${m.channel}:${m.header.msg_type}`).join(' ')
  const { messages, waitFor, closed } = await record(t, socket, decode, describe, 20_000)
  const send: Channels['send'] = (channel, msgType, content) => {
    const msg = createMessage(msgType, content, { session, username: 'test' })
    if (opts.v1) socket.send(encodeV1(channel as 'shell', msg))
    else socket.send(JSON.stringify({ ...msg, channel }))
    return msg.header.msg_id
  }
  return {
    socket,
    messages,
    session,
    send,
    waitFor,
    closed,
    async execute(code) {
      const id = send('shell', 'execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true })
      const reply = await waitFor((m) => m.channel === 'shell' && (m.parent_header as { msg_id?: string }).msg_id === id)
      await waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'status' && (m.content as { execution_state?: string }).execution_state === 'idle' && (m.parent_header as { msg_id?: string }).msg_id === id)
      return { reply, iopub: messages.filter((m) => m.channel === 'iopub' && (m.parent_header as { msg_id?: string }).msg_id === id) }
    },
  }
}

/** Text of the stream messages among `iopub`. */
export function streamText(iopub: JupyterMessage[], name = 'stdout'): string {
  return iopub.filter((m) => m.header.msg_type === 'stream' && (m.content as { name?: string }).name === name).map((m) => (m.content as { text: string }).text).join('')
}
