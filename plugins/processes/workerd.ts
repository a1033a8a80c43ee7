import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { KernelError } from '../errors.js'

const here = new URL('./workerd/', import.meta.url)
const TEMPLATE = readFileSync(new URL('config.capnp.tmpl', here), 'utf8')
const SAMPLE_WORKER = readFileSync(new URL('worker.js', here), 'utf8')
/** A date every workerd from 2024 on accepts; requests may ask for another. */
export const DEFAULT_COMPATIBILITY_DATE = '2024-09-23'

/** Path of the workerd binary shipped by the `workerd` npm package. */
export function workerdBinary(): string {
  const mod = createRequire(import.meta.url)('workerd') as { default: string }
  return mod.default
}

/** A workerd config and module written to a fresh temporary directory. */
export interface WorkerdSetup {
  dir: string
  configPath: string
  port: number
  url: string
  /** Remove the temporary directory. */
  cleanup(): void
}

/**
 * Render the capnp template for one worker module (`source`; the sample worker when undefined)
 * listening on 127.0.0.1:`port` (a free port when 0).
 */
export async function prepareWorkerd(source: string | undefined, port: number, compatibilityDate: string): Promise<WorkerdSetup> {
  const chosen = port || (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'wk-workerd-'))
  const configPath = join(dir, 'config.capnp')
  writeFileSync(join(dir, 'worker.js'), source ?? SAMPLE_WORKER)
  writeFileSync(configPath, TEMPLATE.replaceAll('{{ADDRESS}}', `127.0.0.1:${chosen}`).replaceAll('{{COMPATIBILITY_DATE}}', compatibilityDate))
  return { dir, configPath, port: chosen, url: `http://127.0.0.1:${chosen}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A port that was free on 127.0.0.1 a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * Wait until 127.0.0.1:`port` accepts connections. Throws 400 `WORKERD_START_FAILED` (with the
 * process's recent output) if it ends first or does not listen within `timeoutMs`.
 */
export async function waitForListening(port: number, alive: () => boolean, output: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (!alive()) break
    if (await canConnect(port)) return
    await delay(25)
  }
  const why = alive() ? `did not listen on port ${port} within ${timeoutMs} ms` : 'exited during startup'
  throw new KernelError(400, 'WORKERD_START_FAILED', `workerd ${why}: ${output().slice(-2000).trim() || '(no output)'}`)
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
