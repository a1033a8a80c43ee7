import { availableParallelism } from 'node:os'
import { RuntimeError } from './errors.js'

/**
 * Default `workerThreads`: every core but one, which stays Node's event loop's (issue 10 item 3:
 * guests on more threads than cores starve the loop), at least 1.
 */
export function defaultWorkerThreads(): number {
  return Math.max(1, availableParallelism() - 1)
}

/**
 * Admission control: at most `max` live instances (running + suspended); up to `maxQueue`
 * callers wait in FIFO order for one, and callers beyond that fail fast with CAPACITY_EXCEEDED.
 * Admitted calls then run on the addon's `workerThreads` threads, queueing there while all are
 * busy (`RuntimeStats.running` / `queued` count both stages).
 */
export class Slots {
  private used = 0
  private readonly queue: { resolve: () => void; reject: (e: Error) => void }[] = []
  private closed = false

  constructor(private readonly max: number, private readonly maxQueue: number) {}

  get inUse(): number {
    return this.used
  }

  get waiting(): number {
    return this.queue.length
  }

  /** Resolves once a slot is held. Rejects CAPACITY_EXCEEDED when the queue is full, SHUTDOWN after close. */
  acquire(): Promise<void> {
    if (this.closed) return Promise.reject(new RuntimeError('SHUTDOWN', 'the runtime has been shut down'))
    if (this.used < this.max) {
      this.used++
      return Promise.resolve()
    }
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(
        new RuntimeError('CAPACITY_EXCEEDED', `all ${this.max} sandbox instances are busy and ${this.maxQueue} calls already wait`),
      )
    }
    return new Promise((resolve, reject) => this.queue.push({ resolve, reject }))
  }

  /** Hands the slot to the next waiter, or frees it. */
  release(): void {
    const next = this.queue.shift()
    if (next) next.resolve()
    else this.used = Math.max(0, this.used - 1)
  }

  /** Fails every waiter with SHUTDOWN; later acquires fail too. */
  close(): void {
    this.closed = true
    for (const w of this.queue.splice(0)) w.reject(new RuntimeError('SHUTDOWN', 'the runtime has been shut down'))
  }
}
