import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { request } from 'undici'
import WebSocket from 'ws'
import auth from '../../plugins/auth.js'
import { defineError, errorHandler } from '../../plugins/errors.js'

const SECRET = 'test-secret-0123456789'

/**
 * A real app on 127.0.0.1 with the auth plugin and a tiny notes API of the test's own, scoped by
 * namespace like the kernel's resources: another namespace's note answers 404.
 */
async function start(t: { teardown(fn: () => unknown): void }, enabled: boolean): Promise<{ app: FastifyInstance; base: string }> {
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(websocket)
  await app.register(auth, { enabled, secret: SECRET })
  await app.register(async (routes) => {
    if (routes.hasDecorator('authenticate')) routes.addHook('onRequest', routes.authenticate)
    const notes = new Map<string, string>()
    routes.get('/whoami', async (req) => ({ namespace: req.namespace }))
    routes.put<{ Params: { id: string }; Body: { text: string } }>('/notes/:id', async (req) => {
      notes.set(`${req.namespace}/${req.params.id}`, req.body.text)
      return { ok: true }
    })
    routes.get<{ Params: { id: string } }>('/notes/:id', async (req) => {
      const text = notes.get(`${req.namespace}/${req.params.id}`)
      if (text === undefined) throw defineError('NOTE_NOT_FOUND', 404)(`No note ${req.params.id}`)
      return { text }
    })
    routes.get('/ws', { websocket: true }, (socket, req) => socket.send(JSON.stringify({ namespace: req.namespace })))
  })
  // an unprotected route in the same app stays open
  app.get('/open', async () => ({ open: true }))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base }
}

async function get(url: string, token?: string, raw?: string) {
  const headers: Record<string, string> = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (raw) headers.authorization = raw
  const res = await request(url, { headers })
  return { status: res.statusCode, body: (await res.body.json()) as any }
}

/** Opens a WebSocket; resolves with the first message, or rejects with the HTTP status of a refused upgrade. */
function wsFirst(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.on('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }))
      ws.terminate()
    })
    ws.on('message', (data) => {
      resolve(JSON.parse(String(data)))
      ws.close()
    })
    ws.on('error', reject)
  })
}

t.test('auth enabled: 401 without or with a bad token, namespaces from the claim', async (t) => {
  const { app, base } = await start(t, true)
  const ada = app.jwt.sign({ namespace: 'ada' })
  const bob = app.jwt.sign({ namespace: 'bob' })
  const plain = app.jwt.sign({ sub: 'someone' })

  const none = await get(`${base}/whoami`)
  t.equal(none.status, 401)
  t.same(Object.keys(none.body).sort(), ['code', 'error', 'message', 'statusCode'])
  t.match(none.body, { statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized', message: /Missing token/ })

  const forged = Fastify()
  await forged.register(auth, { enabled: true, secret: 'another-secret-9876543210' })
  await forged.ready()
  for (const bad of [forged.jwt.sign({ namespace: 'ada' }), 'not.a.jwt', app.jwt.sign({ namespace: 'ada', exp: Math.floor(Date.now() / 1000) - 60 })]) {
    t.match(await get(`${base}/whoami`, bad), { status: 401, body: { code: 'UNAUTHORIZED', message: 'Invalid or expired token' } })
  }
  await forged.close()
  t.match(await get(`${base}/whoami`, undefined, `Basic ${ada}`), { status: 401 }, 'only Bearer counts')
  t.match(await get(`${base}/whoami?token=${ada}`), { status: 401 }, '?token= is for WebSocket upgrades only')
  t.match(await get(`${base}/whoami`, app.jwt.sign({ namespace: '../etc' })), { status: 401, body: { message: /namespace claim/ } })

  t.same((await get(`${base}/whoami`, ada)).body, { namespace: 'ada' })
  t.same((await get(`${base}/whoami`, plain)).body, { namespace: 'default' }, 'no claim: default namespace')
  t.same((await get(`${base}/open`)).body, { open: true }, 'routes without the hook stay open')

  const put = await request(`${base}/notes/n1`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ada}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'ada only' }),
  })
  t.equal(put.statusCode, 200)
  await put.body.dump()
  t.same(await get(`${base}/notes/n1`, ada), { status: 200, body: { text: 'ada only' } })
  t.match(await get(`${base}/notes/n1`, bob), { status: 404, body: { code: 'NOTE_NOT_FOUND' } }, "another namespace's note is 404")
})

t.test('auth enabled: WebSocket upgrade refused without a token, accepted with ?token=', async (t) => {
  const { app, base } = await start(t, true)
  const wsBase = base.replace('http', 'ws')
  await t.rejects(wsFirst(`${wsBase}/ws`), { message: 'upgrade refused: 401' })
  await t.rejects(wsFirst(`${wsBase}/ws?token=garbage`), { message: 'upgrade refused: 401' })
  t.same(await wsFirst(`${wsBase}/ws?token=${app.jwt.sign({ namespace: 'ada' })}`), { namespace: 'ada' })
})

t.test('auth disabled: everything open, namespace default', async (t) => {
  const { app, base } = await start(t, false)
  t.notOk(app.hasDecorator('jwt'), 'no JWT machinery when disabled')
  t.same((await get(`${base}/whoami`)).body, { namespace: 'default' })
  t.same(await wsFirst(`${base.replace('http', 'ws')}/ws`), { namespace: 'default' })
})

t.test('enabled without a secret: a secret is generated and authToken is signed with it', async (t) => {
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(auth, { enabled: true })
  app.register(async (routes) => {
    routes.addHook('onRequest', routes.authenticate)
    routes.get('/whoami', async (req) => ({ namespace: req.namespace }))
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.type(app.authToken, 'string')
  t.same(await get(`${base}/whoami`, app.authToken), { status: 200, body: { namespace: 'default' } })
  t.match(await get(`${base}/whoami`, app.jwt.sign({ namespace: 'x' }, { key: SECRET } as never)), { status: 401 }, 'a token signed with another secret is refused')
  const withSecret = Fastify()
  await withSecret.register(auth, { enabled: true, secret: SECRET })
  t.equal(withSecret.authToken, undefined, 'no token is minted when the secret is configured')
  await withSecret.close()
})

t.test('Authorization: token <jwt> (Jupyter clients) counts like Bearer', async (t) => {
  const { app, base } = await start(t, true)
  const ada = app.jwt.sign({ namespace: 'ada' })
  t.same(await get(`${base}/whoami`, undefined, `token ${ada}`), { status: 200, body: { namespace: 'ada' } })
  t.same(await get(`${base}/whoami`, undefined, `Token ${ada}`), { status: 200, body: { namespace: 'ada' } })
  t.match(await get(`${base}/whoami`, undefined, `token`), { status: 401, body: { message: /Missing token/ } })
})

t.test('a JWT without exp expires maxAge after its iat; one with neither is refused', async (t) => {
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(auth, { enabled: true, secret: SECRET, maxAge: 3600 })
  app.register(async (routes) => {
    routes.addHook('onRequest', routes.authenticate)
    routes.get('/whoami', async (req) => ({ namespace: req.namespace }))
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const now = Math.floor(Date.now() / 1000)
  t.match(await get(`${base}/whoami`, app.jwt.sign({ namespace: 'ada', iat: now - 3700 })), {
    status: 401,
    body: { code: 'UNAUTHORIZED', message: 'Token has no exp and is older than jwtMaxAge (3600 s)' },
  })
  t.same(await get(`${base}/whoami`, app.jwt.sign({ namespace: 'ada', iat: now - 60 })), { status: 200, body: { namespace: 'ada' } })
  t.same(await get(`${base}/whoami`, app.jwt.sign({ namespace: 'ada', iat: now - 7200, exp: now + 60 })), { status: 200, body: { namespace: 'ada' } }, 'an exp governs over maxAge')
  t.match(await get(`${base}/whoami`, app.jwt.sign({ namespace: 'ada' }, { noTimestamp: true })), { status: 401, body: { message: 'Token has neither exp nor iat' } })
})
