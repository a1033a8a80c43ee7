/**
 * The compiled guest's `.cwasm` cache across starts: beside guest.wasm when its folder is writable
 * (a clone), else in the user's cache folder ($XDG_CACHE_HOME, else ~/.cache, /workspace-kernel/cwasm)
 * — an npm install made by root and used by another user. The read-only install is a real read-only
 * bind mount (bubblewrap), so the test holds even when it runs as root.
 */
import { execFile } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { GUEST_PATH, LOCAL_ADDON_PATH } from '../../wasm-runtime/addon.js'

const run = promisify(execFile)
const cwasmIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.cwasm'))

/** Starts a Runtime on `guest` in a fresh Node process; whether it loaded the `.cwasm` (no compile). */
async function start(guest: string, env: Record<string, string>, readOnly?: string): Promise<boolean> {
  const script = `const { Runtime } = require(${JSON.stringify(LOCAL_ADDON_PATH)}); const rt = new Runtime({ guestPath: ${JSON.stringify(guest)}, workerThreads: 1 }); console.log(rt.guestFromCwasm)`
  const node = [process.execPath, '-e', script]
  const argv = readOnly ? ['bwrap', '--bind', '/', '/', '--ro-bind', readOnly, readOnly, '--dev', '/dev', '--proc', '/proc', ...node] : node
  const { stdout } = await run(argv[0], argv.slice(1), { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } })
  return JSON.parse(stdout.trim()) as boolean
}

t.test('a read-only guest folder: compiled once into the user cache, a cache hit on the next start', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wk-cwasm-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const install = join(root, 'install')
  mkdirSync(install)
  copyFileSync(GUEST_PATH, join(install, 'guest.wasm'))
  const guest = join(install, 'guest.wasm')
  const cache = join(root, 'xdg')
  const probe = `try { require('fs').writeFileSync(${JSON.stringify(join(install, 'probe'))}, 'x'); console.log('writable') } catch (e) { console.log(e.code) }`
  const { stdout } = await run('bwrap', ['--bind', '/', '/', '--ro-bind', install, install, '--dev', '/dev', '--proc', '/proc', process.execPath, '-e', probe])
  t.equal(stdout.trim(), 'EROFS', 'the install folder is read-only inside the mount, root or not')

  t.equal(await start(guest, { XDG_CACHE_HOME: cache, HOME: join(root, 'home') }, install), false, 'first start compiles')
  t.same(cwasmIn(install), [], 'nothing written beside the guest')
  const own = join(cache, 'workspace-kernel', 'cwasm')
  t.equal(cwasmIn(own).length, 1, 'one .cwasm in $XDG_CACHE_HOME/workspace-kernel/cwasm')
  t.match(cwasmIn(own)[0], /^guest-[0-9a-f]{16}\.[0-9a-f]{16}-[0-9a-f]{16}\.cwasm$/, 'named after the install folder too')
  t.equal(statSync(own).mode & 0o777, 0o700, 'the cache folder is private')
  t.equal(await start(guest, { XDG_CACHE_HOME: cache, HOME: join(root, 'home') }, install), true, 'second start: a cache hit')

  // without XDG_CACHE_HOME (or with a relative one, which XDG says to ignore): ~/.cache
  const home = join(root, 'home2')
  t.equal(await start(guest, { HOME: home, XDG_CACHE_HOME: 'relative/cache' }, install), false)
  t.equal(cwasmIn(join(home, '.cache', 'workspace-kernel', 'cwasm')).length, 1, '~/.cache/workspace-kernel/cwasm')
  t.equal(await start(guest, { HOME: home }, install), true)
})

t.test('a writable guest folder keeps the .cwasm beside the guest (and leaves the user cache alone)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'wk-cwasm-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const guest = join(root, 'guest.wasm')
  copyFileSync(GUEST_PATH, guest)
  writeFileSync(join(root, 'notes.txt'), 'kept')
  const env = { XDG_CACHE_HOME: join(root, 'xdg'), HOME: root }
  t.equal(await start(guest, env), false)
  t.equal(cwasmIn(root).length, 1, 'beside guest.wasm')
  t.equal(await start(guest, env), true)
  t.same(readdirSync(root).sort(), [cwasmIn(root)[0], 'guest.wasm', 'notes.txt'].sort(), 'no user cache folder was made')
})
