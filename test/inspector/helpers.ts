import { mkdirSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

type Teardown = { teardown(fn: () => unknown): void }

/** Debian's chromium (installed by scripts/setup.sh); CHROMIUM_PATH overrides. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Where screenshots of the main views go (gitignored test output). */
export const SHOTS = '.tap/inspector'

/** A headless Chromium (closed at teardown). `--no-sandbox`: CI runs as root, where Chromium's own sandbox cannot start. */
export async function launch(t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  return browser
}

/** A new page at 1280×800 (or `size`) in its own browser context (own sessionStorage), with dialogs accepted. */
export async function openPage(browser: Browser, url: string, size = { width: 1280, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport: size })
  const page = await context.newPage()
  page.on('dialog', (d) => void d.accept())
  await page.goto(url)
  return page
}

/** Save a full-page screenshot as `.tap/inspector/<name>.png`. */
export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true })
}

/** Form controls on the page without an accessible name (a <label>, aria-label or aria-labelledby): should be none. */
export async function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLInputElement>('input, select, textarea')]
      .filter((el) => el.labels?.length === 0 && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
      .map((el) => el.outerHTML.slice(0, 120)),
  )
}
