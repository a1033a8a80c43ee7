import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { once } from 'node:events'
import { request } from 'undici'
import WebSocket from 'ws'
import { kernelPlugin } from '../../app.js'
import metrics from '../../plugins/metrics.js'
import extensions from '../../plugins/extensions.js'
import executor from '../../plugins/executor.js'
import panels from '../../plugins/panels.js'
import store from '../../plugins/store.js'
import panelsRoutes from '../../routes/panels.js'

async function json(url: string, method = 'GET', body?: unknown): Promise<{ status: number; body: any }> {
  const res = await request(url, {
    method: method as 'GET',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
}

const counter = {
  id: 'c1',
  kind: 'counter',
  initialState: { n: 0 },
  tools: [{ name: 'inc', handler: '$state.n = $state.n + 1; return $state.n' }],
}

t.test('the whole kernel under /kernel, next to the host app’s own routes', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/hello', async () => ({ from: 'host' }))
  await app.register(kernelPlugin, { prefix: '/kernel', logLevel: 'silent' })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  t.same((await json(`${base}/hello`)).body, { from: 'host' }, 'the host route works')
  t.match((await json(`${base}/kernel/health`)).body, { status: 'ok', extensions: ['http'] })
  t.equal((await json(`${base}/health`)).status, 404, 'nothing of the kernel leaks outside its prefix')

  const created = await json(`${base}/kernel/panels`, 'POST', counter)
  t.equal(created.status, 201)
  t.match(created.body.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/kernel\/panels\/c1\/ws$/, 'wsUrl carries the prefix')
  const ws = new WebSocket(created.body.wsUrl)
  const [hello] = await once(ws, 'message')
  t.match(JSON.parse(String(hello)), { type: 'CONNECTED', panelId: 'c1', state: { n: 0 } })
  const triggered = await json(`${base}/kernel/panels/c1/trigger/inc`, 'POST', {})
  t.match(triggered.body, { status: 'success', returnValue: 1 })
  ws.close()

  const miss = await json(`${base}/kernel/nope`)
  t.same(miss, { status: 404, body: { statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: 'Route GET /kernel/nope not found' } })
  const hostMiss = await json(`${base}/nope`)
  t.equal(hostMiss.status, 404)
  t.notOk(hostMiss.body.code === 'ROUTE_NOT_FOUND', "the host keeps its own not-found handler")

  const spec = (await json(`${base}/kernel/openapi.json`)).body
  t.ok(spec.paths['/kernel/panels'], 'the OpenAPI document lists the prefixed routes')
  t.notOk(spec.paths['/hello'], 'and not the host’s')
  const metrics = await request(`${base}/kernel/metrics`)
  const text = await metrics.body.text()
  t.match(text, /kernel_panels 1/)
  t.match(text, /wk_runtime_segments_total\{status="success"\} 1/, "the sandbox's own metrics are on the app's /metrics")
})

t.test('a host app whose WebSocket server compresses (permessage-deflate): panel sockets go through ws', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { options: { perMessageDeflate: { threshold: 0 } } })
  await app.register(kernelPlugin, { prefix: '/kernel', logLevel: 'silent' })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const created = await json(`${base}/kernel/panels`, 'POST', counter)
  const ws = new WebSocket(created.body.wsUrl, { perMessageDeflate: { threshold: 0 } })
  const messages: any[] = []
  const compressed: boolean[] = []
  ws.on('message', (d) => messages.push(JSON.parse(String(d))))
  // the RSV1 bit of each frame the client reads: set = compressed by the server
  ws.once('upgrade', (res) => res.socket.on('data', (b: Buffer) => compressed.push((b[0] & 0x40) !== 0)))
  await once(ws, 'open')
  t.match(ws.extensions, /permessage-deflate/, 'the socket negotiated compression')
  while (messages.length < 1) await once(ws, 'message')
  ws.send(JSON.stringify({ type: 'TRIGGER', tool: 'inc', requestId: 'r1' }))
  while (messages.length < 3) await once(ws, 'message')
  t.same(messages.map((m) => m.type), ['CONNECTED', 'PATCH', 'RESULT'])
  t.same(messages[1], { type: 'PATCH', mutations: [{ key: 'n', value: 1, operation: 'set' }], version: 1 })
  t.match(messages[2], { requestId: 'r1', result: { status: 'success', returnValue: 1 } })
  t.ok(compressed.length > 0 && compressed.every(Boolean), 'every frame came compressed')
  ws.close()
})

t.test('single plugins registered by hand, with the app’s own extension used by a panel', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/hello', async () => ({ from: 'host' }))
  await app.register(
    async (k) => {
      await k.register(metrics, { route: false })
      await k.register(extensions, { http: false })
      await k.register(executor, {})
      await k.register(store, {}) // memory backend: no dataDir given
      await k.register(panels, {})
      await k.register(async (f) => {
        await f.extensions.register({
          name: 'greeter',
          methods: ['hello'],
          call: async (_method, [name]) => ({ greeting: `hello ${String(name)}` }),
        })
      })
      await k.register(panelsRoutes)
    },
    { prefix: '/embedded' },
  )
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  const created = await json(`${base}/embedded/panels`, 'POST', {
    id: 'greet',
    kind: 'greeter',
    initialState: {},
    tools: [{ name: 'greet', handler: 'const r = await $ext.greeter.hello($args.name); $state.last = r.greeting; return r.greeting' }],
  })
  t.equal(created.status, 201, JSON.stringify(created.body))
  const run = await json(`${base}/embedded/panels/greet/trigger/greet`, 'POST', { args: { name: 'ada' } })
  t.match(run.body, { status: 'success', returnValue: 'hello ada', segments: 2 }, JSON.stringify(run.body))
  t.same((await json(`${base}/embedded/panels/greet/state`)).body.state, { last: 'hello ada' })
  t.same((await json(`${base}/hello`)).body, { from: 'host' })
})
