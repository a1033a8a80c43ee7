/**
 * Trigger-path profile (`npm run bench:profile`): the kernel in this process, one counter panel,
 * autocannon in its own process driving `POST /panels/:id/trigger/inc` (100 connections), and a
 * V8 CPU profile of this process's main thread taken only while the load runs (no startup).
 * Prints the requests/s and the top self-time entries (function, file:line, share of the
 * profiled time; an entry without a file is native code, e.g. `Runtime` = the addon's guest call)
 * and writes the whole profile to `bench/trigger.cpuprofile` (gitignored) for DevTools.
 * BENCH_HTTP_SECONDS (default 5) sets the load's length, BENCH_PROFILE_TOP (default 20) the rows.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../app.js'
import { autocannon, post } from './lib.js'

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5)
const TOP = Number(process.env.BENCH_PROFILE_TOP ?? 20)

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

const app = await buildApp({ logLevel: 'silent' })
const base = await app.listen({ port: 0, host: '127.0.0.1' })
await post(`${base}/panels`, {
  id: 'profiled',
  kind: 'counter',
  initialState: { count: 0 },
  tools: [{ name: 'inc', handler: '$state.count = $state.count + 1; return $state.count' }],
})
await autocannon(`${base}/panels/profiled/trigger/inc`, 1) // warm-up: JIT, caches

const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.start')
const load = await autocannon(`${base}/panels/profiled/trigger/inc`, SECONDS)
const { profile } = (await session.post('Profiler.stop')) as { profile: Profile }
session.disconnect()
await app.close()

writeFileSync(fileURLToPath(new URL('./trigger.cpuprofile', import.meta.url)), JSON.stringify(profile))
const rows = selfTimes(profile)
const total = rows.reduce((s, r) => s + r.us, 0)
console.log(`HTTP trigger under load: ${load.rps.toFixed(0)} req/s (p50 ${load.p50} ms), ${(total / 1e6).toFixed(2)} s profiled`)
console.log('| self time | share | function |')
console.log('|--:|--:|---|')
for (const r of rows.slice(0, TOP)) console.log(`| ${(r.us / 1000).toFixed(0)} ms | ${((r.us / total) * 100).toFixed(1)} % | ${r.name} |`)
