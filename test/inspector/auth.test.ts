import t from 'tap'
import { todoPanel } from '../../examples/panels.js'
import { SECRET, api, signToken, startKernel } from '../panels/helpers.js'
import { launch, openPage, shot } from './helpers.js'

t.test('auth on: the 401 screen without a token; with one the page works, scoped to its namespace', async (t) => {
  const { base } = await startKernel(t, { authEnabled: true, jwtSecret: SECRET })
  const mine = signToken({ namespace: 'team-a' })
  const theirs = signToken({ namespace: 'team-b' })
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  t.equal((await api(base, 'POST', '/panels', todoPanel('ours'), bearer(mine))).status, 201)
  t.equal((await api(base, 'POST', '/panels', todoPanel('theirs'), bearer(theirs))).status, 201)
  const browser = await launch(t)

  const page = await openPage(browser, `${base}/inspector/`)
  const screen = page.getByTestId('token-screen')
  await screen.waitFor()
  t.match(await screen.textContent(), /401.*UNAUTHORIZED/, 'the 401 screen with the kernel’s code')
  await shot(page, 'token')

  await page.getByLabel('Token', { exact: true }).fill('not-a-jwt')
  await page.getByRole('button', { name: 'Use token' }).click()
  await t.resolves(page.getByText('Invalid or expired token').waitFor(), 'a bad token: still the 401 screen, with the reason')

  await page.getByLabel('Token', { exact: true }).fill(mine)
  await page.getByRole('button', { name: 'Use token' }).click()
  const list = page.getByTestId('panel-list')
  await list.waitFor()
  t.match(await list.textContent(), 'ours', 'own panel listed')
  t.notMatch(await list.textContent(), 'theirs', "another namespace's panel is absent")

  // the panel view: REST with the header, the WebSocket with ?token=
  await page.getByRole('link', { name: 'ours' }).click()
  await page.getByText('namespace team-a').waitFor()
  await page.locator('article[data-tool="add"]').getByLabel('text').fill('scoped')
  await page.getByRole('button', { name: 'Run add' }).click()
  await page.getByTestId('version').filter({ hasText: '1' }).waitFor()
  t.match(await page.getByTestId('state-tree').textContent(), 'scoped', 'triggered over the authenticated socket')
  t.same(
    await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie]),
    [1, 0, ''],
    'the token is kept in sessionStorage only',
  )

  // ?token= in the page URL: used, and removed from the address bar
  const linked = await openPage(browser, `${base}/inspector/?token=${mine}#/panels`)
  await linked.getByTestId('panel-list').waitFor()
  t.notMatch(linked.url(), 'token=', 'the token left the URL')
  t.notMatch(await linked.getByTestId('panel-list').textContent(), 'theirs')

  // another namespace's panel by its id: 404, as for a stranger
  await linked.goto(`${base}/inspector/#/panels/theirs`)
  await t.resolves(linked.getByText('PANEL_NOT_FOUND').first().waitFor(), "another namespace's panel answers 404")
})
