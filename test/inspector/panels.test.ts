import t from 'tap'
import type { Page } from 'playwright-core'
import { forecastPanel, todoPanel } from '../../examples/panels.js'
import { startServer, until } from '../infra/helpers.js'
import { api, startKernel } from '../panels/helpers.js'
import { launch, openPage, shot, unlabelled } from './helpers.js'

/** Line (1-based) of the first line of `source` containing `needle`. */
const lineOf = (source: string, needle: string) => source.split('\n').findIndex((l) => l.includes(needle)) + 1

/** Text of the state tree's row for top-level key `key`. */
const stateRow = (page: Page, key: string) => page.locator(`[data-testid=state-tree] > li[data-key="${key}"]`)

/** Fill tool `tool`'s generated form field `field` and press its Run button. */
async function run(page: Page, tool: string, fields: Record<string, string>): Promise<void> {
  const form = page.locator(`article[data-tool="${tool}"]`)
  for (const [name, value] of Object.entries(fields)) await form.getByLabel(name).fill(value)
  await form.getByRole('button', { name: `Run ${tool}` }).click()
}

t.test('panels: create the todo example from the page, drive it through generated forms, watch it live', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false })
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/`)
  const def = todoPanel('todos')

  await page.getByLabel(/Panel definition/).fill(JSON.stringify(def, null, 2))
  await page.getByRole('button', { name: 'Create panel' }).click()
  await page.waitForURL(/#\/panels\/todos$/)
  await t.resolves(page.getByTestId('version').filter({ hasText: '0' }).waitFor(), 'CONNECTED: version 0')
  t.match(await stateRow(page, 'nextId').textContent(), 'nextId: 1', 'initial state in the tree')
  const caps = await page.locator('article[data-tool="add"] .caps').textContent()
  t.match(caps, /inferred/, 'capabilities marked inferred')
  t.match(caps, /state:write:todos/, 'inferred capability shown')

  // a second browser context on the same panel
  const other = await openPage(browser, `${base}/inspector/#/panels/todos`)
  await other.getByTestId('version').filter({ hasText: '0' }).waitFor()

  await run(page, 'add', { text: 'write the kernel' })
  await page.getByTestId('version').filter({ hasText: '1' }).waitFor()
  const todos = stateRow(page, 'todos')
  t.match(await todos.textContent(), 'write the kernel', 'the state tree shows the new todo')
  t.equal(await todos.getAttribute('data-changed'), 'true', 'the changed key is highlighted')
  t.match(await page.getByTestId('events').textContent(), /todo:added.*"text":"write the kernel"/, 'EVENT logged')
  t.match(await page.getByTestId('events').locator('time').first().textContent(), /^\d\d:\d\d:\d\d\.\d{3}$/, 'with a timestamp')
  const first = page.getByTestId('runs').locator('li').first()
  t.equal(await first.getAttribute('data-status'), 'success')
  t.match(await first.textContent(), 'returned {"id":1}', 'RESULT shown')

  await other.getByTestId('version').filter({ hasText: '1' }).waitFor()
  t.match(await stateRow(other, 'todos').textContent(), 'write the kernel', 'the other context saw the PATCH live')
  t.match(await other.getByTestId('events').textContent(), 'todo:added', 'and the EVENT')
  await shot(page, 'panel')
  t.same(await unlabelled(page), [], 'every control of the panel view is labelled')
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 1280), 'fits 1280 px without scrolling sideways')

  // the generated form validates inline; nothing is sent
  await run(page, 'add', { text: '' })
  t.match(await page.locator('article[data-tool="add"]').textContent(), /must have required property 'text'/, 'inline validation error')
  t.equal(await page.getByTestId('runs').locator('li').count(), 1, 'no run for invalid args')

  // a handler that throws: the error at its line in the handler source
  await run(page, 'toggle', { id: '42' })
  const failed = page.getByTestId('runs').locator('li[data-status="error"]').first()
  await failed.waitFor()
  const toggle = def.tools.find((x) => x.name === 'toggle')!.handler
  const line = lineOf(toggle, 'throw new Error')
  t.match(await failed.textContent(), new RegExp(`no todo with id 42 at line ${line}, column \\d+`), 'error with line and column')
  t.match(await failed.locator('li[aria-current=location]').textContent(), "throw new Error('no todo with id '", 'the marked source line is the throw')
  await shot(page, 'panel-error')

  await page.setViewportSize({ width: 420, height: 800 })
  await shot(page, 'panel-narrow')
  const stateBox = (await page.locator('#panel-state').boundingBox())!
  const toolsBox = (await page.locator('#panel-tools').boundingBox())!
  t.ok(toolsBox.y >= stateBox.y + stateBox.height, 'narrow window: one column, the tools under the state')
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 420), 'and nothing wider than the window')
})

t.test('panels: compile errors of an uploaded definition point at their line and column; list and delete', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false })
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/`)
  await page.getByText('No panels in this namespace yet.').waitFor()
  await page.keyboard.press('Tab')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content', 'the first Tab stop skips to the content')
  await page.keyboard.press('Enter')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'main', 'which focuses the main region')
  t.match(page.url(), /\/inspector\/$/, 'and stays on the view')
  const broken = {
    id: 'broken',
    kind: 'demo',
    tools: [{ name: 'oops', args: { type: 'object' }, handler: 'const a = 1\nconst b = (a +\nreturn b' }],
  }
  await page.locator('input[type=file]').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(broken)) })
  await page.getByRole('button', { name: 'Create panel' }).click()
  const error = page.getByTestId('create-error')
  await error.waitFor()
  t.match(await error.textContent(), /COMPILATION_ERROR/)
  t.match(await error.textContent(), /in oops at line 3, column \d+/, 'the line of the syntax error')
  t.match(await error.locator('li[aria-current=location]').textContent(), 'return b', 'marked in the source')

  await page.getByLabel(/Panel definition/).fill('{ "kind": "x",\n  "tools": [ }')
  await page.getByRole('button', { name: 'Create panel' }).click()
  t.match(await error.textContent(), /INVALID_JSON.*line 2, column \d+/, 'a JSON syntax error has its line too')

  await page.getByLabel(/Panel definition/).fill(JSON.stringify(todoPanel('keep')))
  await page.getByRole('button', { name: 'Create panel' }).click()
  await page.waitForURL(/#\/panels\/keep$/)
  await page.getByRole('link', { name: 'Panels', exact: true }).first().click()
  const list = page.getByTestId('panel-list')
  await list.waitFor()
  t.match(await list.textContent(), /keep.*todo-list/, 'listed')
  await shot(page, 'panels')
  await page.getByRole('button', { name: 'Delete panel keep' }).click()
  await page.getByText('No panels in this namespace yet.').waitFor()
  t.pass('deleted')
})

t.test('panels: a dropped socket reconnects (with ?since=) and catches up on what it missed', async (t) => {
  const { app, base } = await startKernel(t, { authEnabled: false })
  t.equal((await api(base, 'POST', '/panels', todoPanel('todos'))).status, 201)
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/#/panels/todos`)
  await page.getByTestId('version').filter({ hasText: '0' }).waitFor()
  const urls: string[] = []
  page.on('websocket', (ws) => urls.push(ws.url()))
  for (const ws of app.websocketServer.clients) ws.terminate()
  t.equal((await api(base, 'POST', '/panels/todos/trigger/add', { args: { text: 'while away' } })).body.version, 1)
  await page.getByTestId('version').filter({ hasText: '1' }).waitFor()
  t.match(await stateRow(page, 'todos').textContent(), 'while away', 'the change made while disconnected is shown')
  t.match(urls[0], /\/panels\/todos\/ws\?since=0$/, 'reconnected asking for what came after version 0')
})

t.test('panels: a run waiting on $ext.http shows PROGRESS (suspended on which call), the loading state, then its RESULT', async (t) => {
  const service = await startServer(t, () => {}) // holds every request until the test answers it
  const { base } = await startKernel(t, { authEnabled: false, http: { allowedDomains: ['127.0.0.1'] } })
  t.equal((await api(base, 'POST', '/panels', forecastPanel(`${service.url}/forecast`))).status, 201)
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/#/panels/forecast`)
  await page.getByTestId('version').filter({ hasText: '0' }).waitFor()
  await run(page, 'load', { city: 'Lisbon' })
  const suspended = page.getByTestId('runs').locator('li[data-status="suspended"]')
  await suspended.waitFor()
  t.match(await suspended.textContent(), 'suspended on $ext.http.get()', 'PROGRESS: the pending call')
  t.match(await stateRow(page, 'loading').textContent(), 'loading: true', 'the state committed before the call is live')
  await until(() => service.open.length === 1)
  service.open[0].writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ city: 'Lisbon', tempC: 21 }))
  const done = page.getByTestId('runs').locator('li[data-status="success"]')
  await done.waitFor()
  t.match(await done.textContent(), 'returned {"city":"Lisbon","tempC":21}', 'RESULT after resuming')
  t.match(await stateRow(page, 'loading').textContent(), 'loading: false')
  t.match(await page.getByTestId('events').textContent(), 'forecast:loaded')
})
