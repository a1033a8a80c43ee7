import t from 'tap'
import type { HostSummary, RuntimeSummary, WorkerSummary } from '../../schemas/workers.js'
import { KernelError } from '../../plugins/errors.js'
import { diagnostic, type CallContext, type WorkerRuntime } from '../../plugins/workers/runtime.js'
import { startServer, call } from './helpers.js'

/** A minimal read-only adapter, as an embedding app would register: one host, fixed workers. */
class FixtureRuntime implements WorkerRuntime {
  constructor(
    readonly id: string,
    private readonly workers: Array<{ id: string; label: string }>,
    private readonly noisy = 0,
  ) {}
  async summary(_ctx: CallContext, limit: number): Promise<RuntimeSummary> {
    return {
      runtime_id: this.id,
      label: `fixture ${this.id}`,
      kind: 'fixture',
      status: 'available',
      identity_authority: 'registry_projection',
      host_ids: [`${this.id}-host`].slice(0, limit),
      capabilities: {
        can_list_hosts: true,
        can_list_workers: true,
        can_get_worker: true,
        can_spawn: false,
        can_stop: false,
        can_accept_input: false,
        can_stream_events: false,
        can_read_transcript: false,
        max_workers: this.workers.length,
      },
      diagnostics: [],
    }
  }
  async listHosts(): Promise<{ items: HostSummary[]; diagnostics: [] }> {
    const s = await this.summary({ namespace: 'default' }, 1)
    return {
      items: [{ runtime_id: this.id, host_id: `${this.id}-host`, label: 'h', kind: 'fixture', status: 'available', observed_at: new Date().toISOString(), capabilities: s.capabilities, diagnostics: [] }],
      diagnostics: [],
    }
  }
  async listWorkers(_ctx: CallContext, limit: number) {
    const noise = Array.from({ length: this.noisy }, (_, i) => diagnostic('fixture_noise', 'info', `finding ${i}`))
    return { items: this.workers.slice(0, limit).map((w) => this.project(w)), diagnostics: noise }
  }
  async getWorker(_ctx: CallContext, workerId: string) {
    const w = this.workers.find((x) => x.id === workerId)
    return { worker: w && this.project(w), diagnostics: [] }
  }
  private project(w: { id: string; label: string }): WorkerSummary {
    return {
      runtime_id: this.id,
      worker_id: w.id,
      host_id: `${this.id}-host`,
      label: w.label,
      role: null,
      profile: null,
      workspace: { visibility: 'opaque', identity: 'fixture' },
      status: 'running',
      created_at: null,
      implementation: { kind: 'fixture', display_hint: 'fixture' },
      capabilities: { can_accept_input: false, can_stop: false, can_stream_events: false, can_read_transcript: false },
      diagnostics: [],
    }
  }
}

const many = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `w-${i}`, label: `worker ${i}` }))

t.test('runtimes, hosts and workers with registered adapters', async (t) => {
  const runtimes = [
    new FixtureRuntime('runtime-a', [{ id: 'shared-worker', label: 'worker from runtime a' }]),
    new FixtureRuntime('runtime-b', [{ id: 'shared-worker', label: 'worker from runtime b' }]),
  ]
  const { app, base } = await startServer({ workspaceRoot: t.testdir(), runtimes })
  t.teardown(() => app.close())

  const list = await call(base, 'GET', '/runtimes')
  t.equal(list.status, 200)
  t.same(list.body.items.map((r: RuntimeSummary) => r.runtime_id), ['embedded', 'process', 'local', 'runtime-a', 'runtime-b'])
  t.ok(Array.isArray(list.body.diagnostics))

  const one = await call(base, 'GET', '/runtimes/runtime-b')
  t.equal(one.body.label, 'fixture runtime-b')
  const hosts = await call(base, 'GET', '/runtimes/runtime-a/hosts')
  t.same(hosts.body.items.map((h: HostSummary) => h.host_id), ['runtime-a-host'])

  t.test('worker lookups are scoped by runtime id', async (t) => {
    const b = await call(base, 'GET', '/runtimes/runtime-b/workers/shared-worker')
    t.equal(b.status, 200)
    t.match(b.body, { runtime_id: 'runtime-b', host_id: 'runtime-b-host', label: 'worker from runtime b' })
    const a = await call(base, 'GET', '/runtimes/runtime-a/workers/shared-worker')
    t.match(a.body, { runtime_id: 'runtime-a', label: 'worker from runtime a' })
    // Another runtime has a worker with this id; this one does not.
    const wrong = await call(base, 'GET', '/runtimes/embedded/workers/shared-worker')
    t.equal(wrong.status, 404)
    t.equal(wrong.body.code, 'UNKNOWN_WORKER')
  })

  t.test('unknown runtime and unknown worker are told apart', async (t) => {
    const r = await call(base, 'GET', '/runtimes/runtime-missing/workers/shared-worker')
    t.match(r, { status: 404, body: { code: 'UNKNOWN_RUNTIME', message: /runtime-missing/ } })
    const w = await call(base, 'GET', '/runtimes/runtime-a/workers/worker-missing')
    t.match(w, { status: 404, body: { code: 'UNKNOWN_WORKER', message: /worker-missing/ } })
    for (const path of ['/runtimes/runtime-missing', '/runtimes/runtime-missing/hosts', '/runtimes/runtime-missing/workers']) {
      t.equal((await call(base, 'GET', path)).body.code, 'UNKNOWN_RUNTIME', path)
    }
    const spawn = await call(base, 'POST', '/runtimes/runtime-missing/workers', { intent: { kind: 'workspace_companion' } })
    t.match(spawn, { status: 404, body: { code: 'UNKNOWN_RUNTIME' } })
    const input = await call(base, 'POST', '/runtimes/runtime-a/workers/worker-missing/input', { content: 'x' })
    t.match(input, { status: 404, body: { code: 'UNKNOWN_WORKER' } })
  })

  t.test('operations an adapter lacks answer a typed unsupported result', async (t) => {
    const spawn = await call(base, 'POST', '/runtimes/runtime-a/workers', { intent: { kind: 'workspace_companion' } })
    t.equal(spawn.status, 501)
    t.match(spawn.body, { state: 'unsupported', diagnostics: [{ code: 'spawn_unsupported' }] })
    t.notOk(spawn.body.worker, 'no fake worker')
    const stop = await call(base, 'POST', '/runtimes/runtime-a/workers/shared-worker/stop', { mode: 'force' })
    t.match(stop, { status: 501, body: { state: 'unsupported', diagnostics: [{ code: 'stop_unsupported' }] } })
    const input = await call(base, 'POST', '/runtimes/runtime-a/workers/shared-worker/input', { content: 'hi' })
    t.match(input, { status: 501, body: { state: 'unsupported', runtime_id: 'runtime-a', worker_id: 'shared-worker' } })
    t.notOk('transcript_sequence' in input.body)
    const tr = await call(base, 'GET', '/runtimes/runtime-a/workers/shared-worker/transcript')
    t.match(tr, { status: 501, body: { state: 'unsupported', items: [], total_items: 0, next_start: null } })
  })
})

t.test('lists are bounded by limit, with a max, and diagnostics are capped at 16', async (t) => {
  const runtimes = [new FixtureRuntime('big', many(30), 40)]
  const { app, base } = await startServer({ workspaceRoot: t.testdir(), runtimes, maxListLimit: 25, defaultListLimit: 10 })
  t.teardown(() => app.close())

  const def = await call(base, 'GET', '/runtimes/big/workers')
  t.equal(def.body.items.length, 10, 'default limit')
  t.equal(def.body.diagnostics.length, 16, 'diagnostics capped')
  const five = await call(base, 'GET', '/runtimes/big/workers?limit=5')
  t.same(five.body.items.map((w: WorkerSummary) => w.worker_id), ['w-0', 'w-1', 'w-2', 'w-3', 'w-4'])
  t.equal((await call(base, 'GET', '/runtimes/big/workers?limit=25')).body.items.length, 25)
  t.equal((await call(base, 'GET', '/runtimes/big/workers?limit=0')).body.items.length, 0)
  t.equal((await call(base, 'GET', '/runtimes?limit=2')).body.items.length, 2)

  for (const path of ['/runtimes/big/workers?limit=26', '/runtimes?limit=1000', '/runtimes/big/hosts?limit=26', '/runtimes/embedded/workers?limit=99']) {
    const res = await call(base, 'GET', path)
    t.equal(res.status, 400, path)
    t.equal(res.body.code, 'LIMIT_TOO_LARGE', path)
    t.match(res.body.message, /maximum of 25/, path)
  }
})

t.test('a duplicate runtime id is refused at registration', async (t) => {
  const { app } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  t.throws(() => app.workers.register(new FixtureRuntime('embedded', [])), { code: 'DUPLICATE_RUNTIME', statusCode: 409 })
  t.throws(() => app.workers.register(new FixtureRuntime('bad/id', [])), { code: 'INVALID_IDENTIFIER' })
  app.workers.register(new FixtureRuntime('late', many(1)))
  const res = await app.workers.listRuntimes({ namespace: 'default' })
  t.equal(res.items.at(-1)?.runtime_id, 'late', 'register() after start adds the adapter')
})

t.test('bad plugin options fail at registration', async (t) => {
  await t.rejects(startServer({ workspaceRoot: '' }), /workspaceRoot is required/)
  await t.rejects(startServer({ workspaceRoot: '/x', maxListLimit: 10, defaultListLimit: 20 }), /defaultListLimit exceeds maxListLimit/)
})

/** An adapter whose backend is down: every call throws. */
class BrokenRuntime extends FixtureRuntime {
  constructor() {
    super('broken', [{ id: 'w-1', label: 'w' }])
  }
  override async summary(): Promise<RuntimeSummary> {
    throw new Error('backend at 10.0.0.7:9000 refused')
  }
  override async listWorkers(): Promise<never> {
    throw new Error('backend at 10.0.0.7:9000 refused')
  }
  async spawn(): Promise<never> {
    throw new KernelError(503, 'BACKEND_DOWN', 'the backend is down')
  }
}

t.test('a failing adapter is a diagnostic or a typed error, never a 500', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir(), runtimes: [new BrokenRuntime()] })
  t.teardown(() => app.close())
  const list = await call(base, 'GET', '/runtimes')
  t.equal(list.status, 200)
  t.match(list.body.items.at(-1), { runtime_id: 'broken', status: 'unavailable', diagnostics: [{ code: 'runtime_summary_failed' }] })
  const workers = await call(base, 'GET', '/runtimes/broken/workers')
  t.match(workers, { status: 200, body: { items: [], diagnostics: [{ code: 'runtime_list_failed' }] } })
  t.notOk(list.text.includes('10.0.0.7') || workers.text.includes('10.0.0.7'), 'the adapter’s error text is not passed on')
  const spawn = await call(base, 'POST', '/runtimes/broken/workers', { intent: { kind: 'workspace_companion' } })
  t.match(spawn, { status: 503, body: { statusCode: 503, code: 'BACKEND_DOWN', message: 'the backend is down' } })
})
