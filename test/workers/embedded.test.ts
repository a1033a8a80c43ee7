import t from 'tap'
import WebSocket from 'ws'
import type { TranscriptItem } from '../../schemas/workers.js'
import { until } from '../processes/helpers.js'
import { startServer, call, wsClient, upgradeStatus, leaks } from './helpers.js'

const FORBIDDEN = ['metadata.json', 'session', 'socket', 'token', 'credential', 'provider', '127.0.0.1']

t.test('embedded workers: spawn, input, transcript, stop', async (t) => {
  const root = t.testdir({ project: {} })
  const { app, base } = await startServer({ workspaceRoot: `${root}/project`, transcriptMaxItems: 5, maxListLimit: 20, defaultListLimit: 10 })
  t.teardown(() => app.close())
  const seen: string[] = []
  const get = async (path: string) => {
    const res = await call(base, 'GET', path)
    seen.push(res.text)
    return res
  }

  const spawned = await call(base, 'POST', '/runtimes/embedded/workers', {
    intent: { kind: 'ticket_role', ticket_id: '00001KVZSGT0Q', role: 'coder' },
    requested_worker_name: 'friendly/name',
  })
  t.equal(spawned.status, 201)
  t.equal(spawned.body.state, 'accepted')
  t.ok(spawned.body.acceptance_evidence.some((e: { kind: string }) => e.kind === 'embedded_worker_created'))
  const worker = spawned.body.worker
  t.match(worker, {
    runtime_id: 'embedded',
    role: 'coder',
    profile: 'builtin:coder',
    status: 'running',
    label: 'friendlyname',
    workspace: { visibility: 'backend_internal' },
    capabilities: { can_accept_input: true, can_stop: true, can_read_transcript: true, can_stream_events: true },
  })
  t.match(worker.worker_id, /^emb-coder-[0-9a-f]{16}$/, 'opaque id, the requested name is not authority')
  const id = worker.worker_id
  const path = `/runtimes/embedded/workers/${id}`

  const companion = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'workspace_companion' } })
  t.match(companion.body.worker, { role: 'workspace_companion', profile: 'runtime_default' })

  const listed = await get('/runtimes/embedded/workers')
  t.same(listed.body.items.map((w: { worker_id: string }) => w.worker_id), [id, companion.body.worker.worker_id])
  t.equal((await get(path)).body.worker_id, id)

  const first = await call(base, 'POST', `${path}/input`, { content: 'hello embedded runtime' })
  t.match(first, { status: 200, body: { state: 'accepted', runtime_id: 'embedded', worker_id: id, transcript_sequence: 1 } })
  const second = await call(base, 'POST', `${path}/input`, { kind: 'system', content: 'be brief' })
  t.equal(second.body.transcript_sequence, 2)
  t.ok(second.body.event_id > first.body.event_id, 'event ids increase')

  const tr = await get(`${path}/transcript`)
  t.match(tr.body, { state: 'accepted', start: 0, total_items: 2, first_start: 0, next_start: null })
  t.same(tr.body.items.map((i: TranscriptItem) => [i.sequence, i.role, i.content]), [
    [1, 'user', 'hello embedded runtime'],
    [2, 'system', 'be brief'],
  ])

  t.test('transcript reads are paged and bounded per worker', async (t) => {
    for (let i = 3; i <= 8; i++) await call(base, 'POST', `${path}/input`, { content: `line ${i}` })
    const page = await get(`${path}/transcript?start=0&limit=2`)
    // 8 appended, 5 kept: positions 3..7 remain.
    t.match(page.body, { total_items: 8, first_start: 3, limit: 2, next_start: 5 })
    t.same(page.body.items.map((i: TranscriptItem) => i.sequence), [4, 5])
    const next = await get(`${path}/transcript?start=5&limit=2`)
    t.same(next.body.items.map((i: TranscriptItem) => i.sequence), [6, 7])
    t.equal(next.body.next_start, 7)
    const last = await get(`${path}/transcript?start=7&limit=2`)
    t.same(last.body.items.map((i: TranscriptItem) => i.content), ['line 8'])
    t.equal(last.body.next_start, null)
    t.same((await get(`${path}/transcript?start=100`)).body.items, [])
    const tooBig = await call(base, 'GET', `${path}/transcript?limit=21`)
    t.match(tooBig, { status: 400, body: { code: 'LIMIT_TOO_LARGE' } })
  })

  t.test('bad input is a typed error and changes nothing', async (t) => {
    const before = (await get(`${path}/transcript`)).body.total_items
    const noContent = await call(base, 'POST', `${path}/input`, { kind: 'user' })
    t.equal(noContent.status, 400)
    const badKind = await call(base, 'POST', `${path}/input`, { kind: 'admin', content: 'x' })
    t.equal(badKind.status, 400)
    const huge = await call(base, 'POST', `${path}/input`, { content: 'x'.repeat(65_537) })
    t.equal(huge.status, 400)
    t.equal((await get(`${path}/transcript`)).body.total_items, before)

    const count = (await get('/runtimes/embedded/workers')).body.items.length
    const badIntent = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'ticket_role', ticket_id: 'T1', role: 'boss' } })
    t.equal(badIntent.status, 400)
    const badTicket = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'ticket_role', ticket_id: '../x', role: 'coder' } })
    t.equal(badTicket.status, 400)
    const socket = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'workspace_companion' }, acceptance: { kind: 'socket_ready' } })
    t.equal(socket.status, 409)
    t.match(socket.body, { state: 'rejected', diagnostics: [{ code: 'embedded_runtime_no_socket' }] })
    t.notOk(socket.body.worker)
    t.equal((await get('/runtimes/embedded/workers')).body.items.length, count, 'no worker was created')
  })

  t.test('stop: graceful → stopped, force → cancelled; stopped workers take no input', async (t) => {
    const stopped = await call(base, 'POST', `${path}/stop`) // no body: graceful
    t.match(stopped, { status: 200, body: { state: 'accepted', worker: { status: 'stopped', capabilities: { can_accept_input: false, can_stop: false } } } })
    const again = await call(base, 'POST', `${path}/stop`, { mode: 'force' })
    t.match(again.body, { state: 'accepted', worker: { status: 'stopped' }, diagnostics: [{ code: 'worker_already_stopped' }] })
    const input = await call(base, 'POST', `${path}/input`, { content: 'too late' })
    t.match(input, { status: 409, body: { state: 'rejected', diagnostics: [{ code: 'worker_not_running' }] } })
    t.notOk('transcript_sequence' in input.body)
    const other = `/runtimes/embedded/workers/${companion.body.worker.worker_id}`
    const forced = await call(base, 'POST', `${other}/stop`, { mode: 'force' })
    t.equal(forced.body.worker.status, 'cancelled')
    t.equal((await call(base, 'POST', `${other}/stop`, { mode: 'sideways' })).status, 400)
    t.equal((await get(other)).body.status, 'cancelled')
  })

  t.test('no projection leaks the workspace root or internal terms', async (t) => {
    seen.push((await get('/runtimes')).text, (await get('/runtimes/embedded')).text, (await get('/runtimes/embedded/hosts')).text)
    const all = seen.join('\n')
    t.same(leaks(all, [root, ...FORBIDDEN]), [])
  })
})

t.test('events socket streams new transcript items and status changes', async (t) => {
  const { app, base, wsBase } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  const spawned = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'workspace_orchestrator' } })
  const path = `/runtimes/embedded/workers/${spawned.body.worker.worker_id}`
  await call(base, 'POST', `${path}/input`, { content: 'before connect' })

  const live = wsClient(`${wsBase}${path}/events`)
  await live.opened
  t.match(await live.next(), { type: 'CONNECTED', runtime_id: 'embedded', worker_id: spawned.body.worker.worker_id, status: 'running', total_items: 1 })
  await call(base, 'POST', `${path}/input`, { content: 'first live' })
  await call(base, 'POST', `${path}/input`, { kind: 'system', content: 'second live' })
  const a = await live.next()
  const b = await live.next()
  t.match(a, { type: 'ITEM', item: { sequence: 2, role: 'user', content: 'first live' } })
  t.match(b, { type: 'ITEM', item: { sequence: 3, role: 'system', content: 'second live' } })

  // A late client replays retained items from ?start before the live ones.
  const late = wsClient(`${wsBase}${path}/events?start=0`)
  await late.opened
  t.match(await late.next(), { type: 'CONNECTED', total_items: 3 })
  const replayed = [await late.next(), await late.next(), await late.next()]
  t.same(replayed.map((m) => m.item.content), ['before connect', 'first live', 'second live'])

  live.ws.send('{"type":"INPUT"}')
  t.match(await live.next(), { type: 'ERROR', code: 'READ_ONLY_STREAM' })

  await call(base, 'POST', `${path}/stop`, { mode: 'force' })
  t.match(await live.next(), { type: 'STATUS', status: 'cancelled' })
  t.match(await late.next(), { type: 'STATUS', status: 'cancelled' })
  live.ws.close()
  late.ws.close()

  t.equal(await upgradeStatus(`${wsBase}/runtimes/embedded/workers/..%2Fx/events`), 400)
  t.equal(await upgradeStatus(`${wsBase}/runtimes/embedded/workers/nope/events`), 404)
  t.equal(await upgradeStatus(`${wsBase}/runtimes/nope/workers/nope/events`), 404)
  const plain = await call(base, 'GET', `${path}/events`)
  t.match(plain, { status: 426, body: { code: 'UPGRADE_REQUIRED' } })
})

/**
 * Feeds ~60 KB inputs to an embedded worker one after another (each waits for its answer) until told
 * to stop; `answers` holds the replies in order.
 */
function feed(base: string, path: string) {
  const answers: Array<{ status: number; body: any }> = []
  let stopped = false
  const done = (async () => {
    for (let i = 1; !stopped; i++) answers.push(await call(base, 'POST', `${path}/input`, { content: `${i}:${'x'.repeat(60_000)}` }))
  })()
  return { answers, stop: () => ((stopped = true), done) }
}

/** A server with one embedded worker and one events subscriber that has stopped reading (its socket backs up). */
async function stalledSubscriber(t: Tap.Test, maxEventsPauseMs: number) {
  const { app, base, wsBase } = await startServer({ workspaceRoot: t.testdir(), maxEventsPauseMs })
  t.teardown(() => app.close())
  const path = `/runtimes/embedded/workers/${(await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'workspace_companion' } })).body.worker.worker_id}`
  const slow = wsClient(`${wsBase}${path}/events`)
  await slow.opened
  await slow.next((m) => m.type === 'CONNECTED')
  slow.ws.pause()
  return { app, base, path, slow }
}

t.test('a slow events subscriber pauses an embedded worker: input waits (no drop) until the socket drains', async (t) => {
  const { app, base, path, slow } = await stalledSubscriber(t, 600_000)
  const feeder = feed(base, path)
  await until(() => Math.max(0, ...[...app.websocketServer.clients].map((c) => c.bufferedAmount)) > 256 * 1024, 60_000, 'the socket to back up')
  // the transcript stops growing: one input is held, every earlier one answered
  let held = -1
  for (let same = 0, polls = 0; same < 5 && polls < 150; polls++) {
    await new Promise((r) => setTimeout(r, 200))
    const now = (await call(base, 'GET', `${path}/transcript?limit=0`)).body.total_items
    same = now === held ? same + 1 : 0
    held = now
  }
  t.equal(feeder.answers.length, held, `every answered input is in the transcript (${held}), the next one waits`)
  t.same([...app.websocketServer.clients].map((c) => c.readyState), [WebSocket.OPEN], 'the subscriber was not dropped')

  slow.ws.resume()
  await feeder.stop()
  t.ok(feeder.answers.every((a) => a.status === 200 && a.body.state === 'accepted'), 'every input was accepted')
  t.equal(feeder.answers[held].body.transcript_sequence, held + 1, 'the held input was recorded once the socket drained')
  const last = feeder.answers.length
  await slow.next((m) => m.type === 'ITEM' && m.item.sequence === last, 60_000)
  const items = slow.messages.filter((m) => m.type === 'ITEM').map((m) => m.item.sequence)
  t.same(items, feeder.answers.map((_, k) => k + 1), 'the slow subscriber got every item, in order')
  slow.ws.close()
})

t.test('an embedded subscriber that never reads holds input at most maxEventsPauseMs, then it is dropped (1013)', async (t) => {
  const { app, base, path, slow } = await stalledSubscriber(t, 300)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })))
  const feeder = feed(base, path)
  await until(() => [...app.websocketServer.clients].every((c) => c.readyState !== WebSocket.OPEN), 60_000, 'the server to drop the subscriber')
  const before = feeder.answers.length
  await until(() => feeder.answers.length > before + 2, 60_000, 'input to flow again')
  await feeder.stop()
  t.ok(feeder.answers.every((a) => a.status === 200 && a.body.state === 'accepted'), `input went on after the drop (${feeder.answers.length} accepted)`)
  slow.ws.resume()
  t.match(await closed, { code: 1013, reason: 'client too slow: held the worker paused for 300 ms' })
})
