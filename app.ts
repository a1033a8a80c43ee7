/**
 * The embeddable kernel: `buildApp(options)` for a ready-made Fastify app, or `kernelPlugin` to
 * register every kernel plugin and route into your own app (under a `prefix`).
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import cors from '@fastify/cors'
import websocket from '@fastify/websocket'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { WebSocket } from 'ws'
import fp from 'fastify-plugin'
import { resolveConfig, type KernelConfig, type KernelOptions } from './config.js'
import { errorHandler } from './plugins/errors.js'
import connections from './plugins/connections.js'
import metrics from './plugins/metrics.js'
import auth, { requestLogFields } from './plugins/auth.js'
import hostGuard from './plugins/host-guard.js'
import jsonLimits from './plugins/json-limits.js'
import { wsErrorHandler } from './plugins/ws-errors.js'
import extensions, { type Extension } from './plugins/extensions.js'
import executor from './plugins/executor.js'
import panels from './plugins/panels.js'
import store from './plugins/store.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import panelsRoutes from './routes/panels.js'
import workers from './plugins/workers.js'
import workersRoutes from './routes/workers.js'
import processes from './plugins/processes.js'
import processesRoutes from './routes/processes.js'
import kernels from './plugins/kernels.js'
import kernelsRoutes from './routes/kernels.js'
import kernelsWsRoutes from './routes/kernels-ws.js'
import sessionsRoutes from './routes/sessions.js'
import inspector from './plugins/inspector.js'
import { packageRoot } from './wasm-runtime/addon.js'
import { nameRouteSchema, refineDocument } from './schemas/openapi.js'
import { ClientMessage, ServerMessage } from './schemas/ws.js'
import { ProcessClientMessage, ProcessServerMessage } from './schemas/processes.js'

/** This package's name, version and description (package.json sits above dist/ when installed). */
const pkg = JSON.parse(readFileSync(join(packageRoot(import.meta.url), 'package.json'), 'utf8')) as { version: string; description: string }

export { resolveConfig, loadConfig, ConfigError, type KernelConfig, type KernelOptions } from './config.js'
export { ERROR_STATUS, KernelError, defineError, kernelError, type ErrorCode, type ErrorReplyBody } from './plugins/errors.js'
export { ExtensionError, type Extension, type ExtensionCallContext } from './plugins/extensions.js'
// the public types of every decorator; importing their modules also brings each plugin's
// `declare module 'fastify'` augmentation to consumers of this entry point (app.d.ts)
export type { AuthPluginOptions } from './plugins/auth.js'
export type { MetricsPluginOptions } from './plugins/metrics.js'
export type { ExtensionManager, ExtensionsPluginOptions } from './plugins/extensions.js'
export type { Executor, ExecutorPluginOptions, RunOptions, RunResult } from './plugins/executor.js'
export type { PanelManager, PanelsPluginOptions } from './plugins/panels.js'
export type { ProcessManager } from './plugins/processes.js'
export type { WorkerRegistry, WorkerRuntime, WorkersOptions } from './plugins/workers.js'
export type { ErrorReply, HealthReply } from './schemas/common.js'
export type {
  CreatePanelReply, PanelDefinition, PanelDescription, PanelStateReply, PanelStatus, PanelSummary, RunOutcome, ToolDefinition, ToolInfo, TriggerReply,
} from './schemas/panels.js'

/** Options of `kernelPlugin`: any subset of KernelConfig, plus extensions to register at startup. */
export type KernelPluginOptions = KernelOptions & { extensions?: Extension[] }

/** Options of `buildApp`: KernelPluginOptions plus the logger (default: pino at `logLevel`). */
export type BuildAppOptions = KernelPluginOptions & {
  logger?: boolean | FastifyServerOptions['logger'] | FastifyBaseLogger
}

/** The WebSocket message unions, published as components (the routes name them with `wsRoute`). */
const WS_MESSAGES = { WsClientMessage: ClientMessage, WsServerMessage: ServerMessage, ProcessClientMessage, ProcessServerMessage }

/** Grace for WebSocket clients to answer our close frame at shutdown before they are cut, ms. */
const WS_CLOSE_GRACE_MS = 1000

/** At shutdown: close every socket with 1001, then cut those that do not finish the handshake in time. */
async function closeSockets(clients: Set<WebSocket>): Promise<void> {
  const open = [...clients]
  for (const ws of open) ws.close(1001, 'server shutting down')
  const closed = open.map((ws) => (ws.readyState === ws.CLOSED ? null : new Promise((r) => ws.once('close', r))))
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, WS_CLOSE_GRACE_MS)))])
  clearTimeout(timer)
  for (const ws of open) if (ws.readyState !== ws.CLOSED) ws.terminate()
}

/** Shared infrastructure: errors, metrics, Host/Origin guard, body and JSON limits, CORS, WebSocket, the OpenAPI generator. */
async function registerInfra(fastify: FastifyInstance, config: KernelConfig): Promise<void> {
  await fastify.register(errorHandler)
  await fastify.register(connections) // first preClose: quiet sockets go before anything else closes
  await fastify.register(metrics, { route: false })
  await fastify.register(jsonLimits, { maxJsonDepth: config.maxJsonDepth })
  // per route, so the limit holds when the kernel is embedded in an app with another bodyLimit
  fastify.addHook('onRoute', (route) => {
    route.bodyLimit ??= config.bodyLimitBytes
  })
  if (!fastify.hasDecorator('websocketServer')) {
    await fastify.register(websocket, {
      options: { maxPayload: config.ws.maxPayloadBytes },
      errorHandler: wsErrorHandler(fastify.promRegistry),
      preClose: async function (this: FastifyInstance) {
        await closeSockets(this.websocketServer.clients)
        await new Promise((r) => this.websocketServer.close(r))
      },
    })
  }
  // the first onRequest hook after @fastify/websocket's own (which marks upgrades so a refused one is
  // closed): a foreign Host or Origin is refused before CORS, auth, parsing or any route work
  await fastify.register(hostGuard, { allowedHosts: config.allowedHosts, allowedOrigins: config.corsOrigins, listenHost: config.host })
  if (config.corsOrigins.length > 0) {
    await fastify.register(cors, { origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins })
  }
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'workspace-kernel', version: pkg.version, description: pkg.description },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      ...(config.authEnabled ? { security: [{ bearerAuth: [] }] } : {}),
    },
    // name shared schemas by their $id so generated clients get readable types
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    // operationIds, named components, enums, WebSocket messages: the rules in schemas/openapi.ts
    transform: ({ schema, url, route }) => ({ schema: nameRouteSchema(schema as Record<string, unknown>, String(route.method), url), url }),
    transformObject: (doc) => ('openapiObject' in doc ? refineDocument(doc.openapiObject as Record<string, unknown>, WS_MESSAGES) : doc.swaggerObject),
  })
}

/** Options of `kernelCore` / `kernelRoutes`: the resolved configuration plus startup extensions. */
export interface KernelCoreOptions {
  config: KernelConfig
  extensions?: Extension[]
}

/**
 * Every kernel plugin (decorators: extensions, executor, store, panels, processes, workers, promRegistry,
 * hostGuard, parseJson, authenticate, authToken, jwt, swagger) and the shared infrastructure, without routes. Wrapped with
 * fastify-plugin so `buildApp`'s caller sees the decorators on the app it gets.
 * Registration order sets the shutdown order (see server.ts): sockets close, extensions abort,
 * panels cancel their runs (preClose hooks, in this order), the listener closes, then the executor.
 */
export const kernelCore = fp(
  async (fastify: FastifyInstance, { config, extensions: extra }: KernelCoreOptions) => {
    await registerInfra(fastify, config)
    await fastify.register(auth, { enabled: config.authEnabled, secret: config.jwtSecret, maxAge: config.jwtMaxAge })
    await fastify.register(extensions, { http: config.http, extensions: extra })
    await fastify.register(executor, { ...config.runtime, suspensionTimeoutMs: config.suspensionTimeoutMs, maxConcurrentSegments: config.maxConcurrentSegments })
    await fastify.register(store, { ...config.store, dataDir: config.dataDir })
    await fastify.register(panels, {
      maxPanels: config.maxPanels,
      maxPanelsPerNamespace: config.maxPanelsPerNamespace,
      maxQueuedRunsPerPanel: config.maxQueuedRunsPerPanel,
      maxStateBytes: config.maxStateBytes,
      maxToolTimeoutMs: config.maxToolTimeoutMs,
      maxInFlightPerNamespace: config.maxInFlightPerNamespace,
      maxInFlightPerSocket: config.maxInFlightPerSocket,
      maxTopicsPerSocket: config.maxTopicsPerSocket,
      maxBufferedBytes: config.ws.maxBufferedBytes,
      pingIntervalMs: config.ws.pingIntervalMs,
    })
    // before workers: onClose runs in reverse, so the registry stops its process workers while the bridge still runs
    await fastify.register(processes, { ...config.processes, workspaceRoot: resolve(config.processes.workspaceRoot) })
    await fastify.register(workers, { ...config.workers, workspaceRoot: resolve(config.workers.workspaceRoot) })
    // after processes: its onClose (shut every kernel down) runs before the bridge's
    await fastify.register(kernels, config.kernels)
  },
  { name: 'kernel-core', fastify: '5.x' },
)

/**
 * Every kernel route (register it with a `prefix`): /health, /metrics, /openapi.json, /docs, the
 * panels, processes and workers APIs, and the inspector page at /inspector/. Needs `kernelCore` registered in the same or a parent context.
 */
export async function kernelRoutes(fastify: FastifyInstance, { config }: KernelCoreOptions): Promise<void> {
  // `servers`: where this document was fetched from (its paths already carry the prefix)
  fastify.get('/openapi.json', { schema: { hide: true } }, async (request) => ({
    ...fastify.swagger(),
    servers: [{ url: `${request.protocol}://${request.host}`, description: 'the kernel that served this document' }],
  }))
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  await fastify.register(metricsRoutes)
  await fastify.register(healthRoutes, { version: pkg.version, authEnabled: config.authEnabled })
  await fastify.register(panelsRoutes)
  await fastify.register(processesRoutes)
  await fastify.register(workersRoutes)
  await fastify.register(kernelsRoutes, { version: pkg.version })
  await fastify.register(kernelsWsRoutes)
  await fastify.register(sessionsRoutes)
  if (config.inspector.enabled) await fastify.register(inspector)
}

/**
 * The whole kernel in its own context, for `app.register(kernelPlugin, { prefix: '/kernel', ...options })`:
 * its decorators, error handler and hooks stay inside; every route gets the prefix.
 * @throws ConfigError (code INVALID_CONFIG) when an option is invalid.
 */
export async function kernelPlugin(fastify: FastifyInstance, options: KernelPluginOptions): Promise<void> {
  const { extensions: extra, ...rest } = options
  const config = resolveConfig(rest as KernelOptions)
  await fastify.register(kernelCore, { config, extensions: extra })
  await fastify.register(kernelRoutes, { config })
}

function loggerOptions(logger: BuildAppOptions['logger'], level: string): Partial<FastifyServerOptions> & { loggerInstance?: FastifyBaseLogger } {
  if (logger === undefined) return { logger: { level, serializers: { req: requestLogFields } } }
  if (typeof logger === 'object' && logger !== null && typeof (logger as FastifyBaseLogger).child === 'function') {
    return { loggerInstance: logger as FastifyBaseLogger }
  }
  return { logger: logger as FastifyServerOptions['logger'] }
}

/**
 * A Fastify app (not listening) with the kernel's decorators on it and its routes under `options.prefix`.
 * Defaults come from `KernelConfig`: auth off (the standalone server turns it on), the Host/Origin guard on.
 * E.g. `await buildApp({ authEnabled: true, jwtSecret, http: { allowedDomains } })`; with `authEnabled`
 * and no `jwtSecret` a secret is generated and `app.authToken` is a token for namespace 'default'.
 * Panels live in memory unless `dataDir` (sqlite at `<dataDir>/kernel.db`) or `store.backend` is given;
 * the standalone server (server.ts) uses sqlite by default.
 * @throws ConfigError (code INVALID_CONFIG) when an option is invalid.
 */
export async function buildApp(options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const { logger, extensions: extra, ...rest } = options
  const config = resolveConfig(rest as KernelOptions)
  // maxParamLength: worker ids are up to 120 chars (Fastify's default of 100 would answer 414)
  const app = Fastify({
    ...loggerOptions(logger, config.logLevel),
    bodyLimit: config.bodyLimitBytes,
    pluginTimeout: config.pluginTimeoutMs,
    routerOptions: { maxParamLength: 256 },
  })
  // decorators on the app itself (app.panels, app.extensions, app.jwt …); routes under the prefix
  await app.register(kernelCore, { config, extensions: extra })
  await app.register(kernelRoutes, { config, prefix: config.prefix })
  return app
}
