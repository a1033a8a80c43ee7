import type { Placement } from '../../wasm-runtime/index.js'

/**
 * Where a run's first segment executes (issue 11, work sharing): the executor's one decision,
 * the runtime only carries it out (`WasmRuntime.execute`'s `placement`).
 *
 * A lone segment runs inline on the event-loop thread: no hop to a worker and back, which is
 * what a single hot panel's serial segments would otherwise pay once each (one event-loop turn
 * per hop). When segments of other owners (panels) are waiting for their turn or running too, a
 * worker thread with nothing to do takes this one while the event loop runs the others inline,
 * so guests run on every core. Only an idle thread is given a segment: the pool's queue stays
 * empty, and a segment never waits behind another on a worker while the event loop could run it.
 * Resumes always run on a worker (the runtime has no inline resume).
 */
export class WorkSharing {
  /** owner → its segments waiting for their turn or running (entries removed at 0) */
  private readonly ready = new Map<unknown, number>()

  /** `idleThreads`: the runtime's worker threads with no job running or queued now. */
  constructor(private readonly idleThreads: () => number) {}

  /**
   * Counts one segment of `owner` (a panel's key; runs without one pass a key of their own) as
   * ready from now until the returned function is called (when it has run, or was dropped).
   */
  enter(owner: unknown): () => void {
    this.ready.set(owner, (this.ready.get(owner) ?? 0) + 1)
    let left = false
    return () => {
      if (left) return
      left = true
      const n = (this.ready.get(owner) ?? 1) - 1
      if (n === 0) this.ready.delete(owner)
      else this.ready.set(owner, n)
    }
  }

  /**
   * Where a segment of `owner` that starts now runs: `pool` when another owner has a segment ready
   * and a worker thread is idle, `inline` otherwise (only this owner's segments are ready, so they
   * run one after another, or every worker is busy).
   */
  place(owner: unknown): Placement {
    const others = this.ready.size - (this.ready.has(owner) ? 1 : 0)
    return others > 0 && this.idleThreads() > 0 ? 'pool' : 'inline'
  }
}
