import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import swagger from '@fastify/swagger'
import auth from '../../plugins/auth.js'
import { KernelError } from '../../plugins/errors.js'
import { opaqueId, isValidId, assertValidId, ID_DIGEST_HEX } from '../../plugins/workers/ids.js'
import { diagnostic, type CallContext, type WorkerRuntime } from '../../plugins/workers/runtime.js'
import type { HostSummary, RuntimeSummary, WorkerSummary } from '../../schemas/workers.js'
import { startServer, call, wsClient, upgradeStatus } from './helpers.js'

// Registry-wide rules: opaque ids, runtime-scoped lookups, bounded lists, truthful unsupported
// results, failing adapters, namespaces and the OpenAPI document.

t.test('generated ids are <prefix><sanitized>-<16 hex of SHA-256>', async (t) => {
  const id = opaqueId('local-', 'Coder.Worker')
  t.match(id, /^local-coder-worker-[0-9a-f]{16}$/)
  t.ok(isValidId(id))
  t.equal(opaqueId('local-', 'Coder.Worker'), id, 'deterministic')
})

t.test('distinct names never collide, even when they sanitize alike', async (t) => {
  const dotted = opaqueId('local-', 'foo.bar')
  const dashed = opaqueId('local-', 'foo-bar')
  t.not(dotted, dashed)
  t.equal(dotted.slice(0, -ID_DIGEST_HEX), dashed.slice(0, -ID_DIGEST_HEX), 'same readable part, different digest')
  for (const weird of ['Ticket#Worker@Reviewer', '../../etc/passwd', '', '   ', 'ünïcødé']) {
    const id = opaqueId('w-', weird)
    t.ok(isValidId(id), `${JSON.stringify(weird)} → ${id}`)
    t.notOk(id.includes('.') || id.includes('/') || id.includes('@') || id.includes('#'))
  }
})

t.test('long names are truncated to 120 chars but stay unique', async (t) => {
  const a = opaqueId('local-', `${'TicketWorkerWithVeryLongName'.repeat(8)}-A`)
  const b = opaqueId('local-', `${'TicketWorkerWithVeryLongName'.repeat(8)}-B`)
  t.equal(a.length, 120)
  t.equal(b.length, 120)
  t.not(a, b)
  t.ok(isValidId(a) && isValidId(b))
})

t.test('the readable part can hide what is hashed', async (t) => {
  const id = opaqueId('local-', 'host', '/srv/secret/workspace')
  t.notOk(id.includes('srv') || id.includes('secret'))
  t.not(id, opaqueId('local-', 'host', '/srv/other'))
})

t.test('incoming ids are checked before any lookup', async (t) => {
  for (const bad of ['../secret', 'a/b', 'a b', 'x'.repeat(121), '', 'id%00']) {
    const err = catchError(() => assertValidId('worker_id', bad))
    t.ok(err instanceof KernelError, JSON.stringify(bad))
    t.match(err, { statusCode: 400, code: 'INVALID_IDENTIFIER' })
  }
  t.doesNotThrow(() => assertValidId('worker_id', 'emb:coder_1-abc'))
  t.doesNotThrow(() => assertValidId('worker_id', 'x'.repeat(120)))
})

t.test('malformed ids in URLs answer 400 INVALID_IDENTIFIER', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  const cases: Array<['GET' | 'POST', string, unknown?]> = [
    ['GET', '/runtimes/embedded/workers/..%2Fsecret'],
    ['GET', '/runtimes/..%2Fsecret'],
    ['GET', '/runtimes/..%2Fsecret/workers'],
    ['GET', `/runtimes/embedded/workers/${'a'.repeat(121)}/transcript`],
    ['POST', '/runtimes/embedded/workers/a.b/input', { content: 'x' }],
    ['POST', '/runtimes/embedded/workers/a%20b/stop', {}],
  ]
  for (const [method, path, body] of cases) {
    const res = await call(base, method, path, body)
    t.equal(res.status, 400, path)
    t.equal(res.body.code, 'INVALID_IDENTIFIER', path)
  }
  const res = await call(base, 'GET', '/runtimes/embedded/workers/..%2Fsecret')
  t.match(res.body.message, /worker_id "\.\.\/secret" is not a valid id/)
})

function catchError(fn: () => void): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

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
    t.equal(spawn.status, 409, 'unsupported is a client error, never a 5xx')
    t.match(spawn.body, { state: 'unsupported', diagnostics: [{ code: 'spawn_unsupported' }] })
    t.notOk(spawn.body.worker, 'no fake worker')
    const stop = await call(base, 'POST', '/runtimes/runtime-a/workers/shared-worker/stop', { mode: 'force' })
    t.match(stop, { status: 409, body: { state: 'unsupported', diagnostics: [{ code: 'stop_unsupported' }] } })
    const input = await call(base, 'POST', '/runtimes/runtime-a/workers/shared-worker/input', { content: 'hi' })
    t.match(input, { status: 409, body: { state: 'unsupported', runtime_id: 'runtime-a', worker_id: 'shared-worker' } })
    t.notOk('transcript_sequence' in input.body)
    const tr = await call(base, 'GET', '/runtimes/runtime-a/workers/shared-worker/transcript')
    t.match(tr, { status: 409, body: { state: 'unsupported', items: [], total_items: 0, next_start: null } })
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
  await t.rejects(startServer({ workspaceRoot: '/x', transcriptMaxItems: 0 }), /^workers: transcriptMaxItems Expected integer to be greater or equal to 1/)
  await t.rejects(startServer({ workspaceRoot: '/x', nope: 1 } as never), /workers: nope /, 'an unknown option is named, not ignored')
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

t.test('namespaces from auth claims scope workers', async (t) => {
  const dir = t.testdir({ project: {}, data: {} })
  const root = join(dir, 'project')
  for (const [name, namespace] of [['shared', undefined], ['team-b-pod', 'team-b']] as const) {
    mkdirSync(join(dir, 'data', 'pods', name), { recursive: true })
    writeFileSync(join(dir, 'data', 'pods', name, 'metadata.json'), JSON.stringify({ worker_name: name, workspace_root: root, namespace }))
  }
  const { app, base, wsBase } = await startServer({ workspaceRoot: root, dataDir: join(dir, 'data') }, async (a) => {
    await a.register(auth, { enabled: true, secret: 'test-secret-for-workers' })
  })
  t.teardown(() => app.close())
  const tokenA = app.jwt.sign({ namespace: 'team-a' })
  const tokenB = app.jwt.sign({ namespace: 'team-b' })
  const tokenDefault = app.jwt.sign({})
  const as = (token: string) => ({ authorization: `Bearer ${token}` })

  t.match(await call(base, 'GET', '/runtimes'), { status: 401, body: { code: 'UNAUTHORIZED' } })
  t.equal((await call(base, 'GET', '/runtimes', undefined, as('not-a-jwt'))).status, 401)

  const spawned = await call(base, 'POST', '/runtimes/embedded/workers', { intent: { kind: 'workspace_companion' } }, as(tokenA))
  t.equal(spawned.status, 201)
  const id = spawned.body.worker.worker_id
  const path = `/runtimes/embedded/workers/${id}`

  t.equal((await call(base, 'GET', '/runtimes/embedded/workers', undefined, as(tokenA))).body.items.length, 1)
  t.same((await call(base, 'GET', '/runtimes/embedded/workers', undefined, as(tokenB))).body.items, [], 'team-b sees none')
  for (const [method, p, body] of [
    ['GET', path, undefined],
    ['POST', `${path}/input`, { content: 'intruder' }],
    ['POST', `${path}/stop`, { mode: 'force' }],
    ['GET', `${path}/transcript`, undefined],
  ] as const) {
    const res = await call(base, method, p, body, as(tokenB))
    t.match(res, { status: 404, body: { code: 'UNKNOWN_WORKER' } }, `${method} ${p} from another namespace`)
  }
  t.match((await call(base, 'GET', path, undefined, as(tokenA))).body, { status: 'running' }, 'the intruder changed nothing')
  t.equal((await call(base, 'GET', `${path}/transcript`, undefined, as(tokenA))).body.total_items, 0)

  t.equal(await upgradeStatus(`${wsBase}${path}/events`), 401, 'socket without token')
  t.equal(await upgradeStatus(`${wsBase}${path}/events?token=${tokenB}`), 404, 'socket from another namespace')
  const owner = wsClient(`${wsBase}${path}/events?token=${tokenA}`)
  await owner.opened
  t.match(await owner.next(), { type: 'CONNECTED', worker_id: id })
  owner.ws.close()

  const labels = async (token: string) =>
    (await call(base, 'GET', '/runtimes/local/workers', undefined, as(token))).body.items.map((w: WorkerSummary) => w.label)
  t.same(await labels(tokenDefault), ['shared'], 'metadata without a namespace belongs to default')
  t.same(await labels(tokenB), ['team-b-pod'])
  t.same(await labels(tokenA), [])
})

t.test('every worker route is in /openapi.json under the workers tag, with its schemas', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir() }, async (a) => {
    await a.register(swagger, {
      openapi: { openapi: '3.1.0', info: { title: 'test', version: '0' } },
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    })
    a.get('/openapi.json', { schema: { hide: true } }, async () => a.swagger())
  })
  t.teardown(() => app.close())
  const { status, body: doc } = await call(base, 'GET', '/openapi.json')
  t.equal(status, 200)
  const expected: Array<[string, string]> = [
    ['get', '/runtimes'],
    ['get', '/runtimes/{runtimeId}'],
    ['get', '/runtimes/{runtimeId}/hosts'],
    ['get', '/runtimes/{runtimeId}/workers'],
    ['post', '/runtimes/{runtimeId}/workers'],
    ['get', '/runtimes/{runtimeId}/workers/{workerId}'],
    ['post', '/runtimes/{runtimeId}/workers/{workerId}/stop'],
    ['post', '/runtimes/{runtimeId}/workers/{workerId}/input'],
    ['get', '/runtimes/{runtimeId}/workers/{workerId}/transcript'],
    ['get', '/runtimes/{runtimeId}/workers/{workerId}/events'],
  ]
  for (const [method, path] of expected) {
    const op = doc.paths?.[path]?.[method]
    t.ok(op, `${method.toUpperCase()} ${path} documented`)
    t.same(op?.tags, ['workers'], `${path} tagged`)
  }
  const text = JSON.stringify(doc)
  for (const id of ['WorkerSpawnRequest', 'WorkerSpawnResult', 'WorkerTranscriptPage', 'WorkerSummary', 'WorkerRuntimeList']) {
    t.ok(text.includes(id), `${id} referenced`)
  }
  const spawnBody = doc.paths['/runtimes/{runtimeId}/workers'].post.requestBody.content['application/json'].schema
  t.ok(spawnBody, 'spawn has a request body schema')
})
