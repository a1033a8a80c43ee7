import t from 'tap'
import { createHash } from 'node:crypto'
import { WasmRuntime } from '../../wasm-runtime/index.js'
import { COUNTER, ctx } from './helpers.js'

const rt = new WasmRuntime()
t.teardown(() => rt.shutdown())

t.test('the counter handler reads state and args, writes state and emits', async (t) => {
  const r = await rt.execute(COUNTER, ctx({ state: { count: 40 }, args: { by: 2 } }))
  t.equal(r.status, 'success')
  t.equal(r.returnValue, 42)
  t.same(r.stateMutations, [{ key: 'count', value: 42, operation: 'set' }])
  t.same(r.events, [{ name: 'changed', payload: { n: 42 } }])
  t.equal(r.metrics.hostCalls, 1)
  t.ok(r.metrics.durationUs > 0, 'duration is measured')
  t.ok(r.metrics.instructionCount > 0, 'fuel is counted')
  t.ok(r.metrics.memoryPeakBytes > 0, 'peak memory is reported')
})

t.test('precompile returns bytecode keyed by the SHA-256 of the source, then hits the cache', async (t) => {
  const source = `return $args.x * 2 // ${Math.random()}`
  const first = await rt.precompile(source)
  t.equal(first.cacheKey, createHash('sha256').update(source).digest('hex'))
  t.ok(first.bytecode.length > 0)
  t.equal(first.cacheHit, false)
  t.ok(first.compileTimeUs > 0)
  const second = await rt.precompile(source)
  t.equal(second.cacheHit, true)
  t.same(second.bytecode, first.bytecode)
  const r = await rt.execute(second, ctx({ args: { x: 21 } }))
  t.equal(r.returnValue, 42)
  t.equal(r.metrics.cacheHit, true)
})

t.test('delete, nested changes, view commands and logs are recorded in order', async (t) => {
  const r = await rt.execute(
    `delete $state.gone
     $state.todos.push({ title: 'b' })
     $view.setFilter('list', { done: false })
     $view.focus('input')
     $log('added', { n: 2 })
     $log.warn('careful')
     return $state.todos.length`,
    ctx({ state: { gone: 1, todos: [{ title: 'a' }] } }),
  )
  t.equal(r.status, 'success')
  t.equal(r.returnValue, 2)
  t.same(r.stateMutations, [
    { key: 'gone', operation: 'delete' },
    { key: 'todos', value: [{ title: 'a' }, { title: 'b' }], operation: 'set' },
  ])
  t.same(r.viewCommands, [
    { type: 'setFilter', viewId: 'list', payload: { done: false } },
    { type: 'focus', viewId: 'input' },
  ])
  t.same(r.logs.map((l) => [l.level, l.message]), [['info', 'added {"n":2}'], ['warn', 'careful']])
  t.ok(r.logs.every((l) => Math.abs(l.timestamp - Date.now()) < 60_000), 'log timestamps are wall-clock ms')
})

t.test('a thrown error reports its message, line and column in the handler source', async (t) => {
  const r = await rt.execute(`const a = 1\nconst b = 2\n  null.boom`, ctx())
  t.equal(r.status, 'error')
  t.equal(r.error?.code, 'EXECUTION_ERROR')
  t.match(r.error?.message, /TypeError: cannot read property 'boom' of null/)
  t.equal(r.error?.line, 3)
  t.equal(r.error?.column, 3)
})

t.test('each execution runs in a fresh instance: globals do not leak', async (t) => {
  const a = await rt.execute(`globalThis.leak = 'secret'; Object.prototype.polluted = 1; return typeof leak`, ctx())
  t.equal(a.returnValue, 'string')
  const b = await rt.execute(`return [typeof leak, typeof ({}).polluted]`, ctx())
  t.same(b.returnValue, ['undefined', 'undefined'])
})

t.test('no host access beyond the handler API', async (t) => {
  const r = await rt.execute(
    `return [typeof require, typeof process, typeof fetch, typeof setTimeout, typeof XMLHttpRequest, typeof std, typeof os]`,
    ctx(),
  )
  t.same(r.returnValue, Array(7).fill('undefined'))
})

t.test('Date.now tells the time and Math.random differs between executions', async (t) => {
  const src = `return [Date.now(), Math.random(), Math.random()]`
  const [a, b] = await Promise.all([rt.execute(src, ctx()), rt.execute(src, ctx())])
  const [now, r1, r2] = a.returnValue as number[]
  t.ok(Math.abs(now - Date.now()) < 60_000)
  t.ok(r1 >= 0 && r1 < 1 && r1 !== r2)
  t.not((b.returnValue as number[])[1], r1, 'a new seed per execution')
})

t.test('non-serializable return values are clear errors', async (t) => {
  for (const [src, pattern] of [
    ['return () => 1', /not JSON-serializable \(a function\)/],
    ['const a = {}; a.self = a; return a', /circular/],
    ['return 10n', /BigInt/],
    ['return Symbol("x")', /symbol/],
  ] as const) {
    const r = await rt.execute(src, ctx())
    t.equal(r.status, 'error', src)
    t.equal(r.error?.code, 'EXECUTION_ERROR', src)
    t.match(r.error?.message, pattern, src)
  }
})

t.test('stats and Prometheus metrics count executions', async (t) => {
  const s = rt.getStats()
  t.ok(s.executions >= 8)
  t.ok(s.byStatus.success >= 5)
  t.ok(s.byStatus.error >= 4)
  t.equal(s.running, 0)
  t.equal(s.suspended, 0)
  const text = await rt.getMetrics()
  t.match(text, /wk_runtime_segments_total\{status="success"\} \d+/)
  t.match(text, /wk_runtime_segment_duration_seconds_bucket/)
})

t.test('a handler that never awaits (a plain function in the guest) behaves as an async one', async (t) => {
  const thrown = await rt.execute(`$state.count = 1\n  throw new TypeError('bad ' + $args.x)`, ctx({ args: { x: 1 } }))
  t.same([thrown.status, thrown.error?.code, thrown.error?.message], ['error', 'EXECUTION_ERROR', 'TypeError: bad 1'])
  const awaiting = await rt.execute(`$state.count = 1\n  throw new TypeError('bad ' + $args.x); await 0`, ctx({ args: { x: 1 } }))
  t.same([thrown.error?.line, thrown.error?.column], [awaiting.error?.line, awaiting.error?.column], 'positions as for an async handler')
  t.same(thrown.stateMutations, [{ key: 'count', value: 1, operation: 'set' }], 'writes before the throw are kept')
  const [first, firstAsync] = await Promise.all([rt.execute(`  null.boom`, ctx()), rt.execute(`  null.boom; await 0`, ctx())])
  t.same([first.error?.line, first.error?.column], [1, firstAsync.error?.column], 'line 1 columns shift back by the same prefix')
  const thenable = await rt.execute(`return { then: (ok) => ok($args.x + 1) }`, ctx({ args: { x: 1 } }))
  t.equal(thenable.returnValue, 2, 'a returned thenable is followed')
  const jobs = await rt.execute(`Promise.resolve().then(() => { $state.later = true }); return 'now'`, ctx())
  t.same([jobs.returnValue, jobs.stateMutations], ['now', [{ key: 'later', value: true, operation: 'set' }]], 'its promise jobs still run')
  const returned = await rt.execute(`return $ext.http.get('u')`, ctx({ capabilities: ['*'], extensions: { http: ['get'] } }))
  t.equal(returned.status, 'suspended', 'a returned extension call suspends')
  const done = await rt.resume(returned.executionId!, [{ callId: 1, ok: true, value: 'body' }])
  t.equal(done.returnValue, 'body')
  const denied = await rt.execute(`return $state`, ctx({ capabilities: ['state:read:count'] }))
  t.equal(denied.error?.code, 'PERMISSION_DENIED', 'returning $state reads its then, as an async return does')
})
