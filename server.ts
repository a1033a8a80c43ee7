/**
 * The standalone kernel: configuration from WK_* variables and flags (`--help` lists them),
 * pino logs (pretty unless nodeEnv is production), listen, and graceful shutdown. Auth is on by
 * default: with no WK_JWT_SECRET a secret is generated and a token URL printed, as Jupyter does;
 * WK_AUTH_ENABLED=false is accepted only on a loopback host.
 *
 * Shutdown on SIGTERM/SIGINT, in order: stop accepting requests (503 from then on), close the
 * WebSockets (1001), abort extension calls, cancel panel runs, close the listener, shut the
 * executor down; then exit 0. A second signal, a failure, or more than `shutdownTimeoutMs`
 * exits 1. Invalid configuration prints every problem and exits 1.
 */
import pino, { type Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { requestLogFields } from './plugins/auth.js'
import { ConfigError, configHelp, loadConfig, type KernelConfig } from './config.js'

function createLogger(config: KernelConfig): Logger {
  const serializers = { req: requestLogFields } // no ?token= in the logs
  if (config.nodeEnv === 'production') return pino({ level: config.logLevel, serializers })
  return pino({
    level: config.logLevel,
    serializers,
    transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
  })
}

/** Flushes the logger (pretty logs go through a worker thread), then exits. */
function exit(logger: Logger, code: number): never {
  const bail = setTimeout(() => process.exit(code), 1000)
  bail.unref()
  logger.flush(() => process.exit(code))
  return undefined as never
}

function onSignals(app: FastifyInstance, logger: Logger, timeoutMs: number): void {
  let closing = false
  const shutdown = (signal: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal }, 'second signal: exiting without finishing shutdown')
      return exit(logger, 1)
    }
    closing = true
    logger.info({ signal }, 'shutting down')
    const timer = setTimeout(() => {
      logger.error(`shutdown took longer than ${timeoutMs} ms: exiting`)
      exit(logger, 1)
    }, timeoutMs)
    app.close().then(
      () => {
        clearTimeout(timer)
        logger.info('shutdown complete')
        exit(logger, 0)
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed')
        exit(logger, 1)
      },
    )
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

/**
 * Where the standalone server differs from buildApp's defaults: auth is on (Jupyter-style token when no secret
 * is set), panels in sqlite, one prespawned python3 kernel (spec kernels.md §5 `KERNELS_POOL_SIZE`).
 */
const STANDALONE_DEFAULTS = { authEnabled: true, store: { backend: 'sqlite' as const }, kernels: { poolSize: 1 } }

/** Logs where the server listens, and how to authenticate: the generated token's URL, or a warning when auth is off. */
function announce(logger: Logger, url: string, config: KernelConfig, token: string | undefined): void {
  if (token !== undefined) {
    // the inspector page takes the token from its URL, like Jupyter's tree page
    const tokenUrl = `${url}${config.inspector.enabled ? '/inspector/' : '/'}?token=${token}`
    logger.info({ url, tokenUrl }, `workspace-kernel listening on ${url} (docs: ${url}/docs). Use the token (Authorization: Bearer <token>, or ?token= on WebSockets):\n    ${tokenUrl}`)
    return
  }
  logger.info({ url }, `workspace-kernel listening on ${url} (docs: ${url}/docs)`)
  if (!config.authEnabled) logger.warn(`auth is off (authEnabled=false): every local user and process can use this kernel on ${config.host}`)
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(configHelp(STANDALONE_DEFAULTS))
    return
  }
  let config: KernelConfig
  try {
    // standalone defaults: auth on, a durable store at <WK_DATA_DIR or ./data>/kernel.db (WK_STORE_BACKEND=memory to opt out)
    config = loadConfig(process.env, argv, STANDALONE_DEFAULTS)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`workspace-kernel: ${err.message}\n`)
    process.exit(1)
  }
  const logger = createLogger(config)
  try {
    const app = await buildApp({ ...config, logger })
    onSignals(app, logger, config.shutdownTimeoutMs)
    const address = await app.listen({ port: config.port, host: config.host })
    announce(logger, `${address}${config.prefix}`, config, app.authToken)
  } catch (err) {
    logger.fatal({ err }, `startup failed: ${(err as Error)?.message ?? String(err)}`)
    exit(logger, 1)
  }
}

await main(process.argv.slice(2))
