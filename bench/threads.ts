/**
 * Runtime-only scaling (issue 11): executions/s of the counter handler (and of a 20k-iteration loop) on 1 vs 2
 * runtime worker threads (`workerThreads`), no HTTP, all rows measured in this one run.
 *
 * Each row keeps `BENCH_IN_FLIGHT` (default 64) executions in flight against one runtime for
 * `BENCH_MS` ms (default 3000) after a warm-up, the way the panel manager calls it: one PanelState
 * per panel (16 panels), the segment's mutations committed after each call, inline slice off so
 * every call runs on a worker thread. Beside it, the CPU time per execution of each kind of thread
 * (from /proc/self/task/<tid>/stat, Linux): the JS thread (N-API calls, promise settling, the
 * TypeScript wrapper), the guest workers (`wk-guest-*`), the reaper (`wk-reaper`, frees instances)
 * and the rest (epoch ticker, libuv, V8): with 2 cores and 2 workers they all compete for the cores.
 * Run: `npm run bench:threads`.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { WasmRuntime, type ExecutionContext, type PanelState } from '../wasm-runtime/index.js'
import { printTable } from './stats.js'

const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 64)
const MS = Number(process.env.BENCH_MS ?? 3000)
const PANELS = 16
/** The kernel bench's counter tool, and a handler whose guest work dwarfs the per-call costs. */
const HANDLERS: [string, string][] = [
  ['counter', `$state.count = $state.count + 1; return $state.count`],
  ['20k-iteration loop', `let x = 0; for (let i = 0; i < 20000; i++) x += i % 7; $state.count = x; return x`],
]

const context = (panel: number, state: PanelState): ExecutionContext => ({
  panelId: `p${panel}`,
  handlerName: 'inc',
  state,
  args: {},
  capabilities: ['state:read:count', 'state:write:count'],
})

interface Row {
  perSecond: number
  /** µs of wall time inside the sandbox per execution (mean metrics.durationUs). */
  insideUs: number
  /** CPU µs per execution by thread kind. */
  cpuUs: Record<ThreadKind, number>
}

type ThreadKind = 'js' | 'guest' | 'reaper' | 'other'
const KINDS: ThreadKind[] = ['js', 'guest', 'reaper', 'other']

/** CPU µs used so far by each thread of this process: tid → [kind, µs] (utime + stime of /proc/self/task/<tid>/stat). */
function threadCpu(): Map<string, [ThreadKind, number]> {
  const out = new Map<string, [ThreadKind, number]>()
  const tickUs = 1e6 / 100 // USER_HZ
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    } catch {
      continue // the thread exited
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const kind: ThreadKind = tid === String(process.pid) ? 'js' : name.startsWith('wk-guest') ? 'guest' : name === 'wk-reaper' ? 'reaper' : 'other'
    out.set(tid, [kind, (Number(fields[11]) + Number(fields[12])) * tickUs])
  }
  return out
}

/** CPU µs by thread kind between two `threadCpu()` samples (threads alive at both). */
function cpuBetween(a: Map<string, [ThreadKind, number]>, b: Map<string, [ThreadKind, number]>): Record<ThreadKind, number> {
  const out: Record<ThreadKind, number> = { js: 0, guest: 0, reaper: 0, other: 0 }
  for (const [tid, [kind, us]] of b) out[kind] += us - (a.get(tid)?.[1] ?? us)
  return out
}

/** Keeps IN_FLIGHT calls going for `ms`; returns executions/s and the CPU per call by thread kind. */
async function measure(source: string, threads: number, ms: number): Promise<Row> {
  const rt = new WasmRuntime({ workerThreads: threads, inlineSliceMs: 0, maxInstances: IN_FLIGHT * 2 })
  const code = await rt.precompile(source)
  const states = Array.from({ length: PANELS }, () => rt.createState({ count: 0 }))
  let running = true
  let done = 0
  let inside = 0
  const lane = async (i: number) => {
    const state = states[i % PANELS]
    const ctx = context(i % PANELS, state)
    while (running) {
      const r = await rt.execute(code, ctx)
      state.apply(r.stateMutations)
      done++
      inside += r.metrics.durationUs
    }
  }
  // warm-up: pool slots, caches, JIT of the wrapper
  const warm = Array.from({ length: IN_FLIGHT }, (_, i) => lane(i))
  await new Promise((r) => setTimeout(r, 300))
  const [d0, in0, cpu0, t0] = [done, inside, threadCpu(), performance.now()]
  await new Promise((r) => setTimeout(r, ms))
  const [d1, in1, cpu1, t1] = [done, inside, threadCpu(), performance.now()]
  running = false
  await Promise.all(warm)
  await rt.shutdown()
  const n = d1 - d0
  const cpu = cpuBetween(cpu0, cpu1)
  const cpuUs = Object.fromEntries(KINDS.map((k) => [k, cpu[k] / n])) as Row['cpuUs']
  return { perSecond: n / ((t1 - t0) / 1000), insideUs: (in1 - in0) / n, cpuUs }
}

await measure(HANDLERS[0][1], 1, 1000) // warm-up of the wrapper and the engine
const rows: (string | number)[][] = []
const ratios: number[] = []
for (const [name, source] of HANDLERS) {
  const one = await measure(source, 1, MS)
  const two = await measure(source, 2, MS)
  ratios.push(two.perSecond / one.perSecond)
  for (const [threads, r] of [[1, one], [2, two]] as const) {
    rows.push([`${name}, ${threads}`, r.perSecond, r.insideUs, ...KINDS.map((k) => r.cpuUs[k])])
  }
}
printTable(`${IN_FLIGHT} executions in flight over ${PANELS} panels, ${MS} ms per row, inline slice off`, [
  'handler, workerThreads',
  'executions/s',
  'inside sandbox µs',
  'CPU µs/exec: JS thread',
  'guest workers',
  'reaper',
  'other threads',
], rows)
HANDLERS.forEach(([name], i) => console.log(`${name}: 2 threads / 1 thread = ${ratios[i].toFixed(2)}×`))
console.log(`target counter ≥ 1.7× on 2 cores → ${ratios[0] >= 1.7 ? 'met' : 'NOT met'}`)
