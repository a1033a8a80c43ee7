import t from 'tap'
import { opaqueId, isValidId, assertValidId, ID_DIGEST_HEX } from '../../plugins/workers/ids.js'
import { KernelError } from '../../plugins/errors.js'
import { startServer, call } from './helpers.js'

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
