/**
 * The executor plugin's own policy options as a TypeBox schema: the one place their defaults live.
 * config.ts spreads them at the top level (`suspensionTimeoutMs` is `WK_SUSPENSION_TIMEOUT_MS`);
 * the sandbox's limits are `RuntimeOptions` (wasm-runtime/options.ts, `runtime.*`). Counts and ms.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { RuntimeOptions } from '../../wasm-runtime/options.js'

const Int = (def: number, min: number, description: string) => Type.Integer({ default: def, minimum: min, description })

/** How runs are admitted and how long one may wait on the extension calls of a suspension. */
export const ExecutorPolicyOptions = Type.Object({
  suspensionTimeoutMs: Int(30_000, 1, 'how long a handler may wait on the extension calls of one suspension (then TIMEOUT), ms'),
  maxConcurrentSegments: Int(16, 1, 'run segments executing in the sandbox at once, granted round-robin across namespaces and sockets'),
})

/** Everything the executor plugin takes: the sandbox's limits plus its policy. */
export const ExecutorOptions = Type.Composite([RuntimeOptions, ExecutorPolicyOptions])
export type ExecutorOptions = Static<typeof ExecutorOptions>

/** `options` with every default of ExecutorOptions filled in (a given value wins). */
export function executorOptions(options: Partial<ExecutorOptions>): ExecutorOptions {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined))
  return Value.Default(ExecutorOptions, given) as ExecutorOptions
}
