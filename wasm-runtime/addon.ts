/**
 * Loads the native addon built from this folder (`bash wasm-runtime/build.sh`): the classes
 * `Runtime` (engine, instances, worker threads) and `PanelState` (a panel's committed state).
 * Their generated typings are build/binding.d.ts; the shapes used here are declared below.
 */
import { createRequire } from 'node:module'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { RuntimeError } from './admission.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const ADDON_PATH = `${here}build/wasm_runtime.node`
/** Path of the guest module the addon runs. */
export const GUEST_PATH = `${here}build/guest.wasm`

/** The addon's `PanelState`: key → JSON text. */
export interface NativePanelState {
  /** `values[i]`: JSON text `keys[i]` is set to, or null to delete it. Throws INVALID_INPUT. */
  apply(keys: string[], values: (string | null)[]): void
  clear(): void
  get(key: string): string | null
  keys(): string[]
  toJsonText(): string
  readonly size: number
  readonly byteSize: number
}

/** One segment's outcome as the addon reports it. */
export interface RawResult {
  outputJson: string
  suspended: boolean
  executionId?: string
  trap?: string
  trapMessage?: string
  durationUs: number
  fuelConsumed: number
  memoryPeakBytes: number
  memoryLimitHit: boolean
}

/** The addon's `Runtime`. */
export interface NativeRuntime {
  precompile(source: string): Promise<{ bytecode: Buffer; cacheKey: string; compileTimeUs: number; cacheHit: boolean }>
  execute(code: Buffer, contextJson: string, state: NativePanelState, timeoutMs: number): Promise<RawResult>
  executeInline(code: Buffer, contextJson: string, state: NativePanelState, timeoutMs: number, sliceMs: number): RawResult | null
  resume(executionId: string, resumeJson: string, timeoutMs: number): Promise<RawResult>
  cancel(executionId: string): boolean
  stats(): {
    live: number
    suspended: number
    cacheEntries: number
    cacheHits: number
    cacheMisses: number
    threads: number
    runningJobs: number
    queuedJobs: number
  }
  shutdown(): void
}

interface Addon {
  Runtime: new (options: object) => NativeRuntime
  PanelState: new () => NativePanelState
}

let loaded: Addon | undefined

/** The addon, loaded once. Throws RuntimeError INTERNAL_ERROR when it is not built. */
export function addon(): Addon {
  if (loaded) return loaded
  if (!existsSync(ADDON_PATH) || !existsSync(GUEST_PATH)) {
    throw new RuntimeError('INTERNAL_ERROR', `wasm-runtime is not built (${ADDON_PATH}): run \`npm run build:runtime\``)
  }
  loaded = createRequire(import.meta.url)(ADDON_PATH) as Addon
  return loaded
}
