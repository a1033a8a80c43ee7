/** How a wait on the extension calls of a suspension ended when the calls did not settle first. */
export type Interrupted = 'expired' | 'aborted'

interface Entry {
  owner?: string
  end: (why: Interrupted) => void
}

/**
 * The one table of suspended runs and its one timer per suspension (issue 11): an entry lives
 * from the moment a segment suspends until its extension calls have settled. The timer bounds
 * only that wait (`timeoutMs`, the executor's `suspensionTimeoutMs`); the time a resume then
 * spends queued for its panel's turn and the gate is bounded by the segments ahead of it, each
 * of which has its own `timeoutMs` (DESIGN.md "State consistency").
 */
export class Suspensions {
  private readonly entries = new Set<Entry>()

  constructor(readonly timeoutMs: number) {}

  /**
   * Waits for `calls` (which must not reject), for at most `timeoutMs`, and no longer than
   * `signal` stays unaborted. Resolves with the calls' value, or with why the wait ended first
   * (then the caller cancels the execution; the calls are left to their own signal).
   */
  wait<T>(calls: Promise<T>, owner?: string, signal?: AbortSignal): Promise<T | Interrupted> {
    if (signal?.aborted) return Promise.resolve('aborted')
    return new Promise((resolve) => {
      const entry: Entry = { owner, end: (why) => settle(why) }
      const timer = setTimeout(() => settle('expired'), this.timeoutMs)
      timer.unref()
      const onAbort = () => settle('aborted')
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (value: T | Interrupted) => {
        if (!this.entries.delete(entry)) return
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        resolve(value)
      }
      this.entries.add(entry)
      void calls.then(settle)
    })
  }

  /** Runs waiting on extension calls: all, or those of one owner (a panel). */
  count(owner?: string): number {
    if (owner === undefined) return this.entries.size
    let n = 0
    for (const e of this.entries) if (e.owner === owner) n++
    return n
  }

  /** Ends every wait as `aborted` (the executor is closing). */
  abortAll(): void {
    for (const e of [...this.entries]) e.end('aborted')
  }
}
