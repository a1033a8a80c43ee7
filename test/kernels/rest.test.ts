/**
 * Jupyter REST shapes, bad input (specs/kernels.md section 6), namespaces and quotas, against a real
 * server with real ipykernels.
 */
import t from 'tap'
import { alive, startServer, until } from './helpers.js'

t.test('REST: shapes, habits, bad input, namespaces, quotas', async (t) => {
  const server = await startServer(t, { maxKernels: 3, maxKernelsPerNamespace: 2 })

  t.test('/api, /api/kernelspecs, /api/status', async (t) => {
    const api = await fetch(`${server.base}/api`)
    t.equal(api.status, 200, '/api is public')
    t.match(await api.json(), { version: String })
    const specs = await server.request('GET', '/api/kernelspecs?1733000000000')
    t.equal(specs.body.default, 'python3')
    t.match(specs.body.kernelspecs.python3.spec, { language: 'python', interrupt_mode: 'signal', metadata: { wk: { mode: 'process' } } })
    const all = await server.request('GET', '/api/kernelspecs?all=true')
    for (const s of Object.values(all.body.kernelspecs) as Array<{ available: boolean; reason?: string }>) {
      t.ok(s.available || typeof s.reason === 'string', 'unavailable kinds say why')
    }
    t.match((await server.request('GET', '/api/status')).body, { kernels: 0, connections: 0, started: String })
    t.equal((await fetch(`${server.base}/api/status`)).status, 401, 'auth required')
  })

  t.test('Authorization: token <jwt>, empty JSON body, cache-buster, Location', async (t) => {
    const res = await fetch(`${server.base}/api/kernels?${Date.now()}`, {
      method: 'POST',
      headers: { authorization: `token ${server.token()}`, 'content-type': 'application/json' },
    })
    t.equal(res.status, 201)
    const kernel = await res.json()
    t.equal(res.headers.get('location'), `/api/kernels/${kernel.id}`)
    t.match(kernel, { name: 'python3', execution_state: 'idle', connections: 0, language: 'python' })
    const pid = server.app.kernels.get('alpha', kernel.id).pid as number
    t.ok(alive(pid))
    t.equal((await server.request('GET', '/processes')).body.processes.length, 0, 'kernel processes are hidden from /processes')
    t.equal((await server.request('GET', `/processes/${pid}`)).status, 404)
    t.equal((await server.request('POST', `/api/kernels/${kernel.id}/interrupt`, { headers: { 'content-type': 'application/json' } })).status, 204, 'idle interrupt is a no-op')
    const del = await server.request('DELETE', `/api/kernels/${kernel.id}`)
    t.equal(del.status, 204)
    t.notOk(alive(pid), 'process reaped')
    t.equal((await server.request('DELETE', `/api/kernels/${kernel.id}`)).status, 404)
  })

  t.test('bad input: typed errors, nothing started', async (t) => {
    const cases: Array<[unknown, number, string]> = [
      [{ name: 'cobol' }, 400, 'UNKNOWN_KERNEL_NAME'],
      [{ kernel_id: '8d1c0a4e-0000-4000-8000-000000000000' }, 400, 'INVALID_KERNEL_REQUEST'],
      [{ mode: 'main_thread', lang: 'python' }, 400, 'UNSUPPORTED_KERNEL_MODE'],
      [{ env: { LD_PRELOAD: '/x.so' } }, 400, 'ENV_NOT_ALLOWED'],
      [{ env: { SECRET: 'x' } }, 400, 'ENV_NOT_ALLOWED'],
      [{ path: '../..' }, 400, 'CWD_OUTSIDE_WORKSPACE'],
      [{ env: 'A=1' }, 400, 'INVALID_KERNEL_REQUEST'],
    ]
    for (const [body, status, code] of cases) {
      const res = await server.request('POST', '/api/kernels', { body })
      t.equal(res.status, status, JSON.stringify(body))
      t.equal(res.body.code, code)
    }
    const unknown = await server.request('POST', '/api/kernels', { body: { name: 'cobol' } })
    t.match(unknown.body.message, /python3/, 'lists the names')
    const bad = await fetch(`${server.base}/api/kernels`, { method: 'POST', headers: { authorization: `Bearer ${server.token()}`, 'content-type': 'application/json' }, body: '{nope' })
    t.equal(bad.status, 400)
    for (const id of ['not-a-uuid', '00000000-0000-0000-0000-000000000000']) {
      for (const [method, path] of [['GET', ''], ['DELETE', ''], ['POST', '/interrupt'], ['POST', '/restart']]) {
        const res = await server.request(method, `/api/kernels/${id}${path}`)
        t.equal(res.status, 404, `${method} ${id}${path}`)
        t.equal(res.body.code, 'KERNEL_NOT_FOUND')
      }
    }
    t.same((await server.request('GET', '/api/kernels')).body, [])
  })

  t.test('namespaces and quotas', async (t) => {
    const a1 = await server.request('POST', '/api/kernels', { body: {} })
    const a2 = await server.request('POST', '/api/kernels', { body: {} })
    t.equal(a2.status, 201)
    const a3 = await server.request('POST', '/api/kernels', { body: {} })
    t.equal(a3.status, 429)
    t.equal(a3.body.code, 'NAMESPACE_KERNEL_LIMIT')
    const beta = server.token('beta')
    t.same((await server.request('GET', '/api/kernels', { token: beta })).body, [], 'beta sees none of alpha')
    for (const [method, path] of [['GET', ''], ['DELETE', ''], ['POST', '/interrupt'], ['POST', '/restart']]) {
      t.equal((await server.request(method, `/api/kernels/${a1.body.id}${path}`, { token: beta })).status, 404)
    }
    const b1 = await server.request('POST', '/api/kernels', { body: {}, token: beta })
    t.equal(b1.status, 201)
    const b2 = await server.request('POST', '/api/kernels', { body: {}, token: beta })
    t.equal(b2.status, 429)
    t.equal(b2.body.code, 'TOO_MANY_KERNELS')
    // sessions are namespaced too
    const session = await server.request('POST', '/api/sessions', { body: { path: 'n.ipynb', type: 'notebook', kernel: { id: b1.body.id } }, token: beta })
    t.equal(session.status, 201)
    t.equal((await server.request('GET', `/api/sessions/${session.body.id}`)).status, 404)
    t.equal((await server.request('POST', '/api/sessions', { body: { path: 'x.ipynb', kernel: { id: b1.body.id } } })).status, 404, "alpha cannot bind beta's kernel")
    t.equal((await server.request('DELETE', `/api/sessions/${session.body.id}`, { token: beta })).status, 204)
    for (const k of [a1, a2]) t.equal((await server.request('DELETE', `/api/kernels/${k.body.id}`)).status, 204)
  })
})

t.test('server shutdown leaves no kernel process', async (t) => {
  const server = await startServer(t, { poolSize: 1 })
  const res = await server.request('POST', '/api/kernels', { body: {} })
  t.equal(res.status, 201)
  await until(() => server.app.kernels.poolStatus().python3.ready === 1, 60_000, 'the pool to fill')
  const pids = server.app.processes.list({ owner: 'kernels' }).map((p) => p.pid)
  t.equal(pids.length, 2, 'one claimed kernel, one pooled')
  await server.app.close()
  for (const pid of pids) t.notOk(alive(pid), `kernel ${pid} is gone`)
  t.same(server.app.processes.list({ owner: 'kernels' }), [])
})

t.test('server shutdown while a pooled kernel is still starting: abandoned, nothing left', async (t) => {
  const server = await startServer(t, { poolSize: 1 })
  const pids = await until(() => {
    const list = server.app.processes.list({ owner: 'kernels' }).map((p) => p.pid)
    return list.length > 0 && server.app.kernels.poolStatus().python3.starting === 1 ? list : undefined
  }, 20_000, 'the pooled kernel process')
  await server.app.close()
  for (const pid of pids) t.notOk(alive(pid), `kernel ${pid} is gone`)
  t.same(server.app.kernels.poolStatus().python3, { target: 1, ready: 0, starting: 0 })
})
