import type { TranscriptItem } from '../../schemas/workers.js'
import type { WorkerEvent } from './runtime.js'

/** A page cut from a transcript (positions are 0-based; item sequence = position + 1). */
export interface TranscriptSlice {
  start: number
  limit: number
  total_items: number
  first_start: number
  next_start: number | null
  items: TranscriptItem[]
}

/** Bytes an item is charged: its content and role as UTF-8, plus a fixed overhead for the rest of the record. */
export const ITEM_OVERHEAD_BYTES = 64

function itemBytes(role: string, content: string): number {
  return Buffer.byteLength(content) + role.length + ITEM_OVERHEAD_BYTES
}

/**
 * The byte budget shared by every transcript of one runtime. When an append takes it over `maxBytes`,
 * the namespace holding the most bytes gives up its oldest items (oldest transcript first), so a
 * namespace that floods output trims its own history before anyone else's.
 */
export class TranscriptPool {
  private readonly byNamespace = new Map<string, { bytes: number; transcripts: Set<Transcript> }>()
  private used = 0

  constructor(readonly maxBytes: number) {}

  /** Bytes held by every transcript of the runtime. */
  get bytes(): number {
    return this.used
  }

  /** @internal Transcript → pool accounting. */
  add(ns: string, transcript: Transcript): void {
    let entry = this.byNamespace.get(ns)
    if (!entry) this.byNamespace.set(ns, (entry = { bytes: 0, transcripts: new Set() }))
    entry.transcripts.add(transcript)
  }

  /** @internal */
  charge(ns: string, bytes: number): void {
    this.used += bytes
    this.byNamespace.get(ns)!.bytes += bytes
  }

  /** @internal A transcript leaves the pool (its worker was forgotten). */
  remove(ns: string, transcript: Transcript): void {
    const entry = this.byNamespace.get(ns)
    if (!entry?.transcripts.delete(transcript)) return
    this.charge(ns, -transcript.bytes)
    if (entry.transcripts.size === 0) this.byNamespace.delete(ns)
  }

  /** @internal Trim until the pool fits again; `keep` is the item just appended (never dropped). */
  settle(keep: Transcript): void {
    while (this.used > this.maxBytes) {
      let victim: { bytes: number; transcripts: Set<Transcript> } | undefined
      for (const entry of this.byNamespace.values()) if (!victim || entry.bytes > victim.bytes) victim = entry
      const transcript = victim && [...victim.transcripts].find((t) => t.retained > (t === keep ? 1 : 0))
      if (!transcript) return
      transcript.dropOldest()
    }
  }
}

/**
 * A worker's transcript, bounded in items and bytes and ring-buffered (an append is O(1); old items are
 * dropped from the head, never spliced), plus its live listeners. Sequences keep counting, so a dropped
 * item's position is simply below `first_start`. `nextEventId` is shared by a runtime so event ids order
 * events across its workers; the `pool` bounds the bytes of all of a runtime's transcripts together.
 */
export class Transcript {
  private items: TranscriptItem[] = []
  private sizes: number[] = []
  private head = 0
  private appended = 0
  private held = 0
  private readonly listeners = new Set<(event: WorkerEvent) => void>()

  constructor(
    private readonly limits: { maxItems: number; maxBytes: number },
    /** The next event id of the runtime; with `n`, reserves `n` ids and returns the last. */
    private readonly nextEventId: (n?: number) => number,
    private readonly pool: TranscriptPool,
    private readonly namespace: string,
  ) {
    pool.add(namespace, this)
  }

  /** Number of items ever appended. */
  get total(): number {
    return this.appended
  }

  /** Items still held. */
  get retained(): number {
    return this.items.length - this.head
  }

  /** Bytes still held (as charged, see {@link ITEM_OVERHEAD_BYTES}). */
  get bytes(): number {
    return this.held
  }

  /** Appends one item, drops the oldest beyond the bounds, and tells every listener. */
  append(role: string, content: string): TranscriptItem {
    this.appended += 1
    const item: TranscriptItem = {
      sequence: this.appended,
      role,
      content,
      event_id: this.nextEventId(),
      at: new Date().toISOString(),
    }
    const size = itemBytes(role, content)
    this.items.push(item)
    this.sizes.push(size)
    this.held += size
    this.pool.charge(this.namespace, size)
    while (this.retained > 1 && (this.retained > this.limits.maxItems || this.held > this.limits.maxBytes)) this.dropOldest()
    this.pool.settle(this)
    this.emit({ type: 'ITEM', item })
    return item
  }

  /**
   * Appends many items of one role (a batch of output lines). With no live listener, the items that
   * the bounds would drop at once are only counted (sequences and event ids advance), never built.
   */
  appendAll(role: string, contents: string[]): void {
    let first = 0
    if (this.listeners.size === 0) {
      let bytes = 0
      first = contents.length
      while (first > 0 && contents.length - first < this.limits.maxItems) {
        bytes += itemBytes(role, contents[first - 1])
        if (bytes > this.limits.maxBytes && first < contents.length) break
        first--
      }
      this.skip(first)
    }
    for (let i = first; i < contents.length; i++) this.append(role, contents[i])
  }

  /** Counts `n` items as appended and dropped at once (positions and event ids move on). */
  private skip(n: number): void {
    if (n === 0) return
    // Every retained item is older than the skipped ones, so it goes first.
    while (this.retained > 0) this.dropOldest()
    this.appended += n
    this.nextEventId(n)
  }

  /** @internal Drop the oldest retained item (bounds and the runtime pool). */
  dropOldest(): void {
    const size = this.sizes[this.head]
    this.head += 1
    this.held -= size
    this.pool.charge(this.namespace, -size)
    // Compact now and then so dropped items do not pile up in the arrays.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.sizes = this.sizes.slice(this.head)
      this.head = 0
    }
  }

  /** Items at positions [start, start + limit) that are still retained. */
  page(start: number, limit: number): TranscriptSlice {
    const firstStart = this.appended - this.retained
    const from = Math.max(start, firstStart)
    const at = this.head + from - firstStart
    const items = limit === 0 ? [] : this.items.slice(at, at + limit)
    const end = from + items.length
    return {
      start,
      limit,
      total_items: this.appended,
      first_start: firstStart,
      next_start: end < this.appended && limit > 0 ? end : null,
      items,
    }
  }

  /** Sends `event` to every listener; a throwing listener is dropped, not fatal. */
  emit(event: WorkerEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {
        this.listeners.delete(listener)
      }
    }
  }

  /** Adds a live listener; returns its unsubscribe function. */
  subscribe(listener: (event: WorkerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Drops every listener and releases the transcript's bytes (the worker is forgotten or the runtime closes). */
  clear(): void {
    this.listeners.clear()
    this.pool.remove(this.namespace, this)
    this.items = []
    this.sizes = []
    this.head = 0
    this.held = 0
  }
}
