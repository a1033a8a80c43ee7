import t from 'tap'
import pkg from '../../package.json' with { type: 'json' }
import { todoPanel } from '../../examples/panels.js'
import { api, startKernel } from '../panels/helpers.js'
import { launch, openPage, shot } from './helpers.js'

t.test('workers: runtimes → hosts → workers, spawn, input, transcript', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false })
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/#/workers`)
  const embedded = page.locator('#runtime-embedded')
  await embedded.getByText('available').first().waitFor()
  t.match(await page.locator('#runtime-local').textContent(), /degraded/, 'the local runtime without a data dir is degraded')
  t.match(await page.locator('#runtime-local .diagnostics').textContent(), /warning|error|info/, 'with its diagnostics')

  await embedded.getByRole('button', { name: 'Spawn a companion' }).click()
  const worker = embedded.locator('li button.link').first()
  await worker.waitFor()
  await worker.click()
  await page.getByLabel('Input to the worker').fill('hello inspector')
  await page.getByRole('button', { name: 'Send' }).click()
  const item = page.locator('.transcript li.user').first()
  await item.waitFor()
  t.match(await item.textContent(), /#1 .*user.*hello inspector/, 'the input is the first transcript item')

  const { body: list } = await api(base, 'GET', '/runtimes/embedded/workers')
  const id = list.items[0].worker_id
  for (let i = 2; i <= 25; i++) {
    await api(base, 'POST', `/runtimes/embedded/workers/${id}/input`, { content: `line ${i}` })
  }
  await page.getByText('items 6–25 of 25').waitFor()
  t.pass('the latest page: the last 20 items')
  await page.getByRole('button', { name: 'Older' }).click()
  await page.getByText('items 1–20 of 25').waitFor()
  t.match(await page.locator('.transcript li').first().textContent(), 'hello inspector', 'paged back to the first item')
  await shot(page, 'workers')
})

t.test('health: /health and live figures from /metrics', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false })
  const browser = await launch(t)
  t.equal((await api(base, 'POST', '/panels', todoPanel('t1'))).status, 201)
  t.equal((await api(base, 'POST', '/panels/t1/trigger/add', { args: { text: 'x' } })).body.status, 'success')
  t.equal((await api(base, 'POST', '/panels/t1/trigger/toggle', { args: { id: 9 } })).body.status, 'error')
  const page = await openPage(browser, `${base}/inspector/#/health`)
  await page.getByTestId('health').getByText(pkg.version).waitFor()
  t.match(await page.getByTestId('health').textContent(), /statusok/, 'health status')
  await page.getByTestId('chart-panels').getByText('1', { exact: true }).waitFor()
  t.pass('panels: 1')
  await page.getByText(/runs so far: error 1, success 1/).waitFor()
  t.pass('runs by status from the counter')
  t.match(await page.getByTestId('chart-handler p50').textContent(), /\d+\.\d\d ms/, 'p50 duration from the histogram')
  await page.getByTestId('chart-runs success / 2s').getByText('0', { exact: true }).waitFor()
  t.pass('a second sample: no runs since the first')
  await shot(page, 'health')
})
