import type { CommitRecord, PanelRef, PatchBatch, StoreBackend, StoredPanel } from './types.js'

const keyOf = (ref: PanelRef): string => `${ref.namespace}\u0000${ref.id}`

interface Entry {
  panel: StoredPanel
  log: PatchBatch[]
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
    this.panels.set(key, { panel: { ...panel, state: new Map(panel.state) }, log: [] })
  }

  async commit(records: CommitRecord[]): Promise<void> {
    // check every record first: all or none
    const versions = new Map<string, number>()
    for (const r of records) {
      const key = keyOf(r)
      const e = this.panels.get(key)
      if (!e) throw new Error(`panel ${r.namespace}/${r.id} is not stored`)
      const current = versions.get(key) ?? e.panel.version
      if (r.version !== current + 1) throw new Error(`version conflict on ${r.namespace}/${r.id}: stored ${current}, commit ${r.version}`)
      versions.set(key, r.version)
    }
    for (const r of records) {
      const e = this.panels.get(keyOf(r)) as Entry
      for (const [k, json] of r.changes) {
        if (json === null) e.panel.state.delete(k)
        else e.panel.state.set(k, json)
      }
      e.panel.version = r.version
      e.log.push({ version: r.version, mutations: r.mutations })
      if (e.log.length > this.patchLogMaxEntries) e.log.splice(0, e.log.length - this.patchLogMaxEntries)
    }
  }

  async patches(ref: PanelRef, since: number, limit: number): Promise<PatchBatch[]> {
    const log = this.panels.get(keyOf(ref))?.log ?? []
    return log.filter((b) => b.version > since).slice(0, limit)
  }

  async delete(ref: PanelRef): Promise<void> {
    this.panels.delete(keyOf(ref))
  }

  async close(): Promise<void> {
    this.panels.clear()
  }
}
