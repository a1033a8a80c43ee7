/**
 * Where executions run (issue 11): the worker threads' results reach JS through one threadsafe
 * function per runtime, which keeps the process alive exactly while some result is due, and
 * concurrent executions of different panels all complete with their own results whichever
 * thread (the event loop's inline slice or a worker) ran them.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { WasmRuntime } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const index = fileURLToPath(new URL('../../wasm-runtime/index.ts', import.meta.url))

/** Runs `body` (an ES module with WasmRuntime imported) in a fresh node; its stdout and exit code. */
function child(body: string): Promise<{ stdout: string; code: number | null }> {
  const script = `import { WasmRuntime } from ${JSON.stringify(index)}\n${body}`
  return new Promise((resolve) => {
    const p = execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 }, (_err, stdout) =>
      resolve({ stdout, code: p.exitCode }),
    )
  })
}

t.test('a pending worker result keeps the process alive until it arrives; then nothing holds it open', async (t) => {
  const { stdout, code } = await child(`
    const rt = new WasmRuntime({ inlineSliceMs: 0, workerThreads: 1 })
    const code = await rt.precompile('let x = 0; for (let i = 0; i < 300000; i++) x += i; return x')
    rt.execute(code, { panelId: 'p', handlerName: 'h', state: {}, capabilities: [] }).then((r) => console.log(r.status, r.returnValue))
  `)
  t.equal(stdout.trim(), 'success 44999850000', 'the result arrived though nothing else held the event loop')
  t.equal(code, 0, 'the process then exited on its own: the runtime holds no handle while idle')
})

t.test('64 executions over 16 panels in flight at once each get their own result', async (t) => {
  for (const inlineSliceMs of [0, 1]) {
    const rt = new WasmRuntime({ workerThreads: 2, inlineSliceMs })
    const code = await rt.precompile('$state.count = $state.count + $args.by; return [$args.panel, $state.count]')
    const states = Array.from({ length: 16 }, () => rt.createState({ count: 0 }))
    const runs = Array.from({ length: 64 }, (_, i) =>
      rt.execute(code, ctx({ state: states[i % 16], args: { by: i, panel: `p${i % 16}` }, capabilities: ['*'] })),
    )
    const results = await Promise.all(runs)
    t.same(
      results.map((r) => r.returnValue),
      Array.from({ length: 64 }, (_, i) => [`p${i % 16}`, i]),
      `inlineSliceMs ${inlineSliceMs}: every call read its panel's committed count (0) and its own args`,
    )
    t.equal(rt.getStats().byStatus.success, 64)
    await rt.shutdown()
  }
})

t.test('placement: pool runs on a worker thread, inline on the event loop; idleThreads counts free workers', async (t) => {
  const rt = new WasmRuntime({ workerThreads: 1, inlineSliceMs: 10_000 })
  t.teardown(() => rt.shutdown())
  // long enough (≈ 0.1 s) that the pool run is still going when idleThreads is read
  const code = await rt.precompile('let x = 0; for (let i = 0; i < 5e6; i++) x += i; return $args.n * 2')
  // the worker that settled the precompile counts as busy until it looks for its next job
  for (let i = 0; i < 200 && rt.idleThreads() !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(rt.idleThreads(), 1, 'nothing running: every worker is idle')
  const pooled = rt.execute(code, ctx({ args: { n: 2 } }), undefined, 'pool')
  t.equal(rt.idleThreads(), 0, 'a pool execution occupies the worker until it is done')
  t.match(await pooled, { status: 'success', returnValue: 4 })
  t.match(await rt.execute(code, ctx({ args: { n: 3 } })), { status: 'success', returnValue: 6 }, 'inline is the default')
  t.match(await rt.execute(code, ctx({ args: { n: 4 } }), undefined, 'inline'), { status: 'success', returnValue: 8 })
  t.same(rt.getStats().byPlacement, { inline: 2, pool: 1 })
  await t.rejects(rt.execute(code, ctx(), undefined, 'elsewhere' as 'pool'), { code: 'INVALID_INPUT', message: /placement must be 'inline' or 'pool'/ })
  t.equal(rt.getStats().executions, 3, 'a bad placement ran nothing')
})

t.test('placement pool keeps the timeout and the memory limit', async (t) => {
  const rt = new WasmRuntime({ workerThreads: 1, memoryLimitBytes: 16 * 1024 * 1024 })
  t.teardown(() => rt.shutdown())
  const spin = await rt.precompile('while (true) {}')
  const grow = await rt.precompile('const a = []; for (;;) a.push(new Array(100000).fill(1))')
  t.match(await rt.execute(spin, ctx(), 50, 'pool'), { status: 'error', error: { code: 'TIMEOUT', message: /50 ms timeout/ } })
  t.match(await rt.execute(grow, ctx(), undefined, 'pool'), { status: 'error', error: { code: 'MEMORY_LIMIT' } })
  t.same(rt.getStats().byPlacement, { inline: 0, pool: 2 })
  await rt.shutdown()
  t.equal(rt.idleThreads(), 0, 'a shut-down runtime has no worker to offer')
})
