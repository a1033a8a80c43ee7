import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

type Teardown = { teardown(fn: () => unknown): void }

/** A request the local server received, with its body read. */
export interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

/**
 * A real node:http server on 127.0.0.1 (closed at teardown). `handle` answers each request; when
 * it returns without ending the response, the request stays open (for timeout/queue tests).
 */
export async function startServer(
  t: Teardown,
  handle: (req: Seen, res: ServerResponse) => void,
): Promise<{ url: string; port: number; seen: Seen[]; open: ServerResponse[]; server: Server }> {
  const seen: Seen[] = []
  const open: ServerResponse[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() }
      seen.push(s)
      open.push(res)
      res.on('close', () => open.splice(open.indexOf(res), 1))
      handle(s, res)
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port, seen, open, server }
}

/** Resolves once `check()` is true, polling every 10 ms (gives up after `ms`). */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}


