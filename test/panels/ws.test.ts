import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import WebSocket from 'ws'
import { PanelClient } from '../../examples/client.js'
import { SECRET, api, counterPanel, signToken, startKernel } from './helpers.js'

const wsBase = (base: string) => base.replace(/^http/, 'ws')

t.test('CONNECTED, then TRIGGER → PATCH (version) → EVENT → RESULT, broadcast to every client', async (t) => {
  const { base } = await startKernel(t)
  const { body } = await api(base, 'POST', '/panels', counterPanel('c'))
  const { client: a, connected } = await PanelClient.connect(body.wsUrl)
  t.same(connected, { type: 'CONNECTED', panelId: 'c', state: { count: 0 }, version: 0, resumed: false, tools: ['inc', 'boom', 'setKey'] })
  const { client: b } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => Promise.all([a.close(), b.close()]))

  const result = await a.trigger('inc', { by: 4 }, 'req-1')
  t.match(result, { type: 'RESULT', requestId: 'req-1', result: { status: 'success', returnValue: 4, version: 1 } })
  t.same(a.messages.slice(1).map((m) => m.type), ['PATCH', 'EVENT', 'RESULT'], 'caller sees PATCH and EVENT before RESULT')
  t.same(a.messages[1], { type: 'PATCH', mutations: [{ key: 'count', value: 4, operation: 'set' }], version: 1 })
  t.same(a.messages[2], { type: 'EVENT', event: { name: 'changed', payload: { count: 4 } } })
  await b.ping()
  t.same(b.messages.slice(1).map((m) => m.type), ['PATCH', 'EVENT', 'PONG'], 'the other client gets the broadcast, not the RESULT')

  const http = await api(base, 'POST', '/panels/c/trigger/inc', { args: {} })
  t.equal(http.body.version, 2)
  await a.ping()
  t.match(a.messages.filter((m) => m.type === 'PATCH').at(-1), { version: 2, mutations: [{ key: 'count', value: 5 }] }, 'HTTP triggers broadcast too')

  const failed = await a.trigger('boom', {}, 'req-2')
  t.match(failed, {
    type: 'ERROR', requestId: 'req-2', code: 'EXECUTION_ERROR', message: /kaboom/, line: 2,
    details: { status: 'error', error: { code: 'EXECUTION_ERROR', line: 2 }, version: 2, segments: 1 },
  }, 'a failed run answers ERROR (seed 001) with the outcome as details')
})

t.test('frames of every length class arrive whole: 7-, 16- and 64-bit payload lengths, counted in bytes', async (t) => {
  const { base } = await startKernel(t)
  const { body } = await api(base, 'POST', '/panels', counterPanel('sizes'))
  const { client } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  const patch = (value: string, version: number) => ({ type: 'PATCH', mutations: [{ key: 'k', value, operation: 'set' }], version })
  const bytes = (m: unknown) => Buffer.byteLength(JSON.stringify(m))
  // payloads of exactly 125, 126, 65535 and 65536 bytes (the framing's boundaries), then one whose
  // byte length (80,000: 64-bit) differs from its string length (40,000: would fit 16 bits)
  const targets = [125, 126, 65535, 65536]
  const values = targets.map((n, i) => 'x'.repeat(n - bytes(patch('', i + 1))))
  values.push('é'.repeat(40_000))
  for (const [i, value] of values.entries()) {
    const result = await client.trigger('setKey', { key: 'k', value }, `size-${i}`)
    t.match(result, { type: 'RESULT', requestId: `size-${i}`, result: { status: 'success', version: i + 1 } })
    const got = client.messages.filter((m) => m.type === 'PATCH').at(-1)
    t.same(got, patch(value, i + 1), `PATCH ${i + 1}: ${bytes(got)} bytes`)
  }
  t.same(values.slice(0, 4).map((v, i) => bytes(patch(v, i + 1))), targets)
})

t.test('SUBSCRIBE / UNSUBSCRIBE topics: state, events, state:<key>', async (t) => {
  const { base } = await startKernel(t)
  const { body } = await api(base, 'POST', '/panels', counterPanel('s'))
  const { client: trig } = await PanelClient.connect(body.wsUrl)
  const { client: keyOnly } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => Promise.all([trig.close(), keyOnly.close()]))
  keyOnly.send({ type: 'UNSUBSCRIBE', topics: ['state', 'events'] })
  keyOnly.send({ type: 'SUBSCRIBE', topics: ['state:b'] })
  await keyOnly.ping()
  keyOnly.messages.length = 0

  await trig.trigger('setKey', { key: 'a', value: 1 })
  await trig.trigger('inc', {})
  await trig.trigger('setKey', { key: 'b', value: 2 })
  await keyOnly.ping()
  t.same(keyOnly.messages.map((m) => m.type), ['PATCH', 'PONG'], 'only the PATCH touching b, no EVENT')
  t.same(keyOnly.messages[0], { type: 'PATCH', mutations: [{ key: 'b', value: 2, operation: 'set' }], version: 3 })

  keyOnly.send({ type: 'UNSUBSCRIBE', topics: ['state:b'] })
  keyOnly.send({ type: 'SUBSCRIBE', topics: ['events'] })
  await keyOnly.ping()
  keyOnly.messages.length = 0
  await trig.trigger('setKey', { key: 'b', value: 3 })
  await trig.trigger('inc', {})
  await keyOnly.ping()
  t.same(keyOnly.messages.map((m) => m.type), ['EVENT', 'PONG'], 'events only')
})

t.test('bad messages: typed ERRORs, nothing changes, socket stays open', async (t) => {
  const { base } = await startKernel(t)
  const { body } = await api(base, 'POST', '/panels', counterPanel('e'))
  const { client } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => client.close())
  const cases: Array<[string, unknown, string, string?]> = [
    ['not JSON', '{"type": "TRIG', 'PARSE_ERROR'],
    ['no type', { tool: 'inc' }, 'UNKNOWN_MESSAGE'],
    ['unknown type', { type: 'EXPLODE', requestId: 'x1' }, 'UNKNOWN_MESSAGE', 'x1'],
    ['JSON but not an object', 42, 'UNKNOWN_MESSAGE'],
    ['TRIGGER without tool', { type: 'TRIGGER', requestId: 'x2' }, 'INVALID_MESSAGE', 'x2'],
    ['SUBSCRIBE bad topic', { type: 'SUBSCRIBE', topics: ['everything'] }, 'INVALID_MESSAGE'],
    ['SUBSCRIBE no topics', { type: 'SUBSCRIBE', topics: [] }, 'INVALID_MESSAGE'],
    ['args fail schema', { type: 'TRIGGER', tool: 'inc', args: { by: 'x' }, requestId: 'x3' }, 'INVALID_ARGS', 'x3'],
    ['unknown tool', { type: 'TRIGGER', tool: 'nope', requestId: 'x4' }, 'TOOL_NOT_FOUND', 'x4'],
  ]
  for (const [name, msg, code, requestId] of cases) {
    const err = client.next((m) => m.type === 'ERROR')
    client.send(typeof msg === 'string' ? msg : JSON.stringify(msg))
    const got = (await err) as { code: string; message: string; requestId?: string }
    t.equal(got.code, code, name)
    t.type(got.message, 'string')
    t.equal(got.requestId, requestId, `${name}: requestId echoed`)
  }
  t.match(await client.ping(), { type: 'PONG' }, 'still open')
  t.equal((await api(base, 'GET', '/panels/e/state')).body.version, 0)
})

t.test('upgrade refused: unknown panel 404; oversized frame closes 1009; delete closes 4004', async (t) => {
  const { base } = await startKernel(t, { ws: { maxPayloadBytes: 1024 } })
  await t.rejects(PanelClient.connect(`${wsBase(base)}/panels/missing/ws`), /HTTP 404/)
  const { body } = await api(base, 'POST', '/panels', counterPanel('big'))
  const { client: big } = await PanelClient.connect(body.wsUrl)
  const closed = new Promise<number>((r) => big.ws.once('close', (code) => r(code)))
  big.send({ type: 'PING', pad: 'x'.repeat(4096) })
  t.equal(await closed, 1009)

  const { client } = await PanelClient.connect(body.wsUrl)
  const gone = new Promise<[number, string]>((r) => client.ws.once('close', (c, reason) => r([c, reason.toString()])))
  await api(base, 'DELETE', '/panels/big')
  t.same(await gone, [4004, 'PANEL_DELETED'])
})

/** A raw TCP WebSocket client that completes the handshake and then never reads again. */
async function stalledClient(wsUrl: string): Promise<Socket> {
  const url = new URL(wsUrl)
  const sock = connect(Number(url.port), url.hostname)
  sock.write(
    `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  await new Promise<void>((resolve, reject) => {
    sock.once('data', (d) => (d.toString().startsWith('HTTP/1.1 101') ? resolve() : reject(new Error(d.toString()))))
    sock.once('error', reject)
  })
  sock.pause()
  return sock
}

t.test('a client that stops reading is dropped; others keep receiving', async (t) => {
  const { base } = await startKernel(t, { ws: { maxBufferedBytes: 256 * 1024 } })
  const { body } = await api(base, 'POST', '/panels', counterPanel('slow'))
  const stalled = await stalledClient(body.wsUrl)
  t.teardown(() => stalled.destroy())
  const { client: fast } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => fast.close())
  t.equal((await api(base, 'GET', '/panels/slow')).body.clients, 2)
  const blob = 'y'.repeat(100_000)
  let clients = 2
  let sent = 0
  while (clients === 2 && sent < 500) {
    await api(base, 'POST', '/panels/slow/trigger/setKey', { args: { key: 'blob', value: `${sent++}${blob}` } })
    clients = (await api(base, 'GET', '/panels/slow')).body.clients
  }
  t.equal(clients, 1, `the stalled client was dropped (after ${sent} PATCHes of 100 kB)`)
  t.ok(sent > 2, 'not before its buffer filled up')
  await fast.ping()
  t.equal(fast.messages.filter((m) => m.type === 'PATCH').length, sent, 'the reading client got every PATCH')
  t.match(await fast.trigger('inc', {}), { type: 'RESULT', result: { status: 'success' } }, 'and still works')
})

t.test('server pings; a socket that never answers is terminated', async (t) => {
  const { base } = await startKernel(t, { ws: { pingIntervalMs: 100 } })
  const { body } = await api(base, 'POST', '/panels', counterPanel('hb'))
  const { client: dead } = await PanelClient.connect(body.wsUrl, { autoPong: false })
  const { client: live } = await PanelClient.connect(body.wsUrl)
  t.teardown(() => live.close())
  let pings = 0
  live.ws.on('ping', () => pings++)
  const code = await new Promise<number>((r) => dead.ws.once('close', (c) => r(c)))
  t.equal(code, 1006, 'terminated without a close frame')
  t.ok(pings >= 1, 'the live socket was pinged')
  t.equal(live.ws.readyState, WebSocket.OPEN, 'the answering socket stays')
})

t.test('auth: upgrade needs ?token=; namespace scopes the socket; prefix lands in wsUrl', async (t) => {
  const { base } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET, prefix: '/kernel' })
  const a = signToken({ namespace: 'a' })
  const { body } = await api(base, 'POST', '/panels', counterPanel('p'), { authorization: `Bearer ${a}` })
  t.match(body.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/kernel\/panels\/p\/ws$/)
  await t.rejects(PanelClient.connect(body.wsUrl), /HTTP 401/)
  await t.rejects(PanelClient.connect(`${body.wsUrl}?token=garbage`), /HTTP 401/)
  await t.rejects(PanelClient.connect(`${body.wsUrl}?token=${signToken({ namespace: 'b' })}`), /HTTP 404/)
  const { client, connected } = await PanelClient.connect(`${body.wsUrl}?token=${a}`)
  t.equal(connected.panelId, 'p')
  t.match(await client.trigger('inc', {}), { type: 'RESULT', result: { returnValue: 1 } })
  await client.close()
})
