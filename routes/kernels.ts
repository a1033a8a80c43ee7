import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { KernelError } from '../plugins/errors.js'
import { errorReplies } from '../schemas/common.js'
import { ApiStatus, ApiVersion, Kernel, KernelInfo, KernelList, KernelParams, KernelSpecs, KernelSpecsQuery, PatchKernelRequest, PingReply, PoolStatus, StartKernelRequest } from '../schemas/kernels.js'
import { cullsAt } from '../plugins/kernels/culler.js'
import { KERNEL_OWNER } from '../plugins/kernels/launch.js'
import type { Kernel as KernelObject } from '../plugins/kernels/kernel.js'
import executionRoutes from './kernel-executions.js'
import { namespaceOf } from './processes.js'

const tags = ['kernels']

/**
 * JupyterLab's habits on `/api/*`: a bodiless POST still says `Content-Type: application/json` (accepted
 * as `{}`, where Fastify's default parser answers 400), and a JSON body built with `new Request(url, {body})`
 * arrives as `text/plain` (Jupyter Server parses bodies as JSON whatever the type). Registered in each
 * kernels route context.
 */
export function acceptEmptyJson(fastify: FastifyInstance): void {
  // the kernel's one JSON parser (plugins/json-limits.ts: 400 JSON_TOO_DEEP; a poisoned or malformed body is
  // a SyntaxError, answered 400 INVALID_JSON like Fastify's parser elsewhere); kernelCore registers it
  const parseJson = fastify.getDecorator<FastifyInstance['parseJson']>('parseJson')
  fastify.removeContentTypeParser(['application/json', 'text/plain'])
  fastify.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body)
    if (text.trim() === '') return done(null, {})
    try {
      done(null, parseJson(text))
    } catch (err) {
      done(err instanceof KernelError ? err : new KernelError(400, 'INVALID_JSON', 'body is not valid JSON'), undefined)
    }
  })
}

/** A request that failed its schema becomes a 400 with the route's own code. */
export function rejectInvalid(request: FastifyRequest, code: string): void {
  if (request.validationError) throw new KernelError(400, code, request.validationError.message)
}

/** Adds `fastify.authenticate` as an onRequest hook when the auth plugin is there. */
export function authenticated(fastify: FastifyInstance): void {
  if (fastify.hasDecorator('authenticate')) fastify.addHook('onRequest', fastify.getDecorator<onRequestHookHandler>('authenticate'))
}

/** Options of the kernels routes: the server version `GET /api` reports. */
export interface KernelsRoutesOptions {
  version: string
}

/** `GET /api` (public, like Jupyter's `/api/`). */
async function publicRoutes(fastify: FastifyInstance, { version }: KernelsRoutesOptions): Promise<void> {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/api', {
    schema: { tags, operationId: 'getApiVersion', summary: 'Server version (Jupyter Server /api/)', response: { 200: ApiVersion } },
  }, async () => ({ version }))
}

/** The authenticated Jupyter REST routes over `fastify.kernels`. */
async function kernelRoutes(fastify: FastifyInstance): Promise<void> {
  authenticated(fastify)
  acceptEmptyJson(fastify)
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const km = () => fastify.kernels
  const id = (request: { params: { id: string } }) => km().get(namespaceOf(request as FastifyRequest), request.params.id)

  app.get('/api/status', {
    schema: { tags, operationId: 'getApiStatus', summary: 'Kernels and connections of your namespace', response: { 200: ApiStatus, ...errorReplies(401) } },
  }, async (request) => {
    const kernels = km().list(namespaceOf(request))
    const last = Math.max(km().started.getTime(), ...kernels.map((k) => k.lastActivity.getTime()))
    return { started: km().started.toISOString(), last_activity: new Date(last).toISOString(), connections: kernels.reduce((n, k) => n + k.connections, 0), kernels: kernels.length }
  })

  app.get('/api/kernelspecs', {
    schema: { tags, operationId: 'listKernelSpecs', summary: 'Kernelspecs (Jupyter shape); ?all=true adds unavailable ones with the reason', querystring: KernelSpecsQuery, response: { 200: KernelSpecs, ...errorReplies(401) } },
  }, async (request) => {
    const list = request.query.all ? [...km().specs.values()].filter((s) => km().options.allowed.includes(s.name)) : km().available()
    const kernelspecs = Object.fromEntries(list.map((s) => [s.name, {
      name: s.name, spec: s.spec, resources: {},
      ...(request.query.all ? { available: s.available, ...(s.reason ? { reason: s.reason } : {}) } : {}),
    }]))
    return { default: km().defaultName, kernelspecs }
  })

  app.get('/api/kernels', {
    schema: { tags, operationId: 'listKernels', summary: 'Kernels of your namespace', response: { 200: KernelList, ...errorReplies(401) } },
  }, async (request) => km().list(namespaceOf(request)).map((k) => k.model()))

  app.post('/api/kernels', {
    attachValidation: true,
    schema: {
      tags,
      operationId: 'startKernel', summary: 'Start a kernel (201 + Location); from the prespawn pool when the request has no env, path or timeouts',
      body: StartKernelRequest,
      response: { 201: Kernel, ...errorReplies(400, 401, 429, 500, 503, 504) },
    },
  }, async (request, reply) => {
    rejectInvalid(request, 'INVALID_KERNEL_REQUEST')
    const kernel = await km().start(namespaceOf(request), request.body ?? {})
    return reply.code(201).header('location', `${request.url.split('?')[0].replace(/\/$/, '')}/${kernel.id}`).send(kernel.model())
  })

  app.get('/api/kernels/pool', {
    schema: { tags, operationId: 'getKernelPool', summary: 'Prespawn pool per kernelspec: {target, ready, starting}', response: { 200: PoolStatus, ...errorReplies(401) } },
  }, async () => km().poolStatus())

  const cullTime = (kernel: KernelObject) => {
    const o = km().options
    const at = cullsAt(kernel, { idleTimeoutMs: o.cullIdleTimeoutS * 1000, cullBusy: o.cullBusy, cullConnected: o.cullConnected })
    return at === undefined ? null : new Date(at).toISOString()
  }

  app.post('/api/kernels/:id/ping', {
    schema: { tags, operationId: 'pingKernel', summary: 'Count as activity (postpones culling)', params: KernelParams, response: { 200: PingReply, ...errorReplies(401, 404) } },
  }, async (request) => {
    const kernel = id(request)
    kernel.lastActivity = new Date()
    return { last_activity: kernel.lastActivity.toISOString(), culls_at: cullTime(kernel) }
  })

  app.get('/api/kernels/:id/info', {
    schema: { tags, operationId: 'getKernelInfo', summary: 'Model plus usage, ongoing executions, restarts, culls_at', params: KernelParams, response: { 200: KernelInfo, ...errorReplies(401, 404) } },
  }, async (request) => {
    const kernel = id(request)
    let usage: { rssBytes: number; cpuMs: number } | undefined
    try {
      usage = kernel.pid === undefined ? undefined : fastify.processes.get(kernel.pid, { owner: KERNEL_OWNER }).usage
    } catch {
      usage = undefined // the process just went away (restart)
    }
    const ongoing = km().ongoing(kernel)
    const limit = kernel.settings.maxExecutionMs ?? km().options.maxExecutionMs
    const busyMs = kernel.busySince === undefined ? 0 : Date.now() - kernel.busySince
    return {
      ...kernel.model(),
      ...(usage ? { usage } : {}),
      executions: { ongoing: ongoing.length, longestMs: Math.max(0, busyMs, ...ongoing.map((e) => e.elapsedMs)), stuck: limit > 0 && busyMs > limit },
      restarts: kernel.restarts,
      culls_at: cullTime(kernel),
      settings: kernel.settings,
    }
  })

  app.patch('/api/kernels/:id', {
    attachValidation: true,
    schema: { tags, operationId: 'patchKernel', summary: 'Change inactivityTimeoutMs / maxExecutionMs', params: KernelParams, body: PatchKernelRequest, response: { 200: Kernel, ...errorReplies(400, 401, 404) } },
  }, async (request) => {
    rejectInvalid(request, 'INVALID_KERNEL_REQUEST')
    const kernel = id(request)
    kernel.settings = { ...kernel.settings, ...request.body }
    return kernel.model()
  })

  await fastify.register(executionRoutes)

  app.get('/api/kernels/:id', {
    schema: { tags, operationId: 'getKernel', summary: 'A kernel', params: KernelParams, response: { 200: Kernel, ...errorReplies(401, 404) } },
  }, async (request) => id(request).model())

  app.delete('/api/kernels/:id', {
    schema: { tags, operationId: 'deleteKernel', summary: 'Shut a kernel down (shutdown_request, then TERM→KILL)', params: KernelParams, response: { 204: { type: 'null' }, ...errorReplies(401, 404) } },
  }, async (request, reply) => {
    await km().shutdown(namespaceOf(request), request.params.id)
    return reply.code(204).send()
  })

  app.post('/api/kernels/:id/interrupt', {
    schema: { tags, operationId: 'interruptKernel', summary: 'Interrupt (SIGINT, or interrupt_request for message-mode kernelspecs)', params: KernelParams, response: { 204: { type: 'null' }, ...errorReplies(401, 404, 409) } },
  }, async (request, reply) => {
    await id(request).interrupt()
    return reply.code(204).send()
  })

  app.post('/api/kernels/:id/restart', {
    schema: { tags, operationId: 'restartKernel', summary: 'Restart: same id, fresh state (a dead kernel is revived)', params: KernelParams, response: { 200: Kernel, ...errorReplies(401, 404, 409, 500) } },
  }, async (request) => {
    const kernel = id(request)
    await kernel.restart()
    return kernel.model()
  })
}

/**
 * Jupyter Server's REST API for kernels (specs/kernels.md section 4): `/api`, `/api/status`,
 * `/api/kernelspecs`, `/api/kernels[/:id[/interrupt|/restart]]`. Errors are `{statusCode, code, error,
 * message}` (400 INVALID_KERNEL_REQUEST / UNKNOWN_KERNEL_NAME / UNSUPPORTED_KERNEL_MODE / ENV_NOT_ALLOWED /
 * CWD_OUTSIDE_WORKSPACE, 404 KERNEL_NOT_FOUND, 409 KERNEL_DEAD / KERNEL_RESTARTING, 429 TOO_MANY_KERNELS /
 * NAMESPACE_KERNEL_LIMIT, 500 KERNEL_START_FAILED, 503 KERNEL_UNAVAILABLE, 504 KERNEL_START_TIMEOUT).
 */
export default async function kernelsRoutes(fastify: FastifyInstance, opts: KernelsRoutesOptions): Promise<void> {
  await fastify.register(publicRoutes, opts)
  await fastify.register(kernelRoutes)
}
