/**
 * The kernel monitor with real ipykernels: the heartbeat (a kernel whose process is stopped stops
 * echoing its hb channel → restarted under the restart policy, then dead past restartLimit) and the
 * RSS watchdog `maxRssBytes` (restart with reason `memory`), seen through iopub status, the REST model
 * and metrics; and @jupyterlab/services following the restart.
 */
import t from 'tap'
import { KernelManager, type Kernel } from '@jupyterlab/services'
import { alive, channels, startServer, until, type Server } from './helpers.js'
import { jupyterlabSettings } from './jupyterlab-settings.js'

const model = async (server: Server, id: string) => (await server.request('GET', `/api/kernels/${id}`)).body
const metrics = async (server: Server) => (await fetch(`${server.base}/metrics`)).text()
const STOP_SELF = 'import os, signal; os.kill(os.getpid(), signal.SIGSTOP)'

t.test('heartbeat: a stopped kernel is restarted (iopub restarting, reason heartbeat), then dead past restartLimit', async (t) => {
  const server = await startServer(t, { timeToDeadMs: 500, restartLimit: 1, stableStartMs: 600_000 })
  const { body: kernel } = await server.request('POST', '/api/kernels', { body: {} })
  const c = await channels(t, server, kernel.id)
  await c.execute('z = 1')
  // busy is not dead: ipykernel's heartbeat thread echoes while a cell runs
  const slept = await c.execute('import time; time.sleep(2)')
  t.equal(slept.reply.content.status, 'ok', 'a cell busy for 4 heartbeat windows completes')
  t.equal((await server.request('GET', `/api/kernels/${kernel.id}/info`)).body.restarts, 0, 'and nothing restarted')

  const firstPid = server.app.kernels.get('alpha', kernel.id).pid as number
  c.send('shell', 'execute_request', { code: STOP_SELF })
  await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'restarting', 30_000)
  await until(async () => (await model(server, kernel.id)).execution_state === 'idle', 60_000, 'idle after the restart')
  const restarted = await model(server, kernel.id)
  t.match(restarted.reason, /^heartbeat: no echo on the hb channel within 500 ms/, 'the model says why it restarted')
  t.not(server.app.kernels.get('alpha', kernel.id).pid, firstPid, 'a new process')
  t.notOk(alive(firstPid), 'the stopped process is gone')
  t.equal((await c.execute('z')).reply.content.ename, 'NameError', 'fresh state')
  t.match(await metrics(server), /wk_kernel_restarts_total\{cause="heartbeat"\} 1/)

  c.send('shell', 'execute_request', { code: STOP_SELF })
  await until(async () => (await model(server, kernel.id)).execution_state === 'dead', 60_000, 'dead')
  t.match((await model(server, kernel.id)).reason, /^kernel died \(heartbeat: no echo .*\) 2 times within 600000 ms; not restarted$/)
  await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'dead')
  const revived = await server.request('POST', `/api/kernels/${kernel.id}/restart`)
  t.equal(revived.body.execution_state, 'idle', 'restart revives it')
  t.notOk(revived.body.reason, 'a requested restart clears the reason')
})

t.test('maxRssBytes: a kernel that allocates past the limit is restarted with reason memory', async (t) => {
  const server = await startServer(t, { timeToDeadMs: 300, maxRssBytes: 0 })
  // the limit: this machine's idle ipykernel (sandbox included) plus 150 MiB
  const { body: probe } = await server.request('POST', '/api/kernels', { body: {} })
  const idleRss = (await until(async () => (await server.request('GET', `/api/kernels/${probe.id}/info`)).body.usage?.rssBytes as number | undefined)) as number
  await server.request('DELETE', `/api/kernels/${probe.id}`)
  const limit = idleRss + 150 * 1024 ** 2
  server.app.kernels.options.maxRssBytes = limit

  const serverSettings = jupyterlabSettings(server)
  const kernels = new KernelManager({ serverSettings })
  t.teardown(() => kernels.dispose())
  const kernel = await kernels.startNew({ name: 'python3' })
  const statuses: Kernel.Status[] = []
  kernel.statusChanged.connect((_k, s) => void statuses.push(s))
  const small = await kernel.requestExecute({ code: 'kept = b"x" * (50 << 20)' }).done
  t.equal(small.content.status, 'ok', '50 MiB stays under the limit')
  kernel.requestExecute({ code: 'hog = b"x" * (400 << 20)\nimport time; time.sleep(30)' }).done.catch(() => {})
  await until(() => statuses.includes('autorestarting'), 60_000, 'JupyterLab to see the restart')
  await until(async () => (await model(server, kernel.id)).execution_state === 'idle', 60_000, 'idle after the restart')
  const restarted = await model(server, kernel.id)
  t.match(restarted.reason, new RegExp(`^memory: resident \\d+ bytes, over maxRssBytes ${limit}$`))
  t.equal((await server.request('GET', `/api/kernels/${kernel.id}/info`)).body.restarts, 1)
  const after = await kernel.requestExecute({ code: 'kept' }).done.catch((err) => err)
  t.equal(after.content.ename, 'NameError', 'fresh state after the memory restart')
  t.match(await metrics(server), /wk_kernel_restarts_total\{cause="memory"\} 1/)
})
