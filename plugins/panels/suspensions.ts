/** A run waiting on extension calls. */
export interface Suspension {
  panelKey: string
  tool: string
  /** the runtime's execution id */
  executionId: string
  /** aborting it cancels the run (the executor cancels the execution and ends it with TIMEOUT) */
  controller: AbortController
  /** ms since the Unix epoch */
  since: number
}

/**
 * Registry of suspended runs. Each registration arms a timer of `timeoutMs` (ms): a run that
 * waits longer on its extension calls is aborted. `settle` disarms it when the run resumes.
 */
export class SuspensionRegistry {
  private readonly entries = new Map<string, { s: Suspension; timer: NodeJS.Timeout }>()

  constructor(private readonly timeoutMs: number) {}

  register(s: Suspension): void {
    this.settle(s.executionId)
    const timer = setTimeout(() => {
      this.entries.delete(s.executionId)
      s.controller.abort(new Error(`suspension exceeded suspensionTimeoutMs (${this.timeoutMs} ms)`))
    }, this.timeoutMs)
    timer.unref()
    this.entries.set(s.executionId, { s, timer })
  }

  settle(executionId: string): void {
    const e = this.entries.get(executionId)
    if (!e) return
    clearTimeout(e.timer)
    this.entries.delete(executionId)
  }

  /** Number of suspended runs, of one panel or of all. */
  count(panelKey?: string): number {
    if (panelKey === undefined) return this.entries.size
    let n = 0
    for (const { s } of this.entries.values()) if (s.panelKey === panelKey) n++
    return n
  }

  /** Abort and forget every suspension (of one panel, or all). */
  cancel(reason: string, panelKey?: string): void {
    for (const [id, { s, timer }] of this.entries) {
      if (panelKey !== undefined && s.panelKey !== panelKey) continue
      clearTimeout(timer)
      this.entries.delete(id)
      s.controller.abort(new Error(reason))
    }
  }
}
