import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { buildApp } from '../../app.js'

// needs Python 3 with the `websockets` library: python3 -m pip install 'websockets>=13'
const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const counter = {
  kind: 'counter',
  initialState: { count: 0 },
  tools: [
    {
      name: 'inc',
      args: { type: 'object', properties: { by: { type: 'integer' } }, additionalProperties: false },
      handler: "$state.count = $state.count + ($args.by ?? 1); $emit('changed', { count: $state.count }); return $state.count",
    },
  ],
}

t.test('a Python client (websockets library) speaks the panel WebSocket protocol', async (t) => {
  const app = await buildApp({ logLevel: 'silent' })
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const created = await (await fetch(`${base}/panels`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'py', ...counter }),
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
