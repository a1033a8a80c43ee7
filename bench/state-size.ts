/**
 * State-size benchmark (issue 8 section 4, issue 10 item 3), all measured in this one run:
 *   1. a one-key trigger (the counter handler) with 1 KB, 1 MB and 4 MB of panel state, p50/p99:
 *      (a) the state as a plain object in the context (copied into a private PanelState per call),
 *      (b) the state as a PanelState the handler reads lazily, the segment's mutations committed
 *          into it after each call (what the panel manager does).
 * Executions/s on 1 vs 2 worker threads is bench/threads.ts (`npm run bench:threads`).
 * Run: `npm run bench:state` (BENCH_ITERATIONS: samples per row, default 500).
 */
import { WasmRuntime, type CompiledHandler, type ExecutionContext, type PanelState } from '../wasm-runtime/index.js'
import { percentile, printTable } from './stats.js'

const N = Number(process.env.BENCH_ITERATIONS ?? 500)
const WARMUP = Math.min(50, N)
const KiB = 1024
const COUNTER = `const n = ($state.count ?? 0) + $args.by; $state.count = n; return n;`
const SIZES: [string, number][] = [
  ['1 KB', KiB],
  ['1 MB', 1024 * KiB],
  ['4 MB', 4096 * KiB],
]

/** `count` plus 1 KiB string values up to `bytes` in all. */
function initialState(bytes: number): Record<string, unknown> {
  const state: Record<string, unknown> = { count: 0 }
  const value = 'v'.repeat(KiB - 16)
  for (let i = 0; i * KiB < bytes; i++) state[`item${i}`] = value
  return state
}

const context = (state: ExecutionContext['state']): ExecutionContext => ({
  panelId: 'bench',
  handlerName: 'increment',
  state,
  args: { by: 1 },
  capabilities: ['state:read:count', 'state:write:count'],
})

async function sample(fn: () => Promise<void>): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn()
  const us: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    await fn()
    us.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  return us
}

/** (a): the whole state travels with every call. */
function viaObject(rt: WasmRuntime, code: CompiledHandler, initial: Record<string, unknown>): Promise<number[]> {
  const state = { ...initial }
  return sample(async () => {
    const r = await rt.execute(code, context(state))
    state.count = r.returnValue
  })
}

/** (b): the handler reads `count` from the host; the commit writes only `count`. */
function viaHandle(rt: WasmRuntime, code: CompiledHandler, state: PanelState): Promise<number[]> {
  return sample(async () => {
    const r = await rt.execute(code, context(state))
    state.apply(r.stateMutations)
  })
}

const rt = new WasmRuntime()
const code = await rt.precompile(COUNTER)
const rows: (string | number)[][] = []
const handleP50: number[] = []
for (const [label, bytes] of SIZES) {
  const initial = initialState(bytes)
  const a = await viaObject(rt, code, initial)
  const b = await viaHandle(rt, code, rt.createState(initial))
  handleP50.push(percentile(b, 50))
  rows.push([label, percentile(a, 50), percentile(a, 99), percentile(b, 50), percentile(b, 99)])
}
await rt.shutdown()
printTable(`one-key trigger (counter handler), ${N} calls per cell (µs per call, commit included)`, [
  'state',
  '(a) object p50',
  '(a) object p99',
  '(b) PanelState p50',
  '(b) PanelState p99',
], rows)
const ratio = handleP50[2] / handleP50[0]
console.log(`target (b) 4 MB p50 within 1.2× of 1 KB: ${ratio.toFixed(2)}× → ${ratio <= 1.2 ? 'met' : 'NOT met'}`)

