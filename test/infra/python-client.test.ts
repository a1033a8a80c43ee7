import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { counterPanel, incTool, startKernel } from '../panels/helpers.js'

// needs Python 3 with the `websockets` library: python3 -m pip install 'websockets>=13'
const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

t.test('a Python client (websockets library) speaks the panel WebSocket protocol', async (t) => {
  const { base } = await startKernel(t)
  const created = await (await fetch(`${base}/panels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(counterPanel('py', { tools: [incTool()] })),
  })).json()

  const { stdout } = await run('python3', [join(ROOT, 'test/infra/panel_ws_client.py'), created.wsUrl], { timeout: 20_000 })
  const out = JSON.parse(stdout)
  t.same(out.connected, { panelId: 'py', state: { count: 0 }, version: 0, tools: ['inc'] })
  t.same(out.trigger_sequence, ['PATCH', 'EVENT', 'RESULT'], 'PATCH and EVENT arrive before the RESULT')
  t.same(out.result, { requestId: 'py-1', status: 'success', returnValue: 2 })
  t.same(out.pong, { type: 'PONG', requestId: 'py-ping' })
  t.equal(out.error_code, 'PARSE_ERROR')
  const state = await (await fetch(`${base}/panels/py/state`)).json()
  t.same(state, { panelId: 'py', state: { count: 2 }, version: 1 })
})
