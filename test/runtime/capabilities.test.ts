import t from 'tap'
import { WasmRuntime } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const rt = new WasmRuntime()
t.teardown(() => rt.shutdown())

t.test('a denied write throws a catchable PERMISSION_DENIED and records nothing', async (t) => {
  const caught = await rt.execute(
    `try { $state.secret = 1 } catch (e) { return [e.code, e.message] }`,
    ctx({ capabilities: ['state:read:*'] }),
  )
  t.equal(caught.status, 'success')
  t.same(caught.returnValue, ['PERMISSION_DENIED', 'state:write:secret is not granted'])
  t.same(caught.stateMutations, [])

  const uncaught = await rt.execute(`$state.ok = 1; $state.secret = 1`, ctx({ capabilities: ['state:write:ok'] }))
  t.equal(uncaught.status, 'error')
  t.equal(uncaught.error?.code, 'PERMISSION_DENIED')
  t.same(uncaught.stateMutations, [{ key: 'ok', value: 1, operation: 'set' }], 'only the granted write is recorded')
})

t.test('reads, events, view updates and extensions are gated', async (t) => {
  const cases: [string, string[], RegExp][] = [
    [`return $state.hidden`, ['state:write:*'], /state:read:hidden/],
    [`$emit('boom', 1)`, ['events:emit:other'], /events:emit:boom/],
    [`$view.focus('main')`, ['view:update:side'], /view:update:main/],
    [`await $ext.http.get('x')`, ['state:*'], /ext:http/],
  ]
  for (const [src, caps, message] of cases) {
    const r = await rt.execute(src, ctx({ capabilities: caps, state: { hidden: 1 } }))
    t.equal(r.error?.code, 'PERMISSION_DENIED', src)
    t.match(r.error?.message, message, src)
    t.same([r.events, r.viewCommands, r.pendingCalls], [[], [], []], `${src}: nothing recorded`)
  }
})

t.test('wildcards grant by prefix', async (t) => {
  const r = await rt.execute(
    `$state.a = 1; $emit('x', 1); $emit('y', 2); return Object.keys($state)`,
    ctx({ capabilities: ['state:write:*', 'state:read:a', 'events:emit:*'], state: { b: 2 } }),
  )
  t.equal(r.status, 'success')
  t.same(r.returnValue, ['a'], 'keys list only what may be read')
  t.equal(r.events.length, 2)
})

t.test('a nested change to a key without write permission is PERMISSION_DENIED', async (t) => {
  const r = await rt.execute(`$state.list.push(2)`, ctx({ capabilities: ['state:read:*'], state: { list: [1] } }))
  t.equal(r.error?.code, 'PERMISSION_DENIED')
  t.same(r.stateMutations, [])
})

t.test('patching builtins does not widen capabilities', async (t) => {
  const r = await rt.execute(
    `Array.prototype.includes = () => true; String.prototype.startsWith = () => true
     Object.defineProperty = () => {}; Reflect.set = () => true
     $state.secret = 1`,
    ctx({ capabilities: ['state:read:*'] }),
  )
  t.equal(r.error?.code, 'PERMISSION_DENIED')
  t.same(r.stateMutations, [])
})
