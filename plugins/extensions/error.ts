import { KernelError } from '../errors.js'

/** HTTP status of each extension error code (used when one surfaces in an HTTP reply). */
const STATUS: Record<string, number> = {
  INVALID_EXTENSION: 400,
  INVALID_REQUEST: 400,
  DOMAIN_NOT_ALLOWED: 403,
  ADDRESS_NOT_ALLOWED: 403,
  EXTENSION_NOT_FOUND: 404,
  METHOD_NOT_FOUND: 404,
  EXTENSION_EXISTS: 409,
  ABORTED: 499,
  RESPONSE_TOO_LARGE: 502,
  REQUEST_FAILED: 502,
  QUEUE_FULL: 503,
  SHUTDOWN: 503,
  TIMEOUT: 504,
}

/**
 * A failed extension call or registration: `code` is one of EXTENSION_NOT_FOUND, METHOD_NOT_FOUND,
 * EXTENSION_EXISTS, INVALID_EXTENSION, INVALID_REQUEST, DOMAIN_NOT_ALLOWED, ADDRESS_NOT_ALLOWED,
 * TIMEOUT, RESPONSE_TOO_LARGE, REQUEST_FAILED, QUEUE_FULL, ABORTED, SHUTDOWN, EXTENSION_ERROR.
 */
export class ExtensionError extends KernelError {
  constructor(code: string, message: string) {
    super(STATUS[code] ?? 500, code, message)
    this.name = 'ExtensionError'
  }
}

