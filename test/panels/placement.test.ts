/**
 * Work sharing (issue 11, plugins/executor/placement.ts): a lone panel's segments run inline on
 * the event loop; while other panels' segments are ready, idle worker threads take some of them.
 * Where first segments ran is visible on /metrics (`wk_runtime_first_segments_total{placement}`).
 * The inline slice is set far above what these handlers need, so no segment leaves the event loop
 * because it outlived its slice (only the placement decides).
 */
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { PanelClient } from '../../examples/client.js'
import type { ExecutionContext } from '../../wasm-runtime/index.js'
import { api, startKernel } from './helpers.js'

const runtime = { inlineSliceMs: 10_000, workerThreads: 2 }

/** First segments so far by placement, read from the kernel's /metrics over HTTP. */
async function placements(base: string): Promise<{ inline: number; pool: number }> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const count = (p: string) => Number(new RegExp(`^wk_runtime_first_segments_total\\{placement="${p}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  return { inline: count('inline'), pool: count('pool') }
}

function context(app: FastifyInstance, panelId: string): ExecutionContext {
  return { panelId, handlerName: 'h', state: app.executor.createState({ n: 0 }), capabilities: ['*'] }
}

t.test('one owner’s runs all run inline; runs of many owners started together share the worker threads', async (t) => {
  const { app, base } = await startKernel(t, { runtime })
  const code = await app.executor.precompile('let x = 0; for (let i = 0; i < 20000; i++) x += i; return [$args.i, x]')
  const lone = await Promise.all(Array.from({ length: 8 }, (_, i) => app.executor.run(code, { ...context(app, 'a'), args: { i } }, { owner: 'a' })))
  t.same(lone.map((r) => r.returnValue), Array.from({ length: 8 }, (_, i) => [i, 199990000]))
  t.same(await placements(base), { inline: 8, pool: 0 }, 'one owner: its segments run one after another, on the event loop')

  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => app.executor.run(code, { ...context(app, `p${i}`), args: { i } }, { owner: `p${i}` })))
  t.same(many.map((r) => r.returnValue), Array.from({ length: 8 }, (_, i) => [i, 199990000]), 'every run got its own result')
  const after = await placements(base)
  t.equal(after.inline + after.pool, 16)
  t.ok(after.pool >= 1, `8 owners at once: an idle worker took at least the first (${after.pool} on the pool)`)
  t.ok(after.pool <= 8 && after.inline > 8, `the event loop ran some meanwhile (${after.inline - 8} inline)`)
})

t.test('limits and timeouts hold for segments placed on the pool', async (t) => {
  const { app, base } = await startKernel(t, { runtime })
  const run = (i: number, source: string, timeoutMs?: number) =>
    app.executor.precompile(source).then((code) => ({ code, i, timeoutMs }))
  const jobs = await Promise.all([
    run(0, 'while (true) {}', 200),
    run(1, 'const a = []; for (;;) a.push(new Array(100000).fill(1))'),
    run(2, 'throw new Error("no")'),
    run(3, '$state.n = 1; return $state.n'),
  ])
  // a worker that settled a precompile counts as busy until it looks for its next job: let both go idle
  await new Promise((resolve) => setTimeout(resolve, 50))
  const results = await Promise.all(jobs.map(({ code, i, timeoutMs }) => app.executor.run(code, context(app, `p${i}`), { owner: `p${i}`, timeoutMs })))
  t.match(results[0], { status: 'error', error: { code: 'TIMEOUT', message: /200 ms timeout/ } }, 'the spinning run (placed first: on a worker) timed out')
  t.match(results[1], { status: 'error', error: { code: 'MEMORY_LIMIT' } }, 'the allocating run (second: on the other worker) hit its memory limit')
  t.match(results[2], { status: 'error', error: { code: 'EXECUTION_ERROR', message: /no/ } })
  t.match(results[3], { status: 'success', returnValue: 1, stateMutations: [{ operation: 'set', key: 'n', value: 1 }] })
  const p = await placements(base)
  t.ok(p.pool >= 2, `the first two ran on the two idle worker threads (${p.pool} on the pool)`)
  t.equal(p.inline + p.pool, 4)
})

t.test('many panels triggered over WebSockets at once: each panel’s results stay in order', async (t) => {
  const { base } = await startKernel(t, { runtime, maxPanels: 100 })
  const inc = { name: 'inc', handler: '$state.count = $state.count + 1; return $state.count' }
  const clients: PanelClient[] = []
  t.teardown(() => Promise.all(clients.map((c) => c.close())))
  for (let i = 0; i < 10; i++) {
    const { body } = await api(base, 'POST', '/panels', { id: `p${i}`, kind: 'counter', initialState: { count: 0 }, tools: [inc] })
    clients.push((await PanelClient.connect(body.wsUrl)).client)
  }
  const replies = await Promise.all(clients.map((c) => Promise.all(Array.from({ length: 6 }, () => c.trigger('inc', {})))))
  for (const [i, c] of clients.entries()) {
    t.same(replies[i].map((m: any) => m.result.returnValue), [1, 2, 3, 4, 5, 6], `p${i}: each TRIGGER read the count its predecessor committed`)
    const versions = c.messages.filter((m: any) => m.type === 'RESULT').map((m: any) => m.result.version)
    t.same(versions, [1, 2, 3, 4, 5, 6], `p${i}: RESULTs arrive in TRIGGER order with consecutive versions`)
  }
  const p = await placements(base)
  t.equal(p.inline + p.pool, 60, `every trigger ran exactly once (${p.inline} inline, ${p.pool} on a worker)`)
  for (let i = 0; i < 10; i++) t.same((await api(base, 'GET', `/panels/p${i}/state`)).body.state, { count: 6 })
})
