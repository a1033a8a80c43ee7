/**
 * A run cancelled while it waits on its extension calls (its panel deleted, the kernel shutting down)
 * ends with a code of its own, CANCELLED (409 in the catalog), not TIMEOUT: the REST caller gets
 * 200 with status 'error' (seed 000).
 */
import t from 'tap'
import { ERROR_STATUS } from '../../plugins/errors.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { api, startGateServer, startKernel, allowLoopback } from './helpers.js'

function slowPanel(id: string, url: string): PanelDefinition {
  return {
    id,
    kind: 'slow',
    initialState: { n: 0 },
    tools: [{ name: 'load', handler: `const r = await $ext.http.get(${JSON.stringify(url)} + '/slow'); $state.n = 1; return r.body` }],
  }
}

t.test('CANCELLED is in the catalog', async (t) => {
  t.equal(ERROR_STATUS.CANCELLED, 409)
})

t.test('a panel deleted while its run waits on a slow extension call: the REST caller gets CANCELLED', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, allowLoopback)
  await api(base, 'POST', '/panels', slowPanel('p', gate.url))
  const run = api(base, 'POST', '/panels/p/trigger/load', { args: {} })
  await gate.arrived(1)
  t.same((await api(base, 'DELETE', '/panels/p')).body, { id: 'p', deleted: true })
  const { status, body } = await run
  t.equal(status, 200, 'a failed run is an outcome (seed 000)')
  t.match(body, { status: 'error', error: { code: 'CANCELLED', message: /run cancelled while waiting on extension calls: .*panel deleted/ } })
})

t.test('two DELETEs of a panel whose run waits both answer; the panel is gone once', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, allowLoopback)
  await api(base, 'POST', '/panels', slowPanel('p', gate.url))
  const run = api(base, 'POST', '/panels/p/trigger/load', { args: {} })
  await gate.arrived(1)
  const [a, b] = await Promise.all([api(base, 'DELETE', '/panels/p'), api(base, 'DELETE', '/panels/p')])
  t.ok([a.status, b.status].includes(200), 'one of them deleted it')
  for (const r of [a, b]) t.ok(r.status === 200 || r.status === 404, `each answered (${r.status})`)
  t.match((await run).body, { error: { code: 'CANCELLED' } })
  t.equal((await api(base, 'GET', '/panels/p')).status, 404)
})
