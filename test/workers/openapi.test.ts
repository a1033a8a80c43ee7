import t from 'tap'
import swagger from '@fastify/swagger'
import { startServer, call } from './helpers.js'

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
