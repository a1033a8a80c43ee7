import t from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import WebSocket from 'ws'
import { buildApp } from '../../app.js'
import { startServer, until } from './helpers.js'

t.test('closing while a handler awaits a slow http call: call aborted, sockets closed 1001, close completes', async (t) => {
  const slow = await startServer(t, () => {}) // never answers
  const app = await buildApp({
    logLevel: 'silent',
    suspensionTimeoutMs: 60_000,
    http: { allowedDomains: ['127.0.0.1'], timeoutMs: 60_000 },
  })
  let closed = false
  t.teardown(() => (closed ? undefined : app.close()))
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  const created = await request(`${base}/panels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'slow',
      kind: 'fetcher',
      initialState: { loading: false },
      tools: [{ name: 'load', handler: '$state.loading = true; const r = await $ext.http.get($args.url); $state.loading = false; return r.status' }],
    }),
  })
  t.equal(created.statusCode, 201)
  const { wsUrl } = (await created.body.json()) as { wsUrl: string }
  const ws = new WebSocket(wsUrl)
  const messages: any[] = []
  ws.on('message', (d) => messages.push(JSON.parse(String(d))))
  await until(() => messages.some((m) => m.type === 'CONNECTED'))
  ws.send(JSON.stringify({ type: 'TRIGGER', tool: 'load', args: { url: `${slow.url}/slow` }, requestId: 'r1' }))
  await until(() => slow.seen.length === 1)
  t.ok(messages.some((m) => m.type === 'PATCH' && m.mutations[0].key === 'loading'), 'the loading PATCH came before the call')

  const callAborted = once(slow.open[0], 'close')
  const wsClosed = once(ws, 'close')
  await app.close()
  closed = true
  t.pass('close finished although the slow server never answered')
  const [code] = await wsClosed
  t.equal(code, 1001, 'the panel socket was closed with 1001')
  await callAborted
  t.pass('the outgoing http call was aborted')
})
