import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Readable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { kernelError } from '../errors.js'

const here = new URL('./workerd/', import.meta.url)
const TEMPLATE = readFileSync(new URL('config.capnp.tmpl', here), 'utf8')
const SAMPLE_WORKER = readFileSync(new URL('worker.js', here), 'utf8')
/** Where workerd's binary and its rendered config appear inside the sandbox. */
export const WORKERD_BINARY = '/opt/workerd/bin/workerd'
export const WORKERD_CONFIG_DIR = '/opt/workerd/config'
/** workerd's V8 reserves address space up-front (its pointer cage); it aborts under 4 GiB. */
export const WORKERD_ADDRESS_SPACE_BYTES = 16 * 1024 ** 3
/** A date every workerd from 2024 on accepts; requests may ask for another. */
export const DEFAULT_COMPATIBILITY_DATE = '2024-09-23'

/** Path of the workerd binary shipped by the `workerd` npm package. */
export function workerdBinary(): string {
  const mod = createRequire(import.meta.url)('workerd') as { default: string }
  return mod.default
}

/** A workerd config and module written to a fresh temporary directory. */
export interface WorkerdSetup {
  /** Host directory holding the config and module (bound read-only at WORKERD_CONFIG_DIR). */
  dir: string
  /** Flags for `workerd serve`: the config (sandbox path), and fd 3 for "listening on port N" messages. */
  args: string[]
  /** Remove the temporary directory. */
  cleanup(): void
}

/**
 * Render the capnp template for one worker module (`source`; the sample worker when undefined)
 * listening on 127.0.0.1:`port` (0 = workerd picks a free port and reports it on the control fd).
 */
export function prepareWorkerd(source: string | undefined, port: number, compatibilityDate: string): WorkerdSetup {
  const dir = mkdtempSync(join(tmpdir(), 'wk-workerd-'))
  const configPath = join(dir, 'config.capnp')
  writeFileSync(join(dir, 'worker.js'), source ?? SAMPLE_WORKER)
  writeFileSync(configPath, TEMPLATE.replaceAll('{{ADDRESS}}', `127.0.0.1:${port}`).replaceAll('{{COMPATIBILITY_DATE}}', compatibilityDate))
  return { dir, args: ['serve', `${WORKERD_CONFIG_DIR}/config.capnp`, '--control-fd=3'], cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * Wait for workerd's control message `{"event":"listen","socket":"http","port":N}`, sent once the
 * worker is loaded and the socket serves, and return N. Throws 400 `WORKERD_START_FAILED` (with
 * the process's recent output) if it exits first or stays silent for `timeoutMs`.
 */
export async function waitForListen(control: Readable, exited: Promise<unknown>, output: () => string, timeoutMs = 15_000): Promise<number> {
  const timer = delay(timeoutMs, 'timeout' as const, { ref: false })
  // Keep the pipe flowing for good (a paused pipe would hold back the child's 'close').
  const listen = new Promise<number>((resolve) => {
    let pending = ''
    control.setEncoding('utf8')
    control.on('data', (text: string) => {
      const lines = (pending + text).split('\n')
      pending = lines.pop() ?? ''
      for (const msg of lines.map(parseJson)) {
        if (msg?.event === 'listen' && msg.socket === 'http' && typeof msg.port === 'number') resolve(msg.port)
      }
    })
  })
  const result = await Promise.race([listen, exited.then(() => 'exited' as const), timer])
  if (typeof result === 'number') return result
  const why = result === 'timeout' ? `did not start listening within ${timeoutMs} ms` : 'exited during startup'
  throw kernelError('WORKERD_START_FAILED', `workerd ${why}: ${output().slice(-2000).trim() || '(no output)'}`)
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
}
