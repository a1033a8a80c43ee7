import { STATUS_CODES } from 'node:http'
import createError from '@fastify/error'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { RuntimeError } from '../wasm-runtime/errors.js'

/**
 * The HTTP status of every error code the kernel answers with: the one place a code's status is
 * defined (the wasm-runtime's RuntimeError codes included: the runtime defines codes, the kernel
 * what they mean over HTTP). One `CODE: status,` line each, sorted by status then code; the
 * error-model codemod adds the codes of new throw sites here.
 */
export const ERROR_STATUS = {
  COMPILATION_ERROR: 400,
  CWD_OUTSIDE_WORKSPACE: 400,
  DUPLICATE_TOOL: 400,
  ENV_NOT_ALLOWED: 400,
  INVALID_ARGS: 400,
  INVALID_ARGS_SCHEMA: 400,
  INVALID_BODY: 400,
  INVALID_CONTENT_LENGTH: 400,
  INVALID_CWD: 400,
  INVALID_DEFINITION: 400,
  INVALID_EXECUTE_REQUEST: 400,
  INVALID_EXTENSION: 400,
  INVALID_IDENTIFIER: 400,
  INVALID_INPUT: 400,
  INVALID_JSON: 400,
  INVALID_KERNEL_REQUEST: 400,
  INVALID_LIMIT: 400,
  INVALID_MESSAGE: 400,
  INVALID_QUERY: 400,
  INVALID_REQUEST: 400,
  INVALID_SESSION_REQUEST: 400,
  INVALID_SIGNAL: 400,
  INVALID_SINCE: 400,
  INVALID_SIZE: 400,
  INVALID_SPAWN_REQUEST: 400,
  INVALID_STATE: 400,
  JSON_TOO_DEEP: 400,
  LIMIT_TOO_LARGE: 400,
  MOUNT_FAILED: 400,
  SCRIPT_NOT_FOUND: 400,
  SCRIPT_OUTSIDE_WORKSPACE: 400,
  UNKNOWN_KERNEL_NAME: 400,
  UNKNOWN_PROCESS_TYPE: 400,
  UNSUPPORTED_KERNEL_MODE: 400,
  VALIDATION_ERROR: 400,
  WORKERD_START_FAILED: 400,
  UNAUTHORIZED: 401,
  ADDRESS_NOT_ALLOWED: 403,
  DOMAIN_NOT_ALLOWED: 403,
  ORIGIN_NOT_ALLOWED: 403,
  EXECUTION_NOT_FOUND: 404,
  EXTENSION_NOT_FOUND: 404,
  KERNEL_NOT_FOUND: 404,
  METHOD_NOT_FOUND: 404,
  PANEL_NOT_FOUND: 404,
  PROCESS_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  TOOL_NOT_FOUND: 404,
  UNKNOWN_RUNTIME: 404,
  UNKNOWN_WORKER: 404,
  CANCELLED: 409,
  DUPLICATE_RUNTIME: 409,
  EXTENSION_EXISTS: 409,
  KERNEL_DEAD: 409,
  KERNEL_RESTARTING: 409,
  NOT_A_TTY: 409,
  PANEL_EXISTS: 409,
  PROCESS_EXITED: 409,
  KERNEL_GONE: 410,
  PATCHES_EXPIRED: 410,
  CODE_TOO_LARGE: 413,
  INPUT_TOO_LARGE: 413,
  PAYLOAD_TOO_LARGE: 413,
  STATE_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HOST_NOT_ALLOWED: 421,
  UPGRADE_REQUIRED: 426,
  EXECUTION_QUEUE_FULL: 429,
  INPUT_BACKLOG_FULL: 429,
  NAMESPACE_BUSY: 429,
  NAMESPACE_KERNEL_LIMIT: 429,
  NAMESPACE_QUOTA: 429,
  NAMESPACE_QUOTA_EXCEEDED: 429,
  PANEL_BUSY: 429,
  SOCKET_BUSY: 429,
  TOO_MANY_KERNELS: 429,
  TOO_MANY_PANELS: 429,
  TOO_MANY_PROCESSES: 429,
  ABORTED: 499,
  EXTENSION_ERROR: 500,
  INTERNAL_ERROR: 500,
  INVALID_CONFIG: 500,
  KERNEL_START_FAILED: 500,
  RESTORE_FAILED: 500,
  SPAWN_FAILED: 500,
  UNKNOWN_EXECUTION: 500,
  REQUEST_FAILED: 502,
  RESPONSE_TOO_LARGE: 502,
  CAPACITY_EXCEEDED: 503,
  INSPECTOR_NOT_BUILT: 503,
  KERNEL_UNAVAILABLE: 503,
  QUEUE_FULL: 503,
  SHUTDOWN: 503,
  SHUTTING_DOWN: 503,
  STORE_ERROR: 503,
  KERNEL_START_TIMEOUT: 504,
  TIMEOUT: 504,
} as const satisfies Record<string, number>

/** A code of the kernel's catalog (`ERROR_STATUS`). */
export type ErrorCode = keyof typeof ERROR_STATUS

/** The `{ statusCode, code, error, message, details? }` body of every error reply. */
export interface ErrorReplyBody {
  statusCode: number
  code: string
  error: string
  message: string
  details?: unknown
}

/**
 * A typed error the kernel's routes turn into `{ statusCode, code, error, message, details? }`:
 * `code` a stable machine-readable code, `statusCode` its HTTP status (400, 401, 404, 409, 413,
 * 429, 503 …). Raise one with `kernelError(code, message, details?)` (catalog codes) or a class
 * from `defineError` (an application's own codes); both are @fastify/error classes whose
 * prototype is this one, so `instanceof KernelError` holds for every coded error.
 */
export class KernelError extends Error {
  declare code: string
  declare statusCode: number
  declare details?: unknown

  /** The reply body for this error. */
  toReply(): ErrorReplyBody {
    return replyBody(this.statusCode, this.code, this.message, this.details)
  }
}

/** Builds a KernelError of one code: `message` verbatim, `details` (any JSON) when given. */
export type KernelErrorFactory = (message: string, details?: unknown) => KernelError

/**
 * A factory of coded errors outside the kernel's catalog (an application's own route plugins):
 * `const noteNotFound = defineError('NOTE_NOT_FOUND', 404); throw noteNotFound('no note 7')`.
 */
export function defineError(code: string, statusCode: number): KernelErrorFactory {
  const Class = createError(code, '%s', statusCode, KernelError as unknown as ErrorConstructor)
  return (message, details) => {
    const err = new Class(message) as unknown as KernelError
    err.name = 'KernelError'
    if (details !== undefined) err.details = details
    return err
  }
}

const FACTORIES = Object.fromEntries(
  Object.entries(ERROR_STATUS).map(([code, status]) => [code, defineError(code, status)]),
) as Record<ErrorCode, KernelErrorFactory>

/**
 * The one way to raise a kernel error: `throw kernelError('PANEL_NOT_FOUND', 'panel "x" not found')`
 * answers 404 with that code and message (status from `ERROR_STATUS`).
 */
export function kernelError(code: ErrorCode, message: string, details?: unknown): KernelError {
  return FACTORIES[code](message, details)
}

/** The catalog's status of `code`, 500 for a code it does not list (an extension's own). */
export function statusOf(code: string): number {
  return (ERROR_STATUS as Record<string, number>)[code] ?? 500
}

/**
 * `err` with another status, for the one protocol that prescribes its own: Jupyter's sessions API
 * answers 501 when a kernel cannot start (plugins/kernels/sessions.ts). Code, message and details
 * stay.
 */
export function withStatus(err: KernelError, statusCode: number): KernelError {
  return defineError(err.code, statusCode)(err.message, err.details)
}

/**
 * The kernel's error for anything a plugin caught: a KernelError as is, a wasm-runtime
 * RuntimeError by its code (CAPACITY_EXCEEDED / SHUTDOWN 503, INVALID_INPUT / COMPILATION_ERROR
 * 400, UNKNOWN_EXECUTION / INTERNAL_ERROR 500), anything else 500 INTERNAL_ERROR with its message.
 */
export function toKernelError(err: unknown): KernelError {
  if (err instanceof KernelError) return err
  if (err instanceof RuntimeError) return kernelError(err.code, err.message)
  return kernelError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err))
}

function replyBody(statusCode: number, code: string, message: string, details: unknown): ErrorReplyBody {
  const body = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  return details === undefined ? body : { ...body, details }
}

/** Fastify's own error codes, mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_VALIDATION: 'VALIDATION_ERROR',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
}

interface FastifyishError {
  code?: unknown
  statusCode?: unknown
  validation?: unknown
  message?: unknown
}

/**
 * Maps any thrown value to a reply body: KernelError as is, RuntimeError by its code (see
 * `toKernelError`); Fastify validation (400 VALIDATION_ERROR), body limit (413 PAYLOAD_TOO_LARGE),
 * bad JSON (400 INVALID_JSON), media type (415); other 4xx keep their status and code (401 becomes
 * UNAUTHORIZED, no code BAD_REQUEST); everything else is a 500 INTERNAL_ERROR whose message is
 * not leaked.
 */
export function toErrorReply(err: unknown): ErrorReplyBody {
  if (err instanceof KernelError || err instanceof RuntimeError) return toKernelError(err).toReply()
  const e = (typeof err === 'object' && err !== null ? err : {}) as FastifyishError
  const message = typeof e.message === 'string' ? e.message : String(err)
  const known = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined
  if (known) return kernelError(known, message).toReply()
  if (e.validation !== undefined) return kernelError('VALIDATION_ERROR', message).toReply()
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status === 401) return kernelError('UNAUTHORIZED', message).toReply()
  if (status >= 400 && status < 500) return replyBody(status, typeof e.code === 'string' ? e.code : 'BAD_REQUEST', message, undefined)
  return kernelError('INTERNAL_ERROR', 'Internal Server Error').toReply()
}

/**
 * Error + not-found handlers for the context it is registered in (and its children): every error
 * becomes `{ statusCode, code, error, message, details? }`; unknown routes answer 404 ROUTE_NOT_FOUND.
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
      const body = kernelError('ROUTE_NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`).toReply()
      return reply.code(404).send(body)
    })
  },
  { name: 'errors', fastify: '5.x' },
)
