import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import t from 'tap'
import { alive, startServer } from './helpers.js'

const tempDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith('wk-workerd-')).sort()

t.test('workerd serves the sample worker and inline code on a loopback port', async (t) => {
  const srv = await startServer(t)
  const sample = await srv.request('POST', '/processes', { type: 'workerd' })
  t.equal(sample.status, 201)
  t.match(sample.body.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${sample.body.url}/hello?x=1`)
  t.equal(res.status, 200)
  t.same(await res.json(), { hello: 'from workerd', method: 'GET', path: '/hello' })

  const code = "export default { async fetch(req) { return new Response('echo:' + (await req.text()), { status: 202 }) } }"
  const custom = await srv.request('POST', '/processes', { type: 'workerd', code })
  const echoed = await fetch(custom.body.url, { method: 'POST', body: 'ping' })
  t.equal(echoed.status, 202)
  t.equal(await echoed.text(), 'echo:ping')

  const dirs = tempDirs()
  const killed = await srv.request('DELETE', `/processes/${custom.body.pid}`)
  t.equal(killed.body.exit.reason, 'killed')
  t.notOk(alive(custom.body.pid), 'workerd is gone after DELETE')
  t.equal(tempDirs().length, dirs.length - 1, 'its temporary config directory is removed')
  await t.rejects(fetch(custom.body.url), 'nothing listens on its port any more')
})

t.test('a worker that does not load is 400 WORKERD_START_FAILED with workerd’s message, and nothing is left', async (t) => {
  const srv = await startServer(t)
  const dirs = tempDirs()
  const res = await srv.request('POST', '/processes', { type: 'workerd', code: 'export default {' })
  t.equal(res.status, 400)
  t.equal(res.body.code, 'WORKERD_START_FAILED')
  t.match(res.body.message, /exited during startup.*SyntaxError/s)
  t.same((await srv.request('GET', '/processes')).body.processes, [])
  t.same(tempDirs(), dirs)
  const badField = await srv.request('POST', '/processes', { type: 'workerd', args: ['--inspector-addr=0.0.0.0:9229'] })
  t.same([badField.status, badField.body.code], [400, 'INVALID_SPAWN_REQUEST'], 'workerd takes no free-form flags')
})
