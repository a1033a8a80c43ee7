import { availableParallelism } from 'node:os'
import type { RuntimeErrorCode } from './types.js'

/**
 * Default `workerThreads`: every core but one, which stays Node's event loop's (issue 10 item 3:
 * guests on more threads than cores starve the loop), at least 1.
 */
export function defaultWorkerThreads(): number {
  return Math.max(1, availableParallelism() - 1)
}

/**
 * Thrown (never returned) when a call to the runtime itself is wrong or cannot be served:
 * `INVALID_INPUT`, `UNKNOWN_EXECUTION`, `CAPACITY_EXCEEDED`, `SHUTDOWN`, `COMPILATION_ERROR`
 * (with `line`/`column`, 1-based, in the handler's own source) and `INTERNAL_ERROR`.
 */
export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode | 'INTERNAL_ERROR'
  readonly line?: number
  readonly column?: number

  constructor(code: RuntimeError['code'], message: string, position: { line?: number; column?: number } = {}) {
    super(message)
    this.name = 'RuntimeError'
    this.code = code
    if (position.line !== undefined) this.line = position.line
    if (position.column !== undefined) this.column = position.column
  }
}
