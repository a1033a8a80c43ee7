import t from 'tap'
import Fastify from 'fastify'
import { Type } from '@sinclair/typebox'
import { request } from 'undici'
import { defineError, errorHandler } from '../../plugins/errors.js'
import { buildApp } from '../../app.js'

async function call(url: string, method = 'GET', body?: string, headers: Record<string, string> = {}) {
  const res = await request(url, { method: method as 'GET', body, headers })
  return { status: res.statusCode, body: (await res.body.json()) as any, headers: res.headers }
}

t.test('every error becomes { statusCode, code, error, message }', async (t) => {
  const app = Fastify({ bodyLimit: 100, logger: false })
  t.teardown(() => app.close())
  await app.register(errorHandler)
  app.post('/items', { schema: { body: Type.Object({ name: Type.String() }) } }, async () => ({ ok: true }))
  app.get('/kernel-error', async () => {
    throw defineError('ITEM_EXISTS', 409)('Item x exists', { id: 'x' })
  })
  app.get('/crash', async () => {
    throw new Error('secret internals')
  })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const json = { 'content-type': 'application/json' }

  t.same((await call(`${base}/kernel-error`)).body, { statusCode: 409, code: 'ITEM_EXISTS', error: 'Conflict', message: 'Item x exists', details: { id: 'x' } })
  t.match(await call(`${base}/items`, 'POST', '{"nom":"x"}', json), {
    status: 400,
    body: { statusCode: 400, code: 'VALIDATION_ERROR', error: 'Bad Request', message: /name/ },
  })
  t.match(await call(`${base}/items`, 'POST', '{"name":', json), { status: 400, body: { code: 'INVALID_JSON' } })
  t.match(await call(`${base}/items`, 'POST', JSON.stringify({ name: 'x'.repeat(200) }), json), {
    status: 413,
    body: { statusCode: 413, code: 'PAYLOAD_TOO_LARGE', error: 'Payload Too Large' },
  })
  t.match(await call(`${base}/items`, 'POST', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), {
    status: 415,
    body: { code: 'UNSUPPORTED_MEDIA_TYPE' },
  })
  t.same(await call(`${base}/crash`).then((r) => r.body), {
    statusCode: 500,
    code: 'INTERNAL_ERROR',
    error: 'Internal Server Error',
    message: 'Internal Server Error',
  }, 'a crash does not leak its message')
  t.same((await call(`${base}/nowhere?x=1`)).body, {
    statusCode: 404,
    code: 'ROUTE_NOT_FOUND',
    error: 'Not Found',
    message: 'Route GET /nowhere not found',
  })
})

t.test('the kernel app: body limit, CORS, /docs', async (t) => {
  const app = await buildApp({ logLevel: 'silent', bodyLimitBytes: 2000, corsOrigins: ['http://ui.example.test'] })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })

  const big = JSON.stringify({ kind: 'k', tools: [], title: 'x'.repeat(3000) })
  t.match(await call(`${base}/panels`, 'POST', big, { 'content-type': 'application/json' }), {
    status: 413,
    body: { code: 'PAYLOAD_TOO_LARGE' },
  })
  t.same((await call(`${base}/panels`)).body.panels, [], 'the refused body created nothing')

  const allowed = await call(`${base}/health`, 'GET', undefined, { origin: 'http://ui.example.test' })
  t.equal(allowed.headers['access-control-allow-origin'], 'http://ui.example.test')
  const other = await call(`${base}/health`, 'GET', undefined, { origin: 'http://evil.example.test' })
  t.notOk(other.headers['access-control-allow-origin'], 'other origins get no CORS header')

  const docs = await request(`${base}/docs/`)
  t.equal(docs.statusCode, 200)
  t.match(await docs.body.text(), /swagger/i)
})
