import t from 'tap'
import { realpathSync } from 'node:fs'
import processes from '../../plugins/processes.js'
import { ITEM_OVERHEAD_BYTES, Transcript, TranscriptPool } from '../../plugins/workers/transcript.js'
import type { TranscriptItem } from '../../schemas/workers.js'
import { startServer, call } from './helpers.js'

// Fair shares and byte budgets of the registry (issue 10 items 3 and 4) and seed 003's run_accepted.

const intent = { kind: 'workspace_companion' } as const
const ns = (namespace: string) => ({ namespace })
const charged = (items: TranscriptItem[]) => items.reduce((n, i) => n + Buffer.byteLength(i.content) + i.role.length + ITEM_OVERHEAD_BYTES, 0)

t.test('embedded: a namespace gets a quarter of the cap; eviction of stopped workers never crosses namespaces', async (t) => {
  const { app } = await startServer({ workspaceRoot: t.testdir(), maxWorkers: 8 })
  t.teardown(() => app.close())
  const w = app.workers
  const a1 = (await w.spawn(ns('a'), 'embedded', { intent })).worker!.worker_id
  await w.spawn(ns('a'), 'embedded', { intent })
  const over = await w.spawn(ns('a'), 'embedded', { intent })
  t.match(over, { state: 'rejected', diagnostics: [{ code: 'embedded_namespace_quota' }] }, 'the 3rd of namespace a (quota 2 of 8)')
  const b1 = (await w.spawn(ns('b'), 'embedded', { intent })).worker!.worker_id
  await w.spawn(ns('b'), 'embedded', { intent })
  await w.stop(ns('b'), 'embedded', b1, 'graceful')
  await w.stop(ns('a'), 'embedded', a1, 'graceful')
  const again = await w.spawn(ns('a'), 'embedded', { intent })
  t.equal(again.state, 'accepted', 'a reuses its own stopped slot')
  await t.rejects(w.getWorker(ns('a'), 'embedded', a1), { statusCode: 404 }, 'a’s stopped worker was evicted')
  t.equal((await w.getWorker(ns('b'), 'embedded', b1)).status, 'stopped', 'b’s stopped worker is kept')
  for (const name of ['c', 'd']) for (let i = 0; i < 2; i++) t.equal((await w.spawn(ns(name), 'embedded', { intent })).state, 'accepted')
  // 8 of 8 kept now (a 2, b 2 with one stopped, c 2, d 2).
  t.match(await w.spawn(ns('e'), 'embedded', { intent }), { state: 'rejected', diagnostics: [{ code: 'embedded_worker_limit' }] }, 'full: e would need another namespace’s slot')
  t.equal((await w.getWorker(ns('b'), 'embedded', b1)).status, 'stopped', 'still not evicted for e')
})

t.test('transcripts are bounded in bytes per worker and per runtime', async (t) => {
  const perWorker = 64 * 1024
  const perRuntime = 160 * 1024
  const { app, base } = await startServer({ workspaceRoot: t.testdir(), transcriptMaxItems: 100_000, transcriptMaxBytes: perWorker, runtimeTranscriptMaxBytes: perRuntime })
  t.teardown(() => app.close())
  const w = app.workers
  const victim = (await w.spawn(ns('victim'), 'embedded', { intent })).worker!.worker_id
  await w.input(ns('victim'), 'embedded', victim, { content: 'keep me' })
  const flooders = await Promise.all([1, 2, 3, 4].map(async () => (await w.spawn(ns('flood'), 'embedded', { intent })).worker!.worker_id))
  const line = 'y'.repeat(4000)
  for (let i = 0; i < 200; i++) for (const id of flooders) await w.input(ns('flood'), 'embedded', id, { content: line })
  let held = 0
  for (const id of flooders) {
    const page = await w.transcript(ns('flood'), 'embedded', id, 0, 200)
    t.equal(page.total_items, 200, 'sequences keep counting')
    t.ok(page.first_start > 0, 'old items were dropped')
    const bytes = charged(page.items)
    t.ok(bytes <= perWorker, `a worker holds ${bytes} ≤ ${perWorker} bytes`)
    held += bytes
  }
  t.ok(held <= perRuntime, `the runtime holds ${held} ≤ ${perRuntime} bytes`)
  const kept = await w.transcript(ns('victim'), 'embedded', victim, 0, 10)
  t.same(kept.items.map((i) => i.content), ['keep me'], 'the flooding namespace trims its own transcripts first')
  const http = await call(base, 'GET', `/runtimes/embedded/workers/${victim}/transcript`)
  t.equal(http.status, 404, 'namespaces stay separate over HTTP too (default namespace)')
})

t.test('spawn accepts run_accepted (seed 003); an unsupported operation is a 409, never a 5xx', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  const run = await call(base, 'POST', '/runtimes/embedded/workers', { intent, acceptance: { kind: 'run_accepted', expected_segments: 2 } })
  t.equal(run.status, 201, run.text)
  t.match(run.body.acceptance_evidence, [{ kind: 'embedded_worker_created' }, { kind: 'run_accepted', detail: /2 segments/ }])
  const bad = await call(base, 'POST', '/runtimes/embedded/workers', { intent, acceptance: { kind: 'run_accepted' } })
  t.equal(bad.status, 400, 'expected_segments is required')
  const socket = await call(base, 'POST', '/runtimes/embedded/workers', { intent, acceptance: { kind: 'socket_ready' } })
  t.match(socket, { status: 409, body: { state: 'rejected', diagnostics: [{ code: 'embedded_runtime_no_socket' }] } })
  const local = await call(base, 'POST', '/runtimes/local/workers', { intent })
  t.match(local, { status: 409, body: { state: 'unsupported', diagnostics: [{ code: 'spawn_unsupported' }] } })
})

t.test('process workers: a flood of output stays bounded; quotas per namespace', async (t) => {
  const root = realpathSync(t.testdir())
  const perWorker = 32 * 1024
  const { app, base } = await startServer({ workspaceRoot: root, maxWorkers: 8, transcriptMaxBytes: perWorker }, async (a) => {
    await a.register(processes, { workspaceRoot: root, killGraceMs: 500, maxProcessesPerNamespace: 8 })
  })
  t.teardown(() => app.close())
  const w = app.workers
  const yes = { intent, process: { type: 'node' as const, code: 'const b = Buffer.from("y\\n".repeat(32768)); const go = () => process.stdout.write(b, go); go()' } }
  const spawned = await w.spawn(ns('flood'), 'process', yes)
  t.equal(spawned.state, 'accepted')
  const id = spawned.worker!.worker_id
  const page = await (async () => {
    for (;;) {
      const p = await w.transcript(ns('flood'), 'process', id, 0, 0)
      if (p.total_items > 200_000) return p
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  const health = await call(base, 'GET', '/runtimes/process')
  t.equal(health.status, 200, 'the registry answers while a worker floods')
  const stopped = await w.stop(ns('flood'), 'process', id, 'force')
  t.match(stopped, { state: 'accepted', worker: { status: 'cancelled' } })
  const retained: TranscriptItem[] = []
  for (let next: number | null = 0; next !== null; ) {
    const p: Awaited<ReturnType<typeof w.transcript>> = await w.transcript(ns('flood'), 'process', id, next, 200)
    retained.push(...p.items)
    next = p.next_start
  }
  t.ok(retained.length > 0 && retained.every((i) => i.content === 'y'), `one item per line (${retained.length} retained of ${page.total_items}+)`)
  t.ok(charged(retained) <= perWorker, `retained ${charged(retained)} ≤ ${perWorker} bytes`)

  const sleeper = { intent, process: { type: 'python' as const, code: 'import time; time.sleep(60)' } }
  t.equal((await w.spawn(ns('a'), 'process', sleeper)).state, 'accepted')
  t.equal((await w.spawn(ns('a'), 'process', sleeper)).state, 'accepted')
  t.match(await w.spawn(ns('a'), 'process', sleeper), { state: 'rejected', diagnostics: [{ code: 'process_namespace_quota' }] }, 'quota: a quarter of 8')
  t.equal((await w.spawn(ns('b'), 'process', sleeper)).state, 'accepted', 'another namespace is served')
})

t.test('a batch of lines: every one reaches a live listener; without one only the kept tail is built', async (t) => {
  let ids = 0
  const pool = new TranscriptPool(1024 * 1024)
  const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}`)
  const watched = new Transcript({ maxItems: 100, maxBytes: 1024 * 1024 }, (n = 1) => (ids += n), pool, 'a')
  const seen: number[] = []
  watched.subscribe((e) => e.type === 'ITEM' && seen.push(e.item.sequence))
  watched.appendAll('stdout', lines)
  t.equal(seen.length, 5000, 'the listener saw every line')
  const quiet = new Transcript({ maxItems: 100, maxBytes: 1024 * 1024 }, (n = 1) => (ids += n), pool, 'a')
  quiet.append('user', 'before')
  quiet.appendAll('stdout', lines)
  const page = quiet.page(0, 200)
  t.equal(page.total_items, 5001)
  t.equal(page.first_start, 4901)
  t.same(page.items.map((i) => i.content), lines.slice(4900), 'the newest 100 lines, in order')
  t.same(page.items.map((i) => i.sequence), Array.from({ length: 100 }, (_, i) => 4902 + i), 'sequences count the skipped lines')
  t.equal(page.items[99].event_id, ids, 'event ids count them too')
  t.ok(pool.bytes <= pool.maxBytes)
})
