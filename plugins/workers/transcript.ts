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

/**
 * A worker's bounded transcript plus its live listeners. Keeps the newest `maxItems` items; sequences
 * keep counting, so a dropped item's position is simply below `first_start`. `nextEventId` is shared by
 * a runtime so event ids order events across its workers.
 */
export class Transcript {
  private readonly items: TranscriptItem[] = []
  private appended = 0
  private readonly listeners = new Set<(event: WorkerEvent) => void>()

  constructor(
    private readonly maxItems: number,
    private readonly nextEventId: () => number,
  ) {}

  /** Number of items ever appended. */
  get total(): number {
    return this.appended
  }

  /** Appends one item, drops the oldest beyond the bound, and tells every listener. */
  append(role: string, content: string): TranscriptItem {
    this.appended += 1
    const item: TranscriptItem = {
      sequence: this.appended,
      role,
      content,
      event_id: this.nextEventId(),
      at: new Date().toISOString(),
    }
    this.items.push(item)
    if (this.items.length > this.maxItems) this.items.splice(0, this.items.length - this.maxItems)
    this.emit({ type: 'ITEM', item })
    return item
  }

  /** Items at positions [start, start + limit) that are still retained. */
  page(start: number, limit: number): TranscriptSlice {
    const firstStart = this.appended - this.items.length
    const from = Math.max(start, firstStart)
    const items = limit === 0 ? [] : this.items.slice(from - firstStart, from - firstStart + limit)
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

  /** Drops every listener (runtime shutdown). */
  clear(): void {
    this.listeners.clear()
  }
}
