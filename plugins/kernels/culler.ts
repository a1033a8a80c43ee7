/**
 * Jupyter Server's culler (`cull_idle_timeout`, `cull_interval`, `cull_busy`, `cull_connected`):
 * which kernels to shut down now, and why. Dead kernels are culled at once.
 */
import type { Kernel } from './kernel.js'

/** Why a kernel was culled (the `reason` label of `wk_kernels_culled_total`). */
export type CullReason = 'idle' | 'dead'

/** The culler's rules; `idleTimeoutMs` 0 = idle culling off (a kernel's own `inactivityTimeoutMs` still applies). */
export interface CullRules {
  idleTimeoutMs: number
  cullBusy: boolean
  cullConnected: boolean
}

/** When `kernel` becomes cullable for idleness (epoch ms), or undefined when it never will be as things stand. */
export function cullsAt(kernel: Kernel, rules: CullRules): number | undefined {
  const timeout = kernel.settings.inactivityTimeoutMs ?? rules.idleTimeoutMs
  if (timeout <= 0) return undefined
  return kernel.lastActivity.getTime() + timeout
}

/** The kernels to cull at `now`, with their reasons. */
export function toCull(kernels: Iterable<Kernel>, rules: CullRules, now: number): Array<[Kernel, CullReason]> {
  const out: Array<[Kernel, CullReason]> = []
  for (const kernel of kernels) {
    if (kernel.state === 'dead') {
      out.push([kernel, 'dead'])
      continue
    }
    if (kernel.state !== 'idle' && kernel.state !== 'busy') continue // starting / restarting: not yet
    if (kernel.state === 'busy' && !rules.cullBusy) continue
    if (kernel.connections > 0 && !rules.cullConnected) continue
    const at = cullsAt(kernel, rules)
    if (at !== undefined && now >= at) out.push([kernel, 'idle'])
  }
  return out
}
