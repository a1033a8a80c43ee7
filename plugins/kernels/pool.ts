/**
 * The prespawn pool (Kernel Gateway's `prespawn_count`, DAE's kernel pool): per kernelspec, kernels
 * that are started and ready but never ran user code. A claim takes one at once; the pool refills one
 * kernel at a time, and only after the claim has been answered (cocalc #7139: a refill must not slow the
 * start it replaces).
 */
import type { Kernel } from './kernel.js'

/** `{ target, ready, starting }` of one kernelspec's pool. */
export interface PoolStatus {
  target: number
  ready: number
  starting: number
}

/** Options of the pool. `create` makes a kernel (not started) owned by no namespace. */
export interface PoolOptions {
  size: number
  names: string[]
  autoRefill: boolean
  create: (name: string) => Kernel
  /** May one more kernel start now (global cap)? */
  hasRoom: () => boolean
  log: { warn(obj: object, msg?: string): void }
}

/** The pools of every preloaded kernelspec. */
export class KernelPool {
  private readonly ready = new Map<string, Kernel[]>()
  private readonly starting = new Map<string, number>()
  private filling?: Promise<void>
  private current?: Kernel
  private closed = false

  constructor(private readonly options: PoolOptions) {
    for (const name of options.names) {
      this.ready.set(name, [])
      this.starting.set(name, 0)
    }
  }

  /** Pooled kernels (ready ones) count toward the global cap. */
  get size(): number {
    let n = 0
    for (const list of this.ready.values()) n += list.length
    for (const s of this.starting.values()) n += s
    return n
  }

  /** A ready kernel of `name` (removed from the pool), or undefined. Schedules a refill when auto-refill is on. */
  claim(name: string): Kernel | undefined {
    const list = this.ready.get(name)
    const kernel = list?.find((k) => k.state === 'idle' && !k.used)
    if (!kernel || !list) return undefined
    list.splice(list.indexOf(kernel), 1)
    if (this.options.autoRefill) setImmediate(() => this.fill())
    return kernel
  }

  /** Starts missing kernels, one at a time across all kernelspecs. */
  fill(): void {
    if (this.filling || this.closed) return
    this.filling = this.fillLoop().finally(() => (this.filling = undefined))
  }

  private async fillLoop(): Promise<void> {
    for (;;) {
      const name = this.options.names.find((n) => (this.ready.get(n)?.length ?? 0) + (this.starting.get(n) ?? 0) < this.options.size)
      if (!name || this.closed || !this.options.hasRoom()) return
      this.starting.set(name, (this.starting.get(name) ?? 0) + 1)
      const kernel = this.options.create(name)
      this.current = kernel
      try {
        await kernel.start()
        if (this.closed) await kernel.shutdown('now')
        else this.ready.get(name)?.push(kernel)
      } catch (err) {
        if (!this.closed) this.options.log.warn({ err, kernel: name }, 'kernels: pool refill failed')
        return
      } finally {
        this.current = undefined
        this.starting.set(name, (this.starting.get(name) ?? 1) - 1)
      }
    }
  }

  /** Per kernelspec `{ target, ready, starting }`. */
  status(): Record<string, PoolStatus> {
    const out: Record<string, PoolStatus> = {}
    for (const name of this.options.names) {
      out[name] = { target: this.options.size, ready: this.ready.get(name)?.length ?? 0, starting: this.starting.get(name) ?? 0 }
    }
    return out
  }

  /** Shuts every pooled kernel down; a start still running is abandoned. */
  async close(): Promise<void> {
    this.closed = true
    this.current?.abort()
    const all = [...this.ready.values()].flat()
    for (const list of this.ready.values()) list.length = 0
    await Promise.all([...all.map((k) => k.shutdown('now')), this.filling])
  }
}
