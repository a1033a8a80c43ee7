/**
 * Edge benchmark (`npm run bench:edge`): does creating big panels stall other clients? One run,
 * the baseline measured in the same run.
 *
 * Processes: this one (the /health prober and report) and a server child (`--serve`: the kernel).
 *
 *   1. `/health` latency, one request after another, on an idle kernel (the baseline)
 *   2. the same while 12 panels of 1 MB of handler source (4 tools × 250 kB) are created at once:
 *      capability inference (acorn) runs on a worker thread, so /health should stay near the baseline
 *   3. for scale: the time acorn takes on one such handler here, i.e. how long each of the 48
 *      inferences would block the event loop if it ran there
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { inferCapabilities } from '../plugins/panels/capabilities.js'
import { percentile, printTable } from './stats.js'

const PANELS = 12
const TOOLS = 4
const TOOL_CHARS = 250_000
const IDLE_PROBES = 300

async function serve(): Promise<void> {
  const { buildApp } = await import('../app.js')
  const kernel = await buildApp({ logLevel: 'silent', bodyLimitBytes: 8 << 20 })
  process.send?.(await kernel.listen({ port: 0, host: '127.0.0.1' }))
  process.on('disconnect', () => void kernel.close().then(() => process.exit(0)))
}

/** One handler of ~TOOL_CHARS: many statements reading and writing state (acorn's worst realistic case: a big tree). */
function bigHandler(): string {
  let source = ''
  for (let i = 0; source.length < TOOL_CHARS; i++) source += `if ($args.k === ${i}) { $state.a${i % 50} = ($state.b${i % 50} ?? 0) + ${i} }\n`
  return source
}

/** /health round trips (ms) one after another until `done()` (or `count` probes). */
async function probe(base: string, done: () => boolean, count = Infinity): Promise<number[]> {
  const out: number[] = []
  while (!done() && out.length < count) {
    const start = performance.now()
    const res = await fetch(`${base}/health`)
    await res.arrayBuffer()
    out.push(performance.now() - start)
  }
  return out
}

async function main(): Promise<void> {
  const server = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const base = await new Promise<string>((resolve) => server.once('message', (m) => resolve(String(m))))
  try {
    await probe(base, () => false, 50) // warm-up
    const idle = await probe(base, () => false, IDLE_PROBES)
    const handler = bigHandler()
    const tools = Array.from({ length: TOOLS }, (_, i) => ({ name: `t${i}`, handler }))
    let created = false
    const started = performance.now()
    const creating = Promise.all(
      Array.from({ length: PANELS }, (_, i) =>
        fetch(`${base}/panels`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `big${i}`, kind: 'big', tools }) })
          .then(async (r) => {
            if (r.status !== 201) throw new Error(`POST /panels: ${r.status} ${await r.text()}`)
          }),
      ),
    ).then(() => (created = true))
    const busy = await probe(base, () => created)
    await creating
    const createMs = performance.now() - started
    const acorn = Array.from({ length: 5 }, () => {
      const start = performance.now()
      inferCapabilities(handler)
      return performance.now() - start
    })
    const row = (name: string, v: number[]) => [name, v.length, percentile(v, 50), percentile(v, 99), Math.max(...v)]
    printTable(
      `/health latency, ms (${PANELS} panels × ${TOOLS} tools × ${TOOL_CHARS / 1000} kB created in ${createMs.toFixed(0)} ms)`,
      ['case', 'samples', 'p50', 'p99', 'max'],
      [
        row('idle kernel (baseline)', idle),
        row(`while creating ${PANELS} × 1 MB panels`, busy),
        row(`acorn inference of one ${TOOL_CHARS / 1000} kB handler, on a thread of its own`, acorn),
      ],
    )
  } finally {
    server.disconnect()
  }
}

if (process.argv.includes('--serve')) await serve()
else await main()
