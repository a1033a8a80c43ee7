/**
 * Code kernels benchmark (`npm run bench:kernels`, specs/kernels.md section 8). Prints one table; every
 * baseline is measured in the same run (bench/kernels_baseline.py: Python jupyter_client talking to
 * ipykernel directly over ZeroMQ).
 *
 * B1 execute round trip of `x+=1` (reply + idle), p50/p95/p99 after warm-ups: through our WebSocket with
 *    @jupyterlab/services (v1 subprotocol), and through REST POST /execute (client on its own thread).
 * B2 create → first kernel_info_reply: POST /api/kernels cold (pool: false) and from the prespawn pool,
 *    vs KernelManager.start_kernel() + wait_for_ready().
 * B4 interrupt → error reply during `time.sleep(30)` (python3; javascript/pyodide when available):
 *    POST …/interrupt vs KernelManager.interrupt_kernel().
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import WebSocket from 'ws'
import { KernelManager, ServerConnection } from '@jupyterlab/services'
import { buildApp } from '../app.js'
import { percentile, printTable } from './stats.js'

const N = Number(process.env.BENCH_EXECUTIONS ?? 300)
const WARMUPS = 20
const STARTS = Number(process.env.BENCH_STARTS ?? 5)
const INTERRUPTS = Number(process.env.BENCH_INTERRUPTS ?? 5)
/** Code that runs until interrupted, per kernelspec (B4). */
const SPIN: Record<string, string> = { python3: 'import time; time.sleep(30)', javascript: 'while (true) {}', pyodide: 'while True: pass' }

const dist = (v: number[]) => `${percentile(v, 50).toFixed(2)} / ${percentile(v, 95).toFixed(2)} / ${percentile(v, 99).toFixed(2)}`
const p50 = (v: number[]) => `${percentile(v, 50).toFixed(1)}`

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'wk-bench-kernels-'))
  const app = await buildApp({ logger: false, processes: { workspaceRoot: root }, kernels: { poolSize: 1, maxKernels: 16, maxKernelsPerNamespace: 16 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const post = (path: string, body: unknown = {}) => fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const waitPool = async () => {
    while (app.kernels.poolStatus().python3?.ready !== 1) await new Promise((r) => setTimeout(r, 50))
  }
  const rows: (string | number)[][] = []
  try {
    console.error('baseline: jupyter_client …')
    const py = JSON.parse(execFileSync(app.kernels.python, [join(import.meta.dirname, 'kernels_baseline.py'), String(N), String(WARMUPS), String(STARTS), String(INTERRUPTS)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }))

    console.error('B1: execute round trips …')
    const serverSettings = ServerConnection.makeSettings({ baseUrl: `${base}/`, wsUrl: `${base.replace('http', 'ws')}/`, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, fetch: globalThis.fetch })
    const manager = new KernelManager({ serverSettings })
    await manager.ready
    const kernel = await manager.startNew({ name: 'python3' })
    // the client on its own thread, as jupyter_client is its own process in the baseline
    const { ws, rest } = await new Promise<{ ws: number[]; rest: number[] }>((resolve, reject) => {
      const worker = new Worker(new URL('./kernels-client.mjs', import.meta.url), { workerData: { base, kernelId: kernel.id, n: N, warmups: WARMUPS } })
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    rows.push(['B1 execute x+=1, WS (@jupyterlab/services, v1, own thread), ms p50/p95/p99', dist(py.execute), dist(ws), `${(percentile(ws, 50) - percentile(py.execute, 50)).toFixed(2)} ms`])
    rows.push(['B1 execute x+=1, REST POST /execute, ms p50/p95/p99', dist(py.execute), dist(rest), `${(percentile(rest, 50) - percentile(py.execute, 50)).toFixed(2)} ms`])

    console.error('B4: interrupts …')
    for (const name of ['python3', 'javascript', 'pyodide']) {
      if (!app.kernels.available().some((s) => s.name === name)) {
        rows.push([`B4 interrupt → error reply, ${name}, ms p50`, name === 'python3' ? p50(py.interrupt) : '-', `unavailable: ${app.kernels.specs.get(name)?.reason}`, '-'])
        continue
      }
      const target = name === 'python3' ? kernel : await manager.startNew({ name })
      const times: number[] = []
      for (let i = 0; i < INTERRUPTS; i++) {
        const future = target.requestExecute({ code: SPIN[name] })
        await new Promise<void>((resolve) => (future.onIOPub = (m) => void (m.header.msg_type === 'execute_input' && resolve())))
        await new Promise((r) => setTimeout(r, 50))
        const t0 = performance.now()
        await target.interrupt()
        await future.done.catch(() => {})
        times.push(performance.now() - t0)
      }
      rows.push([`B4 interrupt → error reply, ${name}, ms p50`, name === 'python3' ? p50(py.interrupt) : '-', p50(times), '-'])
      if (target !== kernel) await target.shutdown()
    }
    await kernel.shutdown()
    manager.dispose()

    console.error('B2: starts …')
    const cold: number[] = []
    const pooled: number[] = []
    for (let i = 0; i < STARTS; i++) {
      const ids: string[] = []
      cold.push(await timed(async () => ids.push((await (await post('/api/kernels', { pool: false })).json()).id)))
      await waitPool()
      pooled.push(await timed(async () => ids.push((await (await post('/api/kernels', {})).json()).id)))
      await Promise.all(ids.map((id) => fetch(`${base}/api/kernels/${id}`, { method: 'DELETE' })))
      await waitPool()
    }
    rows.push(['B2 create → first kernel_info_reply, cold, ms p50', p50(py.start), p50(cold), `${(percentile(cold, 50) - percentile(py.start, 50)).toFixed(0)} ms`])
    rows.push(['B2 create → first kernel_info_reply, from the pool, ms p50', p50(py.start), p50(pooled), '-'])
  } finally {
    await app.close()
    rmSync(root, { recursive: true, force: true })
  }
  printTable(`Code kernels (N=${N} executions after ${WARMUPS} warm-ups, ${STARTS} starts, ${INTERRUPTS} interrupts; shared machine: noisy)`, ['measure', 'jupyter_client direct', 'workspace-kernel', 'overhead (p50)'], rows)
}

await main()
