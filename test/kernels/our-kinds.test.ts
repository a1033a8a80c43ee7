/**
 * Our own kernel programs (javascript, typescript, pyodide) started by the server through the sandboxed
 * bridge: execute over REST, interrupt a spinning cell over the channels WebSocket, shut down.
 */
import t from 'tap'
import { channels, startServer } from './helpers.js'

const CASES = [
  { name: 'javascript', code: 'let a = 20; a * 2 + 2', spin: 'console.log("spinning"); while (true) {}', ename: 'Interrupted' },
  { name: 'typescript', code: 'const b: number = 21; b * 2', spin: 'console.log("spinning"); while (true) {}', ename: 'Interrupted' },
  { name: 'pyodide', code: 'c = 21\nc * 2', spin: 'print("spinning", flush=True)\nwhile True: pass', ename: 'KeyboardInterrupt' },
] as const

t.test('javascript, typescript, pyodide through the server', async (t) => {
  const server = await startServer(t)
  const specs = (await server.request('GET', '/api/kernelspecs?all=true')).body.kernelspecs
  for (const c of CASES) {
    t.test(c.name, { skip: specs[c.name]?.available ? false : `unavailable: ${specs[c.name]?.reason}` }, async (t) => {
      const started = await server.request('POST', '/api/kernels', { body: { name: c.name } })
      t.equal(started.status, 201)
      const id = started.body.id
      const run = await server.request('POST', `/api/kernels/${id}/execute`, { body: { code: c.code } })
      t.same(run.body.outputs.find((o: { output_type: string }) => o.output_type === 'execute_result')?.data, { 'text/plain': '42' })
      const ws = await channels(t, server, id)
      const spin = ws.send('shell', 'execute_request', { code: c.spin, silent: false })
      // interrupt once the cell runs (a SIGINT while the kernel still prepares it is not the cell's)
      await ws.waitFor((m) => m.parent_header.msg_id === spin && m.header.msg_type === 'stream')
      t.equal((await server.request('POST', `/api/kernels/${id}/interrupt`)).status, 204)
      const reply = await ws.waitFor((m) => m.channel === 'shell' && m.parent_header.msg_id === spin)
      t.equal(reply.content.ename, c.ename)
      t.equal((await server.request('DELETE', `/api/kernels/${id}`)).status, 204)
    })
  }
})
