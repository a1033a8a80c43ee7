/**
 * Kernels that cannot start: an interpreter without ipykernel (unavailable, 503), one whose kernel exits
 * at once (500 with its stderr), one that never answers (504). Each a real process; nothing is left running.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startServer } from './helpers.js'

/** An executable shell script standing in for a broken Python install. */
function interpreter(t: { teardown(fn: () => void): void }, body: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'wk-fake-python-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'python')
  writeFileSync(file, `#!/bin/sh\n${body}\n`)
  chmodSync(file, 0o755)
  return file
}

t.test('no ipykernel: python3 is unavailable with the reason, the server runs', async (t) => {
  const server = await startServer(t, { python: interpreter(t, 'echo "No module named ipykernel" >&2; exit 3') })
  const specs = await server.request('GET', '/api/kernelspecs?all=true')
  t.equal(specs.body.kernelspecs.python3.available, false)
  t.match(specs.body.kernelspecs.python3.reason, /ipykernel is not importable/)
  t.notOk((await server.request('GET', '/api/kernelspecs')).body.kernelspecs.python3, 'only available kinds by default')
  const res = await server.request('POST', '/api/kernels', { body: { name: 'python3' } })
  t.equal(res.status, 503)
  t.equal(res.body.code, 'KERNEL_UNAVAILABLE')
})

t.test('kernel exits at start: 500 KERNEL_START_FAILED with its stderr; nothing left', async (t) => {
  const server = await startServer(t, { python: interpreter(t, '[ "$1" = "-c" ] && exit 0\necho "boom: cannot start the kernel" >&2\nexit 1') })
  const res = await server.request('POST', '/api/kernels', { body: { name: 'python3' } })
  t.equal(res.status, 500)
  t.equal(res.body.code, 'KERNEL_START_FAILED')
  t.match(res.body.message, /boom: cannot start the kernel/)
  t.same(server.app.processes.list({ owner: 'kernels' }), [])
  t.same((await server.request('GET', '/api/kernels')).body, [])
})

t.test('kernel never answers: 504 KERNEL_START_TIMEOUT; the process is killed', async (t) => {
  const server = await startServer(t, { startupTimeoutMs: 500, python: interpreter(t, '[ "$1" = "-c" ] && exit 0\nexec sleep 60') })
  const res = await server.request('POST', '/api/kernels', { body: { name: 'python3' } })
  t.equal(res.status, 504)
  t.equal(res.body.code, 'KERNEL_START_TIMEOUT')
  t.same(server.app.processes.list({ owner: 'kernels' }), [])
})
