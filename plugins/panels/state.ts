import { KernelError } from '../errors.js'
import type { StateMutation } from '../../wasm-runtime/types.js'

/** A prepared commit of one batch: the next version, the mutations, and only the keys they change. */
export interface StateCommit {
  version: number
  mutations: StateMutation[]
  /** key → the new value's JSON text, or null for a delete (last write of a key wins) */
  changes: Map<string, string | null>
  /** key → the new value (for the keys `changes` sets) */
  values: Map<string, unknown>
  /** size of the state after the commit, bytes */
  bytes: number
}

const entryBytes = (key: string, json: string): number => Buffer.byteLength(key) + Buffer.byteLength(json)

/**
 * The committed state of one panel: the only place it changes. Holds the values, the version
 * (bumped once per commit), and the size in bytes (sum of each key's UTF-8 length plus its
 * value's JSON length), bounded by `maxBytes`. Changes come in two steps so a commit can be made
 * durable in between: `prepare` (checks, nothing changes) then `apply`.
 */
export class PanelState {
  private readonly values: Record<string, unknown> = Object.create(null)
  private readonly sizes = new Map<string, number>()
  private total = 0

  /** @param entries key → JSON text of the value (as the store keeps it) */
  constructor(entries: Map<string, string>, public version: number, private readonly maxBytes: number) {
    for (const [key, json] of entries) this.set(key, JSON.parse(json), json)
  }

  /**
   * The state from a plain object (e.g. `initialState`), with each value's JSON text.
   * @throws KernelError 400 INVALID_STATE when a value cannot be written as JSON (e.g. nested too deep)
   */
  static entries(obj: Record<string, unknown>): Map<string, string> {
    return new Map(Object.entries(obj).map(([k, v]) => [k, toJson(k, v)]))
  }

  /** @throws KernelError 413 STATE_TOO_LARGE when the state is above `maxBytes` (e.g. an initialState) */
  checkSize(): void {
    if (this.total > this.maxBytes) throw tooLarge(this.total, this.maxBytes)
  }

  /** key → JSON text of each committed value, as the store keeps them. */
  entries(): Map<string, string> {
    return PanelState.entries(this.values)
  }

  /** Size of the committed state, bytes. */
  get bytes(): number {
    return this.total
  }

  /**
   * The committed values, live: read it synchronously (the executor serializes it at once; a
   * reply is encoded at once) and never keep it across a commit. `copy()` for anything else.
   */
  view(): Readonly<Record<string, unknown>> {
    return this.values
  }

  /** A shallow copy of the committed values. */
  copy(): Record<string, unknown> {
    return { ...this.values }
  }

  /** The committed value of one key (undefined when unset). */
  get(key: string): unknown {
    return Object.hasOwn(this.values, key) ? this.values[key] : undefined
  }

  /**
   * Check a batch and compute what it changes; changes nothing.
   * @throws KernelError 413 STATE_TOO_LARGE when the state would exceed `maxBytes`, 400 INVALID_STATE
   */
  prepare(mutations: StateMutation[]): StateCommit {
    const changes = new Map<string, string | null>()
    const values = new Map<string, unknown>()
    for (const m of mutations) {
      if (m.operation === 'delete') changes.set(m.key, null)
      else {
        changes.set(m.key, toJson(m.key, m.value))
        values.set(m.key, m.value ?? null)
      }
    }
    let bytes = this.total
    for (const [key, json] of changes) {
      bytes -= this.sizes.get(key) ?? 0
      if (json !== null) bytes += entryBytes(key, json)
    }
    if (bytes > this.maxBytes) throw tooLarge(bytes, this.maxBytes)
    return { version: this.version + 1, mutations, changes, values, bytes }
  }

  /** Apply a prepared commit (after it is durable). */
  apply(commit: StateCommit): void {
    for (const [key, json] of commit.changes) {
      if (json === null) this.remove(key)
      else this.set(key, commit.values.get(key), json)
    }
    this.version = commit.version
  }

  private set(key: string, value: unknown, json: string): void {
    this.total += entryBytes(key, json) - (this.sizes.get(key) ?? 0)
    this.sizes.set(key, entryBytes(key, json))
    // defineProperty: a key like "__proto__" becomes plain data, never the prototype
    Object.defineProperty(this.values, key, { value, enumerable: true, writable: true, configurable: true })
  }

  private remove(key: string): void {
    this.total -= this.sizes.get(key) ?? 0
    this.sizes.delete(key)
    delete this.values[key]
  }
}

function toJson(key: string, value: unknown): string {
  try {
    return JSON.stringify(value ?? null)
  } catch (err) {
    throw new KernelError(400, 'INVALID_STATE', `the value of state key ${JSON.stringify(key)} cannot be stored as JSON: ${(err as Error).message}`)
  }
}

function tooLarge(bytes: number, max: number): KernelError {
  return new KernelError(413, 'STATE_TOO_LARGE', `panel state would be ${bytes} bytes, more than maxStateBytes (${max})`, { bytes, maxStateBytes: max })
}
