/**
 * The kernel channels' frame limit is the kernels plugin's own (`kernels.wsMaxPayloadBytes`, Jupyter
 * Server's 10 MiB by default), not the panels' server-wide `ws.maxPayloadBytes`: a frame between the two
 * reaches the kernel, a bigger one closes that socket with 1009, and other kernels' sockets go on.
 */
import t from 'tap'
import WebSocket from 'ws'
import { channels, startServer, streamText } from './helpers.js'

const KiB = 1024

t.test('kernel channels: their own frame limit, 1009 above it, other kernels unaffected', async (t) => {
  const server = await startServer(t, { wsMaxPayloadBytes: 512 * KiB }, { ws: { maxPayloadBytes: 64 * KiB } })
  const [a, b] = await Promise.all([0, 1].map(async () => (await server.request('POST', '/api/kernels', { body: { name: 'python3' } })).body.id as string))
  const onA = await channels(t, server, a)
  const onB = await channels(t, server, b, { v1: true })

  // ~200 KiB of code: above the server-wide 64 KiB, within the kernels' 512 KiB
  const big = await onA.execute(`s = "${'a'.repeat(200 * KiB)}"\nprint(len(s))`)
  t.equal(big.reply.content.status, 'ok')
  t.equal(streamText(big.iopub), `${200 * KiB}\n`, 'the frame above ws.maxPayloadBytes reached the kernel')

  onA.send('shell', 'execute_request', { code: `print(len("${'b'.repeat(600 * KiB)}"))`, silent: false })
  t.equal(await onA.closed, 1009, 'a frame above kernels.wsMaxPayloadBytes closes its socket with 1009')

  const still = await onB.execute('print("b is fine")')
  t.equal(streamText(still.iopub), 'b is fine\n', "another kernel's socket is unaffected")
  const again = await channels(t, server, a)
  t.equal(streamText((await again.execute('print(len(s))')).iopub), `${200 * KiB}\n`, 'the kernel itself is unharmed: a new socket finds its state')

  t.test('the panels keep the server-wide limit', async (t) => {
    const panel = await server.request('POST', '/panels', { body: { id: 'p', kind: 'k', initialState: {}, tools: [{ name: 'noop', handler: 'return 1' }] } })
    t.equal(panel.status, 201)
    const ws = new WebSocket(`${panel.body.wsUrl}${panel.body.wsUrl.includes('?') ? '&' : '?'}token=${server.token()}`)
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
    ws.once('open', () => ws.send(JSON.stringify({ type: 'PING', pad: 'c'.repeat(100 * KiB) })))
    t.equal(await closed, 1009, 'a 100 KiB panel frame is above ws.maxPayloadBytes (64 KiB)')
  })
})
