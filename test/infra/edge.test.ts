import t from 'tap'
import { mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { request } from 'undici'
import WebSocket from 'ws'
import Fastify from 'fastify'
import { buildApp, kernelPlugin, type BuildAppOptions } from '../../app.js'
import { CapabilityInference } from '../../plugins/panels/inference.js'
import { inferCapabilities } from '../../plugins/panels/capabilities.js'
import { counterPanel } from '../panels/helpers.js'

type Teardown = { teardown(fn: () => unknown): void }

/** A kernel on 127.0.0.1 with a fresh process workspace; `port` for building Host/Origin values. */
async function start(t: Teardown, opts: BuildAppOptions = {}) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'wk-edge-')))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const app = await buildApp({ logLevel: 'silent', processes: { workspaceRoot: root }, ...opts })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, base, port: (app.server.address() as { port: number }).port }
}

/** One HTTP call with chosen headers (undici lets a client set Host, as a rebinding page's browser would). */
async function call(base: string, method: 'GET' | 'POST' | 'DELETE', path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await request(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.body.text()
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined }
}

/** Opens a WebSocket: resolves with the open socket and its first message, or rejects with the refused upgrade's status and body. */
function openWs(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket; first: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts)
    ws.on('unexpected-response', (_req, res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d))
      res.on('end', () => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(text) }))
        ws.terminate()
      })
    })
    ws.once('message', (data) => resolve({ ws, first: JSON.parse(String(data)) }))
    ws.on('error', reject)
  })
}

const ERROR_KEYS = ['code', 'error', 'message', 'statusCode']
const spawnSleep = { type: 'node', code: 'setInterval(() => {}, 1000)' }

t.test('a foreign Host is refused with 421 before any work, on HTTP and on upgrades', async (t) => {
  const { base, port } = await start(t)
  const rebind = { host: 'rebind.attacker.example' }
  const spawned = await call(base, 'POST', '/processes', rebind, spawnSleep)
  t.equal(spawned.status, 421)
  t.same(Object.keys(spawned.body).sort(), ERROR_KEYS, 'our error reply')
  t.match(spawned.body, { statusCode: 421, code: 'HOST_NOT_ALLOWED', error: 'Misdirected Request', message: /rebind\.attacker\.example/ })
  t.same((await call(base, 'GET', '/processes')).body, { processes: [] }, 'nothing was spawned')
  t.equal((await call(base, 'POST', '/panels', { host: `rebind.attacker.example:${port}` }, counterPanel('p1'))).status, 421)
  t.equal((await call(base, 'GET', '/panels/p1')).status, 404, 'no panel was created')
  for (const host of ['127.0.0.2', 'localhost.attacker.example', 'bad host', '']) {
    t.equal((await call(base, 'GET', '/health', { host })).status, 421, `Host ${JSON.stringify(host)} refused`)
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '127.0.0.1:1']) {
    t.equal((await call(base, 'GET', '/health', { host })).status, 200, `Host ${host} allowed`)
  }

  const proc = await call(base, 'POST', '/processes', {}, spawnSleep)
  t.equal(proc.status, 201)
  const ws = base.replace('http', 'ws')
  await t.rejects(openWs(`${ws}/processes/${proc.body.pid}/ws`, { headers: rebind }), { status: 421, body: { code: 'HOST_NOT_ALLOWED' } })
  await call(base, 'POST', '/panels', {}, counterPanel('p2'))
  await t.rejects(openWs(`${ws}/panels/p2/ws`, { headers: rebind }), { status: 421, body: { code: 'HOST_NOT_ALLOWED' } })
  await call(base, 'DELETE', `/processes/${proc.body.pid}`)
})

t.test('allowedHosts (WK_ALLOWED_HOSTS) adds names; * turns the Host check off', async (t) => {
  const { base } = await start(t, { allowedHosts: ['kernel.example', '*.corp.example'] })
  t.equal((await call(base, 'GET', '/health', { host: 'kernel.example' })).status, 200)
  t.equal((await call(base, 'GET', '/health', { host: 'kernel.example:8443' })).status, 200, 'any port')
  t.equal((await call(base, 'GET', '/health', { host: 'a.corp.example' })).status, 200)
  t.equal((await call(base, 'GET', '/health', { host: 'corp.example' })).status, 421, 'the wildcard needs a subdomain')
  const open = await start(t, { allowedHosts: ['*'] })
  t.equal((await call(open.base, 'GET', '/health', { host: 'rebind.attacker.example' })).status, 200)
})

t.test('embedded with kernelPlugin: the guard covers the kernel routes only', async (t) => {
  const app = Fastify()
  app.get('/', async () => ({ mine: true }))
  await app.register(kernelPlugin, { prefix: '/kernel', logLevel: 'silent' })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const foreign = { host: 'app.example', origin: 'https://other.example' }
  t.same(await call(base, 'GET', '/', foreign), { status: 200, body: { mine: true } }, "the app's own route is the app's business")
  t.match(await call(base, 'GET', '/kernel/health', { host: 'app.example' }), { status: 421, body: { code: 'HOST_NOT_ALLOWED' } })
  t.match(await call(base, 'GET', '/kernel/health', { origin: 'https://other.example' }), { status: 403, body: { code: 'ORIGIN_NOT_ALLOWED' } })
})

t.test('a foreign Origin is refused on /processes/:pid/ws and /panels/:id/ws; no Origin, same origin and listed origins pass', async (t) => {
  const { base, port } = await start(t, { corsOrigins: ['https://ide.example'] })
  const ws = base.replace('http', 'ws')
  const proc = await call(base, 'POST', '/processes', {}, { type: 'node', code: "process.stdin.on('data', (d) => console.log('got ' + d))" })
  t.equal(proc.status, 201)
  await call(base, 'POST', '/panels', {}, counterPanel('p1'))
  for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${port + 1}`, `https://localhost.evil.example:${port}`]) {
    await t.rejects(openWs(`${ws}/processes/${proc.body.pid}/ws`, { origin }), { status: 403, body: { statusCode: 403, code: 'ORIGIN_NOT_ALLOWED' } }, `process socket: ${origin}`)
    await t.rejects(openWs(`${ws}/panels/p1/ws`, { origin }), { status: 403, body: { code: 'ORIGIN_NOT_ALLOWED' } }, `panel socket: ${origin}`)
  }
  // a foreign page's REST trigger is refused too, and runs nothing
  const trig = await call(base, 'POST', '/panels/p1/trigger/inc', { origin: 'http://evil.example' }, { args: {} })
  t.match(trig, { status: 403, body: { code: 'ORIGIN_NOT_ALLOWED' } })
  t.match((await call(base, 'GET', '/panels/p1/state')).body, { state: { count: 0 }, version: 0 }, 'the trigger did not run')

  for (const opts of [{}, { origin: `http://127.0.0.1:${port}` }, { origin: 'https://ide.example' }]) {
    const p = await openWs(`${ws}/panels/p1/ws`, opts)
    t.equal(p.first.type, 'CONNECTED', `panel socket with ${JSON.stringify(opts)}`)
    p.ws.close()
  }
  const attached = await openWs(`${ws}/processes/${proc.body.pid}/ws`, { origin: 'https://ide.example' })
  t.equal(attached.first.type, 'ATTACHED')
  attached.ws.send(JSON.stringify({ type: 'STDIN', data: 'hi\n' }))
  const out = await new Promise<any>((resolve) => attached.ws.on('message', (d) => {
    const m = JSON.parse(String(d))
    if (m.type === 'OUTPUT') resolve(m)
  }))
  t.match(out.data, /got hi/, 'a listed origin drives the process')
  attached.ws.close()
  await call(base, 'DELETE', `/processes/${proc.body.pid}`)
})

/** `depth` nested arrays around 0: `[[0]]` has depth 2. */
const nested = (depth: number) => `${'['.repeat(depth)}0${']'.repeat(depth)}`

t.test('JSON nested deeper than maxJsonDepth: 400 JSON_TOO_DEEP on bodies and WS messages, nothing applied', async (t) => {
  const { base } = await start(t, { maxJsonDepth: 16 })
  // the body is { id, kind, tools, initialState: { deep: <n> } }: depth n + 2
  const body = (n: number, id: string) => `{"id":"${id}","kind":"k","tools":[],"initialState":{"deep":${nested(n)}}}`
  const deep = await call(base, 'POST', '/panels', {}, body(15, 'deep'))
  t.same(Object.keys(deep.body).sort(), [...ERROR_KEYS, 'details'].sort())
  t.match(deep, { status: 400, body: { code: 'JSON_TOO_DEEP', message: 'JSON nests deeper than maxJsonDepth (16)', details: { maxJsonDepth: 16 } } })
  t.equal((await call(base, 'GET', '/panels/deep')).status, 404, 'nothing created')
  t.equal((await call(base, 'POST', '/panels', {}, body(14, 'ok'))).status, 201, 'depth 16 is accepted')
  const brackets = `{"id":"str","kind":"k","tools":[],"initialState":{"s":"${'[{'.repeat(100)}\\"["}}`
  t.equal((await call(base, 'POST', '/panels', {}, brackets)).status, 201, 'brackets inside strings do not count')

  const ws = base.replace('http', 'ws')
  const { ws: panel } = await openWs(`${ws}/panels/ok/ws`)
  const reply = new Promise<any>((resolve) => panel.once('message', (d) => resolve(JSON.parse(String(d)))))
  panel.send(`{"type":"TRIGGER","tool":"x","args":{"a":${nested(20)}}}`)
  t.match(await reply, { type: 'ERROR', code: 'JSON_TOO_DEEP' })
  panel.close()

  const proc = await call(base, 'POST', '/processes', {}, spawnSleep)
  const { ws: attached } = await openWs(`${ws}/processes/${proc.body.pid}/ws`)
  const err = new Promise<any>((resolve) => attached.on('message', (d) => {
    const m = JSON.parse(String(d))
    if (m.type === 'ERROR') resolve(m)
  }))
  attached.send(`{"type":"STDIN","data":"x","extra":${nested(20)}}`)
  t.match(await err, { type: 'ERROR', code: 'JSON_TOO_DEEP' })
  attached.close()
  await call(base, 'DELETE', `/processes/${proc.body.pid}`)
})

t.test('prototype poisoning (__proto__, constructor.prototype) is refused like Fastify refuses it: 400 INVALID_JSON, nothing applied', async (t) => {
  const { base } = await start(t)
  const poisons = {
    proto: '{"name":"python3","__proto__":{"polluted":true}}',
    constructor: '{"name":"python3","constructor":{"prototype":{"polluted":true}}}',
  }
  for (const [what, text] of Object.entries(poisons)) {
    for (const type of ['application/json', 'text/plain']) {
      t.match(await call(base, 'POST', '/api/kernels', { 'content-type': type }, text),
        { status: 400, body: { code: 'INVALID_JSON', message: 'body is not valid JSON' } }, `POST /api/kernels, ${what}, ${type}`)
    }
    t.match(await call(base, 'POST', '/api/sessions', {}, `{"path":"a.ipynb","type":"notebook","kernel":${text}}`),
      { status: 400, body: { code: 'INVALID_JSON' } }, `POST /api/sessions, ${what}`)
    t.match(await call(base, 'POST', '/panels', {}, `{"id":"p","kind":"k","tools":[],"initialState":${text}}`),
      { status: 400, body: { code: 'INVALID_JSON' } }, `POST /panels, ${what} (Fastify's own parser)`)
  }
  t.same((await call(base, 'GET', '/api/kernels')).body, [], 'no kernel started')
  t.same((await call(base, 'GET', '/api/sessions')).body, [], 'no session created')
  t.equal((await call(base, 'GET', '/panels/p')).status, 404, 'no panel created')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.equal((await call(base, 'GET', '/api/kernels', { 'content-type': 'text/plain' })).status, 200, 'a bodiless kernels request still passes')

  t.equal((await call(base, 'POST', '/panels', {}, counterPanel('ok'))).status, 201)
  const { ws: panel } = await openWs(`${base.replace('http', 'ws')}/panels/ok/ws`)
  const reply = new Promise<any>((resolve) => panel.once('message', (d) => resolve(JSON.parse(String(d)))))
  panel.send(`{"type":"TRIGGER","tool":"inc","requestId":"r1","args":{"__proto__":{"by":5}}}`)
  t.match(await reply, { type: 'ERROR', code: 'PARSE_ERROR' }, 'a poisoned WS message is not JSON to the panel socket')
  panel.close()
  t.match((await call(base, 'GET', '/panels/ok/state')).body, { state: { count: 0 }, version: 0 }, 'the tool did not run')
})

t.test('malformed WebSocket frames: closed by ws, logged at debug without a stack, counted in /metrics', async (t) => {
  const logs: any[] = []
  const sink = new Writable({ write: (chunk, _enc, cb) => (logs.push(JSON.parse(String(chunk))), cb()) })
  const { base } = await start(t, { logger: pino({ level: 'debug' }, sink) })
  await call(base, 'POST', '/panels', {}, counterPanel('p1'))
  for (const frame of [[0x83, 0x80, 0, 0, 0, 0], [0xa1, 0x80, 0, 0, 0, 0], [0x81, 0x02, 0x68, 0x69]]) {
    const { ws } = await openWs(`${base.replace('http', 'ws')}/panels/p1/ws`)
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
    ;(ws as unknown as { _socket: import('node:net').Socket })._socket.write(Buffer.from(frame))
    t.equal(await closed, 1002, `frame ${Buffer.from(frame).toString('hex')}: closed 1002 (protocol error)`)
  }
  const metrics = (await request(`${base}/metrics`).then((r) => r.body.text()))
  t.match(metrics, /kernel_ws_malformed_frames_total\{code="WS_ERR_INVALID_OPCODE"\} 1/)
  t.match(metrics, /kernel_ws_malformed_frames_total\{code="WS_ERR_UNEXPECTED_RSV_2_3"\} 1/)
  t.match(metrics, /kernel_ws_malformed_frames_total\{code="WS_ERR_EXPECTED_MASK"\} 1/)
  const debug = logs.filter((l) => l.msg === 'malformed WebSocket frame')
  t.equal(debug.length, 3)
  t.ok(debug.every((l) => l.level === 20 && l.err === undefined), 'at debug, no error object')
  t.same(logs.filter((l) => l.level >= 50), [], 'nothing at error level')
})

t.test('capability inference of 1 MB panels runs off the event loop: /health answers meanwhile', async (t) => {
  const { base } = await start(t, { bodyLimitBytes: 4 << 20 })
  // 4 tools of 250 kB (a handler's schema limit is 256 KiB): 1 MB of source per panel
  let source = ''
  for (let i = 0; source.length < 250_000; i++) source += `if ($args.k === ${i}) { $state.a${i % 50} = ($state.b${i % 50} ?? 0) + ${i} }\n`
  const tools = ['t1', 't2', 't3', 't4'].map((name) => ({ name, handler: source }))
  const panels = [1, 2, 3].map((n) => call(base, 'POST', '/panels', {}, { id: `big${n}`, kind: 'big', tools }))
  let created = false
  const all = Promise.all(panels).then((r) => ((created = true), r))
  const inFlight = async () => Number(/kernel_capability_inferences_in_flight (\d+)/.exec(await request(`${base}/metrics`).then((r) => r.body.text()))?.[1])
  let seen = 0
  while (!created && seen === 0) seen = await inFlight()
  t.ok(seen > 0, 'an inference was seen in flight')
  const health = await call(base, 'GET', '/health')
  const still = await inFlight()
  t.equal(health.status, 200)
  t.ok(still > 0, `/health answered while ${still} inference(s) were still in flight`)
  const replies = await all
  t.same(replies.map((r) => r.status), [201, 201, 201])
  const tool = (await call(base, 'GET', '/panels/big1')).body.tools[0]
  t.ok(tool.capabilitiesInferred)
  t.same(tool.capabilities, inferCapabilities(source), 'inferred on the worker as inline')

  const inference = new CapabilityInference()
  t.teardown(() => inference.close())
  const lines = source.split('\n').length
  await t.rejects(inference.infer(`${source}}}`, 'run'), { statusCode: 400, code: 'COMPILATION_ERROR', details: { tool: 'run', line: lines } },
    'a syntax error found on the worker keeps its code and line')
})
