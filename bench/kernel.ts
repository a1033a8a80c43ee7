/**
 * Kernel benchmark (`npm run bench:kernel`): one run, baselines measured in the same run.
 *
 * Processes: this one (WebSocket clients + report), a server child (`--serve`: the kernel and a
 * bare Fastify app with the same JSON work and a bare @fastify/websocket echo) and autocannon
 * children (the HTTP load generator in its own process).
 *
 *   1. HTTP trigger of a tiny counter tool vs a bare route doing the same JSON work (100 connections)
 *   2. WS TRIGGER→RESULT latency on one socket vs an echo of the same message (p50/p99)
 *   3. WS round trips/s over 100 sockets (one panel each, 8 in flight per socket) vs the echo, and the
 *      share of first segments that work sharing gave a worker thread (plugins/executor/placement.ts)
 *   4. PATCH fan-out: TRIGGER sent → the 1,000th subscribed socket has the PATCH
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { VERSUS_HEADER, autocannon, fanoutRun, open, post } from './lib.js'
import { percentile, printTable } from './stats.js'

const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5)
const WS_ROUNDS = Number(process.env.BENCH_WS_ROUNDS ?? 2000)
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_MS ?? 3000)
const FANOUT_SOCKETS = 1000
const FANOUT_ROUNDS = 30

const counterTool = { name: 'inc', handler: '$state.count = $state.count + 1; return $state.count' }
const counterPanel = (id: string) => ({ id, kind: 'counter', initialState: { count: 0 }, tools: [counterTool] })

interface Urls {
  kernel: string
  bare: string
}

// ---------------------------------------------------------------- server child

async function serve(): Promise<void> {
  const { buildApp } = await import('../app.js')
  const { default: Fastify } = await import('fastify')
  const { default: websocket } = await import('@fastify/websocket')
  const { TriggerReply } = await import('../schemas/panels.js')

  const kernel = await buildApp({ logLevel: 'silent', maxPanels: 5000 })
  const kernelUrl = await kernel.listen({ port: 0, host: '127.0.0.1' })

  const bare = Fastify({ logger: false })
  await bare.register(websocket)
  let count = 0
  // the same work as the counter tool, minus the sandbox: bump, reply the TriggerReply shape
  bare.post('/count', { schema: { response: { 200: TriggerReply } } }, async () => {
    count++
    return { status: 'success', returnValue: count, version: count, events: [], viewCommands: [], logs: [], segments: 1, durationMs: 0 }
  })
  bare.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      count++
      socket.send(JSON.stringify({ type: 'RESULT', requestId: msg.requestId, result: { status: 'success', returnValue: count } }))
    })
  })
  const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' })
  process.send?.({ kernel: kernelUrl, bare: bareUrl } satisfies Urls)
  process.on('disconnect', () => {
    void Promise.all([kernel.close(), bare.close()]).then(() => process.exit(0))
  })
}

// ---------------------------------------------------------------- WS measurements

/** Sequential TRIGGER→RESULT round trips on one socket; µs per round trip, sorted. */
async function latency(ws: WebSocket, rounds: number): Promise<number[]> {
  const out: number[] = []
  let seq = 0
  const once = () =>
    new Promise<number>((resolve) => {
      const id = `l${++seq}`
      const start = process.hrtime.bigint()
      const onMsg = (data: WebSocket.RawData) => {
        const s = data.toString()
        if (!s.includes('"RESULT"') || !s.includes(`"${id}"`)) return
        ws.off('message', onMsg)
        resolve(Number(process.hrtime.bigint() - start) / 1000)
      }
      ws.on('message', onMsg)
      ws.send(JSON.stringify({ type: 'TRIGGER', tool: 'inc', args: {}, requestId: id }))
    })
  for (let i = 0; i < 200; i++) await once() // warm-up
  for (let i = 0; i < rounds; i++) out.push(await once())
  return out.sort((a, b) => a - b)
}

/** First segments so far by where they ran (`wk_runtime_first_segments_total` on the kernel's /metrics; 0 when absent). */
async function placements(base: string): Promise<{ inline: number; pool: number }> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const count = (p: string) => Number(new RegExp(`^wk_runtime_first_segments_total\\{placement="${p}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  return { inline: count('inline'), pool: count('pool') }
}

/** Round trips/s over many sockets, each keeping `window` TRIGGERs in flight for `ms`. */
async function throughput(sockets: WebSocket[], ms: number, window = 8): Promise<number> {
  let done = 0
  let running = true
  const send = (ws: WebSocket) => ws.send(JSON.stringify({ type: 'TRIGGER', tool: 'inc', args: {}, requestId: 't' }))
  const listeners = sockets.map((ws) => {
    const onMsg = (data: WebSocket.RawData) => {
      if (!data.toString().startsWith('{"type":"RESULT"')) return
      done++
      if (running) send(ws)
    }
    ws.on('message', onMsg)
    return onMsg
  })
  const start = performance.now()
  for (const ws of sockets) for (let i = 0; i < window; i++) send(ws)
  await new Promise((r) => setTimeout(r, ms))
  running = false
  const elapsed = (performance.now() - start) / 1000
  const rate = done / elapsed
  await new Promise((r) => setTimeout(r, 200)) // drain
  sockets.forEach((ws, i) => ws.off('message', listeners[i]))
  return rate
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const server = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const urls = await new Promise<Urls>((resolve, reject) => {
    server.once('message', (m) => resolve(m as Urls))
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
  const ws = (u: string) => u.replace(/^http/, 'ws')
  try {
    const rows: string[][] = []
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`

    // 1. HTTP
    await post(`${urls.kernel}/panels`, counterPanel('http'))
    const k = await autocannon(`${urls.kernel}/panels/http/trigger/inc`, HTTP_SECONDS)
    const b = await autocannon(`${urls.bare}/count`, HTTP_SECONDS)
    rows.push(['HTTP trigger req/s (100 conns)', k.rps.toFixed(0), b.rps.toFixed(0), ratio(k.rps, b.rps), '≥ 0.3×', k.rps / b.rps >= 0.3 ? 'ok' : 'MISS'])
    rows.push(['  HTTP latency p50 / p99 ms', `${k.p50} / ${k.p99}`, `${b.p50} / ${b.p99}`, '', '', k.errors ? `${k.errors} errors` : ''])

    // 2. WS latency
    const panel = await post(`${urls.kernel}/panels`, counterPanel('ws'))
    const kws = await open(panel.wsUrl)
    const ews = await open(`${ws(urls.bare)}/echo`)
    const kl = await latency(kws, WS_ROUNDS)
    const el = await latency(ews, WS_ROUNDS)
    const [k50, k99, e50, e99] = [percentile(kl, 50), percentile(kl, 99), percentile(el, 50), percentile(el, 99)]
    rows.push(['WS TRIGGER→RESULT p50 µs', k50.toFixed(0), e50.toFixed(0), ratio(k50, e50), '≤ 2.5×', k50 / e50 <= 2.5 ? 'ok' : 'MISS'])
    rows.push(['WS TRIGGER→RESULT p99 µs', k99.toFixed(0), e99.toFixed(0), ratio(k99, e99), '', ''])
    kws.close()
    ews.close()

    // 3. WS throughput over 100 sockets
    const ksocks: WebSocket[] = []
    const esocks: WebSocket[] = []
    for (let i = 0; i < 100; i++) {
      const p = await post(`${urls.kernel}/panels`, counterPanel(`tp${i}`))
      ksocks.push(await open(p.wsUrl))
      esocks.push(await open(`${ws(urls.bare)}/echo`))
    }
    const placed = await placements(urls.kernel)
    const kt = await throughput(ksocks, THROUGHPUT_MS)
    const et = await throughput(esocks, THROUGHPUT_MS)
    const { inline, pool } = await placements(urls.kernel)
    rows.push(['WS round trips/s (100 sockets)', kt.toFixed(0), et.toFixed(0), ratio(kt, et), '≥ 0.15×', kt / et >= 0.15 ? 'ok' : 'MISS'])
    const share = (100 * (pool - placed.pool)) / (inline - placed.inline + pool - placed.pool || 1)
    rows.push(['  first segments on a worker thread %', share.toFixed(0), '', '', '', ''])
    for (const s of [...ksocks, ...esocks]) s.close()

    // 4. PATCH fan-out to 1,000 sockets
    const fo = await fanoutRun(urls.kernel, counterPanel('fan'), FANOUT_SOCKETS, FANOUT_ROUNDS)
    rows.push([`PATCH fan-out to ${FANOUT_SOCKETS} sockets p50 ms`, percentile(fo, 50).toFixed(2), '', '', '≤ 20 ms', percentile(fo, 50) <= 20 ? 'ok' : 'MISS'])
    rows.push([`PATCH fan-out to ${FANOUT_SOCKETS} sockets p99 ms`, percentile(fo, 99).toFixed(2), '', '', '', ''])

    printTable(undefined, VERSUS_HEADER, rows, { align: 'left', note: 'baselines: a bare Fastify route with the same JSON work; a bare @fastify/websocket echo of the same message' })
  } finally {
    server.disconnect()
  }
}

if (process.argv.includes('--serve')) await serve()
else await main()
