/**
 * Process bridge benchmark (`npm run bench:processes`). Prints one table; every baseline is measured
 * in the same run on the same machine.
 *
 * 1. Throughput: `yes | head -c 200M` streamed through the bridge to one attached WebSocket client
 *    (a `ws` client on its own thread; binary OUTPUT frames and JSON ones) vs. reading the same command's stdout pipe directly in Node.
 *    Both start the pipeline only after a newline on stdin, so timing covers exactly the stream.
 * 2. Spawn-to-first-output p50/p90 for `node -e` and `python3 -c`: direct child_process.spawn (same
 *    options as the bridge: own session, filtered env) vs.
 *    the in-process API (`fastify.processes.spawn` → first output event) vs. HTTP + WebSocket
 *    (POST /processes → first OUTPUT message on a freshly attached socket).
 *    Both bridge paths include the bubblewrap sandbox (prlimit → bwrap → program); direct has none.
 * 3. A process worker printing `y` flat out (issue 10 item 4): `GET /runtimes/process` p99 and a
 *    force stop while it floods vs. the same with an idle worker, plus items appended and bytes kept.
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import processesPlugin from '../plugins/processes.js'
import { buildEnv } from '../plugins/processes/workspace.js'
import processesRoutes from '../routes/processes.js'
import workersPlugin from '../plugins/workers.js'
import workersRoutes from '../routes/workers.js'
import { percentile, printTable } from './stats.js'

const require = createRequire(import.meta.url)
const BYTES = 200 * 1024 * 1024
const RUNS = Number(process.env.BENCH_RUNS ?? 5)
const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 20)
// Waits for one line on stdin, then becomes the pipeline (exec), so the bridge reads sh's own pipe.
// Python ignores SIGPIPE and exec keeps that, so restore it or `yes` complains when head exits.
const STREAM_CODE = `import os, signal, sys\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)\nsys.stdin.readline()\nos.execvp('sh', ['sh', '-c', 'yes | head -c ${BYTES}'])`

interface Row {
  metric: string
  baseline: string
  bridge: string
  ratio: string
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'wk-bench-'))
  const app = Fastify({ logger: false })
  await app.register(websocket)
  await app.register(processesPlugin, { workspaceRoot: root, maxProcesses: 64, idleTimeoutMs: 0 })
  await app.register(processesRoutes)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `127.0.0.1:${(app.server.address() as { port: number }).port}`
  const rows: Row[] = []
  try {
    // Interleaved, so a change in machine load hits every variant alike.
    const env = buildEnv(app.processes.options.envAllowList, process.env).env
    const times = { direct: [] as number[], binary: [] as number[], json: [] as number[] }
    for (let i = 0; i < RUNS; i++) {
      times.direct.push(await directStream(env))
      times.binary.push(await bridgeStream(base, true))
      times.json.push(await bridgeStream(base, false))
    }
    const direct = median(times.direct)
    for (const mode of ['binary', 'json'] as const) {
      const bridged = median(times[mode])
      rows.push({
        metric: `throughput, yes | head -c 200M, ${mode === 'binary' ? 'binary' : 'JSON'} OUTPUT frames (MB/s, median of ${RUNS})`,
        baseline: (BYTES / 1e6 / direct).toFixed(0),
        bridge: (BYTES / 1e6 / bridged).toFixed(0),
        ratio: `${(direct / bridged).toFixed(2)}x`,
      })
    }
    for (const [label, file, args] of [
      ['node -e', process.execPath, ['-e', 'console.log(1)']],
      ['python3 -c', 'python3', ['-u', '-c', 'print(1)']],
    ] as const) {
      const direct = await repeat(SPAWNS, () => directFirstOutput(file, [...args], env))
      const type = label.startsWith('node') ? 'node' : 'python'
      const code = type === 'node' ? 'console.log(1)' : 'print(1)'
      const api = await repeat(SPAWNS, () => apiFirstOutput(app.processes, type, code))
      const http = await repeat(SPAWNS, () => httpFirstOutput(base, type, code))
      rows.push(latencyRow(`spawn→first output, ${label}, in-process API (ms p50 / p90)`, direct, api))
      rows.push(latencyRow(`spawn→first output, ${label}, HTTP + WebSocket (ms p50 / p90)`, direct, http))
    }
  } finally {
    await app.close()
    rmSync(root, { recursive: true, force: true })
  }
  const flood = await workerFlood()
  rows.push(flood.latency, flood.stop)
  print(rows)
  console.log(flood.note)
}

const FLOOD_MS = Number(process.env.BENCH_FLOOD_MS ?? 5000)

/** Item 3 of the header: one worker printing `y\n` as fast as it can, against an idle one. */
async function workerFlood(): Promise<{ latency: Row; stop: Row; note: string }> {
  const root = mkdtempSync(join(tmpdir(), 'wk-bench-flood-'))
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 256 } })
  await app.register(websocket)
  await app.register(processesPlugin, { workspaceRoot: root, idleTimeoutMs: 0 })
  await app.register(workersPlugin, { workspaceRoot: root })
  await app.register(workersRoutes)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const ctx = { namespace: 'default' }
  const spawnWorker = async (code: string) =>
    (await app.workers.spawn(ctx, 'process', { intent: { kind: 'workspace_companion' }, process: { type: 'node', code } })).worker!.worker_id
  const probe = async (ms: number) => {
    const times: number[] = []
    for (const end = performance.now() + ms; performance.now() < end; ) {
      const t0 = performance.now()
      await (await fetch(`${base}/runtimes/process`)).text()
      times.push(performance.now() - t0)
      await new Promise((r) => setTimeout(r, 20))
    }
    return times
  }
  const stopTime = async (id: string) => {
    const t0 = performance.now()
    await app.workers.stop(ctx, 'process', id, 'force')
    return performance.now() - t0
  }
  try {
    const idle = await spawnWorker('setInterval(() => {}, 1000)')
    const idleTimes = await probe(FLOOD_MS)
    const idleStop = await stopTime(idle)
    const busy = await spawnWorker('const b = Buffer.from("y\\n".repeat(32768)); const go = () => process.stdout.write(b, go); go()')
    const busyTimes = await probe(FLOOD_MS)
    const page = await app.workers.transcript(ctx, 'process', busy, 0, 0)
    const busyStop = await stopTime(busy)
    const kept = await app.workers.transcript(ctx, 'process', busy, 0, 0)
    const p99 = (v: number[]) => percentile(v, 99)
    return {
      latency: { metric: `GET /runtimes/process p99 while a process worker prints y flat out for ${FLOOD_MS / 1000} s (ms; baseline: idle worker)`, baseline: p99(idleTimes).toFixed(1), bridge: p99(busyTimes).toFixed(1), ratio: `${(p99(busyTimes) / p99(idleTimes)).toFixed(2)}x` },
      stop: { metric: 'force stop of that worker (ms; baseline: idle worker)', baseline: idleStop.toFixed(1), bridge: busyStop.toFixed(1), ratio: `${(busyStop / idleStop).toFixed(2)}x` },
      note: `flood: ${page.total_items.toLocaleString("en")} transcript items appended in ${FLOOD_MS / 1000} s; ${kept.total_items - kept.first_start} kept (bounds per worker: 1000 items, 1 MiB)`,
    }
  } finally {
    await app.close()
    rmSync(root, { recursive: true, force: true })
  }
}

/**
 * Seconds to read the whole stream from the child's stdout pipe in Node. The child is started
 * exactly as the bridge starts it (own session, same filtered env), so only the streaming differs.
 */
async function directStream(env: Record<string, string>): Promise<number> {
  const child = spawn('python3', ['-u', '-c', STREAM_CODE], { stdio: ['pipe', 'pipe', 'inherit'], detached: true, env })
  let bytes = 0
  child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length))
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
  await new Promise((resolve) => child.once('spawn', resolve))
  const t0 = performance.now()
  child.stdin.end('\n')
  await closed
  const seconds = (performance.now() - t0) / 1000
  if (bytes !== BYTES) throw new Error(`direct read got ${bytes} bytes, expected ${BYTES}`)
  return seconds
}

/** Seconds for one attached WebSocket client (on its own thread) to receive the whole stream. */
async function bridgeStream(base: string, binary: boolean): Promise<number> {
  const res = await fetch(`http://${base}/processes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'python', code: STREAM_CODE }),
  })
  const { pid } = (await res.json()) as { pid: number }
  const worker = new Worker(CLIENT_SOURCE, { eval: true, workerData: { url: `ws://${base}/processes/${pid}/ws${binary ? '?binary=true' : ''}`, ws: require.resolve('ws') } })
  const result = await new Promise<{ seconds: number; bytes: number }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await worker.terminate()
  if (result.bytes !== BYTES) throw new Error(`bridge client got ${result.bytes} bytes, expected ${BYTES}`)
  return result.seconds
}

/**
 * The client thread (plain JS: worker threads do not get the TypeScript loader): attach, send the
 * start line, count OUTPUT bytes until EXIT, post `{ seconds, bytes }`.
 */
const CLIENT_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const WebSocket = require(workerData.ws)
const socket = new WebSocket(workerData.url)
let bytes = 0
let t0 = 0
socket.on('message', (raw, isBinary) => {
  if (isBinary) return void (bytes += raw.length - 1) // stream byte + raw output
  const msg = JSON.parse(raw.toString())
  if (msg.type === 'ATTACHED') {
    t0 = performance.now()
    socket.send(JSON.stringify({ type: 'STDIN', data: '\\n' }))
  } else if (msg.type === 'OUTPUT') bytes += msg.data.length // ASCII: characters = bytes
  else if (msg.type === 'EXIT') {
    parentPort.postMessage({ seconds: (performance.now() - t0) / 1000, bytes })
    socket.close()
  }
})
`

async function directFirstOutput(file: string, args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now()
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'ignore'], detached: true, env })
  await new Promise((resolve) => child.stdout.once('data', resolve))
  const ms = performance.now() - t0
  await new Promise((resolve) => child.once('close', resolve))
  return ms
}

async function apiFirstOutput(pm: import('../plugins/processes.js').ProcessManager, type: 'node' | 'python', code: string): Promise<number> {
  const t0 = performance.now()
  let first: (() => void) | undefined
  const seen = new Promise<void>((resolve) => (first = resolve))
  const info = await pm.spawn({ type, code })
  const detach = pm.attach(info.pid, (e) => e.type === 'output' && first?.())
  await seen
  const ms = performance.now() - t0
  detach()
  await pm.wait(info.pid)
  await pm.kill(info.pid)
  return ms
}

async function httpFirstOutput(base: string, type: 'node' | 'python', code: string): Promise<number> {
  const t0 = performance.now()
  const res = await fetch(`http://${base}/processes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type, code }) })
  const { pid } = (await res.json()) as { pid: number }
  const socket = new WebSocket(`ws://${base}/processes/${pid}/ws`)
  await new Promise<void>((resolve) =>
    socket.on('message', (raw) => {
      if ((JSON.parse(raw.toString()) as { type: string }).type === 'OUTPUT') resolve()
    }),
  )
  const ms = performance.now() - t0
  socket.close()
  await fetch(`http://${base}/processes/${pid}`, { method: 'DELETE' })
  return ms
}

async function repeat(n: number, fn: () => Promise<number>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await fn())
  return out
}

const median = (values: number[]) => percentile(values, 50)

function latencyRow(metric: string, direct: number[], bridge: number[]): Row {
  const fmt = (v: number[]) => `${percentile(v, 50).toFixed(1)} / ${percentile(v, 90).toFixed(1)}`
  return { metric, baseline: fmt(direct), bridge: fmt(bridge), ratio: `${(percentile(bridge, 50) / percentile(direct, 50)).toFixed(2)}x` }
}

function print(rows: Row[]): void {
  printTable(undefined, ['metric', 'direct (Node)', 'bridge', 'bridge/direct'], rows.map((r) => [r.metric, r.baseline, r.bridge, r.ratio]), {
    align: 'left',
    note: '\nthroughput ratio = direct time / bridge time (target ≥ 0.5x); latency ratio = bridge p50 / direct p50.',
  })
}

await main()
