import t from 'tap'
import { WasmRuntime } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const rt = new WasmRuntime({ memoryLimitBytes: 32 * 1024 * 1024, maxHostCalls: 50, maxStateMutations: 5, maxEvents: 3 })
t.teardown(() => rt.shutdown())

t.test('an infinite loop stops at its timeout with TIMEOUT', async (t) => {
  const r = await rt.execute(`while (true) {}`, ctx(), 200)
  t.equal(r.status, 'error')
  t.equal(r.error?.code, 'TIMEOUT')
  t.match(r.error?.message, /200 ms/)
})

t.test('a spinning handler never blocks the event loop: a timer fires on time', async (t) => {
  const started = performance.now()
  let firedAt = 0
  const timer = new Promise<void>((resolve) => setTimeout(() => { firedAt = performance.now() - started; resolve() }, 50))
  const spin = rt.execute(`for (;;) {}`, ctx(), 1000)
  await timer
  const r = await spin
  t.equal(r.error?.code, 'TIMEOUT')
  t.ok(firedAt < 500, `timer fired after ${firedAt.toFixed(0)} ms while the handler spun for 1000 ms`)
})

t.test('a handler that outlasts the inline slice is run again on a worker with its whole budget', async (t) => {
  const r = await rt.execute(`let x = 0; const end = Date.now() + 30; while (Date.now() < end) x++; $emit('done', 1); return x > 0`, ctx(), 2000)
  t.equal(r.status, 'success')
  t.equal(r.returnValue, true)
  t.same(r.events, [{ name: 'done', payload: 1 }], 'recorded once: the abandoned attempt left nothing')
})

t.test('allocating past the memory limit ends as MEMORY_LIMIT and the runtime lives on', async (t) => {
  const r = await rt.execute(`new Array(1e9).fill(1)`, ctx())
  t.equal(r.status, 'error')
  t.equal(r.error?.code, 'MEMORY_LIMIT')
  const s = await rt.execute(`const a = []; for (;;) a.push({ i: a.length, s: 'item ' + a.length })`, ctx())
  t.equal(s.error?.code, 'MEMORY_LIMIT', 'a growing list of objects hits it too')
  const ok = await rt.execute(`return 1 + 1`, ctx())
  t.equal(ok.returnValue, 2, 'the next execution runs normally')
})

t.test('deep recursion ends as an error, not a crash', async (t) => {
  const r = await rt.execute(`function f(n) { return f(n + 1) + 1 } return f(0)`, ctx())
  t.equal(r.status, 'error')
  t.equal(r.error?.code, 'EXECUTION_ERROR')
  t.match(r.error?.message, /stack/i)
  const caught = await rt.execute(`function f(n) { return f(n + 1) + 1 } try { f(0) } catch (e) { return e.name }`, ctx())
  t.equal(caught.returnValue, 'RangeError', 'and the handler can catch it')
})

t.test('maxStateMutations, maxEvents and maxHostCalls end the execution with RESOURCE_LIMIT even when caught', async (t) => {
  const cases: [string, RegExp][] = [
    [`for (let i = 0; i < 10; i++) try { $state['k' + i] = i } catch {} return 'done'`, /state mutation limit of 5/],
    [`for (let i = 0; i < 10; i++) try { $emit('e', i) } catch {} return 'done'`, /event limit of 3/],
    [`for (let i = 0; i < 100; i++) try { $view.focus('v') } catch {} return 'done'`, /host call limit of 50/],
  ]
  for (const [src, message] of cases) {
    const r = await rt.execute(src, ctx())
    t.equal(r.status, 'error', src)
    t.equal(r.error?.code, 'RESOURCE_LIMIT', src)
    t.match(r.error?.message, message, src)
  }
})

t.test('maxInstances bounds live instances: the runtime itself has no queue, one more fails at once', async (t) => {
  const small = new WasmRuntime({ maxInstances: 1 })
  t.teardown(() => small.shutdown())
  const held = await small.execute(`return await $ext.http.get('x')`, ctx())
  t.equal(held.status, 'suspended', 'the suspended execution holds the only instance')
  await t.rejects(small.execute(`return 1`, ctx()), { code: 'CAPACITY_EXCEEDED', message: /all 1 instances are live/ })
  await small.resume(held.executionId!, [{ callId: 1, ok: true, value: 1 }])
  t.equal((await small.execute(`return 'ran'`, ctx())).returnValue, 'ran', 'free again once the run ended')
})

t.test('after shutdown every call fails with SHUTDOWN', async (t) => {
  const other = new WasmRuntime()
  const s = await other.execute(`return await $ext.http.get('x')`, ctx())
  await other.shutdown()
  await t.rejects(other.execute(`return 1`, ctx()), { code: 'SHUTDOWN' })
  await t.rejects(other.resume(s.executionId!, []), { code: 'SHUTDOWN' })
  await other.shutdown() // idempotent
})
