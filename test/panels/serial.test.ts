import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PanelClient } from '../../examples/client.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { api, startGateServer, startKernel } from './helpers.js'

/** The lost-update pattern of issue 8: read, compute, write. Serial segments make it exact. */
const bump = { name: 'bump', handler: 'const n = ($state.count ?? 0) + 1; let x = 0; for (let i = 0; i < 200; i++) x += i; $state.count = n; return n' }
const panel = (id: string, extra: Partial<PanelDefinition> = {}): PanelDefinition => ({ id, kind: 'counter', initialState: { count: 0 }, tools: [bump], ...extra })
const dataDir = () => mkdtempSync(join(tmpdir(), 'wk-serial-'))

t.test('1,000 concurrent triggers over REST and WS on each of two panels: count 1000, subscribers see 1..1000 in order', async (t) => {
  const { base } = await startKernel(t, { dataDir: dataDir() })
  const ids = ['left', 'right']
  const urls = await Promise.all(ids.map(async (id) => (await api(base, 'POST', '/panels', panel(id))).body.wsUrl as string))
  const watchers = await Promise.all(urls.map((u) => PanelClient.connect(u).then((c) => c.client)))
  // 4 triggering sockets per panel (the per-socket cap is 256 in flight)
  const sockets = await Promise.all(urls.flatMap((u) => [0, 1, 2, 3].map(() => PanelClient.connect(u).then((c) => c.client))))
  t.teardown(() => Promise.all([...watchers, ...sockets].map((c) => c.close())))

  const calls: Array<Promise<{ version: number; value: number }>> = []
  ids.forEach((id, p) => {
    for (let i = 0; i < 500; i++) {
      calls.push(api(base, 'POST', `/panels/${id}/trigger/bump`, { args: {} }).then((r) => ({ version: r.body.version, value: r.body.returnValue })))
    }
    for (let i = 0; i < 500; i++) {
      const s = sockets[p * 4 + (i % 4)]
      calls.push(s.trigger('bump', {}).then((m: any) => ({ version: m.result.version, value: m.result.returnValue })))
    }
  })
  const results = await Promise.all(calls)
  for (const [p, id] of ids.entries()) {
    const mine = results.slice(p * 1000, p * 1000 + 1000)
    t.same([...mine.map((r) => r.value)].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i + 1), `${id}: every run saw the one before it`)
    t.ok(mine.every((r) => r.version === r.value), `${id}: each outcome carries the version its run committed`)
    t.same((await api(base, 'GET', `/panels/${id}/state`)).body, { panelId: id, state: { count: 1000 }, version: 1000 })
    await watchers[p].ping()
    const patches = watchers[p].messages.filter((m) => m.type === 'PATCH') as Array<{ version: number; mutations: Array<{ value: number }> }>
    t.same(patches.map((m) => m.version), Array.from({ length: 1000 }, (_, i) => i + 1), `${id}: the subscriber saw versions 1..1000 in order`)
    t.ok(patches.every((m) => m.mutations[0].value === m.version), `${id}: each PATCH holds the count of its version`)
  }
})

t.test('a run suspended on a slow local HTTP server does not hold its panel; after resuming it sees the writes made meanwhile', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { http: { allowedDomains: ['127.0.0.1'] } })
  await api(base, 'POST', '/panels', panel('slow', {
    tools: [
      bump,
      {
        name: 'load',
        handler: `$state.loading = true
const res = await $ext.http.get(${JSON.stringify(gate.url)} + '/x')
$state.loading = false
$state.data = res.body
return { countAfterResume: $state.count }`,
      },
    ],
  }))
  const load = api(base, 'POST', '/panels/slow/trigger/load', { args: {} })
  await gate.arrived(1)
  t.equal((await api(base, 'GET', '/panels/slow')).body.status, 'suspended')
  for (let i = 0; i < 5; i++) t.equal((await api(base, 'POST', '/panels/slow/trigger/bump', { args: {} })).body.returnValue, i + 1, 'bump runs while load waits')
  gate.release({ ok: 1 })
  const done = await load
  t.match(done.body, { status: 'success', returnValue: { countAfterResume: 5 }, segments: 2, version: 7 })
  t.same((await api(base, 'GET', '/panels/slow/state')).body, {
    panelId: 'slow', version: 7, state: { count: 5, loading: false, data: { ok: 1 } },
  }, 'segment 1 (v1), five bumps (v2..v6), segment 2 (v7)')
})

t.test('a segment that fails commits nothing of itself: no PATCH, no EVENT; earlier segments stay', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { http: { allowedDomains: ['127.0.0.1'] } })
  const { body } = await api(base, 'POST', '/panels', panel('f', {
    tools: [
      { name: 'flood', handler: "for (let i = 0; i < 1001; i++) $state['k' + i] = i; $emit('never', 1); return 1" },
      { name: 'late', handler: `$state.first = 1\nawait $ext.http.get(${JSON.stringify(gate.url)})\n$state.second = 2\n$emit('nope', 1)\nthrow new Error('after the await')` },
    ],
  }))
  const { client } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  const flood = await api(base, 'POST', '/panels/f/trigger/flood', { args: {} })
  t.match(flood.body, { status: 'error', error: { code: 'RESOURCE_LIMIT' }, version: 0, events: [] })
  t.same((await api(base, 'GET', '/panels/f/state')).body, { panelId: 'f', state: { count: 0 }, version: 0 }, 'none of the 1,000 keys written before the limit')

  const late = api(base, 'POST', '/panels/f/trigger/late', { args: {} })
  await gate.arrived(1)
  gate.release({})
  t.match((await late).body, { status: 'error', error: { code: 'EXECUTION_ERROR' }, version: 1, segments: 2, events: [] })
  t.same((await api(base, 'GET', '/panels/f/state')).body, { panelId: 'f', state: { count: 0, first: 1 }, version: 1 }, 'the segment before the suspension stays committed')
  await client.ping()
  t.same(client.messages.filter((m) => m.type !== 'CONNECTED' && m.type !== 'PONG'), [
    { type: 'PATCH', mutations: [{ key: 'first', value: 1, operation: 'set' }], version: 1 },
  ], 'one PATCH, no EVENT of a failed segment')
})

t.test('the queue is bounded: past maxQueuedRunsPerPanel a trigger is 429 PANEL_BUSY and nothing runs; depth shows in the description and /metrics', async (t) => {
  const { base } = await startKernel(t, { maxQueuedRunsPerPanel: 2 })
  await api(base, 'POST', '/panels', panel('q', { tools: [bump, { name: 'spin', handler: 'while (true) {}', timeoutMs: 3000 }] }))
  const spins = [0, 1, 2].map(() => api(base, 'POST', '/panels/q/trigger/spin', { args: {} }))
  let described: any
  for (;;) {
    described = (await api(base, 'GET', '/panels/q')).body
    if (described.queuedRuns === 2) break
    await new Promise((r) => setTimeout(r, 10))
  }
  t.match(described, { status: 'running', activeRuns: 3, queuedRuns: 2 })
  t.match(await (await fetch(`${base}/metrics`)).text(), /kernel_panel_queued_segments 2\b/)
  const busy = await api(base, 'POST', '/panels/q/trigger/bump', { args: {} })
  t.match(busy, { status: 429, body: { code: 'PANEL_BUSY', message: /maxQueuedRunsPerPanel \(2\)/ } })
  t.ok((await Promise.all(spins)).every((r) => r.body.error?.code === 'TIMEOUT'))
  t.same((await api(base, 'GET', '/panels/q/state')).body.state, { count: 0 }, 'the refused trigger never ran')
  t.equal((await api(base, 'POST', '/panels/q/trigger/bump', { args: {} })).body.returnValue, 1)
})

t.test('mount runs before any trigger and commits; unmount runs after the last run', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { http: { allowedDomains: ['127.0.0.1'] } })
  await api(base, 'POST', '/panels', panel('m', {
    lifecycle: { mount: '$state.mounted = true; $state.count = 10', unmount: `await $ext.http.get(${JSON.stringify(gate.url)} + '/bye?count=' + $state.count)` },
  }))
  t.same((await api(base, 'GET', '/panels/m/state')).body, { panelId: 'm', state: { count: 10, mounted: true }, version: 1 })
  t.equal((await api(base, 'POST', '/panels/m/trigger/bump', { args: {} })).body.returnValue, 11)
  const del = api(base, 'DELETE', '/panels/m')
  await gate.arrived(1)
  t.equal(gate.pending[0].req.url, '/bye?count=11')
  gate.release({})
  t.same((await del).body, { id: 'm', deleted: true, unmount: 'success' })
})
