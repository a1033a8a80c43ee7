import { KernelError, statusOf } from '../errors.js'

/**
 * A failed extension call or registration: `code` is one of EXTENSION_NOT_FOUND, METHOD_NOT_FOUND,
 * EXTENSION_EXISTS, INVALID_EXTENSION, INVALID_REQUEST, DOMAIN_NOT_ALLOWED, ADDRESS_NOT_ALLOWED,
 * TIMEOUT, RESPONSE_TOO_LARGE, REQUEST_FAILED, QUEUE_FULL, ABORTED, SHUTDOWN, EXTENSION_ERROR, or
 * an extension's own code. `statusCode` (used when one surfaces in an HTTP reply) is the code's in
 * the kernel's catalog (plugins/errors.ts ERROR_STATUS), 500 for a code it does not list.
 */
export class ExtensionError extends KernelError {
  constructor(code: string, message: string) {
    super(message)
    this.name = 'ExtensionError'
    this.code = code
    this.statusCode = statusOf(code)
  }
}
