import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'

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

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Runs the standalone binary; `lines` collects its JSON log lines. */
export function startBinary(env: Record<string, string>, args: string[] = []): { child: ChildProcess; lines: any[]; stderr: () => string } {
  const child = spawn(process.execPath, ['bin/workspace-kernel.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, WK_NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: any[] = []
  let err = ''
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()!
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p))
  })
  child.stderr!.on('data', (d: Buffer) => (err += d))
  return { child, lines, stderr: () => err }
}

export async function freePort(): Promise<number> {
  const s = createNetServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

/** Polls `fn` until it gives a value; fails early when the child has exited (generous: the binary starts slowly on a loaded machine). */
export async function waitFor<T>(fn: () => T | undefined, child?: ChildProcess, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined) return v
    if (child && child.exitCode !== null) throw new Error(`the binary exited with ${child.exitCode}`)
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** The child's exit code, once it has exited and its output is read. */
export async function exitCode(child: ChildProcess): Promise<number | null> {
  // 'close' (not 'exit'): the last log lines are read by then
  const exited = child.exitCode !== null || child.signalCode !== null
  if (!exited || child.stdout?.readableEnded === false) await once(child, 'close')
  return child.exitCode
}

/** The token of the generated-secret URL the binary logs (`tokenUrl: http://…/inspector/?token=<jwt>`). */
export function tokenOf(line: { tokenUrl?: string }): string {
  const token = new URL(line.tokenUrl ?? 'http://x/').searchParams.get('token')
  if (!token) throw new Error(`no token URL in ${JSON.stringify(line)}`)
  return token
}

/** Whether connecting to `port` on 127.0.0.1 is refused (nothing listens). */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => (s.destroy(), resolve(false)))
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

