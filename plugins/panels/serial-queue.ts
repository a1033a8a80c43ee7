import { Fifo } from '../fifo.js'

/**
 * A panel's actor queue (DESIGN.md "State consistency"): jobs run one at a time, in the order
 * they were added; a job starts once the one before it has settled (resolved or rejected).
 * Used instead of p-queue on the trigger path: p-queue's priority queue, option objects, timers
 * and events cost about six promises and a binary insert per job; this costs one async call
 * (plus one promise when the job has to wait).
 */
export class SerialQueue {
  /** wake-ups of the jobs waiting for their turn, oldest first */
  private readonly waiting = new Fifo<() => void>()
  private busy = false
  private idle: Array<() => void> = []

  /** Jobs waiting for their turn (the running one not counted), as p-queue's `size`. */
  get size(): number {
    return this.waiting.length
  }

  /** Runs `job` when its turn comes; settles as the job does. */
  async add<T>(job: () => Promise<T>): Promise<T> {
    if (this.busy) await new Promise<void>((wake) => this.waiting.push(wake))
    else this.busy = true
    try {
      return await job()
    } finally {
      this.next()
    }
  }

  /** Resolves once no job runs or waits. */
  onIdle(): Promise<void> {
    if (!this.busy) return Promise.resolve()
    return new Promise((resolve) => this.idle.push(resolve))
  }

  /** Hands the turn to the oldest waiting job (`busy` stays set), or goes idle. */
  private next(): void {
    const wake = this.waiting.shift()
    if (wake) return wake()
    this.busy = false
    const idle = this.idle
    this.idle = []
    for (const resolve of idle) resolve()
  }
}
