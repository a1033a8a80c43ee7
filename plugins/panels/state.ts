import { KernelError, kernelError } from '../errors.js'
import type { PanelState } from '../../wasm-runtime/state.js'
import type { StateMutation } from '../../wasm-runtime/types.js'

/** A prepared commit of one batch: the next version, the mutations, and only the keys they change. */
export interface StateCommit {
  version: number
  mutations: StateMutation[]
  /** key → the new value's JSON text, or null for a delete (last write of a key wins) */
  changes: Map<string, string | null>
  /** size of the state after the commit, bytes */
  bytes: number
  /** each changed key's entry size after the commit (key + JSON value, bytes; 0 = deleted), in `changes` order */
  entryBytes: number[]
}

/** Keys whose entry size a state remembers (see `CommittedState.sizes`). */
const REMEMBERED_SIZES = 1024

/** A lone surrogate: such a key would be stored under a different (replaced) key. */
const LONE_SURROGATE = /\p{Cs}/u

const entryBytes = (key: string, json: string): number => Buffer.byteLength(key) + Buffer.byteLength(json)

/**
 * The committed state of one panel: the only place it changes. It holds the sandbox's
 * `PanelState` (key → JSON text in the native addon, read lazily by handlers, ABI.md "State"),
 * the version (bumped once per commit) and the size bound `maxBytes` (each key's UTF-8 length
 * plus its value's JSON length). Changes come in two steps so a commit can be made durable in
 * between: `prepare` (checks, nothing changes) then `apply`.
 */
export class CommittedState {
  /** the addon's byteSize, kept here (it changes only in `apply`): a commit reads no N-API getter for it */
  private size: number
  /**
   * Entry sizes (key + JSON value, bytes; 0 = absent) of keys committed lately, so a commit that
   * rewrites a hot key does not read its old value back from the addon. At most
   * REMEMBERED_SIZES keys (forgotten all at once past that); exact, since only `apply` changes the state.
   */
  private readonly sizes = new Map<string, number>()

  /**
   * @param handle an empty state from `executor.createState()`
   * @param entries key → JSON text of the value (as the store keeps it)
   */
  constructor(readonly handle: PanelState, entries: Map<string, string>, public version: number, private readonly maxBytes: number) {
    if (entries.size > 0) handle.native.apply([...entries.keys()], [...entries.values()])
    this.size = handle.byteSize
  }

  /**
   * The state from a plain object (e.g. `initialState`), with each value's JSON text.
   * @throws KernelError 400 INVALID_STATE (a key that is not well-formed Unicode, a value that
   *   cannot be written as JSON, e.g. nested too deep)
   */
  static entries(obj: Record<string, unknown>): Map<string, string> {
    return new Map(Object.entries(obj).map(([k, v]) => [checkKey(k), toJson(k, v)]))
  }

  /** @throws KernelError 413 STATE_TOO_LARGE when the state is above `maxBytes` (e.g. an initialState) */
  checkSize(): void {
    if (this.bytes > this.maxBytes) throw tooLarge(this.bytes, this.maxBytes)
  }

  /** key → JSON text of each committed value, as the store keeps them. */
  entries(): Map<string, string> {
    return new Map(this.handle.keys().map((k) => [k, this.handle.native.get(k) as string]))
  }

  /** Size of the committed state, bytes. */
  get bytes(): number {
    return this.size
  }

  /**
   * The committed values as one JSON object's text, straight from the addon (nothing parsed; the
   * text goes into GET state replies and CONNECTED frames as is). Cost: proportional to the state.
   */
  json(): string {
    return this.handle.toJsonText()
  }

  /**
   * Check a batch and compute what it changes; changes nothing.
   * @throws KernelError 413 STATE_TOO_LARGE when the state would exceed `maxBytes`, 400 INVALID_STATE
   */
  prepare(mutations: StateMutation[]): StateCommit {
    const changes = new Map<string, string | null>()
    for (const m of mutations) changes.set(checkKey(m.key), m.operation === 'delete' ? null : toJson(m.key, m.value))
    let bytes = this.bytes
    const sizes: number[] = []
    for (const [key, json] of changes) {
      const size = json === null ? 0 : entryBytes(key, json)
      bytes += size - this.entrySize(key)
      sizes.push(size)
    }
    if (bytes > this.maxBytes) throw tooLarge(bytes, this.maxBytes)
    return { version: this.version + 1, mutations, changes, bytes, entryBytes: sizes }
  }

  /** The committed entry size of `key`, bytes (0 when absent). */
  private entrySize(key: string): number {
    const known = this.sizes.get(key)
    if (known !== undefined) return known
    const old = this.handle.native.get(key)
    return old === null ? 0 : entryBytes(key, old)
  }

  /** Apply a prepared commit (after it is durable): one version bump. */
  apply(commit: StateCommit): void {
    const keys = [...commit.changes.keys()]
    this.handle.native.apply(keys, [...commit.changes.values()])
    if (this.sizes.size + keys.length > REMEMBERED_SIZES) this.sizes.clear()
    keys.forEach((key, i) => this.sizes.set(key, commit.entryBytes[i]))
    this.size = commit.bytes
    this.version = commit.version
  }

  /** Free the sandbox's copy at once (it lives outside V8's heap), e.g. when the panel is deleted. */
  clear(): void {
    this.handle.clear()
    this.sizes.clear()
    this.size = 0
  }
}

function checkKey(key: string): string {
  if (LONE_SURROGATE.test(key)) throw kernelError('INVALID_STATE', `state key ${JSON.stringify(key)} is not well-formed Unicode (a lone surrogate)`)
  return key
}

function toJson(key: string, value: unknown): string {
  try {
    return JSON.stringify(value ?? null)
  } catch (err) {
    throw kernelError('INVALID_STATE', `the value of state key ${JSON.stringify(key)} cannot be stored as JSON: ${(err as Error).message}`)
  }
}

function tooLarge(bytes: number, max: number): KernelError {
  return kernelError('STATE_TOO_LARGE', `panel state would be ${bytes} bytes, more than maxStateBytes (${max})`, { bytes, maxStateBytes: max })
}
