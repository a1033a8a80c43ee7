import t from 'tap'
import { ERROR_STATUS, kernelError, KernelError, toErrorReply } from '../../plugins/errors.js'
import { RuntimeError } from '../../wasm-runtime/errors.js'
import { SECRET, api, counterPanel, signToken, startGateServer, startKernel } from '../panels/helpers.js'

type Reply = { status: number; body: any }
type Checks = Pick<typeof t, 'equal' | 'match'>

/** Every reply must carry the catalog's status for its code, in the status line and the body. */
function checkReply(t: Checks, name: string, res: Reply, status: number, code: string): void {
  t.equal(res.status, status, `${name}: HTTP status`)
  t.match(res.body, { statusCode: status, code, error: String, message: String }, `${name}: body`)
  t.equal((ERROR_STATUS as Record<string, number>)[code], status, `${name}: ${code} is ${status} in ERROR_STATUS`)
}

t.test('each error code a REST client can get answers its catalog status', async (t) => {
  const { base } = await startKernel(t, { maxPanels: 2, maxPanelsPerNamespace: 2, bodyLimitBytes: 16 * 1024, maxStateBytes: 2000 })
  t.equal((await api(base, 'POST', '/panels', counterPanel('c'))).status, 201)
  const cases: Array<[string, () => Promise<Reply>, number, string]> = [
    ['definition fails its schema', () => api(base, 'POST', '/panels', { tools: [] }), 400, 'INVALID_DEFINITION'],
    ['handler does not compile', () => api(base, 'POST', '/panels', { id: 'x', kind: 'k', tools: [{ name: 'bad', handler: 'let x = 1\nlet = = 2' }] }), 400, 'COMPILATION_ERROR'],
    ['malformed JSON body', () => api(base, 'POST', '/panels', '{"kind": '), 400, 'INVALID_JSON'],
    ['args fail the tool schema', () => api(base, 'POST', '/panels/c/trigger/inc', { args: { by: 'two' } }), 400, 'INVALID_ARGS'],
    ['trigger body not an object', () => api(base, 'POST', '/panels/c/trigger/inc', '"text"'), 400, 'INVALID_BODY'],
    ['unknown panel', () => api(base, 'GET', '/panels/nope'), 404, 'PANEL_NOT_FOUND'],
    ['unknown tool', () => api(base, 'POST', '/panels/c/trigger/nope', { args: {} }), 404, 'TOOL_NOT_FOUND'],
    ['unknown route', () => api(base, 'GET', '/no/such/route'), 404, 'ROUTE_NOT_FOUND'],
    ['duplicate panel', () => api(base, 'POST', '/panels', counterPanel('c')), 409, 'PANEL_EXISTS'],
    ['body over bodyLimitBytes', () => api(base, 'POST', '/panels', { kind: 'k', tools: [{ name: 't', handler: `return '${'x'.repeat(20_000)}'` }] }), 413, 'PAYLOAD_TOO_LARGE'],
    ['state over maxStateBytes', () => api(base, 'POST', '/panels/c/trigger/setKey', { args: { key: 'big', value: 'y'.repeat(3000) } }), 413, 'STATE_TOO_LARGE'],
    ['media type not JSON', async () => {
      const res = await fetch(`${base}/panels`, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      return { status: res.status, body: await res.json() }
    }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['one panel more than maxPanels', async () => {
      await api(base, 'POST', '/panels', counterPanel('second'))
      return api(base, 'POST', '/panels', counterPanel('third'))
    }, 429, 'TOO_MANY_PANELS'],
  ]
  for (const [name, call, status, code] of cases) checkReply(t, name, await call(), status, code)
})

t.test('a compile error reaches the REST reply with the line and column the addon reported', async (t) => {
  const { base } = await startKernel(t)
  const res = await api(base, 'POST', '/panels', { id: 'x', kind: 'k', tools: [{ name: 'bad', handler: 'const a = 1\nconst b = ;' }] })
  checkReply(t, 'syntax error', res, 400, 'COMPILATION_ERROR')
  t.same(res.body.details, { tool: 'bad', line: 2, column: 11 }, 'position from the addon Error properties')
  t.match(res.body.message, /^bad: SyntaxError: .* \(line 2, column 11\)$/, 'message is text, not JSON')
  const eof = await api(base, 'POST', '/panels', { id: 'y', kind: 'k', tools: [{ name: 'open', handler: 'return (' }] })
  t.same(eof.body.details, { tool: 'open', line: 1, column: 9 }, 'an error at the end of input points just past the source')
})

t.test('401 UNAUTHORIZED without a token, 503 CAPACITY_EXCEEDED when every instance is held', async (t) => {
  const gate = await startGateServer(t)
  const { base } = await startKernel(t, {
    authEnabled: true,
    jwtSecret: SECRET,
    http: { allowedDomains: ['127.0.0.1'] },
    runtime: { maxInstances: 1, maxQueue: 0 },
  })
  checkReply(t, 'no token', await api(base, 'GET', '/panels'), 401, 'UNAUTHORIZED')
  const auth = { authorization: `Bearer ${signToken({ namespace: 'a' })}` }
  const waiter = { id: 'w', kind: 'k', tools: [{ name: 'wait', handler: `return await $ext.http.get(${JSON.stringify(gate.url)})` }] }
  t.equal((await api(base, 'POST', '/panels', waiter, auth)).status, 201)
  t.equal((await api(base, 'POST', '/panels', counterPanel('c'), auth)).status, 201)
  const held = api(base, 'POST', '/panels/w/trigger/wait', { args: {} }, auth)
  await gate.arrived(1)
  checkReply(t, 'the one instance is suspended', await api(base, 'POST', '/panels/c/trigger/inc', { args: {} }, auth), 503, 'CAPACITY_EXCEEDED')
  gate.release({ ok: true })
  t.match(await held, { status: 200, body: { status: 'success' } }, 'the held run still finishes')
  t.match(await api(base, 'POST', '/panels/c/trigger/inc', { args: {} }, auth), { status: 200, body: { returnValue: 1 } }, 'and the instance is free again')
})

t.test('RuntimeError codes map through the same catalog', async (t) => {
  const cases: Array<[RuntimeError['code'], number]> = [
    ['INVALID_INPUT', 400],
    ['COMPILATION_ERROR', 400],
    ['UNKNOWN_EXECUTION', 500],
    ['INTERNAL_ERROR', 500],
    ['CAPACITY_EXCEEDED', 503],
    ['SHUTDOWN', 503],
  ]
  for (const [code, status] of cases) {
    t.match(toErrorReply(new RuntimeError(code, `m ${code}`)), { statusCode: status, code, message: `m ${code}` }, code)
  }
  const err = kernelError('PANEL_NOT_FOUND', 'panel "x" not found', { id: 'x' })
  t.ok(err instanceof KernelError && err instanceof Error, 'a KernelError and an Error')
  t.same(err.toReply(), { statusCode: 404, code: 'PANEL_NOT_FOUND', error: 'Not Found', message: 'panel "x" not found', details: { id: 'x' } })
  t.equal(kernelError('INVALID_ARGS', '100% wrong %s').message, '100% wrong %s', 'message kept verbatim (no format directives)')
})
