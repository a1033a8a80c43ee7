import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exitCode, freePort, startBinary, waitFor } from './binary.js'

const counter = (id: string) => ({
  id,
  kind: 'counter',
  initialState: { count: 0 },
  tools: [{ name: 'bump', handler: 'const n = $state.count + 1; $state.count = n; $state["at" + (n % 7)] = n; return n' }],
})

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: res.status, body: await res.json() }
}

/** The standalone server on a free port with this data dir; resolves once it listens. */
async function serve(t: Tap.Test, dataDir: string) {
  const port = await freePort()
  const bin = startBinary({ WK_PORT: String(port), WK_DATA_DIR: dataDir, WK_LOG_LEVEL: 'info' })
  t.teardown(() => bin.child.kill('SIGKILL'))
  await waitFor(() => bin.lines.find((l) => l.url), bin.child).catch((err) => {
    throw new Error(`${err.message}\n${bin.stderr()}\n${JSON.stringify(bin.lines)}`)
  })
  return { ...bin, base: `http://127.0.0.1:${port}` }
}

/** The state the patch log replays to, from `initial`. */
function replay(initial: Record<string, unknown>, patches: Array<{ mutations: Array<{ key: string; value?: unknown; operation: string }> }>) {
  const state: Record<string, unknown> = { ...initial }
  for (const p of patches) for (const m of p.mutations) {
    if (m.operation === 'delete') delete state[m.key]
    else state[m.key] = m.value
  }
  return state
}

t.test('SIGTERM, then the same WK_DATA_DIR: panels, state and versions are back; the next trigger continues', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wk-restart-'))
  const first = await serve(t, dir)
  t.equal((await call(first.base, 'POST', '/panels', counter('c'))).status, 201)
  for (let i = 0; i < 10; i++) await call(first.base, 'POST', '/panels/c/trigger/bump', { args: {} })
  const before = (await call(first.base, 'GET', '/panels/c/state')).body
  first.child.kill('SIGTERM')
  t.equal(await exitCode(first.child), 0)

  const second = await serve(t, dir)
  t.same((await call(second.base, 'GET', '/panels/c/state')).body, before)
  t.match((await call(second.base, 'POST', '/panels/c/trigger/bump', { args: {} })).body, { returnValue: 11, version: 11 })
  second.child.kill('SIGTERM')
  await exitCode(second.child)
})

t.test('SIGKILL during a burst: every panel is back at the version of its last acknowledged commit or later, equal to its log replayed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wk-kill-'))
  const first = await serve(t, dir)
  const ids = ['a', 'b']
  for (const id of ids) await call(first.base, 'POST', '/panels', counter(id))
  const acked: Record<string, number> = { a: 0, b: 0 }
  let killed = false
  // interleaved, so both panels are mid-burst when the kill comes
  const burst = Array.from({ length: 600 }, (_, i) => ids[i % 2]).map((id) =>
    call(first.base, 'POST', `/panels/${id}/trigger/bump`, { args: {} }).then((r) => {
      if (!killed && r.status === 200) acked[id] = Math.max(acked[id], r.body.version)
    }, () => undefined))
  await waitFor(() => (acked.a >= 30 && acked.b >= 30 ? true : undefined), first.child)
  killed = true
  first.child.kill('SIGKILL')
  await exitCode(first.child)
  await Promise.all(burst)
  t.ok(acked.a > 0 && acked.b > 0, `acknowledged before the kill: a=${acked.a} b=${acked.b}`)

  const second = await serve(t, dir)
  for (const id of ids) {
    const { body } = await call(second.base, 'GET', `/panels/${id}/state`)
    t.ok(body.version >= acked[id], `${id}: version ${body.version} ≥ last acknowledged ${acked[id]}`)
    t.equal(body.state.count, body.version, `${id}: one increment per committed version, nothing torn`)
    const log = (await call(second.base, 'GET', `/panels/${id}/patches?since=0&limit=1000`)).body
    t.equal(log.patches.length, body.version)
    t.same(replay({ count: 0 }, log.patches), body.state, `${id}: the state is its log replayed`)
  }
  t.match((await call(second.base, 'POST', '/panels/a/trigger/bump', { args: {} })).status, 200)
})

t.test('a store that cannot be opened: exit 1 naming the path and the cause', async (t) => {
  const notADir = join(mkdtempSync(join(tmpdir(), 'wk-bad-')), 'file')
  writeFileSync(notADir, 'not a folder')
  const a = startBinary({ WK_PORT: String(await freePort()), WK_DATA_DIR: notADir })
  t.equal(await exitCode(a.child), 1)
  const fatalA = a.lines.find((l) => l.level === 60)
  t.match(fatalA?.msg, `cannot open the store at ${join(notADir, 'kernel.db')}`)
  t.match(fatalA?.msg, /ENOTDIR|not a directory/)

  const corrupt = mkdtempSync(join(tmpdir(), 'wk-corrupt-'))
  writeFileSync(join(corrupt, 'kernel.db'), Buffer.alloc(8192, 'garbage!'))
  const b = startBinary({ WK_PORT: String(await freePort()), WK_DATA_DIR: corrupt })
  t.equal(await exitCode(b.child), 1)
  const fatalB = b.lines.find((l) => l.level === 60)
  t.match(fatalB?.msg, `cannot open the store at ${join(corrupt, 'kernel.db')}`)
  t.match(fatalB?.msg, /not a database/)
})
