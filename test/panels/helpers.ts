import type { FastifyInstance } from 'fastify'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../app.js'
import type { PanelDefinition } from '../../schemas/panels.js'

type Teardown = { teardown(fn: () => unknown): void }
export type KernelOpts = NonNullable<Parameters<typeof buildApp>[0]>

/** A kernel listening on 127.0.0.1 (closed at teardown). `base` includes the prefix. */
export async function startKernel(t: Teardown, opts: KernelOpts = {}): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildApp({ logLevel: 'silent', ...opts })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base: `${address}${opts.prefix ?? ''}` }
}

export const SECRET = 'a-test-secret-of-32-characters!!'

/** An HS256 JWT signed with SECRET (what a token issuer sharing the kernel's jwtSecret would hand out). */
export function signToken(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat: Math.floor(Date.now() / 1000), ...claims })}`
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`
}

/** A JSON HTTP call; returns status and parsed body. */
export async function api(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const res = await fetch(`${base}${path}`, init)
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

/**
 * The counter's `inc` tool: adds `args.by` (default 1) to `count`, emits `changed`, returns the count.
 * A fresh object each call, since tests may edit it.
 */
export function incTool(): PanelDefinition['tools'][number] {
  return {
    name: 'inc',
    args: { type: 'object', properties: { by: { type: 'integer' } }, additionalProperties: false },
    handler: "$state.count = $state.count + ($args.by ?? 1); $emit('changed', { count: $state.count }); return $state.count",
  }
}

/** A counter panel with a few tools used across the tests (`extra` replaces fields, e.g. `{ tools: [incTool()] }`). */
export function counterPanel(id = 'counter', extra: Partial<PanelDefinition> = {}): PanelDefinition {
  return {
    id,
    kind: 'counter',
    initialState: { count: 0 },
    tools: [
      incTool(),
      { name: 'boom', handler: 'const x = 1\nthrow new Error("kaboom")' },
      { name: 'setKey', handler: '$state[$args.key] = $args.value; return true' },
    ],
    ...extra,
  }
}

/**
 * A local HTTP server whose responses the test releases by hand: each request waits in
 * `pending` until `release()` (FIFO) answers it with JSON. `inFlight` counts requests waiting.
 */
export async function startGateServer(t: Teardown): Promise<{
  url: string
  pending: Array<{ req: IncomingMessage; res: ServerResponse }>
  arrived: (n: number) => Promise<void>
  release: (body: unknown, status?: number) => void
  maxInFlight: () => number
}> {
  const pending: Array<{ req: IncomingMessage; res: ServerResponse }> = []
  let max = 0
  let onArrive: (() => void) | undefined
  const server = createServer((req, res) => {
    pending.push({ req, res })
    max = Math.max(max, pending.length)
    onArrive?.()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  )
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    pending,
    maxInFlight: () => max,
    arrived: (n) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (pending.length >= n) {
            onArrive = undefined
            resolve()
          }
        }
        onArrive = check
        check()
      }),
    release: (body, status = 200) => {
      const next = pending.shift()
      if (!next) throw new Error('no pending request to release')
      next.res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    },
  }
}

/** Kernel options letting the http extension reach a local test server (127.0.0.1). */
export const allowLoopback = { http: { allowedDomains: ['127.0.0.1'] } }
