import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import processesPlugin from '../plugins/processes.js'
import processesRoutes from '../routes/processes.js'
const app = Fastify()
await app.register(websocket)
await app.register(processesPlugin, { workspaceRoot: '/tmp/wsx', killGraceMs: 500, maxPendingInputBytes: 256 * 1024 })
await app.register(processesRoutes)
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as any).port
const p = await app.processes.spawn({ type: 'python', code: 'import time; time.sleep(60)' })
const ws = new WebSocket(`ws://127.0.0.1:${port}/processes/${p.pid}/ws`)
await new Promise((r) => ws.once('open', r))
const frame = Buffer.alloc(64 * 1024, 0x61)
for (let i = 0; i < 64; i++) ws.send(frame)
await new Promise((r) => setTimeout(r, 500))
console.log('backlog', app.processes.inputBacklog(p.pid))
let t0 = Date.now()
const timer = setInterval(() => console.log('closing…', Date.now() - t0, ws.readyState, app.processes.list().map((x) => x.status), (app.websocketServer as any).clients.size), 2000)
ws.close()
await app.close()
console.log('closed in', Date.now() - t0)
clearInterval(timer)
