import t from 'tap'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GUEST_PATH, addon } from '../../wasm-runtime/addon.js'
import { RuntimeError, TRAP_CODES, WasmRuntime } from '../../wasm-runtime/index.js'
import { ctx } from './helpers.js'

const rt = new WasmRuntime({ maxSourceBytes: 1024 })
t.teardown(() => rt.shutdown())

t.test('syntax errors are COMPILATION_ERROR with line and column of the handler source', async (t) => {
  await t.rejects(rt.precompile(`const a = 1\nconst b = ;`), { code: 'COMPILATION_ERROR', line: 2, column: 11 })
  await t.rejects(rt.execute(`return (`, ctx()), { code: 'COMPILATION_ERROR', line: 1, column: 9 }, 'an error at the end of input points just past the source')
})

t.test('the addon throws compile errors with line, column and the guest stack as properties, not JSON', async (t) => {
  const raw = new (addon().Runtime)({ guestPath: GUEST_PATH, workerThreads: 1 })
  t.teardown(() => raw.shutdown())
  const err = (await raw.precompile(`const a = 1\nconst b = ;`).then(() => undefined, (e: unknown) => e)) as Record<string, unknown>
  t.ok(err instanceof Error, 'an Error')
  t.match(err, { code: 'COMPILATION_ERROR', line: 2, column: 11, message: /^SyntaxError: /, guestStack: String })
  t.notMatch(err.message as string, /^\{/, 'the message is the text, not a JSON object')
  const wrapped = await rt.precompile(`const a = 1\nconst b = ;`).then(() => undefined, (e: unknown) => e)
  t.ok(wrapped instanceof RuntimeError, 'the wrapper rethrows it as a RuntimeError')
  t.match(wrapped, { code: 'COMPILATION_ERROR', line: 2, column: 11, message: err.message, guestStack: err.guestStack })
})

t.test('TRAP_CODES maps every trap kind the addon declares, and only those', async (t) => {
  t.same(Object.keys(TRAP_CODES).sort(), Object.values(addon().TrapKind).sort())
})

t.test('bad sources are INVALID_INPUT', async (t) => {
  await t.rejects(rt.precompile(42 as never), { code: 'INVALID_INPUT', message: /must be a string, got number/ })
  await t.rejects(rt.execute(null as never, ctx()), { code: 'INVALID_INPUT' })
  await t.rejects(rt.execute({ bytecode: 'x' } as never, ctx()), { code: 'INVALID_INPUT' })
  await t.rejects(rt.precompile('x'.repeat(1025)), { code: 'INVALID_INPUT', message: /1025 bytes; the limit is 1024/ })
})

t.test('invalid context shapes are INVALID_INPUT', async (t) => {
  const bad: [unknown, RegExp][] = [
    [null, /expected an object/],
    [{ ...ctx(), panelId: 1 }, /panelId/],
    [{ ...ctx(), state: [] }, /state must be an object/],
    [{ ...ctx(), capabilities: 'all' }, /capabilities/],
    [{ ...ctx(), capabilities: [1] }, /capabilities/],
    [{ ...ctx(), extensions: { http: 'get' } }, /extensions.http/],
    [{ ...ctx(), args: { n: 1n } }, /not JSON-serializable/],
  ]
  for (const [context, message] of bad) {
    await t.rejects(rt.execute('return 1', context as never), { code: 'INVALID_INPUT', message })
  }
  await t.rejects(rt.execute('return 1', ctx(), -5), { code: 'INVALID_INPUT', message: /timeoutMs/ })
  t.equal(rt.getStats().running, 0, 'nothing was left running')
})

t.test('bytecode that is not a handler is INVALID_HANDLER, not a crash', async (t) => {
  const r = await rt.execute({ bytecode: Buffer.from('not bytecode at all'), cacheKey: 'x', compileTimeUs: 0, cacheHit: false }, ctx())
  t.equal(r.status, 'error')
  t.ok(['INVALID_HANDLER', 'INTERNAL_ERROR'].includes(r.error!.code), r.error!.code)
  t.equal((await rt.execute('return 3', ctx())).returnValue, 3)
})

t.test('the disk cache serves a second runtime', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wk-cache-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const a = new WasmRuntime({ cacheDir: dir })
  const first = await a.precompile('return "disk"')
  await a.shutdown()
  t.equal(first.cacheHit, false)
  t.ok(readdirSync(dir, { recursive: true }).length > 0, 'a cache file was written')
  const b = new WasmRuntime({ cacheDir: dir })
  t.teardown(() => b.shutdown())
  const second = await b.precompile('return "disk"')
  t.equal(second.cacheHit, true)
  t.equal((await b.execute(second, ctx())).returnValue, 'disk')
})
