import t from 'tap'
import { PanelClient } from '../../examples/client.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { SECRET, api, signToken, startKernel } from './helpers.js'

const spinner = (id: string): PanelDefinition => ({
  id,
  kind: 'spin',
  initialState: { n: 0 },
  tools: [
    { name: 'spin', handler: 'while (true) {}', timeoutMs: 1000 },
    { name: 'inc', handler: '$state.n = $state.n + 1; return $state.n' },
  ],
})
const as = (ns: string) => ({ authorization: `Bearer ${signToken({ namespace: ns })}` })

t.test('a namespace flooding many panels with spinning triggers does not starve another namespace', async (t) => {
  const { base } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET, maxConcurrentSegments: 2, maxPanels: 100 })
  const flooders: PanelClient[] = []
  t.teardown(() => Promise.all(flooders.map((c) => c.close())))
  for (let i = 0; i < 20; i++) {
    const { body } = await api(base, 'POST', '/panels', spinner(`f${i}`), as('flood'))
    flooders.push((await PanelClient.connect(`${body.wsUrl}?token=${signToken({ namespace: 'flood' })}`)).client)
  }
  await api(base, 'POST', '/panels', spinner('victim'), as('victim'))
  let finished = 0
  const flood = flooders.flatMap((c) => [0, 1, 2].map(() => c.trigger('spin', {}, undefined).then(() => finished++)))
  // the flood holds both execution slots now; the victim's trivial trigger waits for one slot only
  await new Promise((r) => setTimeout(r, 200))
  const victim = await api(base, 'POST', '/panels/victim/trigger/inc', { args: {} }, as('victim'))
  t.match(victim.body, { status: 'success', returnValue: 1 })
  t.ok(finished <= 2, `served after ${finished} of the 60 spinning runs (FIFO would have waited for about 20)`)
  for (const c of flooders) c.ws.terminate()
  await Promise.allSettled(flood)
})

t.test('in-flight caps: 429 SOCKET_BUSY per socket, NAMESPACE_BUSY per namespace; nothing runs for a refused trigger', async (t) => {
  const { base } = await startKernel(t, { maxInFlightPerSocket: 3, maxInFlightPerNamespace: 5, maxPanels: 40 })
  const urls = []
  for (const id of ['a', 'b']) urls.push((await api(base, 'POST', '/panels', spinner(id))).body.wsUrl)
  const { client: a } = await PanelClient.connect(urls[0])
  const { client: b } = await PanelClient.connect(urls[1])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const fromA = [0, 1, 2, 3].map(() => a.trigger('spin', {}))
  t.match(await fromA[3], { type: 'ERROR', code: 'SOCKET_BUSY', message: /maxInFlightPerSocket \(3\)/ })
  const fromB = [0, 1, 2].map(() => b.trigger('spin', {}))
  t.match(await fromB[2], { type: 'ERROR', code: 'NAMESPACE_BUSY', message: /maxInFlightPerNamespace \(5\)/ })
  t.match(await api(base, 'POST', '/panels/b/trigger/inc', { args: {} }), { status: 429, body: { code: 'NAMESPACE_BUSY' } }, 'REST counts in the namespace too')
  const done = await Promise.all([...fromA.slice(0, 3), ...fromB.slice(0, 2)])
  t.ok(done.every((m: any) => m.type === 'ERROR' && m.code === 'TIMEOUT'), 'the admitted ones ran (and timed out)')
  t.same((await api(base, 'GET', '/panels/b/state')).body.state, { n: 0 }, 'the refused inc never ran')
  t.match(await api(base, 'POST', '/panels/b/trigger/inc', { args: {} }), { status: 200, body: { returnValue: 1 } }, 'free again once answered')
})

t.test('panel quotas per namespace; state and timeout limits; SUBSCRIBE topics per socket', async (t) => {
  const { base, app } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET, maxPanels: 8, maxStateBytes: 1000, maxToolTimeoutMs: 2000, maxTopicsPerSocket: 4 })
  t.equal((await api(base, 'POST', '/panels', spinner('p1'), as('a'))).status, 201)
  t.equal((await api(base, 'POST', '/panels', spinner('p2'), as('a'))).status, 201)
  t.match(await api(base, 'POST', '/panels', spinner('p3'), as('a')), { status: 429, body: { code: 'NAMESPACE_QUOTA', message: /maxPanelsPerNamespace \(2\)/ } }, 'a quarter of maxPanels')
  t.equal((await api(base, 'POST', '/panels', spinner('p3'), as('b'))).status, 201, 'another namespace still creates')

  const big = { ...spinner('big'), initialState: { blob: 'x'.repeat(2000) } }
  t.match(await api(base, 'POST', '/panels', big, as('b')), { status: 413, body: { code: 'STATE_TOO_LARGE' } }, 'initialState over maxStateBytes')
  const deep = `{"id":"deep","kind":"k","tools":[],"initialState":{"deep":${'['.repeat(20_000)}0${']'.repeat(20_000)}}}`
  t.match(await api(base, 'POST', '/panels', deep, as('b')), { status: 400, body: { code: 'INVALID_STATE' } }, 'a 20,000-deep initialState is refused')
  const slow = { ...spinner('slow'), tools: [{ name: 'x', handler: 'return 1', timeoutMs: 5000 }] }
  t.match(await api(base, 'POST', '/panels', slow, as('b')), { status: 400, body: { code: 'INVALID_DEFINITION', message: /maxToolTimeoutMs \(2000\)/ } })
  t.equal((await api(base, 'GET', '/panels', undefined, as('b'))).body.panels.length, 1, 'none of the refused panels exists')

  const grow = { id: 'grow', kind: 'k', initialState: {}, tools: [{ name: 'put', handler: '$state[$args.k] = $args.v; return true' }] }
  const { body } = await api(base, 'POST', '/panels', grow, as('b'))
  t.equal((await api(base, 'POST', '/panels/grow/trigger/put', { args: { k: 'a', v: 'x'.repeat(500) } }, as('b'))).status, 200)
  const { client } = await PanelClient.connect(`${body.wsUrl}?token=${signToken({ namespace: 'b' })}`)
  t.teardown(() => client.close())
  t.match(await api(base, 'POST', '/panels/grow/trigger/put', { args: { k: 'b', v: 'x'.repeat(500) } }, as('b')), { status: 413, body: { code: 'STATE_TOO_LARGE' } })
  t.match(await client.trigger('put', { k: 'c', v: 'x'.repeat(600) }), { type: 'ERROR', code: 'STATE_TOO_LARGE' })
  t.equal((await api(base, 'POST', '/panels/grow/trigger/put', { args: { k: 'a', v: 'short' } }, as('b'))).body.version, 2, 'replacing a key frees its bytes')
  const state = (await api(base, 'GET', '/panels/grow/state', undefined, as('b'))).body
  t.same(state, { panelId: 'grow', state: { a: 'short' }, version: 2 })
  await client.ping()
  t.same(client.messages.filter((m) => m.type === 'PATCH').map((m: any) => m.version), [2], 'no PATCH for a refused commit')

  client.send({ type: 'SUBSCRIBE', topics: ['state:a', 'state:b', 'state:c'], requestId: 's1' })
  t.match(await client.next((m) => m.type === 'ERROR'), { type: 'ERROR', code: 'TOO_MANY_TOPICS', requestId: 's1' })
  client.send({ type: 'SUBSCRIBE', topics: ['state:a', 'state:b'] })
  client.send({ type: 'UNSUBSCRIBE', topics: ['state'] })
  await client.ping()
  await api(base, 'POST', '/panels/grow/trigger/put', { args: { k: 'c', v: 1 } }, as('b'))
  await api(base, 'POST', '/panels/grow/trigger/put', { args: { k: 'b', v: 2 } }, as('b'))
  await client.ping()
  t.same(client.messages.filter((m) => m.type === 'PATCH').map((m: any) => m.version), [2, 4], 'the two topics that fit were added')
  t.equal(app.panels.sessions.count(), 1, 'one session, no leak from refused work')
})
