import t from 'tap'
import { WasmRuntime, type ExecutionResult } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const rt = new WasmRuntime()
t.teardown(() => rt.shutdown())

const TWO_CALLS = `
  $state.loading = true
  const [a, b] = await Promise.all([$ext.http.get('https://a.example'), $ext.http.get('https://b.example')])
  $state.loading = false
  return a.body + b.body`

t.test('Promise.all over two extension calls yields both in ONE suspension', async (t) => {
  const s = await rt.execute(TWO_CALLS, ctx())
  t.equal(s.status, 'suspended')
  t.type(s.executionId, 'string')
  t.same(s.stateMutations, [{ key: 'loading', value: true, operation: 'set' }], 'mutations before the await come out at once')
  t.same(s.pendingCalls, [
    { callId: 1, extension: 'http', method: 'get', args: ['https://a.example'] },
    { callId: 2, extension: 'http', method: 'get', args: ['https://b.example'] },
  ])
  const done = await rt.resume(s.executionId!, [
    { callId: 2, ok: true, value: { body: 'B' } },
    { callId: 1, ok: true, value: { body: 'A' } },
  ])
  t.equal(done.status, 'success')
  t.equal(done.returnValue, 'AB')
  t.same(done.stateMutations, [{ key: 'loading', value: false, operation: 'set' }])
  t.equal(rt.getStats().suspended, 0)
})

t.test('a failed call rejects inside the handler, which can catch it; then it suspends again', async (t) => {
  const src = `
    let first
    try { await $ext.http.get('x') } catch (e) { first = e.message + '/' + e.code }
    const second = await $ext.http.post('y', { a: 1 })
    return [first, second]`
  const s1 = await rt.execute(src, ctx())
  t.equal(s1.status, 'suspended')
  const s2 = await rt.resume(s1.executionId!, [{ callId: 1, ok: false, error: { message: 'refused', code: 'DOMAIN_NOT_ALLOWED' } }])
  t.equal(s2.status, 'suspended')
  t.not(s2.executionId, s1.executionId, 'every suspension has its own id')
  t.same(s2.pendingCalls, [{ callId: 2, extension: 'http', method: 'post', args: ['y', { a: 1 }] }])
  const done = await rt.resume(s2.executionId!, [{ callId: 2, ok: true, value: 7 }])
  t.same(done.returnValue, ['refused/DOMAIN_NOT_ALLOWED', 7])
})

t.test('a commit to the PanelState while suspended is what the resumed segment reads', async (t) => {
  const state = rt.createState({ n: 1 })
  const s = await rt.execute(`const before = $state.n; await $ext.http.get('x'); return [before, $state.n]`, ctx({ state }))
  state.apply([{ key: 'n', value: 5, operation: 'set' }])
  const done = await rt.resume(s.executionId!, [{ callId: 1, ok: true, value: null }])
  t.same(done.returnValue, [1, 5])
})

t.test('a plain-object state keeps the run\'s own writes across a resume', async (t) => {
  const s = await rt.execute(`$state.n = 2; await $ext.http.get('x'); return $state.n`, ctx({ state: { n: 1 } }))
  const done = await rt.resume(s.executionId!, [{ callId: 1, ok: true, value: null }])
  t.equal(done.returnValue, 2)
})

t.test('unknown id, double resume, resume after cancel are UNKNOWN_EXECUTION', async (t) => {
  await t.rejects(rt.resume('nope', []), { code: 'UNKNOWN_EXECUTION' })
  const s = await rt.execute(`return await $ext.http.get('x')`, ctx())
  await rt.resume(s.executionId!, [{ callId: 1, ok: true, value: 1 }])
  await t.rejects(rt.resume(s.executionId!, [{ callId: 1, ok: true, value: 1 }]), { code: 'UNKNOWN_EXECUTION' }, 'double resume')
  const c = await rt.execute(`return await $ext.http.get('x')`, ctx())
  t.equal(rt.cancel(c.executionId!), true)
  t.equal(rt.cancel(c.executionId!), false)
  await t.rejects(rt.resume(c.executionId!, [{ callId: 1, ok: true, value: 1 }]), { code: 'UNKNOWN_EXECUTION' }, 'resume after cancel')
  t.equal(rt.getStats().suspended, 0)
})

t.test('the runtime has no suspension timer: a suspension waits until resumed or cancelled (the executor times it out)', async (t) => {
  const s = await rt.execute(`return await $ext.http.get('x')`, ctx())
  t.equal(rt.getStats().suspended, 1)
  await new Promise((r) => setTimeout(r, 300))
  t.equal(rt.getStats().suspended, 1, 'still suspended')
  t.equal(rt.cancel(s.executionId!), true)
  t.equal(rt.getStats().suspended, 0, 'cancel frees the instance at once')
  await t.rejects(rt.resume(s.executionId!, [{ callId: 1, ok: true, value: 1 }]), { code: 'UNKNOWN_EXECUTION' })
})

t.test('bad resume results are INVALID_INPUT and free the execution', async (t) => {
  const s: ExecutionResult = await rt.execute(`return await $ext.http.get('x')`, ctx())
  await t.rejects(rt.resume(s.executionId!, 'nope' as never), { code: 'INVALID_INPUT' })
  const s2 = await rt.execute(`return await $ext.http.get('x')`, ctx())
  await t.rejects(rt.resume(s2.executionId!, [{ callId: 1, ok: false } as never]), { code: 'INVALID_INPUT' })
})

t.test('awaiting a promise nothing can settle is an error, not a hang', async (t) => {
  const r = await rt.execute(`await new Promise(() => {})`, ctx())
  t.equal(r.status, 'error')
  t.match(r.error?.message, /nothing can settle/)
})
