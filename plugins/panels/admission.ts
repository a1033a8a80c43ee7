import { KernelError, kernelError } from '../errors.js'

/** Limits of trigger admission. Counts of triggers / segments. */
export interface AdmissionLimits {
  /** segments executing in the sandbox at once, all panels together */
  maxConcurrentSegments: number
  /** triggers of one namespace in flight (queued, running or suspended) */
  maxInFlightPerNamespace: number
  /** triggers of one WebSocket in flight */
  maxInFlightPerSocket: number
}

/** Where a trigger comes from: its namespace, and the WebSocket session it arrived on (none for REST). */
export interface Source {
  namespace: string
  socket?: object
}

const REST = Symbol('rest')

/**
 * Fair admission of triggers (issue 10 "fair shares"): caps on triggers in flight per namespace
 * and per socket (429 NAMESPACE_BUSY / SOCKET_BUSY), and a bounded number of segments executing
 * at once, granted round-robin across namespaces, then across the sockets of a namespace, so a
 * flood from one socket cannot starve anybody else's trivial trigger.
 */
export class Admission {
  private readonly byNamespace = new Map<string, number>()
  private readonly bySocket = new Map<object | symbol, number>()
  /** namespace → socket → waiters, in round-robin order (served entries move to the end) */
  private readonly waiting = new Map<string, Map<object | symbol, Array<() => void>>>()
  private running = 0
  /** namespace of the latest grant: the next grant goes to another one when any is waiting */
  private lastServed?: string

  constructor(private readonly limits: AdmissionLimits) {}

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

  /** Wait for a slot to execute one segment; call the returned function when the segment has run. */
  async acquire(src: Source): Promise<() => void> {
    if (this.running < this.limits.maxConcurrentSegments && this.waiting.size === 0) {
      this.running++
      this.lastServed = src.namespace
    } else await new Promise<void>((resolve) => this.enqueue(src, resolve))
    let released = false
    return () => {
      if (released) return
      released = true
      this.running--
      this.next()
    }
  }

  /** Triggers in flight: all, or of one namespace. */
  inFlight(namespace?: string): number {
    if (namespace !== undefined) return this.byNamespace.get(namespace) ?? 0
    let n = 0
    for (const v of this.byNamespace.values()) n += v
    return n
  }

  private enqueue(src: Source, resolve: () => void): void {
    let sockets = this.waiting.get(src.namespace)
    if (!sockets) this.waiting.set(src.namespace, (sockets = new Map()))
    const key = src.socket ?? REST
    let list = sockets.get(key)
    if (!list) sockets.set(key, (list = []))
    list.push(resolve)
  }

  /**
   * Grant free slots round-robin: the first namespace (not the one served last, when another
   * waits), its first socket; both then move to the end.
   */
  private next(): void {
    while (this.running < this.limits.maxConcurrentSegments && this.waiting.size > 0) {
      const first = this.waiting.keys().next().value as string
      if (first === this.lastServed && this.waiting.size > 1) {
        const again = this.waiting.get(first) as Map<object | symbol, Array<() => void>>
        this.waiting.delete(first)
        this.waiting.set(first, again)
      }
      const [ns, sockets] = this.waiting.entries().next().value as [string, Map<object | symbol, Array<() => void>>]
      const [key, list] = sockets.entries().next().value as [object | symbol, Array<() => void>]
      const resolve = list.shift() as () => void
      sockets.delete(key)
      if (list.length > 0) sockets.set(key, list)
      this.waiting.delete(ns)
      if (sockets.size > 0) this.waiting.set(ns, sockets)
      this.running++
      this.lastServed = ns
      resolve()
    }
  }

  private decrement<K>(map: Map<K, number>, key: K): void {
    const n = (map.get(key) ?? 0) - 1
    if (n <= 0) map.delete(key)
    else map.set(key, n)
  }
}
