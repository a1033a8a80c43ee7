/**
 * Our kernels from the installed npm package (packed by scripts/pack.sh, installed into a fresh app
 * without dev dependencies): the kernelspecs run the compiled JavaScript with plain Node, no tsx, and
 * the typescript and pyodide kernels execute code from the standalone server's REST API.
 */
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { appEnv, freePort, installedApp, run, startIn } from '../package/helpers.js'

// packing (tsc, the inspector build) and installing take a minute or two on a busy machine
t.setTimeout(900_000)

t.test('the installed package runs the javascript, typescript and pyodide kernels compiled, without tsx', async (t) => {
  const { dir } = await installedApp(t)
  t.notOk(existsSync(join(dir, 'node_modules/tsx')), 'no TypeScript loader is installed')
  // the first start compiles the guest (seconds on a busy machine, past Fastify's 10 s plugin
  // timeout at worst); compile it once here so the server's start reads the cached .cwasm
  await run('node', ['-e', "import('workspace-kernel/wasm-runtime').then((m) => new m.WasmRuntime().shutdown())"], { cwd: dir, env: appEnv() })
  const workspace = mkdtempSync(join(tmpdir(), 'wk-installed-ws-'))
  t.teardown(() => rmSync(workspace, { recursive: true, force: true }))
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = { WK_PORT: String(port), WK_AUTH_ENABLED: 'false', WK_KERNELS_POOL_SIZE: '0', WK_PROCESSES_WORKSPACE_ROOT: workspace, WK_WORKERS_WORKSPACE_ROOT: workspace }
  const { child } = await startIn(t, dir, ['node', 'node_modules/workspace-kernel/bin/workspace-kernel.js'], env, `${base}/health`)
  t.teardown(() => void child.kill('SIGTERM'))
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }

  const { body: specs } = await api('GET', '/api/kernelspecs?all=true')
  for (const name of ['javascript', 'typescript', 'pyodide']) {
    const spec = specs.kernelspecs[name]
    t.equal(spec.available, true, `${name} is available (${spec.reason ?? ''})`)
    const argv: string[] = spec.spec.argv
    t.notOk(argv.some((a) => a.includes('tsx')), `${name}: no tsx in its argv`)
    t.match(argv.find((a) => a.includes('runtimes')), /node_modules\/workspace-kernel\/dist\/plugins\/kernels\/runtimes\/(node|pyodide)-kernel\.js$/, `${name}: the compiled program`)
  }

  const cases = [
    { name: 'typescript', code: 'const n: number = 6 * 7\nconsole.log(n)', text: '42\n' },
    { name: 'javascript', code: 'console.log([1, 2].map((x) => x * 2).join(","))', text: '2,4\n' },
    { name: 'pyodide', code: 'import sys; print(sys.version_info[0])', text: '3\n' },
  ]
  for (const c of cases) {
    const started = await api('POST', '/api/kernels', { name: c.name })
    t.equal(started.status, 201, `${c.name} started: ${JSON.stringify(started.body)}`)
    const ran = await api('POST', `/api/kernels/${started.body.id}/execute`, { code: c.code })
    t.match(ran.body, { status: 'ok', outputs: [{ output_type: 'stream', name: 'stdout', text: c.text }] }, `${c.name} executes`)
    t.equal((await fetch(`${base}/api/kernels/${started.body.id}`, { method: 'DELETE' })).status, 204)
  }
})
