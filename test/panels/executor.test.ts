/**
 * The executor's policy as a client sees it (issue 11): one suspension timeout (TIMEOUT, the
 * instance freed at once), a resume that waits for its panel's turn is not timed out, and the
 * one admission gate (503 CAPACITY_EXCEEDED past maxInstances + maxQueue).
 */
import t from 'tap'
import { PanelClient } from '../../examples/client.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { api, startGateServer, startKernel, allowLoopback } from './helpers.js'

function panel(id: string, url: string): PanelDefinition {
  return {
    id,
    kind: 'fetcher',
    initialState: { n: 0 },
    tools: [
      { name: 'load', handler: `const r = await $ext.http.get(${JSON.stringify(url)} + '/x'); $state.n = $state.n + 1; return r.body` },
      { name: 'spin', handler: 'while (true) {}', timeoutMs: 400 },
      { name: 'inc', handler: '$state.n = $state.n + 1; return $state.n' },
    ],
  }
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1])
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10))
}

t.test('calls outliving suspensionTimeoutMs: TIMEOUT over REST (200) and as ERROR on the WS, the instance freed', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { ...allowLoopback, suspensionTimeoutMs: 200 })
  const { body } = await api(base, 'POST', '/panels', panel('f', gate.url))

  const rest = await api(base, 'POST', '/panels/f/trigger/load', { args: {} })
  t.equal(rest.status, 200)
  t.match(rest.body, { status: 'error', error: { code: 'TIMEOUT', message: /longer than suspensionTimeoutMs \(200 ms\)/ }, segments: 2 })
  t.equal(await metric(base, 'wk_runtime_suspended_instances'), 0, 'the sandbox instance was freed at once')
  t.equal(await metric(base, 'kernel_panel_suspended_runs'), 0)

  const { client } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  t.match(await client.trigger('load', {}, 'T1'), {
    type: 'ERROR', requestId: 'T1', code: 'TIMEOUT', message: /suspensionTimeoutMs \(200 ms\)/,
  })
  t.equal(await metric(base, 'wk_runtime_suspended_instances'), 0)
  t.match((await api(base, 'GET', '/panels/f')).body, { status: 'ready', activeRuns: 0, version: 0 }, 'nothing committed')
  t.equal(gate.pending.length, 2, 'both calls reached the server (and were abandoned)')
})

t.test('a resume queued behind its panel longer than suspensionTimeoutMs after its calls settled still completes', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { ...allowLoopback, suspensionTimeoutMs: 300 })
  await api(base, 'POST', '/panels', panel('f', gate.url))
  const load = api(base, 'POST', '/panels/f/trigger/load', { args: {} })
  await gate.arrived(1)
  const spins = [api(base, 'POST', '/panels/f/trigger/spin', { args: {} }), api(base, 'POST', '/panels/f/trigger/spin', { args: {} })]
  // one spin runs, one waits: the resume queues behind both, about 400 ms past the 300 ms timeout
  await until(async () => (await api(base, 'GET', '/panels/f')).body.queuedRuns === 1)
  gate.release('data')
  t.match((await load).body, { status: 'success', returnValue: 'data', segments: 2, version: 1 })
  for (const s of await Promise.all(spins)) t.match(s.body, { status: 'error', error: { code: 'TIMEOUT', message: /400 ms timeout/ } })
  t.same((await api(base, 'GET', '/panels/f/state')).body.state, { n: 1 })
})

t.test('one gate: past maxInstances live runs and maxQueue waiters, 503 CAPACITY_EXCEEDED; a resume passes waiters', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, { ...allowLoopback, runtime: { maxInstances: 1, maxQueue: 1 } })
  for (const id of ['a', 'b', 'c']) await api(base, 'POST', '/panels', panel(id, gate.url))
  const held = api(base, 'POST', '/panels/a/trigger/load', { args: {} })
  await gate.arrived(1) // a's run holds the only instance while suspended
  const queued = api(base, 'POST', '/panels/b/trigger/inc', { args: {} })
  await until(async () => (await api(base, 'GET', '/panels/b')).body.activeRuns === 1)
  t.match(await api(base, 'POST', '/panels/c/trigger/inc', { args: {} }), {
    status: 503, body: { code: 'CAPACITY_EXCEEDED', message: /maxInstances 1\) and 1 executions already wait/ },
  })
  gate.release('A')
  t.match((await held).body, { status: 'success', returnValue: 'A' }, 'the resume ran although a first segment waited')
  t.match((await queued).body, { status: 'success', returnValue: 1 }, 'the waiter ran once the instance was free')
  t.same((await api(base, 'GET', '/panels/c/state')).body.state, { n: 0 }, 'the refused trigger ran nothing')
  t.match(await api(base, 'POST', '/panels/c/trigger/inc', { args: {} }), { status: 200, body: { returnValue: 1 } })
})

t.test('a bad policy option is refused with INVALID_CONFIG naming it, embedded or through the config', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { default: metrics } = await import('../../plugins/metrics.js')
  const { default: extensions } = await import('../../plugins/extensions.js')
  const { default: executor } = await import('../../plugins/executor.js')
  // above 2^31 - 1 ms, Node's setTimeout would fire at once: every suspension would expire immediately
  for (const [option, value] of [['suspensionTimeoutMs', 2 ** 31], ['maxConcurrentSegments', 0]] as const) {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    await app.register(metrics).register(extensions)
    await t.rejects(app.register(executor, { [option]: value }).ready(), {
      code: 'INVALID_CONFIG',
      message: new RegExp(`^executor: ${option} Expected integer to be (less|greater) or equal to`),
    })
  }
  await t.rejects(startKernel(t, { suspensionTimeoutMs: 2 ** 31 }), { code: 'INVALID_CONFIG', message: /suspensionTimeoutMs/ })
})
