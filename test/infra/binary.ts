import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Runs the standalone binary; `lines` collects its JSON log lines. Its store goes to a fresh
 * temporary WK_DATA_DIR unless `env` names one.
 */
export function startBinary(env: Record<string, string>, args: string[] = []): { child: ChildProcess; lines: any[]; stderr: () => string } {
  const child = spawn(process.execPath, ['bin/workspace-kernel.js', ...args], {
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

/** Polls `fn` until it gives a value; fails early when the child has exited. */
export async function waitFor<T>(fn: () => T | undefined, child?: ChildProcess, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined) return v
    if (child && child.exitCode !== null) throw new Error(`the binary exited with ${child.exitCode}`)
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

export async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const [code] = await once(child, 'exit')
  return code as number | null
}

