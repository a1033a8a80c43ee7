import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import inspector from '../../plugins/inspector.js'
import { errorHandler } from '../../plugins/errors.js'
import { SECRET, startKernel } from '../panels/helpers.js'

t.test('GET /inspector redirects to the page, keeping the query; the page and its assets are public', async (t) => {
  const { base } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET, prefix: '/kernel' })
  const redirect = await fetch(`${base}/inspector?token=abc`, { redirect: 'manual' })
  t.equal(redirect.status, 302)
  t.equal(redirect.headers.get('location'), 'inspector/?token=abc', 'relative, so any prefix works')
  const page = await fetch(`${base}/inspector/`)
  t.equal(page.status, 200, 'no token needed for the page itself')
  t.equal(page.headers.get('cache-control'), 'no-cache')
  const html = await page.text()
  t.match(html, '<title>workspace-kernel inspector</title>')
  const script = /src="\.\/(assets\/[^"]+\.js)"/.exec(html)
  t.ok(script, 'relative asset URL')
  const asset = await fetch(`${base}/inspector/${script![1]}`)
  t.equal(asset.status, 200)
  t.match(asset.headers.get('cache-control'), 'immutable', 'hashed assets are cached for good')
  t.notMatch(await asset.text(), /https?:\/\/(cdn|unpkg|fonts)\./, 'nothing loaded from a CDN')
  t.equal((await fetch(`${base}/panels`)).status, 401, 'the API still needs the token')
  const openapi = await (await fetch(`${base}/openapi.json`)).json()
  t.notOk(Object.keys(openapi.paths).some((p) => p.includes('inspector')), 'not part of the API document')
})

t.test('inspector.enabled = false: no page', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false, inspector: { enabled: false } })
  t.equal((await fetch(`${base}/inspector/`)).status, 404)
})

t.test('without a build the page answers 503 INSPECTOR_NOT_BUILT', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'wk-inspector-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(inspector, { root: empty })
  t.teardown(() => app.close())
  const res = await app.inject('/inspector/')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'INSPECTOR_NOT_BUILT', message: /run npm run setup/ })
  t.equal((await app.inject('/inspector/assets/x.js')).statusCode, 503)
})
