import { RuntimeError } from '../../wasm-runtime/index.js'

/** Where a run comes from, for fair shares: its namespace, and the connection it arrived on (none: REST). */
export interface Source {
  namespace: string
  /** any object identifying the connection (a WebSocket session); runs without one share one key */
  socket?: object
}

/** Bounds of the gate. Counts. */
export interface GateLimits {
  /** segments executing in the sandbox at once */
  maxConcurrentSegments: number
  /** live instances (running + suspended) at once: a run holds one from its first segment to its end */
  maxInstances: number
  /** first segments waiting for a grant before another one fails with CAPACITY_EXCEEDED */
  maxQueue: number
}

interface Waiter {
  /** a first segment, which needs a free instance too (a resume already holds its own) */
  instance: boolean
  resolve: () => void
  reject: (err: Error) => void
}

const REST = Symbol('rest')
type Sockets = Map<object | symbol, Waiter[]>

/**
 * The one admission gate of the sandbox (issue 11): grants segments at most
 * `maxConcurrentSegments` at a time, round-robin across namespaces, then across the sockets of a
 * namespace (a flood from one socket cannot starve anybody else's trivial trigger), and never
 * lets more than `maxInstances` runs hold an instance. The addon's own live-instance counter
 * (sandbox.rs `take_execution_slot`) is the hard bound behind it and never refuses what this
 * gate granted.
 */
export class Gate {
  private running = 0
  private live = 0
  /** first segments among the waiters (what maxQueue bounds) */
  private queued = 0
  /** namespace → socket → waiters, in round-robin order (served entries move to the end) */
  private readonly waiting = new Map<string, Sockets>()
  /** namespace of the latest grant: the next grant goes to another one when any can be served */
  private lastServed?: string
  private closed = false

  constructor(private readonly limits: GateLimits) {}

  /**
   * Resolves once a segment may run; with `instance` (a run's first segment) it also holds a
   * live instance until `releaseInstance`. Call `releaseSegment` when the segment has run.
   * Rejects RuntimeError CAPACITY_EXCEEDED (a first segment while maxQueue already wait; a
   * resume is never refused: it holds an instance already) or SHUTDOWN after `close`.
   */
  acquire(src: Source, instance: boolean): Promise<void> {
    if (this.closed) return Promise.reject(new RuntimeError('SHUTDOWN', 'the runtime has been shut down'))
    if (this.waiting.size === 0 && this.free(instance)) {
      this.grant(src.namespace, instance)
      return Promise.resolve()
    }
    if (instance && this.queued >= this.limits.maxQueue) {
      const { maxInstances, maxQueue } = this.limits
      return Promise.reject(
        new RuntimeError('CAPACITY_EXCEEDED', `the sandbox is at capacity (maxInstances ${maxInstances}) and ${maxQueue} executions already wait`),
      )
    }
    if (instance) this.queued++
    const granted = new Promise<void>((resolve, reject) => this.enqueue(src, { instance, resolve, reject }))
    this.next() // a resume may run now although first segments wait for an instance
    return granted
  }

  releaseSegment(): void {
    this.running--
    this.next()
  }

  releaseInstance(): void {
    this.live--
    this.next()
  }

  /** Segments waiting for a grant. */
  get waiters(): number {
    let n = 0
    for (const sockets of this.waiting.values()) for (const list of sockets.values()) n += list.length
    return n
  }

  /** Fails every waiter with SHUTDOWN; later acquires fail too. */
  close(): void {
    this.closed = true
    const err = new RuntimeError('SHUTDOWN', 'the runtime has been shut down')
    for (const sockets of this.waiting.values()) for (const list of sockets.values()) for (const w of list) w.reject(err)
    this.waiting.clear()
    this.queued = 0
  }

  private free(instance: boolean): boolean {
    return this.running < this.limits.maxConcurrentSegments && (!instance || this.live < this.limits.maxInstances)
  }

  private grant(namespace: string, instance: boolean): void {
    this.running++
    if (instance) this.live++
    this.lastServed = namespace
  }

  private enqueue(src: Source, w: Waiter): void {
    let sockets = this.waiting.get(src.namespace)
    if (!sockets) this.waiting.set(src.namespace, (sockets = new Map()))
    const key = src.socket ?? REST
    let list = sockets.get(key)
    if (!list) sockets.set(key, (list = []))
    list.push(w)
  }

  /** Grant what can run now, one waiter at a time, round-robin (see `pick`). */
  private next(): void {
    while (this.running < this.limits.maxConcurrentSegments && this.waiting.size > 0) {
      const picked = this.pick()
      if (!picked) return
      if (picked.w.instance) this.queued--
      this.grant(picked.namespace, picked.w.instance)
      picked.w.resolve()
    }
  }

  /**
   * The next waiter that can run: the first namespace (not the one served last, when another can
   * be served), its first socket, that socket's oldest waiter a free instance is not missing for
   * (a resume may pass first segments waiting for an instance, which its own end frees); the
   * namespace and the socket then move to the end.
   */
  private pick(): { namespace: string; w: Waiter } | undefined {
    const order = [...this.waiting.keys()]
    if (order.length > 1 && order[0] === this.lastServed) order.push(order.shift() as string)
    for (const namespace of order) {
      const sockets = this.waiting.get(namespace) as Sockets
      for (const [key, list] of sockets) {
        const i = list.findIndex((w) => this.free(w.instance))
        if (i < 0) continue
        const [w] = list.splice(i, 1)
        sockets.delete(key)
        if (list.length > 0) sockets.set(key, list)
        this.waiting.delete(namespace)
        if (sockets.size > 0) this.waiting.set(namespace, sockets)
        return { namespace, w }
      }
    }
    return undefined
  }
}
