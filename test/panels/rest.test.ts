import t from 'tap'
import { SECRET, api, counterPanel, signToken, startKernel } from './helpers.js'

t.test('create → list → get → state → trigger → delete', async (t) => {
  const { base } = await startKernel(t)
  const created = await api(base, 'POST', '/panels', counterPanel('c1', { lifecycle: { mount: '$state.mounted = true' } }))
  t.equal(created.status, 201)
  t.match(created.body, { id: 'c1', kind: 'counter', status: 'ready', version: 1, clients: 0 }, 'mount committed once')
  t.match(created.body.wsUrl, /^ws:\/\/127\.0\.0\.1:\d+\/panels\/c1\/ws$/)
  const inc = created.body.tools.find((x: { name: string }) => x.name === 'inc')
  t.same(inc.capabilities, ['events:emit:changed', 'state:read:count', 'state:write:count'], 'capabilities inferred from source')
  t.equal(inc.capabilitiesInferred, true)
  t.same(created.body.lifecycle.mount, { capabilities: ['state:write:mounted'], capabilitiesInferred: true })

  const list = await api(base, 'GET', '/panels')
  t.equal(list.status, 200)
  t.match(list.body.panels, [{ id: 'c1', version: 1, tools: ['inc', 'boom', 'setKey'] }])

  const got = await api(base, 'GET', '/panels/c1')
  t.match(got.body, { id: 'c1', namespace: 'default', status: 'ready' })
  t.same((await api(base, 'GET', '/panels/c1/state')).body, { panelId: 'c1', state: { count: 0, mounted: true }, version: 1 })

  const run = await api(base, 'POST', '/panels/c1/trigger/inc', { args: { by: 2 } })
  t.equal(run.status, 200)
  t.match(run.body, { status: 'success', returnValue: 2, version: 2, segments: 1, events: [{ name: 'changed', payload: { count: 2 } }] })
  const bare = await api(base, 'POST', '/panels/c1/trigger/inc')
  t.match(bare.body, { status: 'success', returnValue: 3, version: 3 }, 'a bodyless trigger means no args')

  const boom = await api(base, 'POST', '/panels/c1/trigger/boom', { args: {} })
  t.equal(boom.status, 200)
  t.match(boom.body, { status: 'error', error: { code: 'EXECUTION_ERROR', message: /kaboom/, line: 2 }, version: 3 })
  t.same((await api(base, 'GET', '/panels/c1/state')).body.state, { count: 3, mounted: true }, 'a failed run commits nothing')

  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /^kernel_panels 1$/m, 'panels gauge')
  t.match(metrics, /^kernel_handler_runs_total\{status="success"\} 3$/m, 'runs by status (mount + 2 triggers)')
  t.match(metrics, /^kernel_handler_runs_total\{status="error"\} 1$/m)
  t.match(metrics, /^kernel_handler_run_duration_seconds_count\{status="success"\} 3$/m, 'duration histogram')
  t.match(metrics, /^kernel_panel_sockets 0$/m)

  const del = await api(base, 'DELETE', '/panels/c1')
  t.same(del.body, { id: 'c1', deleted: true })
  t.match((await api(base, 'GET', '/panels/c1')).body, { statusCode: 404, code: 'PANEL_NOT_FOUND' })
  t.same((await api(base, 'GET', '/panels')).body, { panels: [] })
})

t.test('declared capabilities are enforced and shown as declared', async (t) => {
  const { base } = await startKernel(t)
  const def = counterPanel('ro')
  def.tools[0].capabilities = ['state:read:count']
  const created = await api(base, 'POST', '/panels', def)
  t.match(created.body.tools[0], { capabilities: ['state:read:count'], capabilitiesInferred: false })
  const run = await api(base, 'POST', '/panels/ro/trigger/inc', { args: {} })
  t.match(run.body, { status: 'error', error: { code: 'PERMISSION_DENIED' } })
  t.equal((await api(base, 'GET', '/panels/ro/state')).body.version, 0)
})

t.test('unmount runs on delete; a failing unmount still deletes', async (t) => {
  const { base } = await startKernel(t)
  await api(base, 'POST', '/panels', counterPanel('u1', { lifecycle: { unmount: "$emit('bye', $state.count)" } }))
  t.same((await api(base, 'DELETE', '/panels/u1')).body, { id: 'u1', deleted: true, unmount: 'success' })
  await api(base, 'POST', '/panels', counterPanel('u2', { lifecycle: { unmount: 'throw new Error("nope")' } }))
  t.same((await api(base, 'DELETE', '/panels/u2')).body, { id: 'u2', deleted: true, unmount: 'error' })
  t.equal((await api(base, 'GET', '/panels/u2')).status, 404)
})

t.test('bad panel definitions: typed 4xx, no panel created', async (t) => {
  const { base } = await startKernel(t, { maxPanels: 2, maxPanelsPerNamespace: 2, bodyLimitBytes: 64 * 1024 })
  await api(base, 'POST', '/panels', counterPanel('keep'))
  const tool = (over: Record<string, unknown>) => ({ name: 't', handler: 'return 1', ...over })
  const cases: Array<[string, unknown, number, string]> = [
    ['missing kind', { tools: [] }, 400, 'INVALID_DEFINITION'],
    ['tools not an array', { kind: 'k', tools: {} }, 400, 'INVALID_DEFINITION'],
    ['bad tool name', { kind: 'k', tools: [tool({ name: 'has space' })] }, 400, 'INVALID_DEFINITION'],
    ['bad panel id', { id: '../x', kind: 'k', tools: [] }, 400, 'INVALID_DEFINITION'],
    ['bad capability token', { kind: 'k', tools: [tool({ capabilities: ['root'] })] }, 400, 'INVALID_DEFINITION'],
    ['duplicate tool', { kind: 'k', tools: [tool({}), tool({})] }, 400, 'DUPLICATE_TOOL'],
    ['args not a JSON Schema', { kind: 'k', tools: [tool({ args: { type: 'nope' } })] }, 400, 'INVALID_ARGS_SCHEMA'],
    ['handler syntax error', { kind: 'k', tools: [tool({}), tool({ name: 'bad', handler: 'let x = 1\nlet = = 2' })] }, 400, 'COMPILATION_ERROR'],
    ['mount syntax error', { kind: 'k', tools: [], lifecycle: { mount: 'if (' } }, 400, 'COMPILATION_ERROR'],
    ['mount throws', { kind: 'k', tools: [], lifecycle: { mount: 'throw new Error("no")' } }, 400, 'MOUNT_FAILED'],
    ['duplicate id', counterPanel('keep'), 409, 'PANEL_EXISTS'],
    ['oversized body', { kind: 'k', tools: [tool({ handler: `return '${'x'.repeat(70_000)}'` })] }, 413, ''],
  ]
  for (const [name, body, status, code] of cases) {
    const res = await api(base, 'POST', '/panels', body)
    t.equal(res.status, status, `${name}: status`)
    if (code) t.equal(res.body.code, code, `${name}: code`)
    t.type(res.body.message, 'string', `${name}: message`)
  }
  const bad = await api(base, 'POST', '/panels', { id: 'x', kind: 'k', tools: [tool({}), tool({ name: 'bad', handler: 'let x = 1\nlet = = 2' })] })
  t.match(bad.body, { code: 'COMPILATION_ERROR', message: /bad/, details: { tool: 'bad', line: 2 } }, 'names tool and line')
  t.type(bad.body.details.column, 'number')
  t.equal((await api(base, 'POST', '/panels', '{"kind": ')).status, 400, 'malformed JSON')
  t.same((await api(base, 'GET', '/panels')).body.panels.map((p: { id: string }) => p.id), ['keep'], 'only the good panel exists')

  t.equal((await api(base, 'POST', '/panels', counterPanel('second'))).status, 201)
  const full = await api(base, 'POST', '/panels', counterPanel('third'))
  t.match(full, { status: 429, body: { code: 'TOO_MANY_PANELS' } }, 'maxPanels')
})

t.test('bad triggers: typed errors, state unchanged', async (t) => {
  const { base } = await startKernel(t)
  await api(base, 'POST', '/panels', counterPanel('c'))
  const cases: Array<[string, string, unknown, number, string]> = [
    ['unknown panel', '/panels/nope/trigger/inc', { args: {} }, 404, 'PANEL_NOT_FOUND'],
    ['unknown tool', '/panels/c/trigger/nope', { args: {} }, 404, 'TOOL_NOT_FOUND'],
    ['args fail the schema', '/panels/c/trigger/inc', { args: { by: 'two' } }, 400, 'INVALID_ARGS'],
    ['args with unknown key', '/panels/c/trigger/inc', { args: { step: 1 } }, 400, 'INVALID_ARGS'],
    ['args not an object', '/panels/c/trigger/inc', { args: [1] }, 400, 'INVALID_ARGS'],
    ['body not an object', '/panels/c/trigger/inc', '"text"', 400, 'INVALID_BODY'],
  ]
  for (const [name, path, body, status, code] of cases) {
    const res = await api(base, 'POST', path, body)
    t.equal(res.status, status, `${name}: status`)
    t.equal(res.body.code, code, `${name}: code`)
  }
  t.same((await api(base, 'GET', '/panels/c/state')).body, { panelId: 'c', state: { count: 0 }, version: 0 })
})

t.test('namespaces from the token scope panels; missing token is 401', async (t) => {
  const { base } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET })
  const as = (ns: string) => ({ authorization: `Bearer ${signToken({ namespace: ns })}` })
  t.match(await api(base, 'GET', '/panels'), { status: 401, body: { code: 'UNAUTHORIZED' } })
  t.equal((await api(base, 'POST', '/panels', counterPanel('shared'), as('a'))).status, 201)
  t.equal((await api(base, 'GET', '/panels/shared', undefined, as('b'))).status, 404, "another namespace's panel is 404")
  t.equal((await api(base, 'POST', '/panels/shared/trigger/inc', { args: {} }, as('b'))).status, 404)
  t.same((await api(base, 'GET', '/panels', undefined, as('b'))).body, { panels: [] })
  t.equal((await api(base, 'POST', '/panels', counterPanel('shared'), as('b'))).status, 201, 'ids are per namespace')
  await api(base, 'POST', '/panels/shared/trigger/inc', { args: { by: 5 } }, as('b'))
  t.equal((await api(base, 'GET', '/panels/shared/state', undefined, as('a'))).body.state.count, 0, "b's trigger left a's panel alone")
  t.equal((await api(base, 'GET', '/panels/shared', undefined, as('a'))).body.namespace, 'a')
})
