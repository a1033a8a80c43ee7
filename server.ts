/**
 * The standalone kernel: configuration from WK_* variables and flags (`--help` lists them),
 * pino logs (pretty unless nodeEnv is production), listen, and graceful shutdown.
 *
 * Shutdown on SIGTERM/SIGINT, in order: stop accepting requests (503 from then on), close the
 * WebSockets (1001), abort extension calls, cancel panel runs, close the listener, shut the
 * executor down; then exit 0. A second signal, a failure, or more than `shutdownTimeoutMs`
 * exits 1. Invalid configuration prints every problem and exits 1.
 */
import pino, { type Logger } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, configHelp, loadConfig, type KernelConfig } from './config.js'

function createLogger(config: KernelConfig): Logger {
  if (config.nodeEnv === 'production') return pino({ level: config.logLevel })
  return pino({
    level: config.logLevel,
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

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(configHelp())
    return
  }
  let config: KernelConfig
  try {
    // standalone default: a durable store at <WK_DATA_DIR or ./data>/kernel.db (WK_STORE_BACKEND=memory to opt out)
    config = loadConfig(process.env, argv, { store: { backend: 'sqlite' } })
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
    const url = `${address}${config.prefix}`
    logger.info({ url }, `workspace-kernel listening on ${url} (docs: ${url}/docs)`)
  } catch (err) {
    logger.fatal({ err }, `startup failed: ${(err as Error)?.message ?? String(err)}`)
    exit(logger, 1)
  }
}

await main(process.argv.slice(2))
