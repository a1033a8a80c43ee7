import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { kernelError } from '../plugins/errors.js'
import type { Execution, NbOutput } from '../plugins/kernels/executions.js'
import { within } from '../plugins/kernels/kernel.js'
import { errorReplies } from '../schemas/common.js'
import { ExecuteRequest, ExecutionAccepted, ExecutionList, ExecutionListQuery, ExecutionParams, ExecutionRecord, ExecutionWaitQuery, KernelParams } from '../schemas/kernels.js'
import { rejectInvalid } from './kernels.js'
import { namespaceOf } from './processes.js'

const tags = ['kernels']
/** How long an interrupted execution gets to report its error before /execute answers anyway, ms. */
const INTERRUPT_GRACE_MS = 5000

type Stream = 'sse' | 'ndjson'

/** `Accept: text/event-stream` → SSE, `application/x-ndjson` → NDJSON, else a plain JSON reply. */
function streamKind(request: FastifyRequest): Stream | undefined {
  const accept = request.headers.accept ?? ''
  if (accept.includes('text/event-stream')) return 'sse'
  if (accept.includes('application/x-ndjson')) return 'ndjson'
  return undefined
}

/**
 * Streams an execution live (after replaying the outputs it already has): `output` events, then one
 * `done` with the record. The execution goes on if the client leaves.
 */
function stream(reply: FastifyReply, kind: Stream, execution: Execution): void {
  reply.hijack()
  const raw = reply.raw
  raw.writeHead(200, { 'content-type': kind === 'sse' ? 'text/event-stream' : 'application/x-ndjson', 'cache-control': 'no-cache', 'x-execution-id': execution.id })
  const write = (type: 'output' | 'done', payload: unknown) => {
    raw.write(kind === 'sse' ? `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n` : `${JSON.stringify({ type, [type === 'done' ? 'execution' : 'output']: payload })}\n`)
  }
  const onOutput = (o: NbOutput) => write('output', o)
  const onDone = (view: ReturnType<Execution['view']>) => {
    write('done', view)
    raw.end()
  }
  const past = execution.view()
  for (const o of past.outputs) write('output', o)
  if (!execution.running) return onDone(past)
  execution.on('output', onOutput)
  execution.once('done', onDone)
  raw.once('close', () => {
    execution.off('output', onOutput)
    execution.off('done', onDone)
  })
}

/**
 * The seed's execution API beside Jupyter's (specs/kernels.md section 4): POST …/execute waits for the
 * record (or streams it as SSE / NDJSON), POST …/executions submits (202), GET …/executions[/:eid[/events]]
 * read records that outlive the client. Errors: 400 INVALID_EXECUTE_REQUEST, 404 KERNEL_NOT_FOUND /
 * EXECUTION_NOT_FOUND, 409 KERNEL_DEAD, 413 CODE_TOO_LARGE, 429 EXECUTION_QUEUE_FULL.
 */
export default async function executionRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const km = () => fastify.kernels
  const storeOf = (request: FastifyRequest, params: { id: string }) => km().executions(km().get(namespaceOf(request), params.id))

  const submit = (request: FastifyRequest, params: { id: string }, body: ExecuteRequest): Execution => {
    rejectInvalid(request, 'INVALID_EXECUTE_REQUEST')
    const bytes = Buffer.byteLength(body.code)
    if (bytes > km().options.maxCodeBytes) throw kernelError('CODE_TOO_LARGE', `code of ${bytes} bytes exceeds the ${km().options.maxCodeBytes}-byte limit`)
    if ((body.timeoutMs ?? 0) > km().options.maxExecuteWaitMs) throw kernelError('INVALID_EXECUTE_REQUEST', `timeoutMs must be ≤ ${km().options.maxExecuteWaitMs}`)
    return storeOf(request, params).submit(body)
  }

  app.post('/api/kernels/:id/execute', {
    attachValidation: true,
    schema: {
      tags,
      operationId: 'executeCode', summary: 'Execute and wait for the record; Accept: text/event-stream (SSE) or application/x-ndjson streams it live',
      params: KernelParams,
      body: ExecuteRequest,
      response: { 200: ExecutionRecord, 202: ExecutionAccepted, ...errorReplies(400, 401, 404, 409, 413, 429) },
    },
  }, async (request, reply) => {
    const execution = submit(request, request.params, request.body)
    const kind = streamKind(request)
    if (kind) return stream(reply, kind, execution)
    const waitMs = request.body.timeoutMs ?? km().options.maxExecuteWaitMs
    const done = await within(execution.done, waitMs)
    if (done) return done
    if (request.body.interruptOnTimeout) {
      await km().get(namespaceOf(request), request.params.id).interrupt()
      const interrupted = await within(execution.done, INTERRUPT_GRACE_MS)
      if (interrupted) return interrupted
    }
    return reply.code(202).send({ execution_id: execution.id, status: 'running' as const })
  })

  // POST …/executions, and the seed's (Deno App Engine's) name for it kept as an alias (specs/kernels.md section 4)
  for (const [url, operationId] of [['/api/kernels/:id/executions', 'submitExecution'], ['/api/kernels/:id/execute/submit', 'submitExecutionAlias']]) {
    app.post(url, {
      attachValidation: true,
      schema: { tags, operationId, summary: 'Submit an execution; read it later from …/executions/:eid (…/execute/submit is an alias)', params: KernelParams, body: ExecuteRequest, response: { 202: ExecutionAccepted, ...errorReplies(400, 401, 404, 409, 413, 429) } },
    }, async (request, reply) => reply.code(202).send({ execution_id: submit(request, request.params, request.body).id, status: 'running' as const }))
  }
  // the seed's /execute/stream: …/execute that always streams
  app.post('/api/kernels/:id/execute/stream', {
    attachValidation: true,
    schema: { tags, operationId: 'executeStream', summary: 'POST …/execute streamed: SSE, or NDJSON with Accept: application/x-ndjson (the seed\'s /execute/stream)', params: KernelParams, body: ExecuteRequest, response: errorReplies(400, 401, 404, 409, 413, 429) },
  }, async (request, reply) => stream(reply, streamKind(request) ?? 'sse', submit(request, request.params, request.body)))

  app.get('/api/kernels/:id/executions', {
    schema: { tags, operationId: 'listExecutions', summary: 'Execution records, oldest first (?since=<seq>)', params: KernelParams, querystring: ExecutionListQuery, response: { 200: ExecutionList, ...errorReplies(401, 404) } },
  }, async (request) => storeOf(request, request.params).list(request.query.since, request.query.limit))

  app.get('/api/kernels/:id/executions/:eid', {
    schema: { tags, operationId: 'getExecution', summary: 'One execution record (?wait=ms long-polls until it finishes)', params: ExecutionParams, querystring: ExecutionWaitQuery, response: { 200: ExecutionRecord, ...errorReplies(401, 404) } },
  }, async (request) => {
    const execution = storeOf(request, request.params).get(request.params.eid)
    if (request.query.wait && execution.running) await within(execution.done, request.query.wait)
    return execution.view()
  })

  app.get('/api/kernels/:id/executions/:eid/events', {
    schema: { tags, operationId: 'streamExecution', summary: 'SSE (or NDJSON by Accept) of one execution: outputs so far, then live, then done', params: ExecutionParams, response: errorReplies(401, 404) },
  }, async (request, reply) => stream(reply, streamKind(request) ?? 'sse', storeOf(request, request.params).get(request.params.eid)))
}
