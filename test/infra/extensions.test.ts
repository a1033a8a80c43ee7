import t from 'tap'
import Fastify from 'fastify'
import extensionsPlugin, { ExtensionManager, type Extension } from '../../plugins/extensions.js'
import metricsPlugin from '../../plugins/metrics.js'
import { createHttpExtension, type HttpExtensionOptions } from '../../plugins/extensions/http.js'
import { hostAllowed, isPrivateAddress } from '../../plugins/extensions/address.js'
import { startServer, until } from './helpers.js'

/** A manager with only the http extension, shut down at teardown. */
async function httpManager(tt: { teardown(fn: () => unknown): void }, opts: Partial<HttpExtensionOptions>): Promise<ExtensionManager> {
  const m = new ExtensionManager()
  await m.register(createHttpExtension(opts))
  tt.teardown(() => m.shutdown())
  return m
}

t.test('http get/post/put/delete/head/request against a real local server', async (t) => {
  const srv = await startServer(t, (req, res) => {
    if (req.url.startsWith('/text')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('plain words')
    if (req.url.startsWith('/missing')) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"nope"}')
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': 'yes' })
    res.end(JSON.stringify({ method: req.method, url: req.url, body: req.body, type: req.headers['content-type'] ?? null }))
  })
  const m = await httpManager(t, { allowedDomains: ['127.0.0.1'], userAgent: 'wk-test/1' })

  const got = (await m.call('http', 'get', [`${srv.url}/items`, { query: { q: 'a b', n: 2 } }])) as any
  t.equal(got.status, 200)
  t.equal(got.headers['x-echo'], 'yes')
  t.same(got.body, { method: 'GET', url: '/items?q=a+b&n=2', body: '', type: null })
  t.equal(srv.seen[0].headers['user-agent'], 'wk-test/1')

  const posted = (await m.call('http', 'post', [`${srv.url}/items`, { title: 'x' }, { headers: { 'x-trace': '1' } }])) as any
  t.same(posted.body, { method: 'POST', url: '/items', body: '{"title":"x"}', type: 'application/json' })
  t.equal(srv.seen[1].headers['x-trace'], '1')

  const put = (await m.call('http', 'put', [`${srv.url}/items/1`, 'raw text'])) as any
  t.same(put.body, { method: 'PUT', url: '/items/1', body: 'raw text', type: 'text/plain; charset=utf-8' })

  t.equal(((await m.call('http', 'delete', [`${srv.url}/items/1`])) as any).body.method, 'DELETE')
  const head = (await m.call('http', 'head', [`${srv.url}/items`])) as any
  t.same([head.status, head.body], [200, null])
  const req = (await m.call('http', 'request', [{ method: 'patch', url: `${srv.url}/p`, body: { a: 1 } }])) as any
  t.same(req.body, { method: 'PATCH', url: '/p', body: '{"a":1}', type: 'application/json' })

  t.same(((await m.call('http', 'get', [`${srv.url}/text`])) as any).body, 'plain words', 'non-JSON bodies come back as text')
  const missing = (await m.call('http', 'get', [`${srv.url}/missing`])) as any
  t.same([missing.status, missing.body], [404, { error: 'nope' }], 'a 404 is a result, not an error')

  await t.rejects(m.call('http', 'get', ['ftp://127.0.0.1/x']), { code: 'INVALID_REQUEST' })
  await t.rejects(m.call('http', 'get', ['not a url']), { code: 'INVALID_REQUEST' })
  await t.rejects(m.call('http', 'get', [srv.url, { headers: { host: 'evil' } }]), { code: 'INVALID_REQUEST', message: /host/ })
  await t.rejects(m.call('http', 'request', [{ method: 'GET', url: srv.url, body: 'x' }]), { code: 'INVALID_REQUEST' })
  t.equal(srv.seen.length, 8, 'rejected calls never reached the server')
})

t.test('allowedDomains: exact names and *.wildcards', async (t) => {
  t.ok(hostAllowed('api.example.test', ['api.example.test']))
  t.ok(hostAllowed('API.Example.Test.', ['api.example.test']), 'case and trailing dot do not matter')
  t.ok(hostAllowed('a.b.example.org', ['*.example.org']))
  t.notOk(hostAllowed('example.org', ['*.example.org']), 'the wildcard needs a subdomain')
  t.notOk(hostAllowed('evilexample.org', ['*.example.org']))
  t.notOk(hostAllowed('api.example.test.evil.com', ['api.example.test']))
  t.ok(hostAllowed('anything.com', []), 'an empty list allows any host')

  const srv = await startServer(t, (_req, res) => res.end('ok'))
  const m = await httpManager(t, { allowedDomains: ['api.example.test', '*.example.org'] })
  await t.rejects(m.call('http', 'get', [srv.url]), { code: 'DOMAIN_NOT_ALLOWED', message: /127\.0\.0\.1 is not in allowedDomains/ })
  t.equal(srv.seen.length, 0)
})

t.test('loopback/private/link-local targets are refused unless allowed', async (t) => {
  for (const ip of ['127.0.0.1', '10.1.2.3', '172.16.0.9', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe']) {
    t.ok(isPrivateAddress(ip), `${ip} is private`)
  }
  // every IPv6 form embedding an IPv4 address (::/96, ::ffff:0:0/96, ::ffff:0:0:0/96), in any spelling, even of a public IPv4
  for (const ip of ['::127.0.0.1', '::7f00:1', '0:0:0:0:0:0:7f00:1', '::8.8.8.8', '::ffff:8.8.8.8', '0:0:0:0:0:ffff:127.0.0.1',
    '0000:0000:0000:0000:0000:ffff:7f00:0001', '::ffff:0:7f00:1', '::ffff:0:8.8.8.8', '[::ffff:169.254.169.254]', '::FFFF:A9FE:A9FE']) {
    t.ok(isPrivateAddress(ip), `${ip} is refused`)
  }
  for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '2001:4860:4860::8888']) t.notOk(isPrivateAddress(ip), `${ip} is public`)

  const srv = await startServer(t, (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hi":1}'))
  const open = await httpManager(t, {})
  await t.rejects(open.call('http', 'get', [srv.url]), { code: 'ADDRESS_NOT_ALLOWED' })
  await t.rejects(open.call('http', 'get', [`http://[::1]:${srv.port}/`]), { code: 'ADDRESS_NOT_ALLOWED' })
  await t.rejects(open.call('http', 'get', [`http://2130706433:${srv.port}/`]), { code: 'ADDRESS_NOT_ALLOWED' }, 'decimal IPv4 is normalised')
  for (const v6 of ['::127.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1']) {
    await t.rejects(open.call('http', 'get', [`http://[${v6}]:${srv.port}/`]), { code: 'ADDRESS_NOT_ALLOWED' }, `[${v6}] is refused`)
  }
  await t.rejects(open.call('http', 'get', [`http://localhost:${srv.port}/`]), { code: 'ADDRESS_NOT_ALLOWED', message: /localhost resolves to/ },
    'a name is checked on the address DNS gives')

  // a name that resolves to loopback (resolver answers like DNS would), matched by a wildcard only
  const resolve = async (host: string) => (host.endsWith('.example.test') ? [{ address: '127.0.0.1', family: 4 }] : [])
  const wildcard = await httpManager(t, { allowedDomains: ['*.example.test'], resolve })
  await t.rejects(wildcard.call('http', 'get', [`http://svc.example.test:${srv.port}/`]), { code: 'ADDRESS_NOT_ALLOWED' })
  t.equal(srv.seen.length, 0, 'no refused call reached the server')

  const privateOk = await httpManager(t, { allowedDomains: ['*.example.test'], allowPrivateAddresses: true, resolve })
  const res = (await privateOk.call('http', 'get', [`http://svc.example.test:${srv.port}/`])) as any
  t.same([res.status, res.body], [200, { hi: 1 }], 'allowPrivateAddresses lets it through')
  t.equal(srv.seen[0].headers.host, `svc.example.test:${srv.port}`)

  const exact = await httpManager(t, { allowedDomains: ['svc.example.test'], resolve })
  t.equal(((await exact.call('http', 'get', [`http://svc.example.test:${srv.port}/`])) as any).status, 200,
    'a host listed exactly may be private')
})

t.test('timeouts: the default and a shorter per-call one', async (t) => {
  const srv = await startServer(t, () => {}) // never answers
  const m = await httpManager(t, { allowedDomains: ['127.0.0.1'], timeoutMs: 300 })
  await t.rejects(m.call('http', 'get', [srv.url]), { code: 'TIMEOUT', message: /longer than 300 ms/ })
  await t.rejects(m.call('http', 'get', [srv.url, { timeoutMs: 50 }]), { code: 'TIMEOUT', message: /longer than 50 ms/ })
  await t.rejects(m.call('http', 'get', [srv.url, { timeoutMs: 60_000 }]), { code: 'TIMEOUT', message: /longer than 300 ms/ },
    'a call cannot raise the configured maximum')
})

t.test('response size cap, declared and streamed', async (t) => {
  const srv = await startServer(t, (req, res) => {
    if (req.url === '/declared') return void res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000))
    if (req.url === '/small') return void res.end('y'.repeat(1000))
    res.writeHead(200) // chunked, no length
    res.write('z'.repeat(800))
    res.end('z'.repeat(800))
  })
  const m = await httpManager(t, { allowedDomains: ['127.0.0.1'], maxResponseBytes: 1000 })
  await t.rejects(m.call('http', 'get', [`${srv.url}/declared`]), { code: 'RESPONSE_TOO_LARGE' })
  await t.rejects(m.call('http', 'get', [`${srv.url}/streamed`]), { code: 'RESPONSE_TOO_LARGE' })
  t.equal(((await m.call('http', 'get', [`${srv.url}/small`])) as any).body.length, 1000, 'exactly the cap is fine')
})

t.test('maxConcurrent slots with a bounded queue', async (t) => {
  const srv = await startServer(t, () => {}) // the test answers by hand
  const m = await httpManager(t, { allowedDomains: ['127.0.0.1'], maxConcurrent: 2, maxQueue: 2 })
  const calls = [1, 2, 3, 4].map((i) => m.call('http', 'get', [`${srv.url}/${i}`]))
  await until(() => srv.seen.length === 2)
  await new Promise((r) => setTimeout(r, 100))
  t.equal(srv.seen.length, 2, 'only two requests in flight')
  await t.rejects(m.call('http', 'get', [`${srv.url}/5`]), { code: 'QUEUE_FULL' }, 'a fifth call finds the queue full')

  const answer = () => srv.open.find((r) => !r.headersSent)!.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  answer()
  await until(() => srv.seen.length === 3)
  t.equal(srv.seen[2].url, '/3', 'queued calls go in order')
  answer()
  await until(() => srv.seen.length === 4)
  answer()
  answer()
  const results = (await Promise.all(calls)) as any[]
  t.same(results.map((r) => r.status), [200, 200, 200, 200])
  t.same(srv.seen.map((s) => s.url), ['/1', '/2', '/3', '/4'])
})

t.test('an app registers its own extension in a few lines', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(metricsPlugin, { defaultMetrics: false })
  await app.register(extensionsPlugin, { http: false })
  // the embedding app's own extension:
  await app.register(async (fastify) => {
    await fastify.extensions.register({
      name: 'greeter',
      methods: ['hello', 'fail', 'hang'],
      async call(method, [who]) {
        if (method === 'fail') throw new Error('greeter is tired')
        if (method === 'hang') return new Promise(() => {})
        return `hello ${who}`
      },
    })
  })
  await app.ready()
  const ext = app.extensions

  t.equal(await ext.call('greeter', 'hello', ['ada']), 'hello ada')
  t.same(ext.methodMap(), { greeter: ['hello', 'fail', 'hang'] })
  t.same(ext.list(), [{ name: 'greeter', methods: ['hello', 'fail', 'hang'] }])
  await t.rejects(ext.call('greeter', 'fail', []), { code: 'EXTENSION_ERROR', message: /greeter is tired/ })
  await t.rejects(ext.call('greeter', 'nope', []), { code: 'METHOD_NOT_FOUND' })
  await t.rejects(ext.call('http', 'get', ['http://x']), { code: 'EXTENSION_NOT_FOUND' }, 'http: false leaves it out')
  await t.rejects(ext.register({ name: 'greeter', methods: ['x'], call: async () => 1 }), { code: 'EXTENSION_EXISTS', statusCode: 409 })
  await t.rejects(ext.register({ name: 'bad-name', methods: ['x'], call: async () => 1 }), { code: 'INVALID_EXTENSION' })
  const failing: Extension = { name: 'broken', methods: ['x'], init: () => { throw new Error('no') }, call: async () => 1 }
  await t.rejects(ext.register(failing))
  t.notOk(ext.has('broken'), 'an init failure registers nothing')

  const ac = new AbortController()
  const cancelled = ext.call('greeter', 'hang', [], { signal: ac.signal })
  ac.abort()
  await t.rejects(cancelled, { code: 'ABORTED' })

  const metrics = await app.promRegistry.metrics()
  t.match(metrics, /kernel_extension_calls_total\{extension="greeter",method="hello",outcome="ok"\} 1/)
  t.match(metrics, /kernel_extension_calls_total\{extension="greeter",method="fail",outcome="EXTENSION_ERROR"\} 1/)

  const pending = ext.call('greeter', 'hang', [])
  await app.close()
  await t.rejects(pending, { code: 'SHUTDOWN' }, 'closing the app aborts calls in flight')
  await t.rejects(ext.call('greeter', 'hello', ['x']), { code: 'SHUTDOWN' })
  t.equal(await ext.unregister('greeter'), false)
})
