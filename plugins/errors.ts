import { STATUS_CODES } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

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

/** The `{ statusCode, code, error, message }` body for any error a request may end with. */
export type ErrorReplyBody = ReturnType<KernelError['toReply']>

/** Fastify's own error codes, mapped to our status + code. */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_VALIDATION: [400, 'VALIDATION_ERROR'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'INVALID_CONTENT_LENGTH'],
}

interface FastifyishError {
  code?: unknown
  statusCode?: unknown
  validation?: unknown
  message?: unknown
}

/**
 * Maps any thrown value to a reply body: KernelError as is; Fastify validation (400
 * VALIDATION_ERROR), body limit (413 PAYLOAD_TOO_LARGE), bad JSON (400 INVALID_JSON), media type
 * (415); other 4xx keep their status (401 becomes UNAUTHORIZED); everything else is a 500
 * INTERNAL_ERROR whose message is not leaked.
 */
export function toErrorReply(err: unknown): ErrorReplyBody {
  if (err instanceof KernelError) return err.toReply()
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyishError
  const message = typeof e.message === 'string' ? e.message : String(err)
  const known = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined
  if (known) return new KernelError(known[0], known[1], message).toReply()
  if (e.validation !== undefined) return new KernelError(400, 'VALIDATION_ERROR', message).toReply()
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status === 401) return new KernelError(401, 'UNAUTHORIZED', message).toReply()
  if (status >= 400 && status < 500) {
    return new KernelError(status, typeof e.code === 'string' ? e.code : 'BAD_REQUEST', message).toReply()
  }
  return new KernelError(500, 'INTERNAL_ERROR', 'Internal Server Error').toReply()
}

/**
 * Error + not-found handlers for the context it is registered in (and its children): every error
 * becomes `{ statusCode, code, error, message }`; unknown routes answer 404 ROUTE_NOT_FOUND.
 * Registered by the app before any route plugin.
 */
export const errorHandler = fp(
  async (fastify: FastifyInstance) => {
    fastify.setErrorHandler((err, request, reply) => {
      const body = toErrorReply(err)
      if (body.statusCode >= 500) request.log.error({ err }, 'request failed')
      else request.log.info({ code: body.code, statusCode: body.statusCode }, body.message)
      return reply.code(body.statusCode).send(body)
    })
    fastify.setNotFoundHandler((request, reply) => {
      const body = new KernelError(404, 'ROUTE_NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`)
      return reply.code(404).send(body.toReply())
    })
  },
  { name: 'errors', fastify: '5.x' },
)
