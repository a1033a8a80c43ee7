import t from 'tap'
import { realpathSync } from 'node:fs'
import processes from '../../plugins/processes.js'
import type { TranscriptItem } from '../../schemas/workers.js'
import { startServer, call, wsClient, leaks } from './helpers.js'

// Echoes each stdin line as `echo:<line>`, says "ready" first, and exits 3 on the line "bye".
const ECHO = `
const rl = require('node:readline').createInterface({ input: process.stdin })
console.log('ready')
rl.on('line', (l) => { if (l === 'bye') process.exit(3); console.log('echo:' + l) })
`
const FORBIDDEN = ['"pid"', 'cwd', 'session', 'socket', 'token', 'node -e', 'readline']

const spawnBody = (code = ECHO) => ({ intent: { kind: 'ticket_role', ticket_id: 'T7', role: 'reviewer' }, process: { type: 'node', code } })

t.test('without the process bridge the runtime is unavailable, not an exception', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  const summary = await call(base, 'GET', '/runtimes/process')
  t.match(summary, { status: 200, body: { status: 'unavailable', capabilities: { can_spawn: false, can_accept_input: false }, diagnostics: [{ code: 'process_bridge_unavailable' }] } })
  const hosts = await call(base, 'GET', '/runtimes/process/hosts')
  t.match(hosts.body, { items: [{ status: 'unavailable' }], diagnostics: [{ code: 'process_bridge_unavailable' }] })
  const spawn = await call(base, 'POST', '/runtimes/process/workers', spawnBody())
  t.match(spawn, { status: 503, body: { state: 'unavailable', diagnostics: [{ code: 'process_bridge_unavailable' }] } })
  t.same((await call(base, 'GET', '/runtimes/process/workers')).body.items, [])
})

t.test('process workers: a real process behind spawn, input, transcript, events and stop', async (t) => {
  const root = realpathSync(t.testdir({ sub: {} }))
  const { app, base, wsBase } = await startServer({ workspaceRoot: root }, async (a) => {
    await a.register(processes, { workspaceRoot: root, killGraceMs: 500 })
  })
  t.teardown(() => app.close())
  t.match((await call(base, 'GET', '/runtimes/process')).body, { status: 'available', capabilities: { can_spawn: true } })

  const spawned = await call(base, 'POST', '/runtimes/process/workers', spawnBody())
  t.equal(spawned.status, 201, spawned.text)
  t.match(spawned.body, {
    state: 'accepted',
    acceptance_evidence: [{ kind: 'process_started' }],
    worker: { runtime_id: 'process', status: 'running', role: 'reviewer', profile: 'builtin:reviewer', implementation: { kind: 'process' } },
  })
  const id = spawned.body.worker.worker_id
  t.match(id, /^proc-reviewer-[0-9a-f]{16}$/)
  const path = `/runtimes/process/workers/${id}`

  const events = wsClient(`${wsBase}${path}/events?start=0`)
  await events.opened
  t.match(await events.next(), { type: 'CONNECTED', status: 'running' })
  t.match(await events.next((m) => m.type === 'ITEM'), { item: { role: 'stdout', content: 'ready' } })

  const input = await call(base, 'POST', `${path}/input`, { content: 'hello process' })
  t.match(input, { status: 200, body: { state: 'accepted', transcript_sequence: 2 } })
  t.match(await events.next((m) => m.type === 'ITEM'), { item: { sequence: 2, role: 'user', content: 'hello process' } })
  t.match(await events.next((m) => m.type === 'ITEM'), { item: { sequence: 3, role: 'stdout', content: 'echo:hello process' } })

  const tr = await call(base, 'GET', `${path}/transcript`)
  t.same(tr.body.items.map((i: TranscriptItem) => [i.role, i.content]), [
    ['stdout', 'ready'],
    ['user', 'hello process'],
    ['stdout', 'echo:hello process'],
  ])
  const system = await call(base, 'POST', `${path}/input`, { kind: 'system', content: 'x' })
  t.match(system, { status: 409, body: { state: 'unsupported', diagnostics: [{ code: 'process_system_input_unsupported' }] } })

  t.test('a process that exits on its own is exited, with its code', async (t) => {
    await call(base, 'POST', `${path}/input`, { content: 'bye' })
    t.match(await events.next((m) => m.type === 'STATUS'), { status: 'exited', exit_code: 3 })
    const worker = (await call(base, 'GET', path)).body
    t.match(worker, { status: 'exited', exit_code: 3, capabilities: { can_accept_input: false, can_stop: false } })
    const late = await call(base, 'POST', `${path}/input`, { content: 'anyone?' })
    t.match(late, { status: 409, body: { state: 'rejected', diagnostics: [{ code: 'worker_not_running' }] } })
    events.ws.close()
  })

  t.test('graceful stop sends TERM → stopped; force sends KILL → cancelled', async (t) => {
    const a = (await call(base, 'POST', '/runtimes/process/workers', spawnBody())).body.worker.worker_id
    const b = (await call(base, 'POST', '/runtimes/process/workers', spawnBody())).body.worker.worker_id
    const graceful = await call(base, 'POST', `/runtimes/process/workers/${a}/stop`, { mode: 'graceful' })
    t.match(graceful, { status: 200, body: { state: 'accepted', worker: { status: 'stopped' } } })
    const forced = await call(base, 'POST', `/runtimes/process/workers/${b}/stop`, { mode: 'force' })
    t.match(forced, { status: 200, body: { state: 'accepted', worker: { status: 'cancelled' } } })
    t.equal(app.processes.list().filter((p) => p.status === 'running').length, 0, 'no process left running')
  })

  t.test('a bad launch is a typed error and leaves nothing behind', async (t) => {
    const before = (await call(base, 'GET', '/runtimes/process/workers')).body.items.length
    const outside = await call(base, 'POST', '/runtimes/process/workers', { ...spawnBody(), process: { type: 'node', code: '1', cwd: '../..' } })
    t.match(outside, { status: 400, body: { code: 'CWD_OUTSIDE_WORKSPACE' } })
    const missing = await call(base, 'POST', '/runtimes/process/workers', { intent: { kind: 'workspace_companion' } })
    t.match(missing, { status: 409, body: { state: 'rejected', diagnostics: [{ code: 'process_launch_missing' }] } })
    const badType = await call(base, 'POST', '/runtimes/process/workers', { ...spawnBody(), process: { type: 'ruby', code: '1' } })
    t.equal(badType.status, 400)
    t.equal((await call(base, 'GET', '/runtimes/process/workers')).body.items.length, before)
  })

  t.test('projections never show pids, commands, paths or sockets', async (t) => {
    const texts = [
      (await call(base, 'GET', '/runtimes/process/workers')).text,
      (await call(base, 'GET', path)).text,
      (await call(base, 'GET', '/runtimes/process')).text,
      (await call(base, 'GET', '/runtimes/process/hosts')).text,
      spawned.text,
    ]
    t.same(leaks(texts.join('\n'), [root, ...FORBIDDEN]), [])
  })
})

t.test('closing the app kills running process workers', async (t) => {
  const root = realpathSync(t.testdir())
  const { app, base } = await startServer({ workspaceRoot: root }, async (a) => {
    await a.register(processes, { workspaceRoot: root, killGraceMs: 500 })
  })
  const spawned = await call(base, 'POST', '/runtimes/process/workers', spawnBody('setInterval(() => {}, 1000)'))
  t.equal(spawned.status, 201)
  const [info] = app.processes.list()
  await app.close()
  t.throws(() => process.kill(info.pid, 0), { code: 'ESRCH' }, 'the process is gone')
})
