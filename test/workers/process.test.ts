import t from 'tap'
import { realpathSync } from 'node:fs'
import WebSocket from 'ws'
import processes from '../../plugins/processes.js'
import type { TranscriptItem } from '../../schemas/workers.js'
import { until } from '../processes/helpers.js'
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

// On the first stdin input, writes FLOOD_LINES lines of 1 KiB, then "done", and ends (exit 0 once stdout
// is flushed): far more than the loopback TCP buffers plus the events socket's 4 MiB bound hold for a
// client that reads nothing.
const FLOOD_LINES = 32_768
const FLOOD = `
process.stdin.once('data', () => {
  process.stdin.destroy()
  const line = 'x'.repeat(1023) + '\\n'
  for (let i = 0; i < ${FLOOD_LINES}; i++) process.stdout.write(line)
  process.stdout.write('done\\n')
})
`

t.test('a slow events subscriber pauses the process (no drop), which resumes when the socket drains', async (t) => {
  const root = realpathSync(t.testdir())
  // the pause is held for as long as the test looks at it: far below this bound
  const { app, base, wsBase } = await startServer({ workspaceRoot: root, maxEventsPauseMs: 600_000 }, async (a) => {
    await a.register(processes, { workspaceRoot: root, killGraceMs: 500 })
  })
  t.teardown(() => app.close())
  const spawn = async () => {
    const path = `/runtimes/process/workers/${(await call(base, 'POST', '/runtimes/process/workers', spawnBody(FLOOD))).body.worker.worker_id}`
    const events = wsClient(`${wsBase}${path}/events`)
    await events.opened
    await events.next((m) => m.type === 'CONNECTED')
    events.ws.pause() // reads nothing more: the server's socket backs up
    await call(base, 'POST', `${path}/input`, { content: 'go' })
    return { path, events }
  }
  const serverBuffered = () => Math.max(0, ...[...app.websocketServer.clients].map((c) => c.bufferedAmount))
  const totalItems = async (path: string) => (await call(base, 'GET', `${path}/transcript?limit=0`)).body.total_items as number
  /** Polls the transcript until it stops growing (the process is held) or the worker ends. */
  const settled = async (path: string) => {
    let last = -1
    for (let same = 0; same < 5; ) {
      await new Promise((r) => setTimeout(r, 200))
      const now = await totalItems(path)
      if ((await call(base, 'GET', path)).body.status !== 'running') return now
      same = now === last ? same + 1 : 0
      last = now
    }
    return last
  }

  const { path, events } = await spawn()
  await until(() => serverBuffered() > 256 * 1024, 30_000)
  const held = await settled(path)
  t.ok(held < FLOOD_LINES, `the process is held part way (${held} of ${FLOOD_LINES + 2} items)`)
  t.match((await call(base, 'GET', path)).body, { status: 'running' }, 'still running: it waits on its pipe')
  t.same([...app.websocketServer.clients].map((c) => c.readyState), [WebSocket.OPEN], 'the server has not dropped the subscriber (no close 1013)')

  events.ws.resume()
  const status = await events.next((m) => m.type === 'STATUS', 120_000)
  t.match(status, { status: 'exited', exit_code: 0 }, 'the process ran to its end once the socket drained')
  const items = events.messages.filter((m) => m.type === 'ITEM').map((m) => m.item)
  t.equal(items.length, FLOOD_LINES + 2, 'every item arrived: go, the lines, done')
  t.same(items.map((i) => i.sequence), items.map((_, k) => k + 1), 'in order, none missing')
  t.match(items.at(-1), { role: 'stdout', content: 'done' })
  events.ws.close()

  const second = await spawn()
  await until(() => serverBuffered() > 256 * 1024, 30_000)
  second.events.ws.terminate()
  await until(async () => (await call(base, 'GET', second.path)).body.status !== 'running', 60_000, 'the second worker to end')
  t.match((await call(base, 'GET', second.path)).body, { status: 'exited', exit_code: 0 }, 'a subscriber that goes away releases the process, which runs to its end')
})

t.test('a subscriber that never reads holds the worker at most maxEventsPauseMs: dropped with 1013, the worker resumes for the others', async (t) => {
  const root = realpathSync(t.testdir())
  const { app, base, wsBase } = await startServer({ workspaceRoot: root, maxEventsPauseMs: 500 }, async (a) => {
    await a.register(processes, { workspaceRoot: root, killGraceMs: 500 })
  })
  t.teardown(() => app.close())
  const path = `/runtimes/process/workers/${(await call(base, 'POST', '/runtimes/process/workers', spawnBody(FLOOD))).body.worker.worker_id}`
  const reader = wsClient(`${wsBase}${path}/events`)
  const stalled = wsClient(`${wsBase}${path}/events`)
  for (const c of [reader, stalled]) await c.opened, await c.next((m) => m.type === 'CONNECTED')
  stalled.ws.pause() // never reads again (until the end of the test)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => stalled.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })))
  await call(base, 'POST', `${path}/input`, { content: 'go' })

  const status = await reader.next((m) => m.type === 'STATUS', 120_000)
  t.match(status, { status: 'exited', exit_code: 0 }, 'the worker ran to its end although one subscriber never read')
  const items = reader.messages.filter((m) => m.type === 'ITEM').map((m) => m.item)
  t.equal(items.length, FLOOD_LINES + 2, 'the reading subscriber got every item')
  t.same(items.map((i) => i.sequence), items.map((_, k) => k + 1), 'in order, none missing')

  stalled.ws.resume() // reads what was queued for it, then finds the close frame
  t.match(await closed, { code: 1013, reason: 'client too slow: held the worker paused for 500 ms' })
  const got = stalled.messages.filter((m) => m.type === 'ITEM').length
  t.ok(got > 0 && got < FLOOD_LINES + 2, `the dropped subscriber got a part (${got} items), then nothing more`)
  t.notOk(stalled.messages.some((m) => m.type === 'STATUS'))
})
