import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import WebSocket from 'ws'
import { ConfigError, configVariables, loadConfig } from '../../config.js'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { buildApp } from '../../app.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

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

  const names = configVariables().map((v) => v.env)
  for (const n of ['WK_PORT', 'WK_HOST', 'WK_LOG_LEVEL', 'WK_NODE_ENV', 'WK_AUTH_ENABLED', 'WK_JWT_SECRET', 'WK_CORS_ORIGINS',
    'WK_BODY_LIMIT_BYTES', 'WK_MAX_PANELS', 'WK_SUSPENSION_TIMEOUT_MS', 'WK_RUNTIME_MEMORY_LIMIT_BYTES', 'WK_RUNTIME_CACHE_DIR',
    'WK_HTTP_MAX_CONCURRENT', 'WK_HTTP_USER_AGENT', 'WK_HTTP_MAX_RESPONSE_BYTES', 'WK_WS_MAX_PAYLOAD_BYTES', 'WK_WS_MAX_BUFFERED_BYTES']) {
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
})

/** Runs the standalone binary; `lines` collects its JSON log lines. */
function startBinary(env: Record<string, string>, args: string[] = []): { child: ChildProcess; lines: any[]; stderr: () => string } {
  const child = spawn(process.execPath, ['bin/workspace-kernel.js', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, WK_NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: any[] = []
  let err = ''
  let buf = ''
  child.stdout!.on('data', (d: Buffer) => {
    buf += d
    const parts = buf.split('\n')
    buf = parts.pop()!
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p))
  })
  child.stderr!.on('data', (d: Buffer) => (err += d))
  return { child, lines, stderr: () => err }
}

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as { port: number }
  await new Promise((r) => s.close(r))
  return port
}

/** Polls `fn` until it gives a value; fails early when the child has exited. */
async function waitFor<T>(fn: () => T | undefined, child?: ChildProcess, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = fn()
    if (v !== undefined) return v
    if (child && child.exitCode !== null) throw new Error(`the binary exited with ${child.exitCode}`)
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode
  const [code] = await once(child, 'exit')
  return code as number | null
}

/** The token of the generated-secret URL the binary logs (`tokenUrl: http://…/?token=<jwt>`). */
function tokenOf(line: { tokenUrl?: string }): string {
  const token = new URL(line.tokenUrl ?? 'http://x/').searchParams.get('token')
  if (!token) throw new Error(`no token URL in ${JSON.stringify(line)}`)
  return token
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => (s.destroy(), resolve(false)))
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'))
  })
}

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

t.test('the binary without a secret generates one, prints a token URL and requires the token', async (t) => {
  const port = await freePort()
  const { child, lines } = startBinary({ WK_PORT: String(port) })
  t.teardown(() => child.kill('SIGKILL'))
  const listening = await waitFor(() => lines.find((l) => l.url), child)
  t.match(listening.tokenUrl, new RegExp(`^http://127\\.0\\.0\\.1:${port}/\\?token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`))
  t.match(listening.msg, listening.tokenUrl, 'the URL is in the message a user reads')
  const token = tokenOf(listening)
  const base = `http://127.0.0.1:${port}`
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`${base}${path}`, { headers })
    return { status: res.statusCode, body: (await res.body.json()) as any }
  }
  t.match(await get('/panels'), { status: 401, body: { code: 'UNAUTHORIZED', message: /Missing token/ } }, 'no token: 401')
  t.match(await get('/processes'), { status: 401 })
  t.match(await get('/panels', { authorization: 'Bearer not.a.jwt' }), { status: 401, body: { message: 'Invalid or expired token' } })
  t.same(await get('/panels', { authorization: `Bearer ${token}` }), { status: 200, body: { panels: [] } }, 'Bearer')
  t.same(await get('/panels', { authorization: `token ${token}` }), { status: 200, body: { panels: [] } }, 'token (Jupyter)')
  t.equal((await get('/health')).status, 200, '/health stays open')

  const created = await request(`${base}/panels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ id: 'p1', kind: 'k', tools: [] }),
  })
  t.equal(created.statusCode, 201)
  await created.body.dump()
  const refusedWs = new WebSocket(`ws://127.0.0.1:${port}/panels/p1/ws`)
  refusedWs.on('error', () => {}) // terminate() below reports the unfinished handshake
  const [, res] = await once(refusedWs, 'unexpected-response')
  t.equal(res.statusCode, 401, 'an upgrade without ?token= is refused')
  refusedWs.terminate()
  const ws = new WebSocket(`ws://127.0.0.1:${port}/panels/p1/ws?token=${token}`)
  const [first] = await once(ws, 'message')
  t.match(JSON.parse(String(first)), { type: 'CONNECTED', panelId: 'p1' }, '?token= on the upgrade')
  ws.close()
  const upgrade = await waitFor(() => lines.find((l) => l.req?.url?.startsWith('/panels/p1/ws?token=')), child)
  t.equal(upgrade.req.url, '/panels/p1/ws?token=[redacted]', 'the request log redacts the token')
  t.notOk(lines.filter((l) => l !== listening).some((l) => JSON.stringify(l).includes(token)), 'no other log line holds the token')
})

t.test('the binary with a secret prints no token; a JWT without exp older than WK_JWT_MAX_AGE is refused', async (t) => {
  const port = await freePort()
  const secret = 'a-configured-secret-0123456789'
  const { child, lines } = startBinary({ WK_PORT: String(port), WK_JWT_SECRET: secret, WK_JWT_MAX_AGE: '60' })
  t.teardown(() => child.kill('SIGKILL'))
  const listening = await waitFor(() => lines.find((l) => l.url), child)
  t.equal(listening.tokenUrl, undefined, 'no token is minted for a configured secret')
  const signer = Fastify()
  await signer.register(fastifyJwt, { secret })
  await signer.ready()
  t.teardown(() => signer.close())
  const now = Math.floor(Date.now() / 1000)
  const status = async (claims: Record<string, unknown>) => {
    const res = await request(`http://127.0.0.1:${port}/panels`, { headers: { authorization: `Bearer ${signer.jwt.sign(claims)}` } })
    const body = (await res.body.json()) as any
    return [res.statusCode, body.message]
  }
  t.same(await status({ namespace: 'a', iat: now - 120 }), [401, 'Token has no exp and is older than jwtMaxAge (60 s)'])
  t.same(await status({ namespace: 'a', iat: now - 10 }), [200, undefined])
  t.same(await status({ namespace: 'a', iat: now - 120, exp: now + 60 }), [200, undefined], 'an exp governs')
})

t.test('WK_AUTH_ENABLED=false: refused at start on a non-loopback host, a warning on loopback', async (t) => {
  const open = startBinary({ WK_AUTH_ENABLED: 'false', WK_HOST: '0.0.0.0', WK_PORT: String(await freePort()) })
  t.equal(await exitCode(open.child), 1)
  t.match(open.stderr(), 'WK_AUTH_ENABLED=false: auth may be off only on a loopback host (host is 0.0.0.0)')

  const port = await freePort()
  const { child, lines } = startBinary({ WK_AUTH_ENABLED: 'false', WK_PORT: String(port) })
  t.teardown(() => child.kill('SIGKILL'))
  const warning = await waitFor(() => lines.find((l) => l.level === 40), child)
  t.match(warning.msg, /auth is off/)
  const res = await request(`http://127.0.0.1:${port}/panels`)
  t.equal(res.statusCode, 200, 'no token needed')
  await res.body.dump()
  const rebind = await request(`http://127.0.0.1:${port}/panels`, { headers: { host: 'rebind.attacker.example' } })
  t.equal(rebind.statusCode, 421, 'the Host guard still holds')
  await rebind.body.dump()
})
