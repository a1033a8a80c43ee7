import type { RuntimeErrorCode } from './types.js'

/**
 * Thrown (never returned) when a call to the runtime itself is wrong or cannot be served:
 * `INVALID_INPUT`, `UNKNOWN_EXECUTION`, `CAPACITY_EXCEEDED`, `SHUTDOWN`, `COMPILATION_ERROR`
 * (with `line`/`column`, 1-based, in the handler's own source, and the guest's `guestStack`) and
 * `INTERNAL_ERROR`. The runtime defines only codes: an embedder (the kernel's plugins/errors.ts)
 * owns what each means over HTTP.
 */
export class RuntimeError extends Error {
  readonly code: RuntimeErrorCode
  readonly line?: number
  readonly column?: number
  readonly guestStack?: string

  constructor(code: RuntimeErrorCode, message: string, where: CompileErrorPosition = {}) {
    super(message)
    this.name = 'RuntimeError'
    this.code = code
    if (where.line !== undefined) this.line = where.line
    if (where.column !== undefined) this.column = where.column
    if (where.guestStack !== undefined) this.guestStack = where.guestStack
  }
}

/** Where a COMPILATION_ERROR is, as the addon's error carries it (1-based, in the handler's source). */
export interface CompileErrorPosition {
  line?: number
  column?: number
  guestStack?: string
}
