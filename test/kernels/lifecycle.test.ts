/**
 * Lifecycle with real ipykernels: auto-restart after a crash (and dead past restartLimit), culling
 * (Jupyter's rules), the busy limit maxExecutionMs, the prespawn pool, metrics.
 */
import t from 'tap'
import { alive, channels, startServer, until } from './helpers.js'

const state = async (server: Awaited<ReturnType<typeof startServer>>, id: string) => (await server.request('GET', `/api/kernels/${id}`)).body

t.test('auto-restart after os.kill(os.getpid(), 9); dead past restartLimit', async (t) => {
  const server = await startServer(t, { restartLimit: 1, stableStartMs: 600_000 })
  const { body: kernel } = await server.request('POST', '/api/kernels', { body: {} })
  const c = await channels(t, server, kernel.id)
  await c.execute('z = 1')
  const firstPid = server.app.kernels.get('alpha', kernel.id).pid as number
  c.send('shell', 'execute_request', { code: 'import os; os.kill(os.getpid(), 9)' })
  await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'restarting')
  await until(async () => (await state(server, kernel.id)).execution_state === 'idle', 60_000, 'idle after restart')
  t.not(server.app.kernels.get('alpha', kernel.id).pid, firstPid, 'a new process')
  t.notOk(alive(firstPid))
  const after = await c.execute('z')
  t.equal(after.reply.content.ename, 'NameError', 'fresh state after the crash')

  c.send('shell', 'execute_request', { code: 'import os; os.kill(os.getpid(), 9)' })
  await until(async () => (await state(server, kernel.id)).execution_state === 'dead', 60_000, 'dead')
  const dead = await state(server, kernel.id)
  t.match(dead.reason, /2 times within 600000 ms/)
  await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'dead')
  const interrupt = await server.request('POST', `/api/kernels/${kernel.id}/interrupt`)
  t.equal(interrupt.body.code, 'KERNEL_DEAD')
  const revived = await server.request('POST', `/api/kernels/${kernel.id}/restart`)
  t.equal(revived.status, 200)
  t.equal(revived.body.execution_state, 'idle', 'restart revives a dead kernel')
  const metrics = await (await fetch(`${server.base}/metrics`)).text()
  t.match(metrics, /wk_kernel_restarts_total\{cause="crash"\} 1/)
  t.match(metrics, /wk_kernel_restarts_total\{cause="request"\} 1/)
})

t.test('culling: idle culled; busy and connected spared unless cullBusy / cullConnected', async (t) => {
  const server = await startServer(t, { cullIntervalS: 1, cullIdleTimeoutS: 3600 })
  const km = server.app.kernels
  // the culler's own timer, with a per-kernel inactivity timeout
  const { body: quick } = await server.request('POST', '/api/kernels', { body: { inactivityTimeoutMs: 500 } })
  await until(async () => (await server.request('GET', `/api/kernels/${quick.id}`)).status === 404, 30_000, 'the idle kernel to be culled')

  const { body: idle } = await server.request('POST', '/api/kernels', { body: {} })
  const { body: busy } = await server.request('POST', '/api/kernels', { body: {} })
  const { body: connected } = await server.request('POST', '/api/kernels', { body: {} })
  const b = await channels(t, server, busy.id)
  b.send('shell', 'execute_request', { code: 'import time; time.sleep(30)' })
  await until(async () => (await state(server, busy.id)).execution_state === 'busy')
  await channels(t, server, connected.id)
  const later = Date.now() + 2 * 3600_000
  await km.cull(later)
  t.equal((await server.request('GET', `/api/kernels/${idle.id}`)).status, 404, 'idle kernel culled')
  t.equal((await server.request('GET', `/api/kernels/${busy.id}`)).status, 200, 'busy kernel spared')
  t.equal((await server.request('GET', `/api/kernels/${connected.id}`)).status, 200, 'connected kernel spared')
  km.options.cullBusy = true
  km.options.cullConnected = true
  await km.cull(later)
  t.equal((await server.request('GET', `/api/kernels/${busy.id}`)).status, 404, 'busy culled with cullBusy')
  t.equal((await server.request('GET', `/api/kernels/${connected.id}`)).status, 404, 'connected culled with cullConnected')
  t.match(await (await fetch(`${server.base}/metrics`)).text(), /wk_kernels_culled_total\{reason="idle"\} 4/)
})

t.test('busy limit: interrupt at maxExecutionMs, restart when the interrupt does not help', async (t) => {
  const server = await startServer(t, { shutdownWaitMs: 500 })
  const { body: kernel } = await server.request('POST', '/api/kernels', { body: { maxExecutionMs: 1000 } })
  const c = await channels(t, server, kernel.id)
  const slept = await c.execute('import time; time.sleep(30)')
  t.equal(slept.reply.content.ename, 'KeyboardInterrupt', 'interrupted at the limit')
  await c.execute('w = 1')
  const stubborn = 'import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass'
  c.send('shell', 'execute_request', { code: stubborn })
  await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'restarting', 30_000)
  await until(async () => (await state(server, kernel.id)).execution_state === 'idle', 60_000, 'idle after the stall restart')
  t.equal((await c.execute('w')).reply.content.ename, 'NameError', 'restarted')
  const metrics = await (await fetch(`${server.base}/metrics`)).text()
  t.match(metrics, /wk_kernel_stalls_total\{action="interrupt"\} 2/)
  t.match(metrics, /wk_kernel_restarts_total\{cause="stall"\} 1/)
})

t.test('pool: claim a ready kernel, refill one at a time, env bypasses it', async (t) => {
  const server = await startServer(t, { poolSize: 2 })
  const km = server.app.kernels
  await until(() => km.poolStatus().python3.ready === 2, 60_000, 'the pool to fill')
  t.same((await server.request('GET', '/api/kernels/pool')).body, { python3: { target: 2, ready: 2, starting: 0 } })
  const claimed = await server.request('POST', '/api/kernels', { body: {} })
  t.equal(claimed.status, 201)
  t.equal(km.poolStatus().python3.ready, 1, 'taken from the pool')
  await until(() => km.poolStatus().python3.starting === 1 || km.poolStatus().python3.ready === 2, 10_000, 'the refill to start')
  t.ok(km.poolStatus().python3.starting <= 1, 'one at a time')
  const c = await channels(t, server, claimed.body.id)
  const fresh = await c.execute("print('secret' in globals())")
  t.equal(fresh.reply.content.execution_count, 1, 'a pooled kernel never ran user code')
  t.equal(fresh.iopub.find((m) => m.header.msg_type === 'stream')?.content.text, 'False\n')
  await until(() => km.poolStatus().python3.ready === 2, 60_000, 'the pool to refill')
  const withEnv = await server.request('POST', '/api/kernels', { body: { env: { KERNEL_FLAVOUR: 'x' } } })
  t.equal(withEnv.status, 201)
  t.equal(km.poolStatus().python3.ready, 2, 'a request with env starts its own kernel')
  const metrics = await (await fetch(`${server.base}/metrics`)).text()
  t.match(metrics, /wk_kernel_start_seconds_count\{kernel="python3",pooled="true"\} 1/)
  t.match(metrics, /wk_kernels\{state="idle"\} 4/)
})
