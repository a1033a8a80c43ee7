import t from 'tap'
import { PanelState, WasmRuntime } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const MiB = 1024 * 1024
const rt = new WasmRuntime()
t.teardown(() => rt.shutdown())

/** A state of `total` bytes in 64 KiB string values, plus `count`. */
function bigState(total: number): PanelState {
  const chunk = 'x'.repeat(64 * 1024)
  const initial: Record<string, unknown> = { count: 41 }
  for (let i = 0; i * chunk.length < total; i++) initial[`blob${i}`] = chunk
  return rt.createState(initial)
}

t.test('a handler reading one key of a 4 MB state gets its value without loading the rest', async (t) => {
  const state = bigState(4 * MiB)
  t.ok(state.byteSize > 4 * MiB, `the state holds ${state.byteSize} bytes`)
  const one = await rt.execute(`return $state.count + 1`, ctx({ state }))
  t.equal(one.status, 'success')
  t.equal(one.returnValue, 42)
  const all = await rt.execute(`return JSON.stringify($state).length`, ctx({ state }))
  t.equal(all.returnValue, JSON.stringify(state).length, 'JSON.stringify($state) is the whole state')
  t.ok(
    all.metrics.memoryPeakBytes - one.metrics.memoryPeakBytes > 4 * MiB,
    `reading one key peaks at ${one.metrics.memoryPeakBytes} bytes, reading all at ${all.metrics.memoryPeakBytes}`,
  )
})

t.test('enumeration, spread, JSON.stringify and `in` behave as on a plain object, own writes included', async (t) => {
  const initial = { a: 1, b: { x: 1 }, 10: 'ten', 2: 'two' }
  const body = `
    $state.z = 'new'
    delete $state.a
    const before = Object.keys($state)
    $state.a = 'back'
    $state['1'] = 'one'
    delete $state.z
    return {
      before,
      after: Object.keys($state),
      names: Object.getOwnPropertyNames($state),
      spread: { ...$state },
      json: JSON.stringify($state),
      entries: Object.entries($state),
      has: ['a' in $state, 'z' in $state, 'b' in $state, 'nope' in $state, 10 in $state],
      own: [Object.hasOwn($state, 'b'), Object.getOwnPropertyDescriptor($state, 'b')],
    }`
  const expected = new Function('$state', body)(structuredClone(initial))
  const r = await rt.execute(`${body}`, ctx({ state: rt.createState(initial) }))
  t.equal(r.status, 'success', JSON.stringify(r.error))
  t.same(r.returnValue, expected)
  t.same((r.returnValue as { before: string[] }).before, ['2', '10', 'b', 'z'], 'integer-like keys first, then insertion order')
})

t.test('Object.keys reads the key list only: no value of a 4 MB state is loaded', async (t) => {
  const state = bigState(4 * MiB)
  const base = await rt.execute(`return 1`, ctx({ state }))
  const keys = await rt.execute(`return Object.keys($state).length`, ctx({ state }))
  t.equal(keys.returnValue, state.size)
  t.ok(keys.metrics.memoryPeakBytes - base.metrics.memoryPeakBytes < MiB, `peak ${keys.metrics.memoryPeakBytes} vs ${base.metrics.memoryPeakBytes} bytes`)
})

t.test('capabilities are checked on every lazy read, `in` and enumeration', async (t) => {
  const state = rt.createState({ open: 1, secret: 'hidden' })
  const capabilities = ['state:read:open']
  const denied = await rt.execute(`return $state.secret`, ctx({ state, capabilities }))
  t.equal(denied.status, 'error')
  t.equal(denied.error?.code, 'PERMISSION_DENIED')
  t.match(denied.error?.message, /state:read:secret/)
  const caught = await rt.execute(
    `const seen = [$state.open, Object.keys($state), 'secret' in $state, JSON.stringify($state)]
     try { $state.secret } catch (e) { seen.push(e.code) }
     try { $state.secret } catch (e) { seen.push(e.code) }
     return seen`,
    ctx({ state, capabilities }),
  )
  t.same(caught.returnValue, [1, ['open'], false, '{"open":1}', 'PERMISSION_DENIED', 'PERMISSION_DENIED'])
})

t.test('a nested change to a lazily read value is recorded; committed, the next execution sees it', async (t) => {
  const state = rt.createState({ todos: [{ title: 'a' }], other: 1 })
  const r = await rt.execute(`$state.todos.push({ title: 'b' }); return $state.todos.length`, ctx({ state }))
  t.equal(r.returnValue, 2)
  t.same(r.stateMutations, [{ key: 'todos', value: [{ title: 'a' }, { title: 'b' }], operation: 'set' }])
  t.same(state.get('todos'), [{ title: 'a' }], 'executions never commit by themselves')
  state.apply(r.stateMutations)
  const next = await rt.execute(`return $state.todos.map((t) => t.title)`, ctx({ state }))
  t.same(next.returnValue, ['a', 'b'])
})

t.test('a write then a read in the same execution sees the write', async (t) => {
  const state = rt.createState({ n: 1 })
  const r = await rt.execute(
    `$state.n = 5; $state.obj = { a: 1 }; $state.obj.a = 2; delete $state.gone
     return [$state.n, $state.obj.a, $state.gone, 'gone' in $state]`,
    ctx({ state: rt.createState({ n: 1, gone: true }) }),
  )
  t.same(r.returnValue, [5, 2, undefined, false])
  t.same(r.stateMutations.at(-1), { key: 'obj', value: { a: 2 }, operation: 'set' }, 'the nested change is recorded last')
  t.same(state.toObject(), { n: 1 })
})

t.test('a resumed segment reads keys as committed after its suspension', async (t) => {
  const state = rt.createState({ seen: 'old', later: 'old' })
  const s = await rt.execute(
    `const a = $state.seen; await $ext.http.get('x'); return [a, $state.seen, $state.later, Object.keys($state)]`,
    ctx({ state }),
  )
  t.equal(s.status, 'suspended')
  state.apply([
    { key: 'seen', value: 'new', operation: 'set' },
    { key: 'later', value: 'new', operation: 'set' },
    { key: 'added', value: 1, operation: 'set' },
  ])
  const done = await rt.resume(s.executionId!, [{ callId: 1, ok: true, value: null }])
  t.same(done.returnValue, ['old', 'new', 'new', ['seen', 'later', 'added']])
})

t.test('a key with a lone surrogate is refused with a catchable TypeError and records nothing', async (t) => {
  const r = await rt.execute(
    `const codes = []
     for (const op of [() => { $state['a\\uD800'] = 1 }, () => $state['\\uDC00b'], () => delete $state['\\uD83D'], () => '\\uD800' in $state]) {
       try { op() } catch (e) { codes.push(e.name + '/' + e.code) }
     }
     $state['ok\\uD83D\\uDE00'] = 'a pair is fine'
     return codes`,
    ctx(),
  )
  t.equal(r.status, 'success', JSON.stringify(r.error))
  t.same(r.returnValue, Array(4).fill('TypeError/INVALID_STATE_KEY'))
  t.same(r.stateMutations, [{ key: 'ok\uD83D\uDE00', value: 'a pair is fine', operation: 'set' }])
  const uncaught = await rt.execute(`$state['\\uD800'] = 1`, ctx())
  t.equal(uncaught.error?.code, 'EXECUTION_ERROR')
  t.match(uncaught.error?.message, /well-formed/)
  t.throws(() => rt.createState({ '\uD800': 1 }), { code: 'INVALID_INPUT', message: /lone surrogate/ })
})

t.test('concurrent executions on two states each read their own', async (t) => {
  const states = [rt.createState({ who: 'left' }), rt.createState({ who: 'right' })]
  const runs = Array.from({ length: 24 }, (_, i) =>
    rt.execute(`await $ext.http.get('x'); return $state.who`, ctx({ state: states[i % 2] })).then((s) =>
      rt.resume(s.executionId!, [{ callId: 1, ok: true, value: null }]),
    ),
  )
  const results = await Promise.all(runs)
  t.same(
    results.map((r) => r.returnValue),
    Array.from({ length: 24 }, (_, i) => (i % 2 ? 'right' : 'left')),
  )
})

t.test('PanelState: apply is atomic and checked; get, keys, size and byteSize report it', async (t) => {
  const state = new PanelState({ a: 1, skipped: undefined })
  state.apply([
    { key: 'b', value: { deep: [1, 2] }, operation: 'set' },
    { key: 'a', operation: 'delete' },
    { key: 'a', value: 'again', operation: 'set' },
  ])
  t.same(state.keys(), ['b', 'a'])
  t.same(state.toObject(), { b: { deep: [1, 2] }, a: 'again' })
  t.equal(state.get('b.deep'), undefined)
  t.equal(state.has('a'), true)
  t.equal(state.size, 2)
  t.equal(state.byteSize, 'b'.length + '{"deep":[1,2]}'.length + 'a'.length + '"again"'.length)
  for (const bad of [
    [{ key: 'c', value: undefined, operation: 'set' }],
    [{ key: 'c', value: () => 1, operation: 'set' }],
    [{ key: 'c', value: 1n, operation: 'set' }],
    [{ key: 7, value: 1, operation: 'set' }],
    [{ key: 'c', operation: 'merge' }],
  ]) {
    t.throws(() => state.apply([{ key: 'x', value: 1, operation: 'set' }, ...(bad as never[])]), { code: 'INVALID_INPUT' })
  }
  t.same(state.keys(), ['b', 'a'], 'a refused batch applies nothing')
  state.clear()
  t.same([state.size, state.byteSize, state.toObject()], [0, 0, {}])
})

t.test('guests run on workerThreads threads, reported in stats', async (t) => {
  const two = new WasmRuntime({ workerThreads: 2, inlineSliceMs: 0 })
  t.teardown(() => two.shutdown())
  t.equal(two.getStats().threads, 2)
  const spin = await two.precompile(`const end = Date.now() + 1000; while (Date.now() < end) {} return 1`)
  const runs = [two.execute(spin, ctx()), two.execute(spin, ctx()), two.execute(spin, ctx())]
  // a worker counts its job as running until the job returns, which may be just after its result
  // (the precompile's) reached JS: wait for the three executions' own picture
  let s = two.getStats()
  for (let i = 0; i < 400 && !(s.running === 2 && s.queued === 1); i++) {
    await new Promise((r) => setTimeout(r, 5))
    s = two.getStats()
  }
  t.same([s.running, s.queued], [2, 1], 'two run, the third waits for a thread')
  t.same((await Promise.all(runs)).map((r) => r.returnValue), [1, 1, 1])
  t.throws(() => new WasmRuntime({ workerThreads: 0 }), { code: 'INVALID_INPUT' })
})
