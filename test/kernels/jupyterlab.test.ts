/**
 * JupyterLab's own client library (@jupyterlab/services) against our server with a real ipykernel:
 * the v1 WebSocket subprotocol, `Authorization: token`, bodiless JSON POSTs and cache-busters included.
 */
import t from 'tap'
import { KernelManager, SessionManager, type KernelMessage } from '@jupyterlab/services'
import { startServer } from './helpers.js'
import { jupyterlabSettings } from './jupyterlab-settings.js'

t.test('@jupyterlab/services: execute, interrupt, restart, sessions, shutdown', async (t) => {
  const server = await startServer(t)
  const serverSettings = jupyterlabSettings(server)
  const kernelManager = new KernelManager({ serverSettings })
  t.teardown(() => kernelManager.dispose())
  await kernelManager.ready
  const kernel = await kernelManager.startNew({ name: 'python3' })
  t.match(kernel.id, /^[0-9a-f-]{36}$/)
  const info = await kernel.info
  t.equal(info.language_info.name, 'python')

  const run = async (code: string) => {
    const iopub: KernelMessage.IIOPubMessage[] = []
    const future = kernel.requestExecute({ code })
    future.onIOPub = (msg) => void iopub.push(msg)
    const reply = await future.done
    return { reply, iopub }
  }

  const printed = await run('print(1)')
  t.equal(printed.reply.content.status, 'ok')
  t.same(printed.iopub.filter((m) => m.header.msg_type === 'stream').map((m) => (m.content as KernelMessage.IStreamMsg['content']).text), ['1\n'])

  const sum = await run('x = 41\n1+1')
  const result = sum.iopub.find((m) => m.header.msg_type === 'execute_result')
  t.equal((result?.content as KernelMessage.IExecuteResultMsg['content']).data['text/plain'], '2')

  // interrupt during sleep: KeyboardInterrupt error reply (the REST interrupt JupyterLab uses)
  // once the cell runs user code: a SIGINT before ipykernel installs its handler is lost (as in Jupyter)
  const future = kernel.requestExecute({ code: 'import time; print("sleeping", flush=True); time.sleep(30)' })
  await new Promise<void>((resolve) => {
    future.onIOPub = (msg) => {
      if (msg.header.msg_type === 'stream') resolve()
    }
  })
  await kernel.interrupt()
  const interrupted = await future.done.catch((err) => err)
  t.equal(interrupted.content.status, 'error')
  t.equal(interrupted.content.ename, 'KeyboardInterrupt')

  // restart: same id, fresh state
  await kernel.restart()
  t.equal(kernel.id, (await kernelManager.findById(kernel.id))?.id)
  const after = await run('x').catch((err) => ({ reply: err, iopub: [] }))
  t.equal(after.reply.content.status, 'error')
  t.equal(after.reply.content.ename, 'NameError')

  // sessions: the same path gives the same session and kernel
  const sessionManager = new SessionManager({ kernelManager, serverSettings })
  t.teardown(() => sessionManager.dispose())
  const a = await sessionManager.startNew({ path: 'a.ipynb', name: 'a.ipynb', type: 'notebook', kernel: { name: 'python3' } })
  const b = await sessionManager.startNew({ path: 'a.ipynb', name: 'a.ipynb', type: 'notebook', kernel: { name: 'python3' } })
  t.equal(a.id, b.id)
  t.equal(a.kernel?.id, b.kernel?.id)
  const listed = await server.request('GET', '/api/sessions')
  t.same(listed.body.map((s: { path: string }) => s.path), ['a.ipynb'])
  await a.shutdown()
  t.same((await server.request('GET', '/api/sessions')).body, [])

  // shutdown: 204, then gone
  await kernel.shutdown()
  t.equal((await server.request('GET', `/api/kernels/${kernel.id}`)).status, 404)
})
