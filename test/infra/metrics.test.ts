import t from 'tap'
import Fastify from 'fastify'
import { request } from 'undici'
import { register as globalRegistry } from 'prom-client'
import metrics from '../../plugins/metrics.js'

t.test('each app has its own registry; GET /metrics serves it with route timings', async (t) => {
  const apps = [Fastify(), Fastify()]
  const bases: string[] = []
  for (const app of apps) {
    t.teardown(() => app.close())
    await app.register(metrics) // twice in one process: no "already registered" clash
    app.get('/work', async () => ({ done: true }))
    bases.push(await app.listen({ port: 0, host: '127.0.0.1' }))
  }
  t.not(apps[0].promRegistry, apps[1].promRegistry)
  for (let i = 0; i < 3; i++) await (await request(`${bases[0]}/work`)).body.dump()

  const res = await request(`${bases[0]}/metrics`)
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = await res.body.text()
  t.match(text, /http_request_duration_seconds_count\{method="GET",route="\/work",status_code="200"\} 3/)
  t.match(text, /process_cpu_user_seconds_total/, 'Node process metrics too')
  const other = await (await request(`${bases[1]}/metrics`)).body.text()
  t.notMatch(other, /route="\/work",status_code="200"\} 3/, 'the other app counts only its own requests')
  t.equal((await globalRegistry.getMetricsAsJSON()).length, 0, 'nothing lands in the global registry')
})
