import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import auth from '../../plugins/auth.js'
import type { WorkerSummary } from '../../schemas/workers.js'
import { startServer, call, wsClient, upgradeStatus } from './helpers.js'

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
