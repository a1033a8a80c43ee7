/**
 * REST execution with a real ipykernel: wait for the record, SSE and NDJSON streams, async records that
 * outlive the client, bounded output, info/ping, bad input.
 */
import t from 'tap'
import { startServer } from './helpers.js'

t.test('REST execute, streams, records, info', async (t) => {
  const server = await startServer(t, { executionOutputMaxBytes: 4096, executionsKept: 3, maxCodeBytes: 1000 })
  const { body: kernel } = await server.request('POST', '/api/kernels', { body: {} })
  const base = `/api/kernels/${kernel.id}`

  t.test('execute waits for the record (nbformat outputs)', async (t) => {
    const res = await server.request('POST', `${base}/execute`, { body: { code: 'print("hi")\n6*7' } })
    t.equal(res.status, 200)
    t.match(res.body, { status: 'ok', execution_count: 1, truncated: false, kernel_id: kernel.id })
    t.same(res.body.outputs, [
      { output_type: 'stream', name: 'stdout', text: 'hi\n' },
      { output_type: 'execute_result', execution_count: 1, data: { 'text/plain': '42' }, metadata: {} },
    ])
    const err = await server.request('POST', `${base}/execute`, { body: { code: '1/0' } })
    t.match(err.body, { status: 'error', error: { ename: 'ZeroDivisionError' } })
    t.equal(err.body.outputs[0].output_type, 'error')
    const stdin = await server.request('POST', `${base}/execute`, { body: { code: 'input()' } })
    t.match(stdin.body.error, { ename: 'StdinNotImplementedError' }, "input() fails with the kernel's own error")
  })

  t.test('SSE and NDJSON stream live, then done', async (t) => {
    const code = 'import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)'
    const sse = await fetch(`${server.base}${base}/execute`, { method: 'POST', headers: { authorization: `Bearer ${server.token()}`, 'content-type': 'application/json', accept: 'text/event-stream' }, body: JSON.stringify({ code }) })
    t.equal(sse.headers.get('content-type'), 'text/event-stream')
    const events = (await sse.text()).trim().split('\n\n').map((block) => {
      const [event, data] = block.split('\n')
      return { event: event.slice(7), data: JSON.parse(data.slice(6)) }
    })
    t.same(events.map((e) => e.event), ['output', 'output', 'output', 'done'])
    t.same(events.slice(0, 3).map((e) => e.data.text), ['0\n', '1\n', '2\n'])
    t.equal(events[3].data.status, 'ok')
    const nd = await fetch(`${server.base}${base}/execute`, { method: 'POST', headers: { authorization: `Bearer ${server.token()}`, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ code: 'print(5)' }) })
    const lines = (await nd.text()).trim().split('\n').map((l) => JSON.parse(l))
    t.same(lines.map((l) => l.type), ['output', 'done'])
    t.equal(lines[1].execution.outputs[0].text, '5\n')
  })

  t.test("the seed's aliases: …/execute/submit (202, a record) and …/execute/stream (SSE by default, NDJSON by Accept)", async (t) => {
    const submitted = await server.request('POST', `${base}/execute/submit`, { body: { code: 'print("submitted")' } })
    t.equal(submitted.status, 202)
    t.equal(submitted.body.status, 'running')
    const record = await server.request('GET', `${base}/executions/${submitted.body.execution_id}?wait=10000`)
    t.match(record.body, { status: 'ok', outputs: [{ output_type: 'stream', text: 'submitted\n' }] })
    const headers = { authorization: `Bearer ${server.token()}`, 'content-type': 'application/json' }
    const sse = await fetch(`${server.base}${base}/execute/stream`, { method: 'POST', headers, body: JSON.stringify({ code: 'print(7)' }) })
    t.equal(sse.headers.get('content-type'), 'text/event-stream', 'SSE without an Accept header')
    // ipykernel may publish print's text and its newline as two stream messages
    const events = (await sse.text()).trim().split('\n\n').map((block) => block.split('\n'))
    t.same(new Set(events.map((e) => e[0])), new Set(['event: output', 'event: done']))
    t.equal(events.at(-1)?.[0], 'event: done', 'done comes last')
    t.equal(events.slice(0, -1).map((e) => JSON.parse(e[1].slice(6)).text).join(''), '7\n')
    const nd = await fetch(`${server.base}${base}/execute/stream`, { method: 'POST', headers: { ...headers, accept: 'application/x-ndjson' }, body: JSON.stringify({ code: 'print(8)' }) })
    const lines = (await nd.text()).trim().split('\n').map((l) => JSON.parse(l))
    t.same(lines.map((l) => l.type), [...lines.slice(0, -1).map(() => 'output'), 'done'])
    t.ok(lines.length >= 2, 'at least one output, then done')
    t.equal(lines.at(-1).execution.outputs.map((o: { text: string }) => o.text).join(''), '8\n')
    t.equal((await server.request('POST', `${base}/execute/stream`, { body: {} })).body.code, 'INVALID_EXECUTE_REQUEST', 'bad input: the same typed error')
    t.equal((await server.request('POST', `${base}/execute/submit`, { body: { code: '1' }, token: server.token('beta') })).status, 404, "another namespace's kernel")
  })

  t.test('async records outlive the client; timeout → 202; interruptOnTimeout', async (t) => {
    const submitted = await server.request('POST', `${base}/executions`, { body: { code: 'import time; time.sleep(0.3); print("later")' } })
    t.equal(submitted.status, 202)
    const id = submitted.body.execution_id
    const waited = await server.request('GET', `${base}/executions/${id}?wait=10000`)
    t.match(waited.body, { status: 'ok', outputs: [{ text: 'later\n' }] })
    const slow = await server.request('POST', `${base}/execute`, { body: { code: 'import time; time.sleep(1)', timeoutMs: 50 } })
    t.equal(slow.status, 202)
    t.equal(slow.body.status, 'running')
    t.equal((await server.request('GET', `${base}/executions/${slow.body.execution_id}?wait=10000`)).body.status, 'ok', 'it finished later')
    const interrupted = await server.request('POST', `${base}/execute`, { body: { code: 'import time; time.sleep(30)', timeoutMs: 1000, interruptOnTimeout: true } })
    t.equal(interrupted.status, 200)
    t.equal(interrupted.body.error.ename, 'KeyboardInterrupt')
    const list = await server.request('GET', `${base}/executions`)
    t.equal(list.body.length, 3, 'executionsKept bounds the records')
    const since = await server.request('GET', `${base}/executions?since=${list.body[1].seq}`)
    t.same(since.body.map((r: { seq: number }) => r.seq), [list.body[2].seq])
    t.equal((await server.request('GET', `${base}/executions/nope`)).status, 404)
  })

  t.test('output past executionOutputMaxBytes keeps head and tail', async (t) => {
    const res = await server.request('POST', `${base}/execute`, { body: { code: 'for i in range(2000): print(i, flush=True)' } })
    t.equal(res.body.truncated, true)
    const text = res.body.outputs.map((o: { text: string }) => o.text).join('')
    t.ok(text.startsWith('0\n'), 'head kept')
    t.ok(text.endsWith('1999\n'), 'tail kept')
    t.ok(JSON.stringify(res.body.outputs).length <= 4096 + 200, 'bounded')
  })

  t.test('bad input', async (t) => {
    t.equal((await server.request('POST', `${base}/execute`, { body: {} })).body.code, 'INVALID_EXECUTE_REQUEST')
    t.equal((await server.request('POST', `${base}/execute`, { body: { code: 'x' + '#'.repeat(1000) } })).body.code, 'CODE_TOO_LARGE')
    t.equal((await server.request('POST', `${base}/execute`, { body: { code: '1', timeoutMs: 10_000_000 } })).body.code, 'INVALID_EXECUTE_REQUEST')
    t.equal((await server.request('POST', `${base}/execute`, { body: { code: '1' }, token: server.token('beta') })).status, 404)
  })

  t.test('info, ping, PATCH', async (t) => {
    const info = await server.request('GET', `${base}/info`)
    t.match(info.body, { id: kernel.id, restarts: 0, executions: { ongoing: 0, stuck: false }, usage: { rssBytes: Number } })
    t.ok(info.body.culls_at, 'the default idle timeout applies')
    const patched = await server.request('PATCH', base, { body: { inactivityTimeoutMs: 0 } })
    t.equal(patched.status, 200)
    const ping = await server.request('POST', `${base}/ping`)
    t.equal(ping.body.culls_at, null, 'inactivityTimeoutMs 0: never culled')
    t.equal((await server.request('PATCH', base, { body: { maxExecutionMs: -1 } })).body.code, 'INVALID_KERNEL_REQUEST')
  })
})
