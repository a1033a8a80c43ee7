import { kernelError } from '../errors.js'
import type { Source } from '../executor.js'

/** Caps on triggers in flight (queued, running or suspended). Counts of triggers. */
export interface InFlightLimits {
  /** triggers of one namespace in flight */
  maxInFlightPerNamespace: number
  /** triggers of one WebSocket in flight */
  maxInFlightPerSocket: number
}

/**
 * The panels' in-flight quotas (issue 10 "fair shares"): caps on triggers in flight per namespace
 * and per socket (429 NAMESPACE_BUSY / SOCKET_BUSY). They are caps, not a gate: the segments of
 * admitted triggers are granted by the executor's gate (plugins/executor/gate.ts).
 */
export class InFlightQuotas {
  private readonly byNamespace = new Map<string, number>()
  private readonly bySocket = new Map<object, number>()

  constructor(private readonly limits: InFlightLimits) {}

  /**
   * Count one trigger in flight; call the returned function when it has answered.
   * @throws KernelError 429 NAMESPACE_BUSY / SOCKET_BUSY (nothing counted)
   */
  enter(src: Source): () => void {
    const ns = this.byNamespace.get(src.namespace) ?? 0
    if (ns >= this.limits.maxInFlightPerNamespace) {
      throw kernelError('NAMESPACE_BUSY', `namespace "${src.namespace}" already has maxInFlightPerNamespace (${this.limits.maxInFlightPerNamespace}) triggers in flight`)
    }
    const sock = src.socket ? (this.bySocket.get(src.socket) ?? 0) : 0
    if (src.socket && sock >= this.limits.maxInFlightPerSocket) {
      throw kernelError('SOCKET_BUSY', `this socket already has maxInFlightPerSocket (${this.limits.maxInFlightPerSocket}) triggers in flight`)
    }
    this.byNamespace.set(src.namespace, ns + 1)
    if (src.socket) this.bySocket.set(src.socket, sock + 1)
    let left = false
    return () => {
      if (left) return
      left = true
      this.decrement(this.byNamespace, src.namespace)
      if (src.socket) this.decrement(this.bySocket, src.socket)
    }
  }

  /** Triggers in flight: all, or of one namespace. */
  inFlight(namespace?: string): number {
    if (namespace !== undefined) return this.byNamespace.get(namespace) ?? 0
    let n = 0
    for (const v of this.byNamespace.values()) n += v
    return n
  }

  private decrement<K>(map: Map<K, number>, key: K): void {
    const n = (map.get(key) ?? 0) - 1
    if (n <= 0) map.delete(key)
    else map.set(key, n)
  }
}
