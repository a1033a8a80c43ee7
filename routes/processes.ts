import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { type ErrorCode, kernelError } from '../plugins/errors.js'
import { errorReplies } from '../schemas/common.js'
import { wsRoute } from '../schemas/openapi.js'
import {
  InputReply,
  InputRequest,
  PidParams,
  ProcessInfo,
  ProcessList,
  ResizeRequest,
  SignalRequest,
  SpawnRequest,
  WsQuery,
} from '../schemas/processes.js'
import { PROCESS_TYPES } from '../plugins/processes/plan.js'
import { attachSocket } from '../plugins/processes/socket.js'

const tags = ['processes']

/** The caller's namespace: set by the auth plugin, else 'default'. */
export function namespaceOf(request: FastifyRequest): string {
  const ns = (request as { namespace?: unknown }).namespace
  return typeof ns === 'string' && ns !== '' ? ns : 'default'
}

/** A request that failed its schema becomes a 400 with the route's own code. */
function rejectInvalid(request: FastifyRequest, code: ErrorCode): void {
  const err = request.validationError as (Error & { validation?: Array<{ instancePath?: string }> }) | undefined
  if (!err) return
  const badType = code === 'INVALID_SPAWN_REQUEST' && err.validation?.some((e) => e.instancePath === '/type')
  if (badType) {
    const type = (request.body as { type?: unknown } | undefined)?.type
    throw kernelError('UNKNOWN_PROCESS_TYPE', `unknown process type ${JSON.stringify(type) ?? '(missing)'}; expected one of ${PROCESS_TYPES.join(', ')}`)
  }
  throw kernelError(code, err.message)
}

function decode(data: string, encoding: 'utf8' | 'base64' | undefined): Buffer {
  return Buffer.from(data, encoding ?? 'utf8')
}

/**
 * Process bridge routes over `fastify.processes` (needs the `processes` plugin and, for the
 * WebSocket route, `@fastify/websocket`). Errors are `{ statusCode, code, error, message }`:
 * 400 UNKNOWN_PROCESS_TYPE / INVALID_SPAWN_REQUEST / CWD_OUTSIDE_WORKSPACE / INVALID_CWD /
 * SCRIPT_NOT_FOUND / SCRIPT_OUTSIDE_WORKSPACE / WORKERD_START_FAILED / INVALID_INPUT / INVALID_SIZE /
 * INVALID_SIGNAL, 404 PROCESS_NOT_FOUND, 409 PROCESS_EXITED / NOT_A_TTY, 413 INPUT_TOO_LARGE,
 * 429 TOO_MANY_PROCESSES, 503 SHUTTING_DOWN.
 */
export default async function processesRoutes(fastify: FastifyInstance): Promise<void> {
  if (fastify.hasDecorator('authenticate')) fastify.addHook('onRequest', fastify.getDecorator<onRequestHookHandler>('authenticate'))
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const pm = () => fastify.processes
  const scope = (request: FastifyRequest) => ({ namespace: namespaceOf(request) })

  app.post('/processes', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Spawn a process (node, python, shell in a PTY, workerd)', operationId: 'spawnProcess',
      description: 'cwd and script stay inside the workspace root; env keys outside the allow-list are dropped; args are never shell-interpolated. workerd replies once its loopback port accepts connections.',
      body: SpawnRequest,
      response: { 201: ProcessInfo, ...errorReplies(400, 401, 429, 500, 503) },
    },
  }, async (request, reply) => {
    rejectInvalid(request, 'INVALID_SPAWN_REQUEST')
    return reply.code(201).send(await pm().spawn(request.body, scope(request)))
  })

  app.get('/processes', {
    schema: { tags, summary: "List the caller's processes (running and recently exited)", operationId: 'listProcesses', response: { 200: ProcessList, ...errorReplies(401) } },
  }, async (request) => ({ processes: pm().list(scope(request)) }))

  app.get('/processes/:pid', {
    schema: {
      tags,
      summary: 'Status of a process: exit code/signal, start time, cpu/memory, attached clients', operationId: 'getProcess',
      params: PidParams,
      response: { 200: ProcessInfo, ...errorReplies(401, 404) },
    },
  }, async (request) => pm().get(request.params.pid, scope(request)))

  app.post('/processes/:pid/input', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Write to stdin (eof: true closes it afterwards)', operationId: 'writeProcessInput',
      params: PidParams,
      body: InputRequest,
      response: { 200: InputReply, ...errorReplies(400, 401, 404, 409, 413) },
    },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_INPUT')
    const { data, encoding, eof } = request.body
    const bytes = pm().write(request.params.pid, decode(data, encoding), { ...scope(request), eof })
    return { pid: request.params.pid, bytes }
  })

  app.post('/processes/:pid/resize', {
    attachValidation: true,
    schema: {
      tags,
      summary: 'Resize the terminal of a shell process', operationId: 'resizeProcess',
      params: PidParams,
      body: ResizeRequest,
      response: { 200: ProcessInfo, ...errorReplies(400, 401, 404, 409) },
    },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_SIZE')
    return pm().resize(request.params.pid, request.body.cols, request.body.rows, scope(request))
  })

  app.post('/processes/:pid/signal', {
    attachValidation: true,
    schema: {
      tags,
      summary: "Send a signal (a shell's goes to the terminal's foreground job, like Ctrl-C)", operationId: 'signalProcess',
      params: PidParams,
      body: SignalRequest,
      response: { 200: ProcessInfo, ...errorReplies(400, 401, 404, 409) },
    },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_SIGNAL')
    return pm().signal(request.params.pid, request.body.signal, scope(request))
  })

  app.delete('/processes/:pid', {
    schema: {
      tags,
      summary: 'Kill (SIGTERM, SIGKILL after the grace period), reap and forget a process; replies its final status', operationId: 'killProcess',
      params: PidParams,
      response: { 200: ProcessInfo, ...errorReplies(401, 404) },
    },
  }, async (request) => pm().kill(request.params.pid, scope(request)))

  app.get('/processes/:pid/ws', {
    websocket: true,
    schema: {
      tags,
      summary: 'Attach over WebSocket: buffered output first, then live output; send STDIN, RESIZE, SIGNAL, DETACH', operationId: 'connectProcess',
      description: 'Client messages: ProcessClientMessage; server messages: ProcessServerMessage (schemas/processes.ts). Binary frames from the client are written to stdin as is; with ?binary=true OUTPUT arrives as binary frames.',
      params: PidParams,
      querystring: WsQuery,
      response: errorReplies(401, 404),
      ...wsRoute('ProcessClientMessage', 'ProcessServerMessage'),
    },
    // Reject before the upgrade so an unknown pid is a plain HTTP 404.
    preHandler: async (request) => {
      pm().get(request.params.pid, scope(request))
    },
  }, (socket, request) => {
    const { replay, binary } = request.query
    attachSocket(pm(), socket, request.params.pid, namespaceOf(request), {
      replay: replay !== false,
      binary: binary === true,
      parseJson: fastify.hasDecorator('parseJson') ? fastify.parseJson : undefined,
    }, request.log)
  })
}
