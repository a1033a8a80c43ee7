import t from 'tap'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import WebSocket from 'ws'
import { api, counterPanel, incTool } from '../panels/helpers.js'
import { ROOT, appEnv, freePort, installedApp, readmeBlocks, run, startIn } from './helpers.js'

// packing (tsc), installing, type-checking twice and starting three kernels take a few minutes on a busy machine
t.setTimeout(900_000)

const { dir, tarballs, installMs } = await installedApp(t)
t.comment(`npm install of the two tarballs + fastify into a fresh app: ${(installMs / 1000).toFixed(1)} s`)
const [install, embed, standalone] = await readmeBlocks('Install from npm')

t.test('the tarballs ship compiled code, types and guest.wasm; the addon is in the platform package', async (t) => {
  const list = async (tgz: string) => (await run('tar', ['tzf', tgz])).stdout.trim().split('\n')
  const [platform, main] = await Promise.all(tarballs.map(list))
  t.ok(main.includes('package/dist/app.js') && main.includes('package/dist/app.d.ts'), 'dist with declarations')
  t.ok(main.includes('package/wasm-runtime/build/guest.wasm'), 'guest.wasm')
  t.ok(main.includes('package/dist/inspector/dist/index.html'), 'the built inspector page')
  t.same(main.filter((f) => /\.ts$/.test(f) && !f.endsWith('.d.ts')), [], 'no TypeScript sources')
  t.same(main.filter((f) => /\/(test|bench|examples|node_modules)\/|\.node$/.test(f)), [], 'no tests, benches, examples or addon')
  t.same(platform.sort(), ['package/README.md', 'package/package.json', 'package/wasm_runtime.linux-x64-gnu.node'])
  t.notOk(existsSync(join(dir, 'node_modules/tsx')), 'no TypeScript loader is installed')
  t.match(install.code, /^npm install workspace-kernel fastify$/m, 'the README installs the same two packages')
})

t.test("the README's embedding snippet runs under /kernel beside the app's own route", async (t) => {
  t.equal(embed.lang, 'js')
  await writeFile(join(dir, 'app.js'), embed.code)
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const { child } = await startIn(t, dir, [process.execPath, 'app.js'], { PORT: String(port) }, `${base}/`)

  t.same((await api(base, 'GET', '/')).body, { hello: 'my app' }, "the app's own route")
  t.match((await api(base, 'GET', '/kernel/health')).body, { status: 'ok', version: '0.1.0' })
  const page = await fetch(`${base}/kernel/inspector/`)
  t.equal(page.status, 200, 'the inspector page ships built')
  t.match(await page.text(), /<html/i)
  const created = await api(base, 'POST', '/kernel/panels', counterPanel('counter', { tools: [incTool()] }))
  t.equal(created.status, 201, JSON.stringify(created.body))
  const rest = await api(base, 'POST', '/kernel/panels/counter/trigger/inc', { args: { by: 2 } })
  t.match(rest.body, { status: 'success', returnValue: 2, version: 1 }, 'a REST trigger runs in the sandbox')

  t.match(created.body.wsUrl, /\/kernel\/panels\/counter\/ws$/)
  const ws = new WebSocket(created.body.wsUrl)
  const messages: any[] = []
  ws.on('message', (m) => messages.push(JSON.parse(String(m))))
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'TRIGGER', tool: 'inc', args: { by: 3 }, requestId: 'r1' }))
  while (!messages.some((m) => m.type === 'RESULT')) await once(ws, 'message')
  ws.close()
  t.same(messages.map((m) => m.type), ['CONNECTED', 'PATCH', 'EVENT', 'RESULT'])
  t.match(messages[3], { requestId: 'r1', result: { status: 'success', returnValue: 5, version: 2 } }, 'a WS trigger')
  child.kill('SIGTERM')
  await once(child, 'exit')
})

t.test('`npx workspace-kernel` serves /health and panels, and exits 0 on SIGTERM', async (t) => {
  t.match(standalone.code, /^WK_PORT=8080 npx workspace-kernel$/m, 'the README runs the same command')
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // auth may be on by default for the standalone server; this test is about the binary
  const env = { WK_PORT: String(port), WK_AUTH_ENABLED: 'false', WK_NODE_ENV: 'production' }
  const { child, output } = await startIn(t, dir, ['npx', 'workspace-kernel'], env, `${base}/health`)
  // npx runs the bin in a child of its own: signal that one, as a process manager would
  const server: number = JSON.parse(output().split('\n').find((l) => l.startsWith('{'))!).pid
  t.teardown(() => {
    if (isAlive(server)) process.kill(server, 'SIGKILL')
  })
  t.match((await api(base, 'GET', '/health')), { status: 200, body: { status: 'ok' } })
  t.equal((await api(base, 'POST', '/panels', counterPanel('c', { tools: [incTool()] }))).status, 201)
  t.match((await api(base, 'POST', '/panels/c/trigger/inc', {})).body, { status: 'success', returnValue: 1 })
  process.kill(server, 'SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'the server exits 0 (npx passes its code on)')
  t.match(output(), /"msg":"shutdown complete"/)
})

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

// our kernels' kernelspecs run the compiled JavaScript with plain Node (no tsx), from the standalone server's REST API
t.test('the installed package runs the javascript, typescript and pyodide kernels compiled, without tsx', async (t) => {
  t.notOk(existsSync(join(dir, 'node_modules/tsx')), 'no TypeScript loader is installed')
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

t.test('a consumer type-checks against the public types (node16 and bundler resolution)', async (t) => {
  await writeFile(join(dir, 'consumer.ts'), CONSUMER)
  for (const [module, moduleResolution] of [['node16', 'node16'], ['esnext', 'bundler']]) {
    const tsconfig = `tsconfig.${moduleResolution}.json`
    await writeFile(join(dir, tsconfig), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module, moduleResolution, skipLibCheck: false,
        // the app has no @types/node of its own; the clone's is the one a Node app would install
        types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['consumer.ts'],
    }))
    const tsc = join(ROOT, 'node_modules/.bin/tsc')
    const result = await run(tsc, ['-p', tsconfig], { cwd: dir, env: appEnv() }).then(() => '', (e) => String(e.stdout))
    t.equal(result, '', `tsc --noEmit with moduleResolution ${moduleResolution}`)
  }
})

t.test('without the platform package the sandbox fails with one message naming the platform', async (t) => {
  await rename(join(dir, 'node_modules/workspace-kernel-linux-x64-gnu'), join(dir, 'platform.off'))
  t.teardown(() => rename(join(dir, 'platform.off'), join(dir, 'node_modules/workspace-kernel-linux-x64-gnu')))
  const script = "import('workspace-kernel/wasm-runtime').then((m) => new m.WasmRuntime()).catch((e) => console.log(e.code, e.message))"
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: dir, env: appEnv() })
  t.match(stdout, /^INTERNAL_ERROR wasm-runtime: no sandbox addon for linux-x64-gnu: install workspace-kernel-linux-x64-gnu /)
})

t.test('a platform package of another version is refused by name and version', async (t) => {
  const manifest = join(dir, 'node_modules/workspace-kernel-linux-x64-gnu/package.json')
  const original = await readFile(manifest, 'utf8')
  t.teardown(() => writeFile(manifest, original))
  await writeFile(manifest, JSON.stringify({ ...JSON.parse(original), version: '0.0.9' }))
  const script = "import('workspace-kernel/wasm-runtime').then((m) => new m.WasmRuntime()).catch((e) => console.log(e.code, e.message))"
  const { stdout } = await run(process.execPath, ['-e', script], { cwd: dir, env: appEnv() })
  t.match(stdout, /^INTERNAL_ERROR wasm-runtime: workspace-kernel-linux-x64-gnu@0\.0\.9 does not match workspace-kernel@0\.1\.0/)
})

/** Uses the package root's types, a plugin, a schema and the runtime; must fail where a type is wrong. */
const CONSUMER = `
import Fastify from 'fastify'
import { buildApp, kernelPlugin, type KernelOptions, type PanelDefinition, type RunOutcome } from 'workspace-kernel'
import panels, { type PanelsPluginOptions } from 'workspace-kernel/plugins/panels'
import { PanelDefinition as PanelDefinitionSchema } from 'workspace-kernel/schemas/panels'
import { WasmRuntime } from 'workspace-kernel/wasm-runtime'

const options: KernelOptions = { prefix: '/kernel', maxPanels: 10, http: { allowedDomains: ['api.example.com'] } }
const app = Fastify()
await app.register(kernelPlugin, options)

const kernel = await buildApp({ logLevel: 'silent' })
const counter: PanelDefinition = { id: 'c', kind: 'counter', tools: [{ name: 'inc', handler: 'return 1' }] }
// kernel.panels is typed by the panels plugin's declare module 'fastify' augmentation
const created = await kernel.panels.create(counter, 'default')
const outcome: RunOutcome = await kernel.panels.trigger('default', created.id, 'inc', {})
const status: 'success' | 'error' = outcome.status

const limits: PanelsPluginOptions = { maxPanels: 5 }
void [panels, limits, status, PanelDefinitionSchema.$id, WasmRuntime]
// @ts-expect-error maxPanels is a number
const wrong: KernelOptions = { maxPanels: 'ten' }
void wrong
`
