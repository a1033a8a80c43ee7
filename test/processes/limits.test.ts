import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { OutputRing } from '../../plugins/processes/ring-buffer.js'
import { children, startServer, until, workspace } from './helpers.js'

const SLEEPER = { type: 'python', code: 'import time; time.sleep(60)' }

t.test('maxProcesses: one spawn past the cap is 429 TOO_MANY_PROCESSES and starts nothing', async (t) => {
  const srv = await startServer(t, { maxProcesses: 2, maxProcessesPerNamespace: 2 })
  const a = await srv.request('POST', '/processes', SLEEPER)
  const b = await srv.request('POST', '/processes', SLEEPER)
  t.same([a.status, b.status], [201, 201])
  const before = children()
  const over = await srv.request('POST', '/processes', SLEEPER)
  t.equal(over.status, 429)
  t.equal(over.body.code, 'TOO_MANY_PROCESSES')
  t.match(over.body.message, /limit of 2 live processes/)
  t.same(children().sort(), before.sort(), 'no child was started')
  t.equal((await srv.request('GET', '/processes')).body.processes.length, 2)

  const killed = await srv.request('DELETE', `/processes/${a.body.pid}`)
  t.equal(killed.status, 200)
  t.same(killed.body.exit, { code: null, signal: 'SIGTERM', reason: 'killed' })
  t.equal((await srv.request('POST', '/processes', SLEEPER)).status, 201, 'a freed slot can be used again')
})

t.test('cwd escaping the root (.., absolute, symlink) is 400 and spawns nothing', async (t) => {
  const root = workspace(t)
  const outside = workspace(t)
  mkdirSync(join(root, 'sub'))
  symlinkSync(outside, join(root, 'sub', 'link'))
  const srv = await startServer(t, { workspaceRoot: root })
  const before = children()
  for (const cwd of ['..', 'sub/../..', outside, '/tmp', 'sub/link']) {
    const res = await srv.request('POST', '/processes', { type: 'shell', cwd })
    t.equal(res.status, 400, `cwd ${cwd}`)
    t.equal(res.body.code, 'CWD_OUTSIDE_WORKSPACE', `cwd ${cwd}`)
  }
  const missing = await srv.request('POST', '/processes', { type: 'shell', cwd: 'nope' })
  t.equal(missing.body.code, 'INVALID_CWD')
  writeFileSync(join(outside, 'evil.py'), 'print(1)')
  const script = await srv.request('POST', '/processes', { type: 'python', script: 'sub/link/evil.py' })
  t.equal(script.body.code, 'SCRIPT_OUTSIDE_WORKSPACE')
  t.same(children(), before, 'no child was started')
  t.same((await srv.request('GET', '/processes')).body.processes, [])

  const ok = await srv.request('POST', '/processes', { type: 'node', cwd: 'sub/../sub', code: 'console.log(process.cwd())', idleTimeoutMs: 0 })
  t.equal(ok.status, 201)
  t.equal(ok.body.cwd, 'sub')
  await until(async () => (await srv.request('GET', `/processes/${ok.body.pid}`)).body.status === 'exited')
  t.equal(srv.app.processes.output(ok.body.pid).chunks.map((c) => c.data).join(''), '/workspace/sub\n', 'the workspace is /workspace inside the sandbox')
})

t.test('env keys outside the allow-list are dropped, the kernel env does not leak', async (t) => {
  process.env.KERNEL_SECRET_FOR_TEST = 'hunter2'
  t.teardown(() => delete process.env.KERNEL_SECRET_FOR_TEST)
  const srv = await startServer(t, { envAllowList: ['PATH', 'APP_*'] })
  const code = 'console.log(JSON.stringify(process.env))'
  const res = await srv.request('POST', '/processes', { type: 'node', code, env: { APP_MODE: 'test', LD_PRELOAD: '/tmp/x.so', SECRET_X: 'no' } })
  t.equal(res.status, 201)
  t.same(res.body.droppedEnv, ['LD_PRELOAD', 'SECRET_X'])
  await srv.app.processes.wait(res.body.pid)
  const env = JSON.parse(srv.app.processes.output(res.body.pid).chunks.map((c) => c.data).join(''))
  t.equal(env.APP_MODE, 'test')
  t.equal(env.PATH, '/usr/local/bin:/usr/bin:/bin', 'PATH is the sandbox’s own, not the kernel’s')
  t.equal(env.HOME, '/tmp', 'HOME is the sandbox’s private tmpfs')
  for (const key of ['LD_PRELOAD', 'SECRET_X', 'KERNEL_SECRET_FOR_TEST']) t.notOk(key in env, `${key} is not passed`)
})

t.test('args reach the program verbatim: no shell interpolation, no option injection', async (t) => {
  const srv = await startServer(t)
  const args = ['$(id)', '; echo pwned', '`whoami`', '--inspect=0.0.0.0:9229', '*']
  for (const [type, code] of [['node', 'console.log(JSON.stringify(process.argv.slice(1)))'], ['python', 'import sys, json; print(json.dumps(sys.argv[1:]))']]) {
    const res = await srv.request('POST', '/processes', { type, code, args })
    await srv.app.processes.wait(res.body.pid)
    t.same(JSON.parse(srv.app.processes.output(res.body.pid).chunks.map((c) => c.data).join('')), args, type)
  }
})

t.test('bad spawn requests are 400 with their own codes and start nothing', async (t) => {
  const srv = await startServer(t)
  const before = children()
  const cases: Array<[unknown, string]> = [
    [{ type: 'ruby', code: 'puts 1' }, 'UNKNOWN_PROCESS_TYPE'],
    [{ code: 'x' }, 'INVALID_SPAWN_REQUEST'],
    [{ type: 'python', cols: 100 }, 'INVALID_SPAWN_REQUEST'],
    [{ type: 'node', code: '1', script: 'a.js' }, 'INVALID_SPAWN_REQUEST'],
    [{ type: 'node', args: [{}] }, 'INVALID_SPAWN_REQUEST'],
    [{ type: 'node', timeoutMs: -5 }, 'INVALID_SPAWN_REQUEST'],
    [{ type: 'python', script: 'missing.py' }, 'SCRIPT_NOT_FOUND'],
  ]
  for (const [body, code] of cases) {
    const res = await srv.request('POST', '/processes', body)
    t.equal(res.status, 400, JSON.stringify(body))
    t.equal(res.body.code, code, JSON.stringify(body))
  }
  await t.rejects(srv.app.processes.spawn({ type: 'perl' } as never), { statusCode: 400, code: 'UNKNOWN_PROCESS_TYPE' }, 'the in-process API checks too')
  await t.rejects(srv.app.processes.spawn({ type: 'node', args: 'x' } as never), { statusCode: 400, code: 'INVALID_SPAWN_REQUEST' })
  t.same(children(), before)
})

t.test('input over maxInputBytes is 413 INPUT_TOO_LARGE (REST and WebSocket) and is not written', async (t) => {
  const srv = await startServer(t, { maxInputBytes: 1024 })
  const { body: proc } = await srv.request('POST', '/processes', { type: 'python', code: 'import sys\nfor line in sys.stdin: print(len(line))' })
  const big = await srv.request('POST', `/processes/${proc.pid}/input`, { data: 'x'.repeat(1025) })
  t.equal(big.status, 413)
  t.equal(big.body.code, 'INPUT_TOO_LARGE')
  const ws = await srv.ws(`/processes/${proc.pid}/ws`)
  ws.send({ type: 'STDIN', id: 'big', data: 'y'.repeat(2000) })
  const err = await ws.waitFor((m) => m.type === 'ERROR')
  t.same(err, { type: 'ERROR', id: 'big', code: 'INPUT_TOO_LARGE', message: 'input of 2000 bytes exceeds the 1024-byte limit' })

  const ok = await srv.request('POST', `/processes/${proc.pid}/input`, { data: Buffer.from('abc\n').toString('base64'), encoding: 'base64', eof: true })
  t.same(ok.body, { pid: proc.pid, bytes: 4 })
  const exit = await ws.waitFor((m) => m.type === 'EXIT')
  t.equal(exit.exit.code, 0)
  t.equal(ws.output(), '4\n', 'only the small input reached the process')
  const late = await srv.request('POST', `/processes/${proc.pid}/input`, { data: 'x' })
  t.same([late.status, late.body.code], [409, 'PROCESS_EXITED'])
})

t.test('timeout kills a busy process and reports it', async (t) => {
  const srv = await startServer(t)
  const { body: proc } = await srv.request('POST', '/processes', { type: 'python', code: 'while True: pass', timeoutMs: 300 })
  t.equal(proc.timeoutMs, 300)
  const ws = await srv.ws(`/processes/${proc.pid}/ws`)
  const exit = await ws.waitFor((m) => m.type === 'EXIT', 10_000)
  t.same(exit.exit, { code: null, signal: 'SIGTERM', reason: 'timeout' })
  const info = await srv.request('GET', `/processes/${proc.pid}`)
  t.equal(info.body.status, 'exited')
  t.equal(info.body.exit.reason, 'timeout')
})

t.test('idle reaping: a process with no client is killed after idleTimeoutMs, an attached one is kept', async (t) => {
  const srv = await startServer(t, { idleTimeoutMs: 300 })
  const lonely = await srv.request('POST', '/processes', SLEEPER)
  const watched = await srv.request('POST', '/processes', SLEEPER)
  await srv.ws(`/processes/${watched.body.pid}/ws`)
  const exit = await srv.app.processes.wait(lonely.body.pid)
  t.equal(exit.reason, 'idle')
  t.equal((await srv.request('GET', `/processes/${watched.body.pid}`)).body.status, 'running')
})

t.test('the replay buffer keeps the newest output within outputBufferBytes', async (t) => {
  const ring = new OutputRing(10)
  ring.push('stdout', Buffer.from('aaaa'))
  ring.push('stderr', Buffer.from('bbbb'))
  ring.push('stdout', Buffer.from('cccc'))
  t.same(ring.snapshot().map((c) => [c.stream, c.data, c.seq]), [['stderr', 'bbbb', 2], ['stdout', 'cccc', 3]])
  t.same([ring.bytes, ring.total], [8, 12])
  ring.push('stdout', Buffer.from('é'.repeat(8))) // 16 bytes, more than the whole buffer: keep its tail on a character boundary
  t.same(ring.snapshot().map((c) => c.data), ['é'.repeat(5)])

  const srv = await startServer(t, { outputBufferBytes: 4096 })
  const { body: proc } = await srv.request('POST', '/processes', { type: 'node', code: "for (let i = 0; i < 1000; i++) console.log('line ' + String(i).padStart(4, '0'))" })
  await srv.app.processes.wait(proc.pid)
  const ws = await srv.ws(`/processes/${proc.pid}/ws`)
  const attached = await ws.waitFor((m) => m.type === 'ATTACHED')
  await ws.waitFor((m) => m.type === 'EXIT')
  const replay = ws.output()
  t.ok(Buffer.byteLength(replay) <= 4096, 'replay is bounded')
  t.equal(attached.droppedBytes, 10_000 - Buffer.byteLength(replay))
  t.ok(replay.endsWith('line 0999\n'), 'the newest output is kept')

  // A character split across two writes arrives whole, in one chunk.
  const split = await srv.request('POST', '/processes', {
    type: 'node',
    code: 'process.stdout.write(Buffer.from([0x61, 0xe2, 0x82])); setTimeout(() => process.stdout.write(Buffer.from([0xac, 0x0a])), 100)',
  })
  await srv.app.processes.wait(split.body.pid)
  t.same(srv.app.processes.output(split.body.pid).chunks.map((c) => c.data), ['a', '€\n'])
})
