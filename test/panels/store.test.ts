import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'libsql'
import WebSocket from 'ws'
import { buildApp } from '../../app.js'
import { PanelClient } from '../../examples/client.js'
import type { PanelDefinition } from '../../schemas/panels.js'
import { api, startKernel } from './helpers.js'

const dataDir = () => mkdtempSync(join(tmpdir(), 'wk-store-'))
const panel = (id: string): PanelDefinition => ({
  id,
  kind: 'counter',
  title: 'Counter',
  initialState: { count: 0 },
  tools: [
    { name: 'bump', handler: '$state.count = $state.count + 1; return $state.count', capabilities: ['state:read:count', 'state:write:count'] },
    { name: 'drop', handler: 'delete $state[$args.key]; return true' },
  ],
  lifecycle: { mount: '$state.mounts = ($state.mounts ?? 0) + 1' },
})

/** Messages of a raw socket (CONNECTED first), collected until closed. */
async function openRaw(url: string): Promise<{ ws: WebSocket; messages: any[]; until: (n: number) => Promise<void> }> {
  const ws = new WebSocket(url)
  const messages: any[] = []
  const waiters: Array<() => void> = []
  ws.on('message', (d) => {
    messages.push(JSON.parse(String(d)))
    for (const w of waiters.splice(0)) w()
  })
  await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)))
  const until = async (n: number) => {
    while (messages.length < n) await new Promise<void>((r) => waiters.push(r))
  }
  return { ws, messages, until }
}

t.test('sqlite: panels come back after a restart with id, namespace, state, version; mount is not run again; DELETE removes', async (t) => {
  const dir = dataDir()
  const first = await startKernel(t, { dataDir: dir })
  await api(first.base, 'POST', '/panels', panel('kept'))
  await api(first.base, 'POST', '/panels', panel('gone'))
  for (let i = 0; i < 3; i++) await api(first.base, 'POST', '/panels/kept/trigger/bump', { args: {} })
  await api(first.base, 'POST', '/panels/kept/trigger/drop', { args: { key: 'mounts' } })
  t.equal((await api(first.base, 'DELETE', '/panels/gone')).status, 200)
  const before = (await api(first.base, 'GET', '/panels/kept')).body
  await first.app.close()

  const second = await startKernel(t, { dataDir: dir })
  const after = (await api(second.base, 'GET', '/panels/kept')).body
  t.same({ ...after, status: 'ready' }, { ...before, status: 'ready' }, 'the same description: tools, capabilities, version, createdAt')
  t.same((await api(second.base, 'GET', '/panels/kept/state')).body, { panelId: 'kept', state: { count: 3 }, version: 5 }, 'mount did not run again')
  t.equal((await api(second.base, 'GET', '/panels/gone')).status, 404, 'a deleted panel stays deleted')
  t.match((await api(second.base, 'POST', '/panels/kept/trigger/bump', { args: {} })).body, { returnValue: 4, version: 6 }, 'the next trigger continues at the next version')
  t.same((await api(second.base, 'GET', '/panels/kept/patches?since=4')).body, {
    panelId: 'kept', since: 4, version: 6,
    patches: [{ version: 5, mutations: [{ key: 'mounts', operation: 'delete' }] }, { version: 6, mutations: [{ key: 'count', value: 4, operation: 'set' }] }],
  }, 'the patch log survives too')
})

t.test('?since= replays the missed PATCHes; falls back to the full state when the log is too short, since is ahead or not a version', async (t) => {
  const { base } = await startKernel(t, { store: { patchLogMaxEntries: 5 } })
  const { body } = await api(base, 'POST', '/panels', { ...panel('r'), lifecycle: undefined })
  for (let i = 0; i < 8; i++) await api(base, 'POST', '/panels/r/trigger/bump', { args: {} })

  const { client, connected } = await PanelClient.connect(`${body.wsUrl}?since=5`)
  t.teardown(() => client.close())
  t.same(connected, { type: 'CONNECTED', panelId: 'r', version: 5, resumed: true, tools: ['bump', 'drop'] }, 'no state')
  await api(base, 'POST', '/panels/r/trigger/bump', { args: {} })
  await client.ping()
  t.same(client.messages.filter((m) => m.type === 'PATCH').map((m: any) => [m.version, m.mutations[0].value]), [[6, 6], [7, 7], [8, 8], [9, 9]], 'missed, then live')

  const same = await PanelClient.connect(`${body.wsUrl}?since=9`)
  t.same(same.connected, { type: 'CONNECTED', panelId: 'r', version: 9, resumed: true, tools: ['bump', 'drop'] }, 'nothing missed')
  await same.client.close()
  for (const since of ['3', '10', '-1', 'abc', '1.5', '']) {
    const fb = await PanelClient.connect(`${body.wsUrl}?since=${since}`)
    t.same(fb.connected, { type: 'CONNECTED', panelId: 'r', state: { count: 9 }, version: 9, resumed: false, tools: ['bump', 'drop'] }, `since=${since}: full state`)
    await fb.client.close()
  }

  t.same((await api(base, 'GET', '/panels/r/patches?since=7&limit=1')).body, {
    panelId: 'r', since: 7, version: 9, patches: [{ version: 8, mutations: [{ key: 'count', value: 8, operation: 'set' }] }],
  })
  t.same((await api(base, 'GET', '/panels/r/patches?since=9')).body.patches, [])
  t.match(await api(base, 'GET', '/panels/r/patches?since=3'), { status: 410, body: { code: 'PATCHES_EXPIRED' } }, 'log starts at 5')
  t.match(await api(base, 'GET', '/panels/r/patches?since=10'), { status: 400, body: { code: 'INVALID_SINCE' } })
  for (const q of ['since=-1', 'since=abc', 'since=1.5', '', 'since=1&limit=0']) {
    t.match(await api(base, 'GET', `/panels/r/patches?${q}`), { status: 400, body: { code: 'INVALID_QUERY' } }, `?${q}`)
  }
  t.equal((await api(base, 'GET', '/panels/nope/patches?since=0')).status, 404)
  const doc = (await api(base, 'GET', '/openapi.json')).body
  t.ok(doc.paths['/panels/{id}/patches'].get.parameters.some((p: any) => p.name === 'since' && p.required), '/patches is in /openapi.json')
})

/** A client frame (masked with the all-zero key, which leaves the payload as is): a text frame under 126 bytes. */
const clientFrame = (msg: unknown) => {
  const payload = Buffer.from(JSON.stringify(msg))
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload])
}

/** The server's text frames after the 101 response in `raw` (unmasked, 7- or 16-bit lengths), parsed. */
function serverMessages(raw: Buffer): any[] {
  const out: any[] = []
  let i = raw.indexOf('\r\n\r\n') + 4
  while (i + 2 <= raw.length) {
    let len = raw[i + 1] & 0x7f
    let head = 2
    if (len === 126) [len, head] = [raw.readUInt16BE(i + 2), 4]
    if (i + head + len > raw.length) break
    out.push(JSON.parse(raw.subarray(i + head, i + head + len).toString()))
    i += head + len
  }
  return out
}

t.test('frames sent with the upgrade request wait for CONNECTED and the replay, then run in order', async (t) => {
  const { base } = await startKernel(t, { dataDir: dataDir() })
  await api(base, 'POST', '/panels', { ...panel('early'), lifecycle: undefined })
  for (let i = 0; i < 3; i++) await api(base, 'POST', '/panels/early/trigger/bump', { args: {} })
  const { port } = new URL(base)
  const sock = connect(Number(port), '127.0.0.1')
  t.teardown(() => sock.destroy())
  let raw = Buffer.alloc(0)
  sock.on('data', (d) => (raw = Buffer.concat([raw, d])))
  await once(sock, 'connect')
  // one TCP write: the upgrade, then three frames the server reads before the socket is attached
  sock.write(Buffer.concat([
    Buffer.from(`GET /panels/early/ws?since=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    clientFrame({ type: 'PING', requestId: 'a' }),
    clientFrame({ type: 'TRIGGER', tool: 'bump', requestId: 'b' }),
    clientFrame({ type: 'PING', requestId: 'c' }),
  ]))
  const end = Date.now() + 10_000
  while (!serverMessages(raw).some((m) => m.type === 'RESULT') && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
  t.match(raw.toString('latin1'), /^HTTP\/1\.1 101 /)
  const got = serverMessages(raw)
  t.same(got.map((m) => [m.type, m.version ?? m.requestId]), [
    ['CONNECTED', 1], ['PATCH', 2], ['PATCH', 3], ['PONG', 'a'], ['PONG', 'c'], ['PATCH', 4], ['RESULT', 'b'],
  ], 'CONNECTED and the missed PATCHes first, then the frames in order (a PING answers before a run ends)')
  t.match(got.at(-1), { result: { status: 'success', returnValue: 4, version: 4 } })
})

t.test('reconnecting while triggers commit: every subscriber sees contiguous versions, no gap, no duplicate', async (t) => {
  const { base } = await startKernel(t, { dataDir: dataDir() })
  const { body } = await api(base, 'POST', '/panels', { ...panel('live'), lifecycle: undefined })
  const total = 300
  const burst = Array.from({ length: total }, () => api(base, 'POST', '/panels/live/trigger/bump', { args: {} }))
  const sockets = []
  // connect mid-burst, each resuming from whatever version it last knew
  for (let i = 0; i < 6; i++) {
    const v = (await api(base, 'GET', '/panels/live/state')).body.version
    sockets.push(await openRaw(`${body.wsUrl}?since=${Math.max(0, v - 3)}`))
  }
  await Promise.all(burst)
  let resumed = 0
  for (const raw of sockets) {
    raw.ws.send(JSON.stringify({ type: 'PING', requestId: 'end' }))
    await raw.until(1)
    while (!raw.messages.some((m) => m.type === 'PONG')) await raw.until(raw.messages.length + 1)
    raw.ws.close()
    const [hello, ...rest] = raw.messages
    const versions = rest.filter((m) => m.type === 'PATCH').map((m) => m.version)
    const start = hello.version
    if (hello.resumed) resumed++
    t.same(versions, Array.from({ length: total - start }, (_, i) => start + i + 1), `from ${start}: contiguous to ${total}`)
    t.ok(rest.filter((m) => m.type === 'PATCH').every((m) => m.mutations[0].value === m.version))
  }
  t.equal(resumed, sockets.length, 'every socket resumed from its since')
})

t.test('a failing write during a commit: 503 STORE_ERROR, state not advanced, no PATCH; later triggers work', async (t) => {
  const dir = dataDir()
  const { base } = await startKernel(t, { dataDir: dir, store: { busyTimeoutMs: 20 } })
  const { body } = await api(base, 'POST', '/panels', { ...panel('w'), lifecycle: undefined })
  const { client } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  t.equal((await api(base, 'POST', '/panels/w/trigger/bump', { args: {} })).body.version, 1)

  // another connection takes the write lock: our commit's transaction cannot be written
  const other = new Database(join(dir, 'kernel.db'))
  other.exec('BEGIN IMMEDIATE')
  const failed = await api(base, 'POST', '/panels/w/trigger/bump', { args: {} })
  t.match(failed, { status: 503, body: { code: 'STORE_ERROR', message: /locked|busy/i } })
  t.match(await client.trigger('bump', {}), { type: 'ERROR', code: 'STORE_ERROR' })
  t.same((await api(base, 'GET', '/panels/w/state')).body, { panelId: 'w', state: { count: 1 }, version: 1 }, 'memory state did not advance')
  other.exec('ROLLBACK')
  other.close()

  t.match((await api(base, 'POST', '/panels/w/trigger/bump', { args: {} })).body, { returnValue: 2, version: 2 })
  await client.ping()
  t.same(client.messages.filter((m) => m.type === 'PATCH').map((m: any) => m.version), [1, 2], 'no PATCH for the failed commits')
})

for (const backend of ['memory', 'sqlite'] as const) {
  t.test(`${backend}: triggers arriving at once on one panel commit one by one, in order, each durable before its reply`, async (t) => {
    const { base, app } = await startKernel(t, backend === 'sqlite' ? { dataDir: dataDir() } : {})
    t.equal(app.store.backend.grouping, backend === 'sqlite' ? 'turn' : 'job')
    await api(base, 'POST', '/panels', { ...panel('hot'), lifecycle: undefined })
    const replies = await Promise.all(Array.from({ length: 40 }, () => api(base, 'POST', '/panels/hot/trigger/bump', { args: {} })))
    const versions = replies.map((r) => r.body.version).sort((a, b) => a - b)
    t.same(versions, Array.from({ length: 40 }, (_, i) => i + 1), 'one version per trigger, no gap, no duplicate')
    t.ok(replies.every((r) => r.body.returnValue === r.body.version), 'each run read every earlier commit')
    const log = await api(base, 'GET', '/panels/hot/patches?since=0&limit=100')
    t.same(log.body.patches.map((b: any) => b.mutations[0].value), versions, 'the log holds every commit in order')
    t.same((await api(base, 'GET', '/panels/hot/state')).body, { panelId: 'hot', state: { count: 40 }, version: 40 })
  })
}

t.test('GET state and CONNECTED carry the stored JSON of every value as is', async (t) => {
  const { base } = await startKernel(t, { dataDir: dataDir() })
  const state = { 'ключ "q"\n': { deep: [1, 'two', null, { x: '\u2028 é 😀' }] }, n: -0.5, s: '</script>' }
  const { body } = await api(base, 'POST', '/panels', { id: 'text', kind: 'k', initialState: state, tools: [{ name: 'noop', handler: 'return 1' }] })
  const res = await fetch(`${base}/panels/text/state`)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(JSON.parse(await res.text()), { panelId: 'text', state, version: 0 })
  const { client, connected } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  t.match(connected, { type: 'CONNECTED', panelId: 'text', version: 0, resumed: false, tools: ['noop'] })
  t.same(connected.state, state)
})

t.test('buildApp keeps panels in memory unless a dataDir or backend is given', async (t) => {
  const app = await buildApp({ logLevel: 'silent' })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.store.backend.kind, 'memory')
  const dir = dataDir()
  const durable = await buildApp({ logLevel: 'silent', dataDir: dir })
  t.teardown(() => durable.close())
  await durable.ready()
  t.equal(durable.store.backend.kind, 'sqlite')
  const db = new Database(join(dir, 'kernel.db'), { readonly: true })
  t.match(db.prepare('PRAGMA journal_mode').get(), { journal_mode: 'wal' })
  db.close()
})

t.test('sockets that go away during CONNECTED or a replay leave no session behind', async (t) => {
  const { base, app } = await startKernel(t, { dataDir: dataDir() })
  const { body } = await api(base, 'POST', '/panels', { ...panel('gone'), lifecycle: undefined })
  for (let i = 0; i < 5; i++) await api(base, 'POST', '/panels/gone/trigger/bump', { args: {} })
  const sockets = Array.from({ length: 20 }, (_, i) => new WebSocket(`${body.wsUrl}${i % 2 ? '?since=2' : ''}`))
  await Promise.all(sockets.map((ws) => new Promise((r) => ws.once('open', r))))
  for (const ws of sockets) ws.terminate()
  const end = Date.now() + 10_000
  while (app.panels.sessions.count() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  t.equal(app.panels.sessions.count(), 0, 'every session removed')
  const { client, connected } = await PanelClient.connect(`${body.wsUrl}?since=2`)
  t.match(connected, { resumed: true, version: 2 })
  await client.close()
})
