/**
 * The executor plugin's own policy options as a TypeBox schema: the one place their defaults live.
 * config.ts spreads them at the top level (`suspensionTimeoutMs` is `WK_SUSPENSION_TIMEOUT_MS`);
 * the sandbox's limits are `RuntimeOptions` (wasm-runtime/options.ts, `runtime.*`). Counts and ms.
 */
import { Type, type Static } from '@sinclair/typebox'
import { RuntimeOptions } from '../../wasm-runtime/options.js'
import { pluginOptions } from '../options.js'

const Int = (def: number, min: number, max: number, description: string) => Type.Integer({ default: def, minimum: min, maximum: max, description })

/** How runs are admitted and how long one may wait on the extension calls of a suspension. */
export const ExecutorPolicyOptions = Type.Object({
  suspensionTimeoutMs: Int(30_000, 1, 2 ** 31 - 1, 'how long a handler may wait on the extension calls of one suspension (then TIMEOUT), ms'),
  maxConcurrentSegments: Int(16, 1, 10_000, 'run segments executing in the sandbox at once, granted round-robin across namespaces and sockets'),
})

/** Everything the executor plugin takes: the sandbox's limits plus its policy. */
export const ExecutorOptions = Type.Composite([RuntimeOptions, ExecutorPolicyOptions])
export type ExecutorOptions = Static<typeof ExecutorOptions>

/**
 * `options` with every default of ExecutorOptions filled in (a given value wins), checked.
 * @throws KernelError INVALID_CONFIG naming the bad option (see `pluginOptions`)
 */
export function executorOptions(options: Partial<ExecutorOptions>): ExecutorOptions {
  return pluginOptions('executor', ExecutorOptions, options)
}
