import t from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import WebSocket from 'ws'
import { ConfigError, configVariables, loadConfig } from '../../config.js'
import { buildApp } from '../../app.js'
import { exitCode, freePort, refused, startBinary, tokenOf, waitFor } from './binary.js'


function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

t.test('defaults, env variables and flags', async (t) => {
  const d = loadConfig({}, [])
  t.match(d, { port: 3000, host: '127.0.0.1', authEnabled: false, corsOrigins: [], bodyLimitBytes: 1048576 })
  t.match(d.http, { allowedDomains: [], allowPrivateAddresses: false })
  t.equal(d.runtime.maxInstances, 64)

  const c = loadConfig(
    { WK_PORT: '8080', WK_AUTH_ENABLED: 'yes', WK_JWT_SECRET: 'a-long-enough-secret', WK_HTTP_ALLOWED_DOMAINS: 'api.example.com, *.example.org', WK_RUNTIME_MAX_INSTANCES: '8', NODE_ENV: 'production' },
    ['--port=9090', '--ws-ping-interval-ms', '0', '--http-allow-private-addresses'],
  )
  t.equal(c.port, 9090, 'a flag wins over the env variable')
  t.equal(c.authEnabled, true)
  t.same(c.http.allowedDomains, ['api.example.com', '*.example.org'])
  t.equal(c.http.allowPrivateAddresses, true, 'a bare boolean flag means true')
  t.equal(c.runtime.maxInstances, 8)
  t.equal(c.ws.pingIntervalMs, 0)
  t.equal(c.nodeEnv, 'production', 'NODE_ENV is used when WK_NODE_ENV is unset')
  t.equal(loadConfig({ NODE_ENV: 'staging' }, []).nodeEnv, 'development', 'an unknown NODE_ENV is ignored')

  for (const [env, timeout] of [[{}, 60_000], [{ WK_PLUGIN_TIMEOUT_MS: '0' }, 0]] as const) {
    const app = await buildApp(loadConfig(env, []))
    t.teardown(() => app.close())
    t.equal(app.initialConfig.pluginTimeout, timeout, `Fastify's pluginTimeout is ${timeout} (it covers the guest's first compile)`)
  }

  const names = configVariables().map((v) => v.env)
  for (const n of ['WK_PORT', 'WK_HOST', 'WK_LOG_LEVEL', 'WK_NODE_ENV', 'WK_AUTH_ENABLED', 'WK_JWT_SECRET', 'WK_CORS_ORIGINS',
    'WK_BODY_LIMIT_BYTES', 'WK_MAX_PANELS', 'WK_SUSPENSION_TIMEOUT_MS', 'WK_RUNTIME_MEMORY_LIMIT_BYTES', 'WK_RUNTIME_CACHE_DIR',
    'WK_HTTP_MAX_CONCURRENT', 'WK_HTTP_USER_AGENT', 'WK_HTTP_MAX_RESPONSE_BYTES', 'WK_WS_MAX_PAYLOAD_BYTES', 'WK_WS_MAX_BUFFERED_BYTES',
    'WK_WORKERS_MAX_EVENTS_PAUSE_MS', 'WK_KERNELS_WS_MAX_PAYLOAD_BYTES', 'WK_PLUGIN_TIMEOUT_MS', 'WK_PROCESSES_MAX_OUTPUT_PAUSE_MS']) {
    t.ok(names.includes(n), `${n} exists`)
  }
})

t.test('bad values give one clear message naming each variable', async (t) => {
  t.match(configError(() => loadConfig({ WK_PORT: 'abc' }, [])).message, 'WK_PORT="abc": expected a number')
  const e = configError(() => loadConfig({ WK_PORT: '70000', WK_LOG_LEVEL: 'loud', WK_AUTH_ENABLED: 'maybe' }, []))
  t.equal(e.code, 'INVALID_CONFIG')
  t.match(e.message, 'WK_AUTH_ENABLED="maybe": expected a boolean')
  t.equal(e.issues.length, 1, 'parse errors are reported before range checks')
  const range = configError(() => loadConfig({ WK_PORT: '70000', WK_LOG_LEVEL: 'loud', WK_HTTP_MAX_CONCURRENT: '0' }, []))
  t.match(range.message, 'WK_PORT=70000: expected integer to be less or equal to 65535')
  t.match(range.message, 'WK_LOG_LEVEL="loud": expected one of fatal, error, warn, info, debug, trace, silent')
  t.match(range.message, 'WK_HTTP_MAX_CONCURRENT=0: expected integer to be greater or equal to 1')
  t.equal(loadConfig({ WK_AUTH_ENABLED: 'true' }, []).jwtSecret, undefined, 'auth on without a secret: one is generated at start')
  t.match(configError(() => loadConfig({ WK_AUTH_ENABLED: 'false', WK_HOST: '0.0.0.0' }, [])).message,
    'WK_AUTH_ENABLED=false: auth may be off only on a loopback host (host is 0.0.0.0)')
  t.match(configError(() => loadConfig({ WK_HOST: '192.168.1.5' }, [])).message, 'authEnabled=false: auth may be off only on a loopback host')
  t.equal(loadConfig({ WK_HOST: '0.0.0.0' }, [], { authEnabled: true }).authEnabled, true, 'the standalone default (auth on) allows any host')
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]']) t.equal(loadConfig({ WK_HOST: host }, []).host, host, `auth off on ${host}`)
  const short = configError(() => loadConfig({ WK_JWT_SECRET: 'hunter2' }, []))
  t.match(short.message, 'WK_JWT_SECRET: expected string length greater or equal to 16')
  t.notMatch(short.message, 'hunter2', 'a secret is never echoed')
  t.match(configError(() => loadConfig({}, ['--prot=1'])).message, '--prot: unknown flag')
  t.match(configError(() => loadConfig({}, ['--port'])).message, '--port: missing value')
  await t.rejects(buildApp({ bodyLimitBytes: 0 }), { code: 'INVALID_CONFIG', message: /bodyLimitBytes=0/ }, 'buildApp validates options too')
  await t.rejects(buildApp({ http: { maxConcurrent: -1 } }), { code: 'INVALID_CONFIG', message: /http\.maxConcurrent/ })
  // a timer past 2^31-1 ms would fire after 1 ms in Node: a heartbeat every 1 ms restarting every kernel
  t.match(configError(() => loadConfig({ WK_KERNELS_TIME_TO_DEAD_MS: String(2 ** 31) }, [])).message,
    'WK_KERNELS_TIME_TO_DEAD_MS=2147483648: expected integer to be less or equal to 2147483647')
  t.match(configError(() => loadConfig({ WK_PLUGIN_TIMEOUT_MS: String(2 ** 31) }, [])).message,
    'WK_PLUGIN_TIMEOUT_MS=2147483648: expected integer to be less or equal to 2147483647')
  t.match(configError(() => loadConfig({ WK_KERNELS_CULL_INTERVAL_S: '3000000' }, [])).message, 'WK_KERNELS_CULL_INTERVAL_S=3000000: expected integer to be less or equal to 2147483')
})

t.test('the binary refuses bad configuration with exit 1', async (t) => {
  const { child, stderr } = startBinary({ WK_PORT: 'eighty' })
  t.equal(await exitCode(child), 1)
  t.match(stderr(), 'Invalid configuration')
  t.match(stderr(), 'WK_PORT="eighty": expected a number')
})

t.test('the binary serves, then SIGTERM closes sockets and exits 0', async (t) => {
  const port = await freePort()
  const { child, lines, stderr } = startBinary({ WK_PORT: String(port), WK_LOG_LEVEL: 'info' })
  t.teardown(() => child.kill('SIGKILL'))
  const listening = await waitFor(() => lines.find((l) => l.url), child).catch((err) => {
    throw new Error(`${err.message}\n${stderr()}\n${JSON.stringify(lines)}`)
  })
  t.equal(listening.url, `http://127.0.0.1:${port}`)
  const token = tokenOf(listening)

  const health = await request(`http://127.0.0.1:${port}/health`)
  t.equal(health.statusCode, 200)
  t.match(await health.body.json(), { status: 'ok', authEnabled: true })

  // a live panel socket and an idle keep-alive HTTP connection
  const created = await request(`http://127.0.0.1:${port}/panels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ id: 'p1', kind: 'counter', initialState: { n: 0 }, tools: [{ name: 'inc', handler: '$state.n = $state.n + 1' }] }),
  })
  t.equal(created.statusCode, 201)
  const { wsUrl } = (await created.body.json()) as { wsUrl: string }
  const ws = new WebSocket(`${wsUrl}?token=${token}`)
  const [first] = await once(ws, 'message')
  t.equal(JSON.parse(String(first)).type, 'CONNECTED')
  const idle: Socket = connect(port, '127.0.0.1')
  await once(idle, 'connect')
  const idleClosed = once(idle, 'close')
  const wsClosed = once(ws, 'close')

  child.kill('SIGTERM')
  t.equal(await exitCode(child), 0, 'exit code 0')
  const [code] = await wsClosed
  t.equal(code, 1001, 'the WebSocket was closed with 1001 (going away)')
  await idleClosed
  t.pass('the idle HTTP connection was closed')
  t.ok(await refused(port), 'the port is closed')
  const msgs = lines.map((l) => l.msg)
  t.ok(msgs.indexOf('shutting down') < msgs.indexOf('shutdown complete'), 'logs the shutdown')
})

t.test('a stuck shutdown is cut after shutdownTimeoutMs; a second signal exits at once', async (t) => {
  for (const [name, second] of [['timeout', false], ['second signal', true]] as const) {
    const port = await freePort()
    const { child, lines } = startBinary({ WK_PORT: String(port), WK_SHUTDOWN_TIMEOUT_MS: '500', WK_AUTH_ENABLED: 'false' })
    t.teardown(() => child.kill('SIGKILL'))
    await waitFor(() => lines.find((l) => l.url), child)
    // a request whose body never finishes keeps the server from closing
    const stuck = connect(port, '127.0.0.1')
    // the server's forced exit resets this socket: that is expected, not an error of the test
    stuck.on('error', () => {})
    await once(stuck, 'connect')
    stuck.write('POST /panels HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":')
    await new Promise((r) => setTimeout(r, 100))
    child.kill('SIGTERM')
    if (second) {
      await waitFor(() => lines.find((l) => l.msg === 'shutting down'), child)
      child.kill('SIGINT')
    }
    t.equal(await exitCode(child), 1, `${name}: exit code 1`)
    t.ok(lines.some((l) => /second signal|longer than 500 ms/.test(l.msg)), `${name}: says why`)
    stuck.destroy()
  }
})

