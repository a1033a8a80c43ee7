/**
 * Sandbox benchmark (issue 2): per-call latency of the tiny counter handler through
 *   (a) this runtime: cached bytecode, a fresh wasmtime instance per call (state a plain object;
 *       (a') the same with the state in a PanelState, as panels run),
 *   (b) quickjs-emscripten: a new QuickJS context per call,
 *   (c) node:vm: a new context per call (pre-compiled vm.Script),
 * plus the cost of one suspend → resume cycle. All measured in this one run, sequentially.
 * Run: `npm run bench:runtime` (BENCH_ITERATIONS to change the sample count).
 */
import vm from 'node:vm'
import { getQuickJS } from 'quickjs-emscripten'
import { WasmRuntime, type ExecutionContext } from '../wasm-runtime/index.js'
import { percentile, printTable } from './stats.js'

const N = Number(process.env.BENCH_ITERATIONS ?? 2000)
const WARMUP = Math.min(200, N)
const HANDLER = `const n = ($state.count ?? 0) + $args.by; $state.count = n; $emit('changed', {n}); return n;`

const context = (count: number): ExecutionContext => ({
  panelId: 'bench',
  handlerName: 'increment',
  state: { count },
  args: { by: 1 },
  capabilities: ['state:read:count', 'state:write:count', 'events:emit:changed'],
})

async function sample(fn: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await fn(i)
  const us: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint()
    await fn(i)
    us.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  return us
}

/**
 * (a) with `state` as a plain object (copied into a private PanelState per call), or with one
 * PanelState the calls share, as panels run (`shared`: its count advances by one per call).
 */
async function benchRuntime(rt: WasmRuntime, shared = false): Promise<{ calls: number[]; inside: number[] }> {
  const compiled = await rt.precompile(HANDLER)
  const inside: number[] = []
  const state = rt.createState({ count: 0 })
  const calls = await sample(async (i) => {
    const ctx = context(i)
    if (shared) {
      ctx.state = state
      state.apply([{ operation: 'set', key: 'count', value: i }])
    }
    const r = await rt.execute(compiled, ctx)
    if (r.returnValue !== i + 1) throw new Error(`wrong result ${JSON.stringify(r)}`)
    inside.push(r.metrics.durationUs)
  })
  return { calls, inside: inside.slice(WARMUP) }
}

async function benchQuickjsEmscripten(): Promise<number[]> {
  const QuickJS = await getQuickJS()
  const wrapped = `(async function($state,$args,$emit){${HANDLER}\n})`
  return sample((i) => {
    const vmCtx = QuickJS.newContext()
    try {
      const events: unknown[] = []
      const emit = vmCtx.newFunction('$emit', (name, payload) => {
        events.push([vmCtx.getString(name), vmCtx.dump(payload)])
      })
      const state = vmCtx.unwrapResult(vmCtx.evalCode(`(${JSON.stringify({ count: i })})`))
      const args = vmCtx.unwrapResult(vmCtx.evalCode(`(${JSON.stringify({ by: 1 })})`))
      const fn = vmCtx.unwrapResult(vmCtx.evalCode(wrapped))
      const promise = vmCtx.unwrapResult(vmCtx.callFunction(fn, vmCtx.undefined, state, args, emit))
      vmCtx.runtime.executePendingJobs()
      const settled = vmCtx.getPromiseState(promise)
      const value = settled.type === 'fulfilled' ? vmCtx.dump(settled.value) : undefined
      if (settled.type === 'fulfilled') settled.value.dispose()
      const newState = vmCtx.dump(state)
      for (const h of [emit, state, args, fn, promise]) h.dispose()
      if (value !== i + 1 || newState.count !== i + 1 || events.length !== 1) throw new Error('wrong result')
    } finally {
      vmCtx.dispose()
    }
  })
}

async function benchNodeVm(): Promise<number[]> {
  const script = new vm.Script(`(async function($state,$args,$emit){${HANDLER}\n})($state,$args,$emit)`)
  return sample(async (i) => {
    const events: unknown[] = []
    const sandbox = { $state: { count: i }, $args: { by: 1 }, $emit: (n: string, p: unknown) => events.push([n, p]) }
    const value = await script.runInContext(vm.createContext(sandbox))
    if (value !== i + 1) throw new Error('wrong result')
  })
}

async function benchSuspendResume(rt: WasmRuntime): Promise<number[]> {
  const compiled = await rt.precompile(`$state.loading = true; const r = await $ext.http.get('u'); $state.loading = false; return r`)
  const ctx = { ...context(0), capabilities: ['*'], extensions: { http: ['get'] } }
  return sample(async (i) => {
    const s = await rt.execute(compiled, ctx)
    const done = await rt.resume(s.executionId!, [{ callId: 1, ok: true, value: i }])
    if (done.returnValue !== i) throw new Error('wrong result')
  })
}

const rt = new WasmRuntime({ maxInstances: 4 })
const a = await benchRuntime(rt)
const aShared = await benchRuntime(rt, true)
const b = await benchQuickjsEmscripten()
const c = await benchNodeVm()
const d = await benchSuspendResume(rt)
await rt.shutdown()

const row = (name: string, us: number[]) => [name, percentile(us, 50), percentile(us, 99)]
printTable(`counter handler, ${N} calls each (µs per call)`, ['path', 'p50 µs', 'p99 µs'], [
  row('(a) wasm-runtime: cached bytecode, fresh instance', a.calls),
  row('    of which inside the sandbox (metrics.durationUs)', a.inside),
  row("(a') same, state in a PanelState (the panels' path)", aShared.calls),
  row('    of which inside the sandbox (metrics.durationUs)', aShared.inside),
  row('(b) quickjs-emscripten: new context per call', b),
  row('(c) node:vm: new context per call', c),
  row('(d) wasm-runtime: execute + suspend + resume', d),
])
const ap50 = percentile(a.calls, 50)
const speedup = percentile(b, 50) / ap50
console.log(`target (a) p50 ≤ 100 µs: ${ap50.toFixed(1)} µs → ${ap50 <= 100 ? 'met' : 'NOT met'}`)
console.log(`target (a) ≥ 5× faster than (b): ${speedup.toFixed(1)}× → ${speedup >= 5 ? 'met' : 'NOT met'}`)
const sharedSpeedup = percentile(b, 50) / percentile(aShared.calls, 50)
console.log(`(a') with a PanelState: ${sharedSpeedup.toFixed(1)}× faster than (b)`)
