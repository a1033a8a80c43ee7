import t from 'tap'
import { PanelClient } from '../../examples/client.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { api, startGateServer, startKernel, allowLoopback } from './helpers.js'

/** Loopback is refused by the http extension unless listed: the tests list 127.0.0.1. */
function fetcher(url: string, extra: Partial<PanelDefinition> = {}): PanelDefinition {
  return {
    id: 'f',
    kind: 'fetcher',
    initialState: { loading: false, data: null, error: null },
    tools: [
      {
        name: 'load',
        handler: `
$state.loading = true
try {
  const res = await $ext.http.get(${JSON.stringify(url)} + '/item?n=' + ($args.n ?? 1))
  $state.data = res.body
} catch (err) {
  $state.error = err.code + ': ' + err.message
} finally {
  $state.loading = false
}
return $state.data`,
      },
      {
        name: 'pair',
        handler: `
$state.loading = true
const [a, b] = await Promise.all([$ext.http.get(${JSON.stringify(url)} + '/a'), $ext.http.get(${JSON.stringify(url)} + '/b')])
$state.data = [a.body, b.body]
$state.loading = false
return $state.data`,
      },
    ],
    ...extra,
  }
}

t.test('PATCH loading:true arrives before the slow response is served; then the data', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, allowLoopback)
  const { body } = await api(base, 'POST', '/panels', fetcher(gate.url))
  t.same(body.tools[0].capabilities, ['ext:http', 'state:read:data', 'state:write:data', 'state:write:error', 'state:write:loading'])
  const { client } = await PanelClient.connect(body.wsUrl)
  const { client: watcher } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => Promise.all([client.close(), watcher.close()]))

  const result = client.trigger('load', { n: 7 }, 'L1')
  const loading = await watcher.next((m) => m.type === 'PATCH')
  t.same(loading, { type: 'PATCH', mutations: [{ key: 'loading', value: true, operation: 'set' }], version: 1 })
  await gate.arrived(1)
  t.equal(gate.pending.length, 1, 'the HTTP request is still held by the server')
  t.match(await client.next((m) => m.type === 'PROGRESS', 5000, true), {
    type: 'PROGRESS', requestId: 'L1', tool: 'load', phase: 'suspended', pendingCalls: [{ extension: 'http', method: 'get' }],
  })
  t.equal((await api(base, 'GET', '/panels/f')).body.status, 'suspended')
  t.same((await api(base, 'GET', '/panels/f/state')).body, { panelId: 'f', state: { loading: true, data: null, error: null }, version: 1 })
  t.equal(gate.pending[0].req.url, '/item?n=7')

  gate.release({ item: 7 })
  t.match(await result, { type: 'RESULT', requestId: 'L1', result: { status: 'success', returnValue: { item: 7 }, version: 2, segments: 2 } })
  await watcher.ping()
  const patches = watcher.messages.filter((m) => m.type === 'PATCH')
  t.same(patches.at(-1), {
    type: 'PATCH',
    mutations: [{ key: 'data', value: { item: 7 }, operation: 'set' }, { key: 'loading', value: false, operation: 'set' }],
    version: 2,
  })
  t.equal((await api(base, 'GET', '/panels/f')).body.status, 'ready')
})

t.test('calls awaited together run in parallel', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, allowLoopback)
  await api(base, 'POST', '/panels', fetcher(gate.url))
  const run = api(base, 'POST', '/panels/f/trigger/pair', { args: {} })
  await gate.arrived(2)
  t.equal(gate.maxInFlight(), 2, 'both requests were in flight at once')
  const urls = gate.pending.map((p) => p.req.url).sort()
  t.same(urls, ['/a', '/b'])
  const byUrl = Object.fromEntries(gate.pending.map((p) => [p.req.url, p]))
  byUrl['/b'].res.writeHead(200, { 'content-type': 'application/json' }).end('"B"')
  byUrl['/a'].res.writeHead(200, { 'content-type': 'application/json' }).end('"A"')
  gate.pending.length = 0
  t.match((await run).body, { status: 'success', returnValue: ['A', 'B'], segments: 2 })
})

t.test('an extension error is catchable by the handler', async (t) => {
  const { base } = await startKernel(t) // loopback not allowed here
  await api(base, 'POST', '/panels', fetcher('http://127.0.0.1:9'))
  const run = await api(base, 'POST', '/panels/f/trigger/load', { args: {} })
  t.match(run.body, { status: 'success', returnValue: null })
  const state = (await api(base, 'GET', '/panels/f/state')).body.state
  t.match(state, { loading: false, data: null, error: /^[A-Z_]+: / }, 'the handler stored the typed error')
})

t.test('a suspension longer than suspensionTimeoutMs ends the run with TIMEOUT', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { ...allowLoopback, suspensionTimeoutMs: 200 })
  await api(base, 'POST', '/panels', fetcher(gate.url))
  const run = await api(base, 'POST', '/panels/f/trigger/pair', { args: {} })
  t.match(run.body, { status: 'error', error: { code: 'TIMEOUT' } })
  const panel = (await api(base, 'GET', '/panels/f')).body
  t.match(panel, { status: 'ready', activeRuns: 0, version: 1 }, 'loading:true was committed, nothing after')
})

t.test('deleting a panel cancels its suspended runs', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, allowLoopback)
  const { body } = await api(base, 'POST', '/panels', fetcher(gate.url))
  const { client } = await PanelClient.connect(body.wsUrl)
  const result = client.trigger('load', {}, 'D1').catch((e: Error) => e)
  await gate.arrived(1)
  const closed = new Promise<number>((r) => client.ws.once('close', (c) => r(c)))
  t.same((await api(base, 'DELETE', '/panels/f')).body, { id: 'f', deleted: true })
  t.equal(await closed, 4004)
  t.match(await result, { code: 'CANCELLED', message: /panel deleted/ }, 'the client got the run\'s ERROR before the close')
  t.equal((await api(base, 'GET', '/panels/f')).status, 404)
})
