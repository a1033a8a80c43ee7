/**
 * Demo: starts a kernel on 127.0.0.1 (or uses KERNEL_URL, e.g. http://127.0.0.1:3000) and a slow
 * local forecast service, creates the todo and forecast panels, connects over WebSocket, triggers
 * tools and prints every PATCH / EVENT / PROGRESS / RESULT / ERROR it receives. Exits 0 on success;
 * run in a terminal (or with --serve) it then keeps its kernel up with a todo panel for the
 * inspector page, whose URL it prints, until Ctrl-C.
 *
 *   node --import tsx examples/demo.ts [--serve]
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../app.js'
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

async function createPanel(base: string, def: PanelDefinition): Promise<CreatePanelReply> {
  const res = await fetch(`${base}/panels`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(def) })
  const body = await res.json()
  if (res.status !== 201) throw new Error(`POST /panels ${def.id}: ${res.status} ${JSON.stringify(body)}`)
  const panel = body as CreatePanelReply
  console.log(`created panel ${panel.id} (${panel.kind}) ${panel.wsUrl}`)
  for (const t of panel.tools) console.log(`  tool ${t.name}: ${t.capabilitiesInferred ? 'inferred' : 'declared'} ${t.capabilities.join(' ')}`)
  return panel
}

async function startKernel(): Promise<{ base: string; app?: FastifyInstance }> {
  if (process.env.KERNEL_URL) return { base: process.env.KERNEL_URL.replace(/\/$/, '') }
  // the forecast service is on 127.0.0.1, which the http extension refuses unless listed
  const app = await buildApp({ logLevel: 'warn', http: { allowedDomains: ['127.0.0.1'] } })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  return { base: address, app }
}

async function todoDemo(base: string): Promise<void> {
  const panel = await createPanel(base, todoPanel(`todos-${process.pid}`))
  const { client, connected } = await PanelClient.connect(panel.wsUrl)
  show('todos', connected)
  client.onMessage = (m) => show('todos', m)
  await client.trigger('add', { text: 'write the kernel' })
  await client.trigger('add', { text: 'run the demo' })
  await client.trigger('toggle', { id: 1 })
  await client.trigger('remove', { id: 2 })
  await client.trigger('add', { text: '' }) // rejected: INVALID_ARGS, state unchanged
  await client.trigger('toggle', { id: 42 }) // the handler throws: ERROR EXECUTION_ERROR (details: the outcome)
  const state = await (await fetch(`${base}/panels/${panel.id}/state`)).json()
  console.log(`[todos] final state ${JSON.stringify(state)}`)
  await client.close()
  await fetch(`${base}/panels/${panel.id}`, { method: 'DELETE' })
}

async function forecastDemo(base: string, source: string): Promise<void> {
  const panel = await createPanel(base, forecastPanel(source, `forecast-${process.pid}`))
  const { client, connected } = await PanelClient.connect(panel.wsUrl)
  show('forecast', connected)
  client.onMessage = (m) => show('forecast', m)
  const started = Date.now()
  await client.trigger('load', { city: 'Lisbon' })
  console.log(`[forecast] load took ${Date.now() - started} ms (the service answers after 300 ms; loading:true was visible meanwhile)`)
  await client.trigger('compare', { a: 'Oslo', b: 'Cairo' })
  await client.close()
  await fetch(`${base}/panels/${panel.id}`, { method: 'DELETE' })
}

const forecast = await startForecastServer(300)
const kernel = await startKernel()
try {
  console.log(`kernel at ${kernel.base}, forecast service at ${forecast.url}`)
  console.log(`inspector: ${kernel.base}/inspector/`)
  await todoDemo(kernel.base)
  await forecastDemo(kernel.base, forecast.url)
  console.log('demo finished')
  if (kernel.app && (process.stdout.isTTY || process.argv.includes('--serve'))) {
    await createPanel(kernel.base, todoPanel())
    console.log(`serving the inspector at ${kernel.base}/inspector/ (Ctrl-C to stop)`)
    await new Promise((r) => process.once('SIGINT', r))
  }
} finally {
  await kernel.app?.close()
  await forecast.close()
}
