/**
 * Demo: starts the standalone kernel (bin/workspace-kernel.js, default config: auth on, a token
 * generated at start) on 127.0.0.1 — or uses KERNEL_URL, the URL with `?token=` a running kernel
 * printed — and a slow local forecast service, creates the todo and forecast panels, connects over
 * WebSocket, triggers tools and prints every PATCH / EVENT / PROGRESS / RESULT / ERROR it receives.
 * Every call carries the token (`Authorization: Bearer`, `?token=` on the WebSocket). Exits 0 on
 * success; run in a terminal (or with --serve) it then keeps its kernel up with a todo panel for the
 * inspector page, whose URL (with the token) it prints, until Ctrl-C.
 *
 *   node --import tsx examples/demo.ts [--serve]
 *   KERNEL_URL='http://127.0.0.1:3000/inspector/?token=eyJ…' node --import tsx examples/demo.ts
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { CreatePanelReply, PanelDefinition } from '../schemas/panels.js'
import type { ServerMessage } from '../schemas/ws.js'
import { PanelClient } from './client.js'
import { startForecastServer } from './forecast-server.js'
import { forecastPanel, todoPanel } from './panels.js'

function show(label: string, m: ServerMessage): void {
  const body = { ...m } as Record<string, unknown>
  delete body.type
  console.log(`[${label}] ${m.type.padEnd(8)} ${JSON.stringify(body)}`)
}

/** Where the kernel is and the token every call sends. */
interface Kernel {
  base: string
  token: string
  child?: ChildProcess
}

/** fetch with the kernel's token. */
function call(k: Kernel, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${k.base}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${k.token}` } })
}

/** A panel's WebSocket URL with the token (browsers cannot set headers on an upgrade). */
const withToken = (k: Kernel, wsUrl: string) => `${wsUrl}?token=${encodeURIComponent(k.token)}`

async function createPanel(k: Kernel, def: PanelDefinition): Promise<CreatePanelReply> {
  const res = await call(k, '/panels', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(def) })
  const body = await res.json()
  if (res.status !== 201) throw new Error(`POST /panels ${def.id}: ${res.status} ${JSON.stringify(body)}`)
  const panel = body as CreatePanelReply
  console.log(`created panel ${panel.id} (${panel.kind}) ${panel.wsUrl}`)
  for (const t of panel.tools) console.log(`  tool ${t.name}: ${t.capabilitiesInferred ? 'inferred' : 'declared'} ${t.capabilities.join(' ')}`)
  return panel
}

/** Base URL and token of a kernel URL as the kernel prints it: `http://host:port[/prefix]/inspector/?token=<jwt>`. */
function parseKernelUrl(raw: string): Kernel {
  const url = new URL(raw)
  const token = url.searchParams.get('token') ?? process.env.KERNEL_TOKEN
  if (!token) throw new Error('KERNEL_URL needs ?token= (the URL the kernel printed at start) or KERNEL_TOKEN')
  return { base: `${url.origin}${url.pathname.replace(/\/(inspector\/?)?$/, '')}`, token }
}

/** Starts the standalone binary on a free port with JSON logs and reads its token URL from them. */
async function startKernel(): Promise<Kernel> {
  if (process.env.KERNEL_URL) return parseKernelUrl(process.env.KERNEL_URL)
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/workspace-kernel.js', import.meta.url))], {
    // the forecast service is on 127.0.0.1, which the http extension refuses unless listed
    env: { ...process.env, WK_PORT: '0', WK_HOST: '127.0.0.1', WK_NODE_ENV: 'production', WK_LOG_LEVEL: 'info', WK_HTTP_ALLOWED_DOMAINS: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`the kernel exited with ${code} before listening`)
  })
  // keep reading its log to the end, so a full pipe never blocks the kernel
  const listening = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const log = JSON.parse(line) as { tokenUrl?: string }
      if (log.tokenUrl) resolve(log.tokenUrl)
    })
  })
  const tokenUrl = await Promise.race([listening, exited])
  console.log(`started the kernel: ${tokenUrl}`)
  return { ...parseKernelUrl(tokenUrl), child }
}

async function todoDemo(k: Kernel): Promise<void> {
  const panel = await createPanel(k, todoPanel(`todos-${process.pid}`))
  const { client, connected } = await PanelClient.connect(withToken(k, panel.wsUrl))
  show('todos', connected)
  client.onMessage = (m) => show('todos', m)
  await client.trigger('add', { text: 'write the kernel' })
  await client.trigger('add', { text: 'run the demo' })
  await client.trigger('toggle', { id: 1 })
  await client.trigger('remove', { id: 2 })
  await client.trigger('add', { text: '' }) // rejected: INVALID_ARGS, state unchanged
  await client.trigger('toggle', { id: 42 }) // the handler throws: ERROR EXECUTION_ERROR (details: the outcome)
  const state = await (await call(k, `/panels/${panel.id}/state`)).json()
  console.log(`[todos] final state ${JSON.stringify(state)}`)
  await client.close()
  await call(k, `/panels/${panel.id}`, { method: 'DELETE' })
}

async function forecastDemo(k: Kernel, source: string): Promise<void> {
  const panel = await createPanel(k, forecastPanel(source, `forecast-${process.pid}`))
  const { client, connected } = await PanelClient.connect(withToken(k, panel.wsUrl))
  show('forecast', connected)
  client.onMessage = (m) => show('forecast', m)
  const started = Date.now()
  await client.trigger('load', { city: 'Lisbon' })
  console.log(`[forecast] load took ${Date.now() - started} ms (the service answers after 300 ms; loading:true was visible meanwhile)`)
  await client.trigger('compare', { a: 'Oslo', b: 'Cairo' })
  await client.close()
  await call(k, `/panels/${panel.id}`, { method: 'DELETE' })
}

const forecast = await startForecastServer(300)
const kernel = await startKernel()
try {
  const inspector = `${kernel.base}/inspector/?token=${encodeURIComponent(kernel.token)}`
  console.log(`kernel at ${kernel.base}, forecast service at ${forecast.url}`)
  console.log(`inspector: ${inspector}`)
  await todoDemo(kernel)
  await forecastDemo(kernel, forecast.url)
  console.log('demo finished')
  if (kernel.child && (process.stdout.isTTY || process.argv.includes('--serve'))) {
    await createPanel(kernel, todoPanel())
    console.log(`serving the inspector at ${inspector} (Ctrl-C to stop)`)
    await new Promise((r) => process.once('SIGINT', r))
  }
} finally {
  if (kernel.child && kernel.child.exitCode === null) {
    kernel.child.kill('SIGTERM')
    await once(kernel.child, 'exit')
  }
  await forecast.close()
}
