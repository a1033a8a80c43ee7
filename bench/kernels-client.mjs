/**
 * The B1 client of bench/kernels.ts, on its own thread (as jupyter_client is its own process in the
 * baseline): @jupyterlab/services over the v1 WebSocket and REST POST /execute against one kernel,
 * interleaved; posts `{ ws, rest }` round-trip times in ms. Plain JavaScript: a worker thread does not
 * inherit tsx's loader.
 */
import { parentPort, workerData } from 'node:worker_threads'
import WebSocket from 'ws'
import { KernelManager, ServerConnection } from '@jupyterlab/services'

const { base, kernelId, n, warmups } = workerData
const serverSettings = ServerConnection.makeSettings({ baseUrl: `${base}/`, wsUrl: `${base.replace('http', 'ws')}/`, WebSocket, fetch: globalThis.fetch })
const manager = new KernelManager({ serverSettings })
await manager.ready
const kernel = manager.connectTo({ model: { id: kernelId, name: 'python3' } })
await kernel.requestExecute({ code: 'x = 0' }).done
const ws = []
const rest = []
for (let i = 0; i < n + warmups; i++) {
  let t0 = performance.now()
  await kernel.requestExecute({ code: 'x += 1' }).done
  const w = performance.now() - t0
  t0 = performance.now()
  await (await fetch(`${base}/api/kernels/${kernelId}/execute`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'x += 1' }) })).json()
  const r = performance.now() - t0
  if (i >= warmups) ws.push(w), rest.push(r)
}
kernel.dispose()
manager.dispose()
parentPort.postMessage({ ws, rest })
