import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Runs the standalone binary; `lines` collects its JSON log lines. Its store goes to a fresh
 * temporary WK_DATA_DIR unless `env` names one. `wrap` runs it under another command (e.g. bwrap and its
 * arguments, up to the command it runs).
 */
export function startBinary(env: Record<string, string>, args: string[] = [], wrap: string[] = []): { child: ChildProcess; lines: any[]; stderr: () => string } {
  const argv = [...wrap, process.execPath, 'bin/workspace-kernel.js', ...args]
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH, WK_NODE_ENV: 'production', WK_DATA_DIR: mkdtempSync(join(tmpdir(), 'wk-bin-')), ...env },
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
  const s = createServer()
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
