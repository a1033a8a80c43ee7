/**
 * A panel's committed state, held by the native addon as key → JSON text so that a handler reads
 * only the keys it touches (ABI.md "State"): nothing of the state is serialized into an
 * execution's context, and a trigger that reads one key costs the same whatever the total size.
 *
 * An execution given a `PanelState` reads it as committed at the start of each segment; its
 * owner commits each segment's `stateMutations` with `apply` (the panel manager does, between
 * segments), so a resumed segment sees every commit made while it was suspended.
 */
import { RuntimeError } from './errors.js'
import { addon, type NativePanelState } from './addon.js'
import type { StateMutation } from './types.js'

/** A lone surrogate: such a key would be stored under a different (replaced) key. */
const LONE_SURROGATE = /\p{Cs}/u

export class PanelState {
  /** The addon's object, handed to executions. */
  readonly native: NativePanelState

  /**
   * A state holding the entries of `initial` (keys whose value is `undefined` are left out, as
   * JSON does). Throws RuntimeError INVALID_INPUT as `apply` does.
   */
  constructor(initial: Record<string, unknown> = {}) {
    this.native = new (addon().PanelState)()
    const sets = Object.entries(initial).filter(([, value]) => value !== undefined)
    this.apply(sets.map(([key, value]) => ({ key, value, operation: 'set' })))
  }

  /**
   * Commits a batch of mutations, in order and atomically: every mutation is checked first.
   * Throws RuntimeError INVALID_INPUT (not an array, a key that is not a string of well-formed
   * Unicode, an operation other than set/delete, a set value that is undefined or not
   * JSON-serializable) and then changes nothing. Cost: proportional to the values written.
   */
  apply(mutations: readonly StateMutation[]): void {
    if (!Array.isArray(mutations)) throw invalid(`mutations must be an array, got ${typeof mutations}`)
    const keys: string[] = []
    const values: (string | null)[] = []
    for (const m of mutations) {
      keys.push(checkKey(m?.key))
      values.push(m.operation === 'delete' ? null : m.operation === 'set' ? valueJson(m.key, m.value) : badOperation(m.operation))
    }
    try {
      this.native.apply(keys, values)
    } catch (err) {
      throw invalid((err as Error).message)
    }
  }

  /**
   * Drops every key at once. The addon's memory is not seen by V8's collector, so an owner that
   * is done with a large state clears it rather than waiting for the wrapper to be collected.
   */
  clear(): void {
    this.native.clear()
  }

  /** The committed value of `key` (parsed), or undefined. */
  get(key: string): unknown {
    const json = this.native.get(key)
    return json === null ? undefined : JSON.parse(json)
  }

  /** Whether `key` is committed. */
  has(key: string): boolean {
    return this.native.get(key) !== null
  }

  /** Committed keys, in insertion order. */
  keys(): string[] {
    return this.native.keys()
  }

  /** A plain copy of the whole state (parses every value: cost proportional to the state). */
  toObject(): Record<string, unknown> {
    return JSON.parse(this.native.toJsonText()) as Record<string, unknown>
  }

  /** So that `JSON.stringify(state)` gives the state itself. */
  toJSON(): Record<string, unknown> {
    return this.toObject()
  }

  /** The whole state as JSON text, without parsing it. */
  toJsonText(): string {
    return this.native.toJsonText()
  }

  /** Number of committed keys. */
  get size(): number {
    return this.native.size
  }

  /** Sum of the keys' and JSON values' UTF-8 lengths, bytes. */
  get byteSize(): number {
    return this.native.byteSize
  }
}

function invalid(message: string): RuntimeError {
  return new RuntimeError('INVALID_INPUT', `invalid state mutation: ${message}`)
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid(`a key must be a string, got ${typeof key}`)
  if (LONE_SURROGATE.test(key)) throw invalid(`key ${JSON.stringify(key)} is not well-formed Unicode (a lone surrogate)`)
  return key
}

function valueJson(key: string, value: unknown): string {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    throw invalid(`the value of ${JSON.stringify(key)} is not JSON-serializable: ${(err as Error).message}`)
  }
  if (json === undefined) throw invalid(`the value of ${JSON.stringify(key)} is not JSON (${typeof value})`)
  return json
}

function badOperation(op: unknown): never {
  throw invalid(`operation must be 'set' or 'delete', got ${JSON.stringify(op)}`)
}
