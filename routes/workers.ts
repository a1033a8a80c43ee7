import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { WebSocket } from 'ws'
import type {} from '@fastify/websocket'
import fp from 'fastify-plugin'
import { KernelError, kernelError } from '../plugins/errors.js'
import type { CallContext, WorkerEvent } from '../plugins/workers/runtime.js'
import { Type, type TSchema } from '@sinclair/typebox'
import { ErrorReply, errorReplies } from '../schemas/common.js'
import { wsRoute } from '../schemas/openapi.js'
import {
  EventsQuery,
  HostList,
  InputRequest,
  InputResult,
  ListQuery,
  OperationState,
  RuntimeList,
  RuntimeParams,
  RuntimeSummary,
  SpawnRequest,
  SpawnResult,
  StopRequest,
  StopResult,
  TranscriptPage,
  TranscriptQuery,
  WorkerList,
  WorkerParams,
  WorkerSummary,
  workerSchemas,
} from '../schemas/workers.js'

const tags = ['workers']
/** Unsent bytes on an events socket above which the worker's producer is paused, and below which it resumes. */
const PAUSE_BUFFERED = 256 * 1024
const RESUME_BUFFERED = 128 * 1024
/** Bytes a slow events client may have queued before it is dropped (close 1013): a runtime that cannot pause its producer (kernels; see worker-runtime.ts). */
const MAX_WS_BUFFERED = 4 * 1024 * 1024

/**
 * HTTP status for an operation outcome: accepted → `ok`, rejected and unsupported 409 (the request is
 * fine, the runtime will not do it: a client error, never a 5xx), unavailable 503.
 */
function statusFor(state: OperationState, ok: number): number {
  return { accepted: ok, rejected: 409, unsupported: 409, unavailable: 503 }[state]
}

/** The caller's namespace: set by the auth plugin, else 'default'. */
function ctxOf(request: FastifyRequest): CallContext {
  // Undefined at run time when the auth plugin is not registered.
  return { namespace: request.namespace || 'default' }
}

/**
 * Reply schemas of an operation: its typed result for every outcome status; at 409 / 503 an
 * error thrown by an adapter (ErrorReply) is also allowed, so either body serializes.
 */
function outcomes<T extends TSchema>(schema: T, ok: number, ...errors: number[]) {
  const either = Type.Union([schema, ErrorReply])
  return { [ok]: schema, 409: either, 503: either, ...errorReplies(...errors) }
}

/**
 * Worker-runtime routes (thin: validate, call `fastify.workers`, shape the reply). Needs the `workers`
 * plugin, and `@fastify/websocket` for `…/events`. Operation outcomes (spawn, stop, input, transcript)
 * are typed results whose HTTP status follows `state`; bad ids / limits and unknown resources are
 * `{ statusCode, code, error, message }` errors (400 INVALID_IDENTIFIER, 400 LIMIT_TOO_LARGE,
 * 404 UNKNOWN_RUNTIME, 404 UNKNOWN_WORKER).
 */
async function workersRoutes(fastify: FastifyInstance): Promise<void> {
  for (const schema of workerSchemas) if (!fastify.getSchema(schema.$id!)) fastify.addSchema(schema)
  if (fastify.hasDecorator('authenticate')) fastify.addHook('onRequest', fastify.authenticate)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const workers = fastify.workers

  app.get('/runtimes', {
    schema: { tags, summary: 'List worker runtimes', operationId: 'listRuntimes', querystring: ListQuery, response: { 200: RuntimeList, ...errorReplies(400, 401) } },
  }, async (req) => workers.listRuntimes(ctxOf(req), req.query.limit))

  app.get('/runtimes/:runtimeId', {
    schema: { tags, summary: 'Describe one runtime', operationId: 'getRuntime', params: RuntimeParams, response: { 200: RuntimeSummary, ...errorReplies(400, 401, 404) } },
  }, async (req) => workers.getRuntime(ctxOf(req), req.params.runtimeId))

  app.get('/runtimes/:runtimeId/hosts', {
    schema: { tags, summary: 'List a runtime’s hosts', operationId: 'listHosts', params: RuntimeParams, querystring: ListQuery, response: { 200: HostList, ...errorReplies(400, 401, 404) } },
  }, async (req) => workers.listHosts(ctxOf(req), req.params.runtimeId, req.query.limit))

  app.get('/runtimes/:runtimeId/workers', {
    schema: { tags, summary: 'List a runtime’s workers', operationId: 'listWorkers', params: RuntimeParams, querystring: ListQuery, response: { 200: WorkerList, ...errorReplies(400, 401, 404) } },
  }, async (req) => workers.listWorkers(ctxOf(req), req.params.runtimeId, req.query.limit))

  app.get('/runtimes/:runtimeId/workers/:workerId', {
    schema: { tags, summary: 'Describe one worker', operationId: 'getWorker', params: WorkerParams, response: { 200: WorkerSummary, ...errorReplies(400, 401, 404) } },
  }, async (req) => workers.getWorker(ctxOf(req), req.params.runtimeId, req.params.workerId))

  app.post('/runtimes/:runtimeId/workers', {
    schema: { tags, summary: 'Spawn a worker from a typed intent', operationId: 'spawnWorker', params: RuntimeParams, body: SpawnRequest, response: outcomes(SpawnResult, 201, 400, 401, 404, 429) },
  }, async (req, reply) => {
    const result = await workers.spawn(ctxOf(req), req.params.runtimeId, req.body)
    return reply.code(statusFor(result.state, 201)).send(result)
  })

  app.post('/runtimes/:runtimeId/workers/:workerId/stop', {
    schema: { tags, summary: 'Stop a worker (graceful | force)', operationId: 'stopWorker', params: WorkerParams, body: StopRequest, response: outcomes(StopResult, 200, 400, 401, 404) },
    // The body is optional (graceful by default).
    preValidation: async (req) => {
      req.body ??= {}
    },
  }, async (req, reply) => {
    const { runtimeId, workerId } = req.params
    const result = await workers.stop(ctxOf(req), runtimeId, workerId, req.body.mode ?? 'graceful')
    return reply.code(statusFor(result.state, 200)).send(result)
  })

  app.post('/runtimes/:runtimeId/workers/:workerId/input', {
    schema: { tags, summary: 'Send user or system input to a worker', operationId: 'sendWorkerInput', params: WorkerParams, body: InputRequest, response: outcomes(InputResult, 200, 400, 401, 404, 413) },
  }, async (req, reply) => {
    const result = await workers.input(ctxOf(req), req.params.runtimeId, req.params.workerId, req.body)
    return reply.code(statusFor(result.state, 200)).send(result)
  })

  app.get('/runtimes/:runtimeId/workers/:workerId/transcript', {
    schema: { tags, summary: 'Read a page of a worker’s transcript', operationId: 'getWorkerTranscript', params: WorkerParams, querystring: TranscriptQuery, response: outcomes(TranscriptPage, 200, 400, 401, 404) },
  }, async (req, reply) => {
    const { runtimeId, workerId } = req.params
    const page = await workers.transcript(ctxOf(req), runtimeId, workerId, req.query.start, req.query.limit)
    return reply.code(statusFor(page.state, 200)).send(page)
  })

  app.route({
    method: 'GET',
    url: '/runtimes/:runtimeId/workers/:workerId/events',
    schema: {
      tags,
      summary: 'WebSocket: CONNECTED, then ITEM per new transcript item and STATUS per status change (WorkerEventMessage)', operationId: 'connectWorkerEvents',
      params: WorkerParams,
      querystring: EventsQuery,
      response: errorReplies(400, 401, 404, 426),
      ...wsRoute(null, 'WorkerEventMessage'),
    },
    // Resolve before the upgrade, so a bad or unknown id is a plain HTTP error.
    preHandler: async (req) => {
      await workers.getWorker(ctxOf(req), req.params.runtimeId, req.params.workerId)
    },
    handler: async () => {
      throw kernelError('UPGRADE_REQUIRED', 'this endpoint is a WebSocket; connect with an Upgrade request')
    },
    wsHandler: (socket, req) => streamEvents(fastify, socket, ctxOf(req), req.params, req.query.start),
  })
}

/** Encapsulated (routes and schemas stay in their own context) but named, with its dependencies declared. */
export default fp(workersRoutes, {
  name: 'workers-routes',
  fastify: '5.x',
  dependencies: ['workers', '@fastify/websocket'],
  encapsulate: true,
})

/**
 * Sends CONNECTED, replays retained items from `start` (if given), then live ITEM / STATUS events.
 * Live events that arrive while the replay is read are held and sent after it, without duplicates.
 * A slow client pauses the worker's producer past PAUSE_BUFFERED unsent bytes (when its runtime can,
 * as the process bridge's own socket does) until the socket drains below RESUME_BUFFERED; a client
 * that holds the pause longer than `maxEventsPauseMs` is dropped (close 1013) and the worker resumes
 * for its other subscribers. Past MAX_WS_BUFFERED (a runtime that cannot pause) it is dropped too.
 */
async function streamEvents(
  fastify: FastifyInstance,
  socket: WebSocket,
  ctx: CallContext,
  params: { runtimeId: string; workerId: string },
  start: number | undefined,
): Promise<void> {
  let pause: ((overdue: () => void) => (() => void) | undefined) | undefined
  let release: (() => void) | undefined
  let unsubscribe = () => {}
  let unsent = 0
  const resume = () => {
    release?.()
    release = undefined
  }
  // the pause was released by the registry; the close frame waits behind the unread bytes
  const overdue = () => {
    release = undefined
    unsubscribe()
    const ms = fastify.workers.maxEventsPauseMs
    fastify.log.warn({ runtimeId: params.runtimeId, unsent }, 'dropping a worker-events client that held its worker paused too long')
    socket.close(1013, `client too slow: held the worker paused for ${ms} ms`)
  }
  const send = (msg: object) => {
    if (socket.readyState !== socket.OPEN) return
    if (socket.bufferedAmount > MAX_WS_BUFFERED) return socket.close(1013, 'client too slow')
    const frame = JSON.stringify(msg)
    unsent += frame.length
    socket.send(frame, () => {
      unsent -= frame.length
      if (unsent < RESUME_BUFFERED) resume()
    })
    if (!release && unsent > PAUSE_BUFFERED) release = pause?.(overdue)
  }
  let held: WorkerEvent[] | undefined = []
  const onEvent = (event: WorkerEvent) => (held ? held.push(event) : send(event))
  const { runtimeId, workerId } = params
  try {
    const subscription = await fastify.workers.subscribe(ctx, runtimeId, workerId, onEvent)
    const { worker } = subscription
    if (!subscription.unsubscribe) {
      send({ type: 'ERROR', code: 'STREAM_UNSUPPORTED', message: `workers of runtime "${runtimeId}" stream no events` })
      return socket.close(1000)
    }
    unsubscribe = subscription.unsubscribe
    pause = subscription.pause
    socket.on('close', () => (unsubscribe(), resume()))
    socket.on('message', () => send({ type: 'ERROR', code: 'READ_ONLY_STREAM', message: 'this stream takes no messages' }))
    const replay = start === undefined ? [] : await readFrom(fastify, ctx, params, start)
    const page = await fastify.workers.transcript(ctx, runtimeId, workerId, 0, 0)
    send({ type: 'CONNECTED', runtime_id: runtimeId, worker_id: workerId, status: worker.status, total_items: page.total_items })
    let last = 0
    for (const item of replay) send({ type: 'ITEM', item }), (last = item.sequence)
    for (const event of held) if (event.type !== 'ITEM' || event.item.sequence > last) send(event)
    held = undefined
    if (socket.readyState !== socket.OPEN) unsubscribe()
  } catch (err) {
    const e = err instanceof KernelError ? err : kernelError('INTERNAL_ERROR', 'the event stream failed')
    send({ type: 'ERROR', code: e.code, message: e.message })
    socket.close(1011)
  }
}

/** Every retained transcript item from position `start`, page by page. */
async function readFrom(fastify: FastifyInstance, ctx: CallContext, params: { runtimeId: string; workerId: string }, start: number) {
  const items: TranscriptPage['items'] = []
  let next: number | null = start
  while (next !== null) {
    const page: TranscriptPage = await fastify.workers.transcript(ctx, params.runtimeId, params.workerId, next)
    items.push(...page.items)
    next = page.next_start
  }
  return items
}
