import type { PanelDefinition } from '../../schemas/panels.js'
import type { StateMutation } from '../../wasm-runtime/types.js'

/** Which panel a record belongs to: ids are unique per namespace. */
export interface PanelRef {
  namespace: string
  id: string
}

/** A panel as the store keeps it: its definition as created, state one entry per key, version. */
export interface StoredPanel extends PanelRef {
  /** the definition as created (with its id filled in) */
  definition: PanelDefinition
  /** ISO 8601 */
  createdAt: string
  version: number
  /** key → the value's JSON text */
  state: Map<string, string>
}

/** One committed batch of mutations, as the patch log keeps it and PATCH carries it. */
export interface PatchBatch {
  /** the panel version after this batch */
  version: number
  mutations: StateMutation[]
}

/**
 * One commit of one panel: `version` must be the stored version + 1 (compare-and-set, so a
 * backend shared by several kernel nodes refuses a stale writer). `changes` holds only the keys
 * the batch changed: key → new value's JSON text, or `null` for a delete. The batch goes to the
 * patch log, which keeps the last `patchLogMaxEntries` per panel.
 */
export interface CommitRecord extends PanelRef {
  version: number
  changes: Map<string, string | null>
  mutations: StateMutation[]
}

/**
 * A store backend. Every method is async so a networked backend (several kernel nodes) can
 * implement it; `commit` takes a group of records and applies all or none (one transaction).
 * Errors are thrown as they come; the Store wraps them as StoreError.
 */
export interface StoreBackend {
  readonly kind: string
  /**
   * When the Store writes a group of commits. `turn`: everything committed in one turn of the event
   * loop goes in one transaction (flushed on `setImmediate`), for a backend whose transaction has a
   * fixed cost (sqlite: a WAL commit, an fsync with synchronous=full). `job`: as soon as the current
   * job and its microtasks end (`queueMicrotask`), for a backend without that cost (memory), so a
   * hot panel is not held to one commit per turn of the loop.
   */
  readonly grouping: 'turn' | 'job'
  /** Every stored panel (at start-up). */
  load(): Promise<StoredPanel[]>
  /** Add a new panel. */
  create(panel: StoredPanel): Promise<void>
  /** Apply a group of commits atomically: all of them or none. */
  commit(records: CommitRecord[]): Promise<void>
  /** Batches with version > `since`, oldest first, at most `limit`. */
  patches(ref: PanelRef, since: number, limit: number): Promise<PatchBatch[]>
  /** Remove a panel with its state and log. */
  delete(ref: PanelRef): Promise<void>
  close(): Promise<void>
}
