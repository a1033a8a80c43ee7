import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { request } from 'undici'
import WebSocket from 'ws'
import { exitCode, freePort, ROOT, startBinary, tokenOf, waitFor } from './binary.js'

// The standalone binary's auth defaults (issue 10): a token generated and printed at start, its
// forms, the age limit of JWTs without exp, and auth off only on loopback.

t.test('the binary without a secret generates one, prints a token URL and requires the token', async (t) => {
  const port = await freePort()
  const { child, lines } = startBinary({ WK_PORT: String(port) })
  t.teardown(() => child.kill('SIGKILL'))
  const listening = await waitFor(() => lines.find((l) => l.url), child)
  t.match(listening.tokenUrl, new RegExp(`^http://127\\.0\\.0\\.1:${port}/inspector/\\?token=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`), 'the inspector page with the token')
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
  const page = await request(listening.tokenUrl)
  t.equal(page.statusCode, 200, 'the printed URL opens the inspector page (public; it reads the token from its URL)')
  t.match(await page.body.text(), /<html/i)

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

t.test("a fresh install's first start (no .cwasm cached yet) compiles the guest and serves", async (t) => {
  // the build folder as a fresh read-only install sees it: guest.wasm and the addon, no .cwasm beside them,
  // so the compiled guest goes to an empty user cache (the first-start compile used to overrun Fastify's 10 s)
  const build = join(ROOT, 'wasm-runtime', 'build')
  const only = (f: string) => ['--ro-bind', join(build, f), join(build, f)]
  const wrap = ['bwrap', '--die-with-parent', '--bind', '/', '/', '--tmpfs', build, ...only('guest.wasm'), ...only('wasm_runtime.node'),
    '--remount-ro', build, '--dev', '/dev', '--proc', '/proc']
  const home = mkdtempSync(join(tmpdir(), 'wk-fresh-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const cache = join(home, 'workspace-kernel', 'cwasm')
  const port = await freePort()
  const { child, lines } = startBinary({ WK_PORT: String(port), WK_AUTH_ENABLED: 'false', XDG_CACHE_HOME: home, HOME: home }, [], wrap)
  t.teardown(() => child.kill('SIGKILL'))
  await waitFor(() => lines.find((l) => l.url), child, 180_000)
  t.equal(readdirSync(cache).filter((f) => f.endsWith('.cwasm')).length, 1, 'the guest was compiled at this start, into the empty user cache')
  const base = `http://127.0.0.1:${port}`
  const post = async (path: string, body: unknown) => {
    const res = await request(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: (await res.body.json()) as any }
  }
  const panel = { id: 'c1', kind: 'counter', initialState: { n: 0 }, tools: [{ name: 'inc', handler: '$state.n = $state.n + 1; return $state.n' }] }
  t.equal((await post('/panels', panel)).status, 201)
  t.match(await post('/panels/c1/trigger/inc', {}), { status: 200, body: { status: 'success', returnValue: 1 } }, 'a handler runs in the freshly compiled guest')
})
