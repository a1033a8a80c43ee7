import { RuntimeError } from '../../wasm-runtime/index.js'
import { Fifo } from '../fifo.js'

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
  /** arrival order across a socket's two queues */
  seq: number
  resolve: () => void
  reject: (err: Error) => void
}

/** One socket's waiters (REST runs of a namespace share one): first segments and resumes apart, so the oldest of each is at hand. */
class SocketWaiters {
  readonly firsts = new Fifo<Waiter>()
  readonly resumes = new Fifo<Waiter>()

  constructor(readonly namespace: string, readonly key: object | symbol) {}

  get empty(): boolean {
    return this.firsts.length === 0 && this.resumes.length === 0
  }

  /** The oldest waiter; with `resumeOnly` the oldest resume (no instance is free for a first segment). */
  take(resumeOnly: boolean): Waiter | undefined {
    const f = this.firsts.peek()
    const r = this.resumes.peek()
    if (r && (resumeOnly || !f || r.seq < f.seq)) return this.resumes.shift()
    return resumeOnly ? undefined : this.firsts.shift()
  }
}

const REST = Symbol('rest')

/**
 * Sockets in round-robin order, grouped by namespace (both levels in Map insertion order: a served
 * entry moves to the end by delete + set, O(1)).
 */
class Rotation {
  readonly namespaces = new Map<string, Map<object | symbol, SocketWaiters>>()

  add(s: SocketWaiters): void {
    let sockets = this.namespaces.get(s.namespace)
    if (!sockets) this.namespaces.set(s.namespace, (sockets = new Map()))
    if (!sockets.has(s.key)) sockets.set(s.key, s)
  }

  /** The first socket of the first namespace, passing `skip` (the namespace served last) when another namespace waits. */
  first(skip: string | undefined): SocketWaiters | undefined {
    const it = this.namespaces.entries()
    let ns = it.next().value
    if (ns && ns[0] === skip && this.namespaces.size > 1) ns = it.next().value
    return ns?.[1].values().next().value
  }

  /** Moves `s` (and its namespace) to the end, or drops it when `keep` is false. */
  served(s: SocketWaiters, keep: boolean): void {
    const sockets = this.namespaces.get(s.namespace)
    if (!sockets?.delete(s.key)) return
    if (keep) sockets.set(s.key, s)
    this.namespaces.delete(s.namespace)
    if (sockets.size > 0) this.namespaces.set(s.namespace, sockets)
  }
}

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
  private count = 0
  private seq = 0
  /** namespace → socket → waiters: every socket with a waiter, in round-robin order */
  private readonly all = new Rotation()
  /** the sockets with a waiting resume, in round-robin order: what can run while no instance is free */
  private readonly resumable = new Rotation()
  /** namespace of the latest grant: the next grant goes to another one when any can be served */
  private lastServed?: string
  private closed = false

  constructor(private readonly limits: GateLimits) {}

  /**
   * Grants a segment: `undefined` when granted at once (no promise, no microtask: the common case
   * on an idle gate), else a promise that resolves at its grant. With `instance` (a run's first
   * segment) it also holds a live instance until `releaseInstance`. Call `releaseSegment` when the
   * segment has run.
   * Rejects RuntimeError CAPACITY_EXCEEDED (a first segment while maxQueue already wait; a
   * resume is never refused: it holds an instance already) or SHUTDOWN after `close`.
   */
  acquire(src: Source, instance: boolean): Promise<void> | undefined {
    if (this.closed) return Promise.reject(new RuntimeError('SHUTDOWN', 'the runtime has been shut down'))
    if (this.count === 0 && this.free(instance)) {
      this.grant(src.namespace, instance)
      return undefined
    }
    if (instance && this.queued >= this.limits.maxQueue) {
      const { maxInstances, maxQueue } = this.limits
      return Promise.reject(
        new RuntimeError('CAPACITY_EXCEEDED', `the sandbox is at capacity (maxInstances ${maxInstances}) and ${maxQueue} executions already wait`),
      )
    }
    const granted = new Promise<void>((resolve, reject) => this.enqueue(src, { instance, seq: this.seq++, resolve, reject }))
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
    return this.count
  }

  /** Fails every waiter with SHUTDOWN; later acquires fail too. */
  close(): void {
    this.closed = true
    const err = new RuntimeError('SHUTDOWN', 'the runtime has been shut down')
    const fail = (w: Waiter) => w.reject(err)
    for (const sockets of this.all.namespaces.values()) {
      for (const s of sockets.values()) {
        s.firsts.drain(fail)
        s.resumes.drain(fail)
      }
    }
    this.all.namespaces.clear()
    this.resumable.namespaces.clear()
    this.queued = 0
    this.count = 0
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
    const key = src.socket ?? REST
    const s = this.all.namespaces.get(src.namespace)?.get(key) ?? new SocketWaiters(src.namespace, key)
    if (w.instance) {
      s.firsts.push(w)
      this.queued++
    } else {
      s.resumes.push(w)
      this.resumable.add(s)
    }
    this.all.add(s)
    this.count++
  }

  /** Grant what can run now, one waiter at a time, round-robin (see `pick`). */
  private next(): void {
    while (this.running < this.limits.maxConcurrentSegments && this.count > 0) {
      const picked = this.pick()
      if (!picked) return
      if (picked.w.instance) this.queued--
      this.count--
      this.grant(picked.namespace, picked.w.instance)
      picked.w.resolve()
    }
  }

  /**
   * The next waiter that can run, O(1): the first namespace (not the one served last, when another
   * can be served), its first socket, that socket's oldest waiter a free instance is not missing
   * for (while no instance is free only sockets with a resume are candidates: a resume may pass
   * first segments waiting for an instance, which its own end frees); the namespace and the
   * socket then move to the end.
   */
  private pick(): { namespace: string; w: Waiter } | undefined {
    const resumeOnly = this.live >= this.limits.maxInstances
    const s = (resumeOnly ? this.resumable : this.all).first(this.lastServed)
    const w = s?.take(resumeOnly)
    if (!s || !w) return undefined
    this.all.served(s, !s.empty)
    this.resumable.served(s, s.resumes.length > 0)
    return { namespace: s.namespace, w }
  }
}
