import { STATUS_CODES } from 'node:http'

/**
 * A typed error the kernel's routes turn into `{ statusCode, code, error, message }`.
 * Plugins throw it for bad input or unknown resources; `statusCode` is the HTTP status
 * (400, 401, 404, 409, 413, 429, 503 …), `code` a stable machine-readable code.
 */
export class KernelError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly details?: unknown

  constructor(statusCode: number, code: string, message: string, details?: unknown) {
    super(message)
    this.name = 'KernelError'
    this.statusCode = statusCode
    this.code = code
    this.details = details
  }

  /** The reply body for this error. */
  toReply(): { statusCode: number; code: string; error: string; message: string; details?: unknown } {
    const body = {
      statusCode: this.statusCode,
      code: this.code,
      error: STATUS_CODES[this.statusCode] ?? 'Error',
      message: this.message,
    }
    return this.details === undefined ? body : { ...body, details: this.details }
  }
}
