/**
 * The channels WebSocket with raw `ws` clients and a real ipykernel: legacy JSON and v1, iopub fan-out,
 * replies to the sender only, offline buffering replayed to the same session_id, bad frames.
 */
import t from 'tap'
import WebSocket from 'ws'
import { channels, startServer, streamText, until } from './helpers.js'

t.test('channels: legacy JSON and v1, fan-out, replay, bad frames', async (t) => {
  const server = await startServer(t)
  const started = await server.request('POST', '/api/kernels', { body: { name: 'python3' } })
  t.equal(started.status, 201)
  const id = started.body.id

  t.test('legacy JSON: print, execute_result, interrupt, restart', async (t) => {
    const c = await channels(t, server, id)
    t.equal(c.socket.protocol, '')
    const printed = await c.execute('print(1)')
    t.equal(printed.reply.content.status, 'ok')
    t.equal(streamText(printed.iopub), '1\n')
    const sum = await c.execute('y = 5\n1+1')
    t.same(sum.iopub.find((m) => m.header.msg_type === 'execute_result')?.content.data, { 'text/plain': '2' })

    // interrupt once the cell runs user code (a SIGINT before ipykernel installs its handler is lost, as in Jupyter)
    const sleeping = c.send('shell', 'execute_request', { code: 'import time; print("sleeping", flush=True); time.sleep(30)', silent: false })
    await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === sleeping)
    t.equal((await server.request('POST', `/api/kernels/${id}/interrupt`)).status, 204)
    const reply = await c.waitFor((m) => m.channel === 'shell' && m.parent_header.msg_id === sleeping)
    t.equal(reply.content.ename, 'KeyboardInterrupt')

    const restarted = await server.request('POST', `/api/kernels/${id}/restart`)
    t.equal(restarted.status, 200)
    t.equal(restarted.body.id, id)
    t.ok(c.messages.some((m) => m.header.msg_type === 'status' && m.content.execution_state === 'restarting'))
    const gone = await c.execute('y')
    t.equal(gone.reply.content.ename, 'NameError')
  })

  t.test('v1 subprotocol: selected, execute', async (t) => {
    const c = await channels(t, server, id, { v1: true })
    t.equal(c.socket.protocol, 'v1.kernel.websocket.jupyter.org')
    const r = await c.execute('print("v1")')
    t.equal(streamText(r.iopub), 'v1\n')
  })

  t.test('two clients: iopub to both, the reply only to the sender', async (t) => {
    const a = await channels(t, server, id)
    const b = await channels(t, server, id, { v1: true })
    const r = await a.execute('print("both")')
    const msgId = r.reply.parent_header.msg_id
    await b.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === msgId)
    await new Promise((resolve) => setTimeout(resolve, 200))
    t.notOk(b.messages.some((m) => m.channel === 'shell' && m.parent_header.msg_id === msgId), 'b saw no reply')
    t.equal((await server.request('GET', `/api/kernels/${id}`)).body.connections, 2)
  })

  t.test('input_request goes to the client that asked; its input_reply answers it', async (t) => {
    const asker = await channels(t, server, id)
    const other = await channels(t, server, id)
    const msgId = asker.send('shell', 'execute_request', { code: 'name = input("who? ")\nprint("hi", name)', silent: false, allow_stdin: true })
    const request = await asker.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request')
    t.equal(request.content.prompt, 'who? ')
    asker.send('stdin', 'input_reply', { value: 'ada' })
    const reply = await asker.waitFor((m) => m.channel === 'shell' && m.parent_header.msg_id === msgId)
    t.equal(reply.content.status, 'ok')
    await other.waitFor((m) => m.header.msg_type === 'stream' && m.content.text === 'hi ada\n')
    t.notOk(other.messages.some((m) => m.channel === 'stdin'), 'the other client saw no input_request')
  })

  t.test('reconnect with the same session_id replays what was missed', async (t) => {
    const first = await channels(t, server, id, { session: 'replay-session' })
    const msgId = first.send('shell', 'execute_request', { code: 'import time; time.sleep(0.5); print("missed")', silent: false })
    await first.waitFor((m) => m.header.msg_type === 'execute_input')
    first.socket.close()
    await first.closed
    const other = await channels(t, server, id)
    await other.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === msgId)
    t.notOk(other.messages.some((m) => m.channel === 'shell'), 'another session gets no replay of the reply')
    await until(async () => (await server.request('GET', `/api/kernels/${id}`)).body.execution_state === 'idle')
    const again = await channels(t, server, id, { session: 'replay-session' })
    const stream = await again.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === msgId)
    t.equal(stream.content.text, 'missed\n')
    const reply = await again.waitFor((m) => m.channel === 'shell' && m.parent_header.msg_id === msgId)
    t.equal(reply.content.status, 'ok')
  })

  t.test('bad frames: unknown channel dropped, 10 undecodable frames close 1007', async (t) => {
    const c = await channels(t, server, id)
    c.socket.send(JSON.stringify({ header: { msg_id: 'x', msg_type: 'execute_request' }, channel: 'nope', content: { code: 'print(2)' } }))
    const ok = await c.execute('print(3)')
    t.equal(streamText(ok.iopub), '3\n')
    t.notOk(c.messages.some((m) => m.header.msg_type === 'stream' && m.content.text === '2\n'))
    for (let i = 0; i < 10; i++) c.socket.send('not json')
    t.equal(await c.closed, 1007)
  })

  t.test('unknown kernel or other namespace: 404 before the upgrade', async (t) => {
    for (const url of [`/api/kernels/${id}/channels?token=${server.token('beta')}`, `/api/kernels/00000000-0000-0000-0000-000000000000/channels?token=${server.token()}`]) {
      const ws = new WebSocket(server.base.replace('http', 'ws') + url)
      const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
      t.equal(status, 404)
    }
  })

  t.test('deleting the kernel: status dead, close 4004', async (t) => {
    const c = await channels(t, server, id)
    t.equal((await server.request('DELETE', `/api/kernels/${id}`)).status, 204)
    t.equal(await c.closed, 4004)
    t.ok(c.messages.some((m) => m.header.msg_type === 'status' && m.content.execution_state === 'dead'))
  })
})

t.test('iopub rate limit: over it, output is dropped with one notice; replies still arrive', async (t) => {
  const server = await startServer(t, { iopubMsgRateLimit: 20, rateLimitWindowS: 1 })
  const { body: kernel } = await server.request('POST', '/api/kernels', { body: {} })
  const c = await channels(t, server, kernel.id)
  const r = await c.execute('from IPython.display import display\nfor i in range(100): display(i)')
  t.equal(r.reply.content.status, 'ok')
  const shown = r.iopub.filter((m) => m.header.msg_type === 'display_data').length
  t.ok(shown >= 20 && shown < 100, `some display_data dropped (${shown} of 100 delivered)`)
  t.match(streamText(r.iopub, 'stderr'), /^IOPub rate exceeded/)
  const record = await server.request('POST', `/api/kernels/${kernel.id}/execute`, { body: { code: 'from IPython.display import display\nfor i in range(100): display(i)' } })
  t.equal(record.body.outputs.length, 100, 'the execution record is not rate-limited')
})
