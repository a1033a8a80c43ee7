import { createHash } from 'node:crypto'
import { kernelError } from '../errors.js'
import { MAX_ID_LENGTH } from '../../schemas/workers.js'

/** Hex characters of SHA-256 kept in every generated id. */
export const ID_DIGEST_HEX = 16
const VALID_ID = /^[A-Za-z0-9_:-]+$/

/**
 * Builds an opaque public id `<prefix><sanitized-name>-<16 hex of SHA-256(digestOf)>`, at most 120 chars.
 * The name only makes the id readable; uniqueness comes from the digest (so `foo.bar` and `foo-bar`
 * differ), and a long name is truncated, never the digest. Pass `digestOf` when the readable part must not
 * reveal the value hashed (e.g. a workspace path).
 */
export function opaqueId(prefix: string, name: string, digestOf: string = name): string {
  const digest = createHash('sha256').update(digestOf).digest('hex').slice(0, ID_DIGEST_HEX)
  const budget = Math.max(1, MAX_ID_LENGTH - prefix.length - 1 - ID_DIGEST_HEX)
  let body = sanitize(name).slice(0, budget).replace(/^-+|-+$/g, '')
  if (body === '') body = 'id'
  return `${prefix}${body}-${digest}`.slice(-MAX_ID_LENGTH)
}

/** Lower-cases ASCII letters and digits, keeps `-` and `_`, turns anything else into `-`. */
function sanitize(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .replace(/^-+|-+$/g, '')
}

/** True when `value` is a well-formed public id (1–120 chars of `[A-Za-z0-9_:-]`). */
export function isValidId(value: string): boolean {
  return value.length > 0 && value.length <= MAX_ID_LENGTH && VALID_ID.test(value)
}

/**
 * Rejects a malformed incoming id before any lookup.
 * @throws KernelError 400 INVALID_IDENTIFIER, quoting at most 120 chars of the value.
 */
export function assertValidId(kind: 'runtime_id' | 'worker_id' | 'host_id', value: string): void {
  if (!isValidId(value)) {
    const shown = JSON.stringify(value.slice(0, MAX_ID_LENGTH))
    throw kernelError('INVALID_IDENTIFIER', `${kind} ${shown} is not a valid id (1-120 chars of [A-Za-z0-9_:-])`)
  }
}

/** A display hint safe to show: no control characters or path separators, at most 80 chars. */
export function safeHint(value: string): string {
  return [...value].filter((ch) => ch >= ' ' && ch !== '\u007f' && ch !== '/' && ch !== '\\').slice(0, 80).join('')
}
