/**
 * Trigger-path profile (`npm run bench:profile`): the kernel in this process, a load generator in
 * its own process, and a V8 CPU profile of this process's main thread taken only while the load
 * runs (no startup). `BENCH_PROFILE_LOAD` picks the load:
 *   - `http` (default): autocannon driving `POST /panels/:id/trigger/inc` on one counter panel (100 connections);
 *   - `ws`: 100 panel WebSockets (one counter panel each), each keeping 8 TRIGGERs in flight, as
 *     bench/kernel.ts's "WS round trips/s" row;
 *   - `ws1`: one panel WebSocket, one TRIGGER at a time, as bench/kernel.ts's "TRIGGER→RESULT" row.
 * Prints the rate, the main thread's busy µs per request (profiled time minus idle, divided by
 * the requests), and the top self-time entries (function, file:line, share of the profiled time;
 * an entry without a file is native code, e.g. `Runtime` = the addon's guest call), and writes
 * the whole profile to `bench/<load>.cpuprofile` (gitignored) for DevTools.
 * BENCH_HTTP_SECONDS (default 5) sets the load's length, BENCH_PROFILE_TOP (default 20) the rows.
 */
import { fork } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { autocannon, open, post } from './lib.js'

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5)
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 20)
const LOAD = process.env.BENCH_PROFILE_LOAD ?? 'http'
const WS_SOCKETS = 100
const WS_WINDOW = 8

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** Self time per function (µs), summed over every node of the same function and line. */
function selfTimes(p: Profile): { name: string; us: number }[] {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]))
  const byName = new Map<string, number>()
  p.samples.forEach((id, i) => {
    const f = (nodes.get(id) as ProfileNode).callFrame
    const file = f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(plugins|routes|wasm-runtime|schemas|app)/, '$1')
    const name = `${f.functionName || '(anonymous)'} ${file}${file && f.lineNumber > 0 ? `:${f.lineNumber + 1}` : ''}`.trim()
    byName.set(name, (byName.get(name) ?? 0) + (p.timeDeltas[i] ?? 0))
  })
  return [...byName].map(([name, us]) => ({ name, us })).sort((a, b) => b.us - a.us)
}

const counterPanel = (id: string) => ({
  id,
  kind: 'counter',
  initialState: { count: 0 },
  tools: [{ name: 'inc', handler: '$state.count = $state.count + 1; return $state.count' }],
})

// ---------------------------------------------------------------- the WS load (child process)

const TRIGGER = JSON.stringify({ type: 'TRIGGER', tool: 'inc', args: {}, requestId: 't' })

/** Round trips on `sockets`, each keeping `window` TRIGGERs in flight, for `ms`; returns the count. */
async function wsLoad(sockets: WebSocket[], window: number, ms: number): Promise<number> {
  let done = 0
  let running = true
  for (const ws of sockets) {
    ws.on('message', (data: WebSocket.RawData) => {
      if (!data.toString().startsWith('{"type":"RESULT"')) return
      done++
      if (running) ws.send(TRIGGER)
    })
  }
  for (const ws of sockets) for (let i = 0; i < window; i++) ws.send(TRIGGER)
  await new Promise((r) => setTimeout(r, ms))
  running = false
  return done
}

/** The child: opens the sockets it is sent, runs a warm-up and the measured load on request. */
function wsClient(): void {
  let sockets: WebSocket[] = []
  process.on('message', async (m: { urls?: string[]; run?: number; window: number }) => {
    if (m.urls) {
      sockets = []
      for (const u of m.urls) sockets.push(await open(u))
      return process.send?.({ ready: true })
    }
    const done = await wsLoad(sockets, m.window, m.run as number)
    for (const ws of sockets) ws.removeAllListeners('message')
    await new Promise((r) => setTimeout(r, 200)) // in-flight replies drain
    process.send?.({ done })
  })
}

/** Starts the WS client process, opens `n` sockets on fresh counter panels; returns a runner. */
async function wsDriver(base: string, n: number, window: number): Promise<{ run: (ms: number) => Promise<number>; end: () => void }> {
  const urls: string[] = []
  for (let i = 0; i < n; i++) urls.push((await post(`${base}/panels`, counterPanel(`ws${i}`))).wsUrl)
  const child = fork(fileURLToPath(import.meta.url), ['--ws-client'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const reply = () => new Promise<any>((resolve) => child.once('message', resolve))
  child.send({ urls })
  await reply()
  return {
    run: async (ms) => {
      child.send({ run: ms, window })
      return ((await reply()) as { done: number }).done
    },
    end: () => child.disconnect(),
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { buildApp } = await import('../app.js')
  const app = await buildApp({ logLevel: 'silent' })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  let load: () => Promise<{ label: string; count: number }>
  let end = () => {}
  if (LOAD === 'http') {
    await post(`${base}/panels`, counterPanel('profiled'))
    const url = `${base}/panels/profiled/trigger/inc`
    await autocannon(url, 1) // warm-up: JIT, caches
    load = async () => {
      const r = await autocannon(url, SECONDS)
      return { label: `HTTP trigger under load: ${r.rps.toFixed(0)} req/s (p50 ${r.p50} ms)`, count: r.rps * SECONDS }
    }
  } else if (LOAD === 'ws' || LOAD === 'ws1') {
    const [n, window] = LOAD === 'ws' ? [WS_SOCKETS, WS_WINDOW] : [1, 1]
    const driver = await wsDriver(base, n, window)
    await driver.run(1000) // warm-up: JIT, caches
    end = driver.end
    load = async () => {
      const count = await driver.run(SECONDS * 1000)
      return { label: `WS round trips (${n} socket(s), ${window} in flight each): ${(count / SECONDS).toFixed(0)}/s`, count }
    }
  } else {
    throw new Error(`BENCH_PROFILE_LOAD=${LOAD}: expected http, ws or ws1`)
  }

  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  const { label, count } = await load()
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile }
  session.disconnect()
  end()
  await app.close()

  writeFileSync(fileURLToPath(new URL(`./${LOAD === 'http' ? 'trigger' : LOAD}.cpuprofile`, import.meta.url)), JSON.stringify(profile))
  const rows = selfTimes(profile)
  const total = rows.reduce((s, r) => s + r.us, 0)
  const idle = rows.find((r) => r.name === '(idle)')?.us ?? 0
  console.log(`${label}, ${(total / 1e6).toFixed(2)} s profiled, main thread busy ${((total - idle) / count).toFixed(1)} µs per request`)
  console.log('| self time | share | function |')
  console.log('|--:|--:|---|')
  for (const r of rows.slice(0, TOP)) console.log(`| ${(r.us / 1000).toFixed(0)} ms | ${((r.us / total) * 100).toFixed(1)} % | ${r.name} |`)
}

if (process.argv.includes('--ws-client')) wsClient()
else await main()
