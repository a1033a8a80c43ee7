/**
 * The worker registry's `kernels` runtime with a real ipykernel: kernels are workers, input executes,
 * the transcript holds the executions, stop shuts the kernel down.
 */
import t from 'tap'
import { alive, startServer, until } from './helpers.js'

t.test('kernels runtime: spawn, input, transcript, stop', async (t) => {
  const server = await startServer(t)
  const runtimes = await server.request('GET', '/runtimes')
  t.ok(runtimes.body.items.some((r: { runtime_id: string; status: string }) => r.runtime_id === 'kernels' && r.status === 'available'))

  const spawned = await server.request('POST', '/runtimes/kernels/workers', { body: { intent: { kind: 'workspace_companion' }, requested_worker_name: 'calc' } })
  t.equal(spawned.status, 201)
  const worker = spawned.body.worker
  t.match(worker, { runtime_id: 'kernels', label: 'calc', status: 'running' })
  t.equal((await server.request('GET', '/api/kernels')).body.length, 1, 'the worker is a kernel')

  const input = await server.request('POST', `/runtimes/kernels/workers/${worker.worker_id}/input`, { body: { content: 'print("hey")\n2**10' } })
  t.equal(input.body.state, 'accepted')
  t.equal(input.body.transcript_sequence, 1)
  const page = await until(async () => {
    const res = await server.request('GET', `/runtimes/kernels/workers/${worker.worker_id}/transcript`)
    return res.body.items.length >= 3 ? res.body : undefined
  })
  t.same(page.items.map((i: { role: string; content: string }) => [i.role, i.content]), [['user', 'print("hey")\n2**10'], ['stdout', 'hey\n'], ['result', '1024']])

  // a kernel started over REST is a worker too, in its own namespace only
  const { body: rest } = await server.request('POST', '/api/kernels', { body: {} })
  t.equal((await server.request('GET', '/runtimes/kernels/workers')).body.items.length, 2)
  t.equal((await server.request('GET', '/runtimes/kernels/workers', { token: server.token('beta') })).body.items.length, 0)

  const pid = server.app.kernels.get('alpha', rest.id).pid as number
  const restWorker = (await server.request('GET', '/runtimes/kernels/workers')).body.items.find((w: { worker_id: string }) => w.worker_id !== worker.worker_id)
  const forced = await server.request('POST', `/runtimes/kernels/workers/${restWorker.worker_id}/stop`, { body: { mode: 'force' } })
  t.equal(forced.body.worker.status, 'cancelled')
  t.notOk(alive(pid))
  const stopped = await server.request('POST', `/runtimes/kernels/workers/${worker.worker_id}/stop`, { body: { mode: 'graceful' } })
  t.equal(stopped.body.worker.status, 'stopped')
  t.same((await server.request('GET', '/api/kernels')).body, [])
})
