import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import auth from '../../plugins/auth.js'
import { errorHandler } from '../../plugins/errors.js'
import t from 'tap'
import processesPlugin, { type ProcessEvent, type ProcessInfo } from '../../plugins/processes.js'
import { alive, children, running, startServer, until, workspace } from './helpers.js'

async function appWithBridge(t: { teardown(fn: () => unknown): void }) {
  const app = Fastify({ logger: false })
  await app.register(processesPlugin, { workspaceRoot: workspace(t), killGraceMs: 300 })
  await app.ready()
  t.teardown(() => app.close())
  return app
}

t.test('the in-process API: spawn, attach, ordered output then exit, manager-wide events', async (t) => {
  const app = await appWithBridge(t)
  const pm = app.processes
  const spawned: ProcessInfo[] = []
  pm.on('spawn', (info) => spawned.push(info))
  const info = await pm.spawn({ type: 'node', code: "process.stdin.once('data', (d) => { console.log('in:' + d); console.error('err'); process.exit(4) })" })
  t.same(spawned.map((s) => s.pid), [info.pid])
  const events: ProcessEvent[] = []
  const detach = pm.attach(info.pid, (e) => events.push(e))
  t.equal(pm.get(info.pid).clients, 1)
  t.equal(pm.write(info.pid, 'héllo'), 6, 'returns bytes written')
  const exit = await pm.wait(info.pid)
  t.same(exit, { code: 4, signal: null, reason: 'exited' })
  t.same(events.at(-1), { type: 'exit', pid: info.pid, exit })
  const outputs = events.filter((e) => e.type === 'output')
  t.same(outputs.map((e) => e.seq), outputs.map((_, i) => i + 1), 'chunks are numbered in order')
  t.equal(outputs.filter((e) => e.stream === 'stdout').map((e) => e.data).join(''), 'in:héllo\n')
  t.equal(outputs.filter((e) => e.stream === 'stderr').map((e) => e.data).join(''), 'err\n')
  detach()
  detach()
  t.throws(() => pm.write(info.pid, 'x'), { statusCode: 409, code: 'PROCESS_EXITED' })

  const late: ProcessEvent[] = []
  pm.attach(info.pid, (e) => late.push(e))
  t.same(late.map((e) => e.type === 'output' && e.replay), [...outputs.map(() => true), false], 'an exited process replays, then reports its exit')
})

t.test('namespaces scope every call; kill() forgets the process; the registry call shape works', async (t) => {
  const app = await appWithBridge(t)
  const pm = app.processes
  const a = await pm.spawn({ type: 'python', code: 'import time; time.sleep(60)' }, { namespace: 'team-a' })
  t.same(pm.list({ namespace: 'team-a' }).map((p) => p.pid), [a.pid])
  t.same(pm.list({ namespace: 'team-b' }), [])
  t.same(pm.list(), [], 'the default namespace sees nothing of team-a')
  t.throws(() => pm.get(a.pid), { statusCode: 404, code: 'PROCESS_NOT_FOUND' })
  t.throws(() => pm.write(a.pid, 'x', { namespace: 'team-b' }), { statusCode: 404, code: 'PROCESS_NOT_FOUND' })
  t.throws(() => pm.kill(a.pid, 'SIGKILL', { namespace: 'team-b' }), { statusCode: 404, code: 'PROCESS_NOT_FOUND' }, 'throws synchronously')
  t.equal(pm.get(a.pid, { namespace: 'team-a' }).status, 'running')

  const final = await pm.kill(a.pid, 'SIGKILL', { namespace: 'team-a' })
  t.same(final.exit, { code: null, signal: 'SIGKILL', reason: 'killed' })
  t.throws(() => pm.get(a.pid, { namespace: 'team-a' }), { code: 'PROCESS_NOT_FOUND' }, 'killed processes are forgotten')
})

t.test('flow control: pausing output holds the child back until released', async (t) => {
  const app = await appWithBridge(t)
  const pm = app.processes
  const info = await pm.spawn({ type: 'node', code: "process.stdout.write('x'.repeat(4 << 20), () => console.error('flushed'))" })
  const release = pm.pauseOutput(info.pid)
  await new Promise((r) => setTimeout(r, 300))
  t.ok(pm.get(info.pid).outputBytes < 4 << 20, 'not all output was read while paused')
  t.equal(pm.get(info.pid).status, 'running', 'the writer is blocked, not finished')
  release()
  release()
  await pm.wait(info.pid)
  t.equal(pm.output(info.pid).totalBytes, (4 << 20) + 'flushed\n'.length)
})

t.test('registration fails clearly for a workspace root that is not a directory', async (t) => {
  const app = Fastify({ logger: false })
  app.register(processesPlugin, { workspaceRoot: '/definitely/not/here' })
  await t.rejects(async () => {
    await app.ready()
  }, /workspaceRoot is not a directory/)
  await app.close()
})

t.test('app.close() terminates and reaps every child, grandchildren included', async (t) => {
  const srv = await startServer(t, { killGraceMs: 300 })
  const pm = srv.app.processes
  const shell = await pm.spawn({ type: 'shell' })
  const detach = pm.attach(shell.pid, () => {})
  // A background job in its own process group, and a foreground one, both inside the PTY session.
  pm.write(shell.pid, 'sleep 1000 & echo "bg=$!"\n')
  await until(() => /bg=(\d+)/.exec(pm.output(shell.pid).chunks.map((c) => c.data).join(''))?.[1], 10_000, 'background job started')
  // Pids printed inside a sandbox are of its own PID namespace; find the host pids by argv.
  const bg = await until(() => running(['sleep', '1000'])[0], 10_000, 'background pid')
  pm.write(shell.pid, 'sleep 1001\n')
  await until(() => pm.get(shell.pid).foreground === 'sleep', 10_000, 'foreground sleep')
  const python = await pm.spawn({ type: 'python', code: 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ready", flush=True)\ntime.sleep(1000)' })
  await until(() => pm.get(python.pid).outputBytes > 0, 10_000, 'python ready')
  const node = await pm.spawn({ type: 'node', code: "const c = require('child_process').spawn('sleep', ['1002'], { stdio: 'ignore' }); console.log('child=' + c.pid); setInterval(() => {}, 1000)" })
  await until(() => /child=(\d+)/.exec(pm.output(node.pid).chunks.map((c) => c.data).join(''))?.[1], 10_000, 'node child started')
  const grandchild = await until(() => running(['sleep', '1002'])[0], 10_000, 'node child pid')
  const workerd = await pm.spawn({ type: 'workerd' })

  const leaders = [shell.pid, python.pid, node.pid, workerd.pid]
  const all = [...leaders, bg, grandchild]
  t.ok(all.every(alive), 'everything runs before close')
  const exits: string[] = []
  pm.on('exit', (event) => exits.push(`${event.pid}:${event.exit.reason}`))

  const racing = pm.spawn({ type: 'workerd' }) // still starting when close begins
  await srv.app.close()
  detach()
  await t.rejects(racing, { code: /^(SHUTTING_DOWN|WORKERD_START_FAILED)$/ }, 'a spawn racing close fails instead of leaking')
  t.same(children(), [], 'no child of this process is left, the racing one included')
  t.same(all.filter(alive), [], 'no process survives close (by pid)')
  t.same(children().filter((pid) => leaders.includes(pid)), [], 'every direct child was reaped')
  t.same(exits.filter((e) => leaders.includes(Number(e.split(':')[0]))).sort(), leaders.map((pid) => `${pid}:shutdown`).sort(), 'each exit is reported with reason shutdown')
  t.equal(pm.get(python.pid).exit?.signal, 'SIGKILL', 'a child ignoring SIGTERM is killed after the grace period')
  await t.rejects(pm.spawn({ type: 'shell' }), { statusCode: 503, code: 'SHUTTING_DOWN' })
})

t.test('inside the kernel stack: JWT namespaces scope processes, errors keep their codes, routes are in the OpenAPI document', async (t) => {
  const secret = 'a-test-secret-of-32-characters!!'
  const srv = await startServer(t, {}, async (app) => {
    await app.register(errorHandler)
    await app.register(swagger, { openapi: { openapi: '3.1.0', info: { title: 't', version: '0' } } })
    await app.register(auth, { enabled: true, secret })
  })
  const token = (namespace: string) => srv.app.jwt.sign({ namespace })
  const as = (ns: string) => ({ authorization: `Bearer ${token(ns)}` })

  const anon = await srv.request('GET', '/processes')
  t.same([anon.status, anon.body.code], [401, 'UNAUTHORIZED'])
  const mine = await srv.request('POST', '/processes', { type: 'python', code: 'import time; time.sleep(30)' }, as('alice'))
  t.equal(mine.status, 201)
  t.equal(mine.body.namespace, 'alice')
  const theirs = await srv.request('GET', `/processes/${mine.body.pid}`, undefined, as('bob'))
  t.same([theirs.status, theirs.body.code], [404, 'PROCESS_NOT_FOUND'], 'another namespace sees 404')
  t.same((await srv.request('GET', '/processes', undefined, as('bob'))).body.processes, [])
  const kill = await srv.request('DELETE', `/processes/${mine.body.pid}`, undefined, as('bob'))
  t.equal(kill.status, 404, 'and cannot kill it')
  await t.rejects(srv.ws(`/processes/${mine.body.pid}/ws?token=${token('bob')}`), /404/)
  const ws = await srv.ws(`/processes/${mine.body.pid}/ws?token=${token('alice')}`)
  t.equal((await ws.waitFor((m) => m.type === 'ATTACHED')).process.namespace, 'alice')

  const unknown = await srv.request('POST', '/processes', { type: 'cobol' }, as('alice'))
  t.same([unknown.status, unknown.body.code], [400, 'UNKNOWN_PROCESS_TYPE'])

  const doc = srv.app.swagger() as { paths: Record<string, Record<string, { tags?: string[] }>> }
  const ops = Object.entries(doc.paths).filter(([p]) => p.startsWith('/processes')).flatMap(([p, m]) => Object.keys(m).map((verb) => `${verb.toUpperCase()} ${p}`))
  // @fastify/websocket marks WebSocket routes hidden, so /ws is not among them.
  t.same(ops.sort(), [
    'DELETE /processes/{pid}', 'GET /processes', 'GET /processes/{pid}',
    'POST /processes', 'POST /processes/{pid}/input', 'POST /processes/{pid}/resize', 'POST /processes/{pid}/signal',
  ])
  t.ok(Object.values(doc.paths['/processes/{pid}']).every((op) => op.tags?.includes('processes')))
})
