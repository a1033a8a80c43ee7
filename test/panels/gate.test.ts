import t from 'tap'
import { Gate, type Source } from '../../plugins/executor/gate.js'

const settle = () => new Promise((resolve) => setImmediate(resolve))

/** Queues a segment at the gate; its label goes to `order` when granted, or `label!CODE` when refused. */
function waiter(gate: Gate, order: string[], label: string, src: Source, first = true): void {
  const granted = gate.acquire(src, first)
  if (!granted) order.push(label)
  else granted.then(() => order.push(label), (err: { code: string }) => order.push(`${label}!${err.code}`))
}

/** Releases one segment (and, for a first segment that ends, its instance) and lets the grant land. */
async function release(gate: Gate, instanceToo = true): Promise<void> {
  gate.releaseSegment()
  if (instanceToo) gate.releaseInstance()
  await settle()
}

t.test('the gate grants at once when idle, then round-robin by namespace, then by socket', async (t) => {
  const gate = new Gate({ maxConcurrentSegments: 1, maxInstances: 100, maxQueue: 100 })
  const order: string[] = []
  const s1 = {}
  const s2 = {}
  waiter(gate, order, 'held', { namespace: 'a' })
  t.same(order, ['held'], 'an idle gate grants synchronously (no promise)')
  for (const [label, src] of [['a1', { namespace: 'a', socket: s1 }], ['a2', { namespace: 'a', socket: s1 }], ['a3', { namespace: 'a', socket: s1 }], ['a4', { namespace: 'a', socket: s2 }], ['b1', { namespace: 'b' }]] as const) {
    waiter(gate, order, label, src)
  }
  t.equal(gate.waiters, 5)
  for (let i = 0; i < 5; i++) await release(gate)
  t.same(order, ['held', 'b1', 'a1', 'a4', 'a2', 'a3'], 'b first (a was served last), then a’s sockets in turn')
  t.equal(gate.waiters, 0)
})

t.test('a resume passes first segments waiting for an instance; maxQueue bounds first segments only; close fails the rest', async (t) => {
  const gate = new Gate({ maxConcurrentSegments: 2, maxInstances: 1, maxQueue: 1 })
  const order: string[] = []
  waiter(gate, order, 'x', { namespace: 'a' })
  gate.releaseSegment() // x suspends: it keeps its instance
  waiter(gate, order, 'y', { namespace: 'b' }) // waits for the instance
  waiter(gate, order, 'z', { namespace: 'b' }) // maxQueue (1) first segments wait already
  waiter(gate, order, 'x-resume', { namespace: 'a' }, false)
  await settle()
  t.same(order, ['x', 'z!CAPACITY_EXCEEDED', 'x-resume'], 'the resume runs, z is refused, y still waits')
  await release(gate) // x ends: segment and instance
  t.same(order, ['x', 'z!CAPACITY_EXCEEDED', 'x-resume', 'y'])
  waiter(gate, order, 'w', { namespace: 'c' })
  gate.close()
  await settle()
  t.same(order.slice(4), ['w!SHUTDOWN'], 'a waiter left at close fails with SHUTDOWN')
  waiter(gate, order, 'late', { namespace: 'c' })
  await settle()
  t.same(order.slice(5), ['late!SHUTDOWN'])
})
