import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import t from 'tap'
import { alive, startServer, until } from './helpers.js'

t.test('python3 -i answers 1+1 with 2 over the WebSocket, stdout and stderr tagged', async (t) => {
  const srv = await startServer(t)
  const spawned = await srv.request('POST', '/processes', { type: 'python', args: ['-i', '-q'] })
  t.equal(spawned.status, 201)
  t.equal(spawned.body.status, 'running')
  const ws = await srv.ws(`/processes/${spawned.body.pid}/ws`)
  const attached = await ws.waitFor((m) => m.type === 'ATTACHED')
  t.equal(attached.process.pid, spawned.body.pid)

  ws.send({ type: 'STDIN', id: 'q1', data: '1+1\n' })
  t.same(await ws.waitFor((m) => m.type === 'ACK'), { type: 'ACK', id: 'q1' })
  // python may write "2" and "\n" separately, so the answer is the stdout received up to its newline
  const stdout = () => ws.messages.filter((m) => m.type === 'OUTPUT' && m.stream === 'stdout').map((m) => m.data).join('')
  await ws.waitFor(() => stdout().includes('\n'))
  t.equal(stdout(), '2\n')
  await ws.waitFor((m) => m.type === 'OUTPUT' && m.stream === 'stderr' && m.data.includes('>>>'))

  ws.send({ type: 'STDIN', data: 'exit(3)\n' })
  const exit = await ws.waitFor((m) => m.type === 'EXIT')
  t.same(exit.exit, { code: 3, signal: null, reason: 'exited' })
  t.equal(await ws.closed, 1000, 'the socket closes normally after EXIT')
  const after = await srv.request('GET', `/processes/${spawned.body.pid}`)
  t.equal(after.body.status, 'exited')
  t.equal(after.body.exit.code, 3)
})

t.test('bash in a PTY echoes, and tput cols prints 120 after a resize to 120x40', async (t) => {
  const srv = await startServer(t)
  const { body: proc } = await srv.request('POST', '/processes', { type: 'shell', cols: 80, rows: 24 })
  t.equal(proc.tty, true)
  t.equal(proc.cols, 80)
  const ws = await srv.ws(`/processes/${proc.pid}/ws`)

  ws.send({ type: 'STDIN', data: 'echo "sum=$((6*7))"\n' })
  await ws.waitFor(() => ws.output().includes('sum=42'))
  t.ok(ws.messages.filter((m) => m.type === 'OUTPUT').every((m) => m.stream === 'pty'), 'a PTY is one stream')

  ws.send({ type: 'RESIZE', id: 7, cols: 120, rows: 40 })
  await ws.waitFor((m) => m.type === 'ACK' && m.id === 7)
  ws.send({ type: 'STDIN', data: 'tput cols; tput lines\n' })
  await ws.waitFor(() => /[\r\n]120\r\n40\r\n/.test(ws.output()))
  const info = await srv.request('GET', `/processes/${proc.pid}`)
  t.same([info.body.cols, info.body.rows], [120, 40])

  const notTty = await srv.request('POST', '/processes', { type: 'python', code: 'import time; time.sleep(30)' })
  const resize = await srv.request('POST', `/processes/${notTty.body.pid}/resize`, { cols: 100, rows: 30 })
  t.equal(resize.status, 409)
  t.equal(resize.body.code, 'NOT_A_TTY')
})

t.test('a late attacher receives earlier output first; output is broadcast to every client', async (t) => {
  const srv = await startServer(t)
  const code = "console.log('early-1'); console.log('early-2'); process.stdin.on('data', (d) => console.log('got:' + d.toString().trim()))"
  const { body: proc } = await srv.request('POST', '/processes', { type: 'node', code })
  await until(async () => (await srv.request('GET', `/processes/${proc.pid}`)).body.outputBytes >= 16, 10_000, 'early output')

  const late = await srv.ws(`/processes/${proc.pid}/ws`)
  const second = await srv.ws(`/processes/${proc.pid}/ws`)
  const replayed = await late.waitFor((m) => m.type === 'OUTPUT' && m.data.includes('early-2'))
  t.equal(replayed.replay, true)
  t.equal(late.messages[0].type, 'ATTACHED', 'ATTACHED comes before the replay')
  t.equal(late.messages[0].droppedBytes, 0)
  t.match(late.output(), /^early-1\nearly-2\n/)

  late.send({ type: 'STDIN', data: 'ping\n' })
  for (const client of [late, second]) {
    const live = await client.waitFor((m) => m.type === 'OUTPUT' && m.data.includes('got:ping'))
    t.notOk(live.replay, 'live output is not marked as replay')
  }
  const binary = await srv.ws(`/processes/${proc.pid}/ws?binary=true`)
  await binary.waitFor((m) => m.type === 'BINARY' && m.data.includes('got:ping'))
  const frames = binary.messages.filter((m) => m.type === 'BINARY')
  t.equal(frames.map((m) => m.data).join(''), 'early-1\nearly-2\ngot:ping\n', 'the whole buffer is replayed')
  t.ok(frames.every((m) => m.stream === 1 && m.replay), 'replayed stdout frames: stream byte 0x81')
  late.send({ type: 'STDIN', data: 'bin\n' })
  t.same(await binary.waitFor((m) => m.type === 'BINARY' && !m.replay), { type: 'BINARY', stream: 1, replay: false, data: 'got:bin\n' })
  binary.socket.close()
  await binary.closed
  await until(async () => (await srv.request('GET', `/processes/${proc.pid}`)).body.clients === 2, 5000, 'binary client detached')
  t.equal((await srv.request('GET', `/processes/${proc.pid}`)).body.clients, 2)

  second.send({ type: 'DETACH', id: 'bye' })
  await second.waitFor((m) => m.type === 'ACK' && m.id === 'bye')
  t.equal(await second.closed, 1000)
  await until(async () => (await srv.request('GET', `/processes/${proc.pid}`)).body.clients === 1, 5000, 'detach')
  t.equal((await srv.request('GET', `/processes/${proc.pid}`)).body.status, 'running', 'detaching does not stop the process')
})

t.test('SIGINT interrupts sleep 100 in a shell and the shell carries on', async (t) => {
  const srv = await startServer(t)
  const { body: proc } = await srv.request('POST', '/processes', { type: 'shell' })
  const ws = await srv.ws(`/processes/${proc.pid}/ws`)
  ws.send({ type: 'STDIN', data: 'sleep 100\n' })
  await until(async () => (await srv.request('GET', `/processes/${proc.pid}`)).body.foreground === 'sleep', 10_000, 'sleep in the foreground')

  const sent = await srv.request('POST', `/processes/${proc.pid}/signal`, { signal: 'SIGINT' })
  t.equal(sent.status, 200)
  // Interactive bash drops the rest of a command line on Ctrl-C, so ask for the status separately.
  ws.send({ type: 'STDIN', data: 'echo "status=$?"\n' })
  await ws.waitFor(() => ws.output().includes('status=130'), 5000)
  t.equal((await srv.request('GET', `/processes/${proc.pid}`)).body.status, 'running', 'bash itself survives Ctrl-C')

  ws.send({ type: 'SIGNAL', id: 's', signal: 'SIGBOGUS' })
  const err = await ws.waitFor((m) => m.type === 'ERROR')
  t.equal(err.code, 'INVALID_MESSAGE')
  t.equal(err.id, 's')
  const bad = await srv.request('POST', `/processes/${proc.pid}/signal`, { signal: 'SIGBOGUS' })
  t.equal(bad.status, 400)
  t.equal(bad.body.code, 'INVALID_SIGNAL')
})

t.test('unknown pids answer 404 on REST and on the WebSocket upgrade', async (t) => {
  const srv = await startServer(t)
  for (const [method, path] of [['GET', '/processes/999999'], ['DELETE', '/processes/999999']]) {
    const res = await srv.request(method, path)
    t.equal(res.status, 404)
    t.equal(res.body.code, 'PROCESS_NOT_FOUND')
  }
  await t.rejects(srv.ws('/processes/999999/ws'), /404/)
})
const tempDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('wk-workerd-')).sort()

t.test('workerd serves the sample worker and inline code on a loopback port', async (t) => {
  const srv = await startServer(t)
  const sample = await srv.request('POST', '/processes', { type: 'workerd' })
  t.equal(sample.status, 201)
  t.match(sample.body.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${sample.body.url}/hello?x=1`)
  t.equal(res.status, 200)
  t.same(await res.json(), { hello: 'from workerd', method: 'GET', path: '/hello' })

  const code = "export default { async fetch(req) { return new Response('echo:' + (await req.text()), { status: 202 }) } }"
  const custom = await srv.request('POST', '/processes', { type: 'workerd', code })
  const echoed = await fetch(custom.body.url, { method: 'POST', body: 'ping' })
  t.equal(echoed.status, 202)
  t.equal(await echoed.text(), 'echo:ping')

  const dirs = tempDirs()
  const killed = await srv.request('DELETE', `/processes/${custom.body.pid}`)
  t.equal(killed.body.exit.reason, 'killed')
  t.notOk(alive(custom.body.pid), 'workerd is gone after DELETE')
  t.equal(tempDirs().length, dirs.length - 1, 'its temporary config directory is removed')
  await t.rejects(fetch(custom.body.url), 'nothing listens on its port any more')
})

t.test('a worker that does not load is 400 WORKERD_START_FAILED with workerd’s message, and nothing is left', async (t) => {
  const srv = await startServer(t)
  const dirs = tempDirs()
  const res = await srv.request('POST', '/processes', { type: 'workerd', code: 'export default {' })
  t.equal(res.status, 400)
  t.equal(res.body.code, 'WORKERD_START_FAILED')
  t.match(res.body.message, /exited during startup.*SyntaxError/s)
  t.same((await srv.request('GET', '/processes')).body.processes, [])
  t.same(tempDirs(), dirs)
  const badField = await srv.request('POST', '/processes', { type: 'workerd', args: ['--inspector-addr=0.0.0.0:9229'] })
  t.same([badField.status, badField.body.code], [400, 'INVALID_SPAWN_REQUEST'], 'workerd takes no free-form flags')
})

t.test('a client that never reads holds the process at most maxOutputPauseMs: dropped with 1013, the process resumes for the others', async (t) => {
  const srv = await startServer(t, { maxOutputPauseMs: 500 })
  const size = 32 << 20 // past the 4 MiB pause mark plus what the loopback socket buffers hold
  const code = `process.stdin.once('data', () => process.stdout.write('x'.repeat(${size}), () => process.exit(0)))`
  const { body: proc } = await srv.request('POST', '/processes', { type: 'node', code, idleTimeoutMs: 0 })
  const reader = await srv.ws(`/processes/${proc.pid}/ws`)
  const stalled = await srv.ws(`/processes/${proc.pid}/ws`)
  for (const c of [reader, stalled]) await c.waitFor((m) => m.type === 'ATTACHED')
  stalled.socket.pause() // never reads again (until the end of the test)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => stalled.socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })))
  t.equal((await srv.request('POST', `/processes/${proc.pid}/input`, { data: 'go\n' })).status, 200)

  const exit = await reader.waitFor((m) => m.type === 'EXIT', 120_000)
  t.same(exit.exit, { code: 0, signal: null, reason: 'exited' }, 'the process ran to its end although one client never read')
  t.equal(reader.output().length, size, 'the reading client got every byte')

  stalled.socket.resume() // reads what was queued for it, then finds the close frame
  t.match(await closed, { code: 1013, reason: 'client too slow: held the process paused for 500 ms' })
  const got = stalled.output().length
  t.ok(got > 0 && got < size, `the dropped client got a part (${got} bytes), then nothing more`)
  t.notOk(stalled.messages.some((m) => m.type === 'EXIT'))
})
