/**
 * State benchmark (`npm run bench:state`, issue 8): one run, the memory store as the baseline
 * measured in the same run.
 *
 * Processes: this one (clients + report), a server child (`--serve`: one kernel with the sqlite
 * store in a fresh data dir, one with the memory store) and autocannon children.
 *
 *   1. HTTP trigger req/s of a tiny counter tool, sqlite vs memory (100 connections, one panel;
 *      two runs of each, alternated, averaged)
 *   2. one-key trigger p50 with 1 KB, 1 MB and 4 MB of panel state (sqlite; sequential REST calls)
 *   3. PATCH fan-out: TRIGGER sent → the 1,000th subscribed socket has the PATCH, sqlite vs memory
 */
import { fork } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { VERSUS_HEADER, autocannon, fanoutRun, post } from './lib.js'
import { percentile, printTable } from './stats.js'

const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5)
const KEY_ROUNDS = Number(process.env.BENCH_KEY_ROUNDS ?? 200)
const FANOUT_SOCKETS = 1000
const FANOUT_ROUNDS = 30
const MiB = 1024 * 1024

const counterPanel = (id: string) => ({
  id,
  kind: 'counter',
  initialState: { count: 0 },
  tools: [
    { name: 'inc', handler: '$state.count = $state.count + 1; return $state.count' },
    // fills the state with `n` keys of `size` characters each (a bench set-up step)
    { name: 'fill', handler: "for (let i = 0; i < $args.n; i++) $state['blob' + i] = 'x'.repeat($args.size); return true", capabilities: ['state:write:*'] },
  ],
})

interface Urls {
  sqlite: string
  memory: string
}

async function serve(): Promise<void> {
  const { buildApp } = await import('../app.js')
  const opts = { logLevel: 'silent' as const, maxPanels: 5000, maxStateBytes: 8 * MiB }
  const sqlite = await buildApp({ ...opts, dataDir: mkdtempSync(join(tmpdir(), 'wk-bench-state-')) })
  const memory = await buildApp({ ...opts, store: { backend: 'memory' } })
  const urls: Urls = {
    sqlite: await sqlite.listen({ port: 0, host: '127.0.0.1' }),
    memory: await memory.listen({ port: 0, host: '127.0.0.1' }),
  }
  process.send?.(urls)
  process.on('disconnect', () => {
    void Promise.all([sqlite.close(), memory.close()]).then(() => process.exit(0))
  })
}

/** The average of several autocannon runs (latencies: the average of their percentiles). */
function mean(rs: Array<{ rps: number; p50: number; p99: number; errors: number }>) {
  const avg = (f: (r: (typeof rs)[number]) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length
  return { rps: avg((r) => r.rps), p50: avg((r) => r.p50), p99: avg((r) => r.p99), errors: rs.reduce((a, r) => a + r.errors, 0) }
}

/** Sequential one-key triggers over REST; ms per call, sorted. */
async function oneKey(url: string, rounds: number): Promise<number[]> {
  const call = async () => {
    const t0 = performance.now()
    await post(url, { args: {} })
    return performance.now() - t0
  }
  for (let i = 0; i < 20; i++) await call() // warm-up
  const out: number[] = []
  for (let i = 0; i < rounds; i++) out.push(await call())
  return out.sort((a, b) => a - b)
}

async function fanoutP50(base: string, id: string): Promise<number> {
  return percentile(await fanoutRun(base, counterPanel(id), FANOUT_SOCKETS, FANOUT_ROUNDS), 50)
}

async function main(): Promise<void> {
  const server = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const urls = await new Promise<Urls>((resolve, reject) => {
    server.once('message', (m) => resolve(m as Urls))
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
  try {
    const rows: string[][] = []
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`

    await post(`${urls.sqlite}/panels`, counterPanel('http'))
    await post(`${urls.memory}/panels`, counterPanel('http'))
    // alternate the two stores (s, m, s, m) so machine load drifting during the run hits both alike
    const runs: Record<'sqlite' | 'memory', Awaited<ReturnType<typeof autocannon>>[]> = { sqlite: [], memory: [] }
    for (let i = 0; i < 2; i++) {
      for (const kind of ['sqlite', 'memory'] as const) runs[kind].push(await autocannon(`${urls[kind]}/panels/http/trigger/inc`, HTTP_SECONDS))
    }
    const s = mean(runs.sqlite)
    const m = mean(runs.memory)
    rows.push(['HTTP trigger req/s (100 conns)', s.rps.toFixed(0), m.rps.toFixed(0), ratio(s.rps, m.rps), '≥ 0.8×', s.rps / m.rps >= 0.8 ? 'ok' : 'MISS'])
    rows.push(['  HTTP latency p50 / p99 ms', `${s.p50} / ${s.p99}`, `${m.p50} / ${m.p99}`, '', '', s.errors + m.errors ? `${s.errors + m.errors} errors` : ''])

    const sizes: Array<[string, number, number]> = [['1 KB', 1, 1000], ['1 MB', 16, 65_536], ['4 MB', 64, 65_536]]
    let small = 0
    for (const [label, n, size] of sizes) {
      const id = `key-${label.replace(' ', '')}`
      await post(`${urls.sqlite}/panels`, counterPanel(id))
      await post(`${urls.sqlite}/panels/${id}/trigger/fill`, { args: { n, size } })
      const p50 = percentile(await oneKey(`${urls.sqlite}/panels/${id}/trigger/inc`, KEY_ROUNDS), 50)
      if (!small) small = p50
      const last = label === '4 MB'
      rows.push([`one-key trigger p50 ms, ${label} state`, p50.toFixed(2), last ? small.toFixed(2) : '', last ? ratio(p50, small) : '', last ? '≤ 1.2× of 1 KB' : '', last ? (p50 / small <= 1.2 ? 'ok' : 'MISS') : ''])
    }

    const fs = await fanoutP50(urls.sqlite, 'fan')
    const fm = await fanoutP50(urls.memory, 'fan')
    rows.push([`PATCH fan-out to ${FANOUT_SOCKETS} sockets p50 ms`, fs.toFixed(2), fm.toFixed(2), ratio(fs, fm), 'unchanged', ''])
    printTable(undefined, VERSUS_HEADER, rows, { align: 'left', note: 'kernel = sqlite store (WAL, synchronous=normal); baseline = the memory store, same process, same run' })
  } finally {
    server.disconnect()
  }
}

if (process.argv.includes('--serve')) await serve()
else await main()
