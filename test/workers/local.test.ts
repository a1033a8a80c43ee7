import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WorkerSummary } from '../../schemas/workers.js'
import { workerIdFor } from '../../plugins/workers/local.js'
import { startServer, call, leaks } from './helpers.js'

const FORBIDDEN = ['metadata.json', 'pods', 'session', 'socket', 'token', 'credential']

function writePod(dataDir: string, name: string, content: string | object) {
  mkdirSync(join(dataDir, 'pods', name), { recursive: true })
  writeFileSync(join(dataDir, 'pods', name, 'metadata.json'), typeof content === 'string' ? content : JSON.stringify(content))
}

const meta = (workspaceRoot: string | undefined, extra: object = {}) => ({
  worker_name: 'coder',
  workspace_root: workspaceRoot,
  resolved_manifest_snapshot: { role: 'coder', profile_selector: 'builtin:coder' },
  ...extra,
})

t.test('local runtime: read-only view of this workspace’s metadata', async (t) => {
  const dir = t.testdir({ workspace: { project: {}, other: {} }, data: {} })
  const root = join(dir, 'workspace', 'project')
  const dataDir = join(dir, 'data')
  writePod(dataDir, 'coder', meta(root, { active: { segment_id: 'seg-1' } }))
  writePod(dataDir, 'reviewer', meta(`${root}/`, { worker_name: 'reviewer' }))
  writePod(dataDir, 'other', meta(join(dir, 'workspace', 'other')))
  writePod(dataDir, 'missing', meta(undefined))
  writePod(dataDir, 'broken', `{"workspace_root": "${root}", oops`)
  writePod(dataDir, 'array', '[1,2]')
  mkdirSync(join(dataDir, 'pods', 'empty'))
  writePod(dataDir, 'tenant', meta(root, { worker_name: 'tenant', namespace: 'team-b' }))
  const { app, base } = await startServer({ workspaceRoot: root, dataDir })
  t.teardown(() => app.close())

  const list = await call(base, 'GET', '/runtimes/local/workers')
  t.equal(list.status, 200)
  t.same(list.body.items.map((w: WorkerSummary) => w.label), ['coder', 'reviewer'])
  const coder = list.body.items[0]
  t.match(coder, {
    runtime_id: 'local',
    worker_id: workerIdFor('coder'),
    role: 'coder',
    profile: 'builtin:coder',
    status: 'active',
    workspace: { visibility: 'current_workspace' },
    capabilities: { can_accept_input: false, can_stop: false, can_read_transcript: false, can_stream_events: false },
  })
  t.equal(list.body.items[1].status, 'metadata_only')
  const codes = list.body.diagnostics.map((d: { code: string; worker_id?: string }) => [d.code, d.worker_id])
  t.same(codes.sort(), [
    ['local_metadata_invalid', workerIdFor('array')],
    ['local_metadata_invalid', workerIdFor('broken')],
    ['local_metadata_unreadable', workerIdFor('empty')],
    ['local_workspace_not_visible', workerIdFor('other')],
    ['local_workspace_root_missing', workerIdFor('missing')],
  ])

  const one = await call(base, 'GET', `/runtimes/local/workers/${coder.worker_id}`)
  t.same(one.body, { ...coder, diagnostics: [] })
  t.equal((await call(base, 'GET', `/runtimes/local/workers/${workerIdFor('other')}`)).status, 404, 'other workspace is invisible')
  t.equal((await call(base, 'GET', `/runtimes/local/workers/${workerIdFor('nobody')}`)).body.code, 'UNKNOWN_WORKER')

  t.test('it is read-only, and says so truthfully', async (t) => {
    const summary = (await call(base, 'GET', '/runtimes/local')).body
    t.match(summary, { status: 'available', capabilities: { can_list_workers: true, can_spawn: false, can_stop: false, can_accept_input: false } })
    const spawn = await call(base, 'POST', '/runtimes/local/workers', { intent: { kind: 'workspace_companion' } })
    t.match(spawn, { status: 409, body: { state: 'unsupported' } })
    const path = `/runtimes/local/workers/${coder.worker_id}`
    t.match(await call(base, 'POST', `${path}/input`, { content: 'x' }), { status: 409, body: { state: 'unsupported' } })
    t.match(await call(base, 'POST', `${path}/stop`, {}), { status: 409, body: { state: 'unsupported' } })
    t.match(await call(base, 'GET', `${path}/transcript`), { status: 409, body: { state: 'unsupported' } })
  })

  t.test('no projection or diagnostic leaks paths, file names or file contents', async (t) => {
    const texts = [
      list.text,
      one.text,
      (await call(base, 'GET', '/runtimes')).text,
      (await call(base, 'GET', '/runtimes/local/hosts')).text,
    ]
    t.same(leaks(texts.join('\n'), [dir, root, 'oops', ...FORBIDDEN]), [])
  })
})

t.test('worker ids: distinct names never collide; long names stay unique and resolvable', async (t) => {
  const dir = t.testdir({ project: {}, data: {} })
  const root = join(dir, 'project')
  const dataDir = join(dir, 'data')
  const names = ['00001KVWECEQG-Coder.Worker', 'foo.bar', 'foo-bar', 'Ticket#Worker@Reviewer', `${'TicketWorkerWithVeryLongName'.repeat(8)}-A`, `${'TicketWorkerWithVeryLongName'.repeat(8)}-B`]
  for (const name of names) writePod(dataDir, name, meta(root, { worker_name: name }))
  const { app, base } = await startServer({ workspaceRoot: root, dataDir })
  t.teardown(() => app.close())

  const list = await call(base, 'GET', '/runtimes/local/workers')
  const ids: string[] = list.body.items.map((w: WorkerSummary) => w.worker_id)
  t.equal(ids.length, names.length)
  t.equal(new Set(ids).size, names.length, 'all unique')
  t.ok(ids.includes(workerIdFor('foo.bar')) && ids.includes(workerIdFor('foo-bar')))
  t.ok(ids.some((id) => id.length === 120), 'a long name reaches the 120-char bound')
  for (const id of ids) {
    t.match(id, /^[A-Za-z0-9_:-]{1,120}$/)
    const res = await call(base, 'GET', `/runtimes/local/workers/${id}`)
    t.equal(res.status, 200, `resolves ${id}`)
    t.equal(res.body.worker_id, id)
  }
})

t.test('no data dir: the host is degraded and listing reports it', async (t) => {
  const { app, base } = await startServer({ workspaceRoot: t.testdir() })
  t.teardown(() => app.close())
  const hosts = await call(base, 'GET', '/runtimes/local/hosts')
  t.match(hosts.body.items, [{ status: 'degraded', capabilities: { can_list_workers: false } }])
  t.match(hosts.body.diagnostics, [{ code: 'local_registry_unavailable' }])
  t.match((await call(base, 'GET', '/runtimes/local')).body, { status: 'degraded' })
  const workers = await call(base, 'GET', '/runtimes/local/workers')
  t.match(workers, { status: 200, body: { items: [], diagnostics: [{ code: 'local_registry_unavailable' }] } })
})

t.test('a data dir without pods/ is a diagnostic, not a 500', async (t) => {
  const dir = t.testdir({ data: {} })
  const { app, base } = await startServer({ workspaceRoot: dir, dataDir: join(dir, 'data') })
  t.teardown(() => app.close())
  const workers = await call(base, 'GET', '/runtimes/local/workers')
  t.match(workers, { status: 200, body: { items: [], diagnostics: [{ code: 'local_registry_unreadable', message: /ENOENT/ }] } })
  t.same(leaks(workers.text, [dir, 'pods']), [])
})

t.test('many broken files: diagnostics stay capped at 16', async (t) => {
  const dir = t.testdir({ data: {} })
  for (let i = 0; i < 30; i++) writePod(join(dir, 'data'), `bad-${String(i).padStart(2, '0')}`, 'not json')
  const { app, base } = await startServer({ workspaceRoot: dir, dataDir: join(dir, 'data') })
  t.teardown(() => app.close())
  const workers = await call(base, 'GET', '/runtimes/local/workers')
  t.equal(workers.status, 200)
  t.equal(workers.body.diagnostics.length, 16)
  t.ok(workers.body.diagnostics.every((d: { code: string }) => d.code === 'local_metadata_invalid'))
})
