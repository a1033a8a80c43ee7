import { ExtensionError } from './error.js'

interface Waiter {
  grant: () => void
}

/** `max` concurrent slots with a FIFO queue of at most `maxQueue` waiters. */
export class Slots {
  #free: number
  readonly #queue: Waiter[] = []

  constructor(max: number, private readonly maxQueue: number) {
    this.#free = max
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#queue.length
  }

  /**
   * Resolves to a release function once a slot is free.
   * @throws ExtensionError QUEUE_FULL when `maxQueue` callers already wait; rejects with the
   *   signal's reason if it aborts while waiting (the place in the queue is given up).
   */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason)
    if (this.#free > 0) {
      this.#free--
      return Promise.resolve(this.#releaser())
    }
    if (this.#queue.length >= this.maxQueue) {
      return Promise.reject(new ExtensionError('QUEUE_FULL', `Too many http calls waiting (${this.maxQueue})`))
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter)
        if (i !== -1) this.#queue.splice(i, 1)
        reject(signal.reason)
      }
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort)
          resolve(this.#releaser())
        },
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(waiter)
    })
  }

  #releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.#queue.shift()
      if (next) next.grant() // hand the slot over directly: no barging
      else this.#free++
    }
  }
}
