import type { CommitRecord, PanelRef, PatchBatch, StoreBackend, StoredPanel } from './types.js'

const keyOf = (ref: PanelRef): string => `${ref.namespace}\u0000${ref.id}`

/**
 * A panel's patch log, bounded to `max` batches: versions ascend, the oldest are dropped in O(1)
 * per commit (a start index; the array is compacted once the dropped part is as long as `max`).
 */
class PatchLog {
  private batches: PatchBatch[] = []
  private start = 0

  constructor(private readonly max: number) {}

  push(batch: PatchBatch): void {
    this.batches.push(batch)
    if (this.batches.length - this.start > this.max) this.start++
    if (this.start >= this.max) {
      this.batches = this.batches.slice(this.start)
      this.start = 0
    }
  }

  /** Batches with version > `since`, oldest first, at most `limit`. */
  after(since: number, limit: number): PatchBatch[] {
    let lo = this.start
    let hi = this.batches.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.batches[mid].version > since) hi = mid
      else lo = mid + 1
    }
    return this.batches.slice(lo, lo + limit)
  }
}

interface Entry {
  panel: StoredPanel
  log: PatchLog
}

/**
 * The in-process backend: the same contract as sqlite (compare-and-set versions, a bounded
 * patch log, all-or-none group commits), nothing survives the process. For embedding apps that
 * ask for it and for tests.
 */
export class MemoryBackend implements StoreBackend {
  readonly kind = 'memory'
  /** a transaction here costs nothing fixed: write at the end of the job, not a loop turn later */
  readonly grouping = 'job'
  private readonly panels = new Map<string, Entry>()

  constructor(private readonly patchLogMaxEntries: number) {}

  async load(): Promise<StoredPanel[]> {
    return [...this.panels.values()].map((e) => ({ ...e.panel, state: new Map(e.panel.state) }))
  }

  async create(panel: StoredPanel): Promise<void> {
    const key = keyOf(panel)
    if (this.panels.has(key)) throw new Error(`panel ${panel.namespace}/${panel.id} is already stored`)
    this.panels.set(key, { panel: { ...panel, state: new Map(panel.state) }, log: new PatchLog(this.patchLogMaxEntries) })
  }

  async commit(records: CommitRecord[]): Promise<void> {
    // check every record first: all or none (a group may hold several commits of one panel)
    const entries: Entry[] = []
    const versions = new Map<Entry, number>()
    for (const r of records) {
      const e = this.panels.get(keyOf(r))
      if (!e) throw new Error(`panel ${r.namespace}/${r.id} is not stored`)
      const current = versions.get(e) ?? e.panel.version
      if (r.version !== current + 1) throw new Error(`version conflict on ${r.namespace}/${r.id}: stored ${current}, commit ${r.version}`)
      if (records.length > 1) versions.set(e, r.version)
      entries.push(e)
    }
    records.forEach((r, i) => {
      const e = entries[i]
      for (const [k, json] of r.changes) {
        if (json === null) e.panel.state.delete(k)
        else e.panel.state.set(k, json)
      }
      e.panel.version = r.version
      e.log.push({ version: r.version, mutations: r.mutations })
    })
  }

  async patches(ref: PanelRef, since: number, limit: number): Promise<PatchBatch[]> {
    return this.panels.get(keyOf(ref))?.log.after(since, limit) ?? []
  }

  async delete(ref: PanelRef): Promise<void> {
    this.panels.delete(keyOf(ref))
  }

  async close(): Promise<void> {
    this.panels.clear()
  }
}
