import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import openapiTS, { astToString } from 'openapi-typescript'
import { counterPanel, incTool, startKernel } from '../panels/helpers.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The counter panel with only its `inc` tool. */
const counter = counterPanel('generated', { tools: [incTool()] })

/** A client module using only the types openapi-typescript generated from the live document. */
const CLIENT = `
import createClient from 'openapi-fetch'
import type { components, paths } from './schema.js'

export async function scenario(baseUrl: string) {
  const client = createClient<paths>({ baseUrl })
  const created = await client.POST('/panels', { body: ${JSON.stringify(counter)} })
  if (!created.data) throw new Error('create failed: ' + JSON.stringify(created.error))
  const id: string = created.data.id
  const ran = await client.POST('/panels/{id}/trigger/{tool}', { params: { path: { id, tool: 'inc' } }, body: { args: { by: 2 } } })
  const state = await client.GET('/panels/{id}/state', { params: { path: { id } } })
  const bad = await client.POST('/panels/{id}/trigger/{tool}', { params: { path: { id, tool: 'inc' } }, body: { args: { by: 'two' } } })
  const missing = await client.GET('/panels/{id}', { params: { path: { id: 'nope' } } })
  // named components: the 404 is the shared ErrorReply, a trigger's reply the RunOutcome
  const error: components['schemas']['ErrorReply'] | undefined = missing.error
  const outcome: components['schemas']['RunOutcome'] | undefined = ran.data
  const status: components['schemas']['PanelStatus'] = created.data.status
  return {
    wsUrl: created.data.wsUrl,
    returnValue: ran.data?.returnValue,
    status: ran.data?.status,
    version: state.data?.version,
    count: state.data?.state.count,
    badStatus: bad.response.status,
    missing: error,
    outcomeVersion: outcome?.version,
    panelStatus: status,
  }
}
`

t.test('a TypeScript client generated from the live /openapi.json creates a panel and triggers a tool', async (t) => {
  const { base } = await startKernel(t)
  const spec = await (await fetch(`${base}/openapi.json`)).json()
  for (const p of ['/panels', '/panels/{id}', '/panels/{id}/state', '/panels/{id}/trigger/{tool}', '/health', '/metrics']) {
    t.ok(spec.paths[p], `the document lists ${p}`)
  }

  const dir = await mkdtemp(join(tmpdir(), 'wk-openapi-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  await writeFile(join(dir, 'package.json'), '{"type":"module"}')
  await writeFile(join(dir, 'schema.d.ts'), astToString(await openapiTS(spec)))
  await writeFile(join(dir, 'client.ts'), CLIENT)
  // the client must type-check against the generated types: they match the server's schemas
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [], skipLibCheck: true },
    files: ['client.ts'],
  }))
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc')
  await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).catch((err) => {
    throw new Error(`generated client does not type-check:\n${err.stdout}`)
  })

  const { scenario } = await import(pathToFileURL(join(dir, 'client.ts')).href)
  const out = await scenario(base)
  t.match(out.wsUrl, /\/panels\/generated\/ws$/)
  t.same([out.status, out.returnValue, out.count, out.version], ['success', 2, 2, 1])
  t.equal(out.badStatus, 400, 'schema-invalid args are refused')
  t.match(out.missing, { statusCode: 404, code: 'PANEL_NOT_FOUND' })
  t.same([out.outcomeVersion, out.panelStatus], [1, 'ready'])
})
