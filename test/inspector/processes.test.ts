import t from 'tap'
import type { Page } from 'playwright-core'
import { api, startKernel } from '../panels/helpers.js'
import { launch, openPage, shot, unlabelled } from './helpers.js'

/** The terminal's screen lines (xterm.js DOM renderer), trailing blanks trimmed. */
async function screen(page: Page): Promise<string[]> {
  const rows = await page.locator('[data-testid=terminal] .xterm-rows > div').allTextContents()
  return rows.map((r) => r.replace(/\u00a0/g, ' ').trimEnd())
}

/** Wait until some screen line matches `re`; returns that line. */
async function waitForLine(page: Page, re: RegExp): Promise<string> {
  let found = ''
  await page.waitForFunction(
    (src) => [...document.querySelectorAll('[data-testid=terminal] .xterm-rows > div')].some((d) => new RegExp(src).test((d.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd())),
    re.source,
  )
  for (const l of await screen(page)) if (re.test(l)) found = l
  return found
}

/** Resolves once `check()` resolves true, polling every 50 ms (tap's timeout bounds it). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50))
}

t.test('processes: spawn bash from the page, type into its xterm.js terminal, late attach, resize, exit', async (t) => {
  const { base } = await startKernel(t, { authEnabled: false, prefix: '/kernel' }) // the page finds the API beside itself
  const browser = await launch(t)
  const page = await openPage(browser, `${base}/inspector/#/processes`)
  await page.getByLabel('Type').selectOption('shell')
  await page.getByRole('button', { name: 'Spawn' }).click()
  await page.waitForURL(/#\/processes\/\d+$/)
  const pid = Number(/(\d+)$/.exec(page.url())![1])
  await page.getByTestId('exit-status').filter({ hasText: 'running' }).waitFor()

  await page.locator('[data-testid=terminal]').click()
  await page.keyboard.type('echo hi')
  await page.keyboard.press('Enter')
  t.equal(await waitForLine(page, /^hi$/), 'hi', 'the output line of echo hi')
  t.ok((await screen(page)).some((l) => l.endsWith('echo hi')), 'the typed command echoed by the PTY')

  // the terminal was fitted to its box: the PTY got RESIZE
  await page.keyboard.type('stty size')
  await page.keyboard.press('Enter')
  const size = await waitForLine(page, /^\d+ \d+$/)
  const [rows, cols] = size.split(' ').map(Number)
  t.not(cols, 100, `the PTY has the terminal's width (${rows}×${cols}), not the spawn's 100 columns`)
  await shot(page, 'terminal')
  t.same(await unlabelled(page), [], 'every control of the terminal view is labelled (xterm.js labels its input)')

  // late attach: a second page gets the output so far replayed
  const late = await openPage(browser, `${base}/inspector/#/processes/${pid}`)
  t.equal(await waitForLine(late, /^hi$/), 'hi', 'replayed to a late attacher')

  // a signal goes to the foreground job: SIGINT ends `sleep`, the shell lives on
  await page.keyboard.type('sleep 30; echo after-sleep')
  await page.keyboard.press('Enter')
  await until(async () => (await api(base, 'GET', `/processes/${pid}`)).body.foreground === 'sleep')
  await page.getByRole('button', { name: 'SIGINT' }).click()
  await page.locator('[data-testid=terminal]').click()
  await page.keyboard.type('echo still-here')
  await page.keyboard.press('Enter')
  t.equal(await waitForLine(page, /^still-here$/), 'still-here', 'the shell survived SIGINT')
  t.notOk((await screen(page)).includes('after-sleep'), 'SIGINT ended the whole foreground job line')

  await page.keyboard.type('exit 3')
  await page.keyboard.press('Enter')
  await page.getByTestId('exit-status').filter({ hasText: 'exited' }).waitFor()
  t.match(await page.getByTestId('exit-status').textContent(), 'code 3', 'exit status shown')
  t.match(await late.getByTestId('exit-status').textContent(), /exited \(code 3/, 'on every attached page')

  await page.getByRole('link', { name: 'Processes', exact: true }).first().click()
  const list = page.getByTestId('process-list')
  await list.waitFor()
  t.match(await list.locator(`tr:has(a:text-is("${pid}"))`).textContent(), /shell.*exited \(code 3/, 'listed with its exit')
})
