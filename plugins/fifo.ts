/**
 * A first-in first-out list whose `shift` is O(1) (a moving head index; the array is compacted
 * once the consumed part is at least half of it), for the queues of the trigger path.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = []
  private head = 0

  /** Items in the list. */
  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.items[this.head]
  }

  /** Removes and returns the oldest item (undefined when empty). */
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head++] = undefined
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head >= 64 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Empties the list, calling `each` on every item, oldest first. */
  drain(each: (item: T) => void): void {
    const items = this.items.slice(this.head)
    this.items = []
    this.head = 0
    for (const item of items) each(item as T)
  }
}
