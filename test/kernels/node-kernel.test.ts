// Our Node kernel (javascript / typescript) started from a connection file, driven by jupyter_client.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'tap'
import * as zmq from 'zeromq'
import { Wire, createMessage } from '../../plugins/kernels/wire.js'
import { drive, kernelArgv, pythonMissing, startKernel, type Executed } from './kernel-process.js'

const missing = pythonMissing()
const outputs = (r: Executed) => r.iopub.map((m) => [m.msg_type, m.content.name ?? m.content.data?.['text/plain'] ?? m.content.ename])

test('javascript kernel', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())

  const [info, order, redeclared, again, failed] = await drive(kernel, [
    { op: 'kernel_info' },
    { op: 'execute', code: 'console.log("a"); console.error("b"); console.log("c", 1); 6 * 7' },
    { op: 'execute', code: 'const x = 1\nlet y = 2\nclass K {}\nfunction f() { return x + y }' },
    { op: 'execute', code: 'const x = 10; class K { v = 3 }; f() + new K().v' },
    { op: 'execute', code: 'function boom() { throw new TypeError("bad " + x) }\nboom()' },
  ])

  t.test('kernel_info_reply describes JavaScript on protocol 5.3', async (t) => {
    t.equal(info.status, 'ok')
    t.equal(info.protocol_version, '5.3')
    t.equal(info.language_info.name, 'javascript')
    t.equal(info.language_info.file_extension, '.js')
    t.equal(info.language_info.version, process.versions.node)
  })

  t.test('console output streams in call order, then the last expression as execute_result', async (t) => {
    t.equal(order.reply.status, 'ok')
    t.same(order.iopub.map((m: any) => [m.msg_type, m.content.name, m.content.text ?? m.content.data?.['text/plain']]), [
      ['execute_input', undefined, undefined],
      ['stream', 'stdout', 'a\n'],
      ['stream', 'stderr', 'b\n'],
      ['stream', 'stdout', 'c 1\n'],
      ['execute_result', undefined, '42'],
    ])
    const result = order.iopub.at(-1)!.content
    t.equal(result.execution_count, order.reply.execution_count)
  })

  t.test('top-level const, let, class and function can be declared again in a later cell', async (t) => {
    t.equal(redeclared.reply.status, 'ok')
    t.same(outputs(redeclared), [['execute_input', undefined]], 'declarations alone have no result')
    t.equal(again.reply.status, 'ok')
    t.same(outputs(again).at(-1), ['execute_result', '15'])
  })

  t.test('an error reply carries ename, evalue and a traceback of the cell frames only', async (t) => {
    t.equal(failed.reply.status, 'error')
    t.equal(failed.reply.ename, 'TypeError')
    t.equal(failed.reply.evalue, 'bad 10')
    const error = failed.iopub.find((m: any) => m.msg_type === 'error')!.content
    t.same([error.ename, error.evalue], ['TypeError', 'bad 10'])
    t.ok(error.traceback.some((l: string) => l.includes('TypeError: bad 10')))
    t.ok(error.traceback.some((l: string) => /at boom \(cell\[\d+\]:1:/.test(l)), 'names the cell and line')
    t.notOk(error.traceback.some((l: string) => l.includes('plugins/kernels') || l.includes('node:')), 'no kernel frames')
  })
})

test('interrupt stops while (true) {} and keeps the context (signal and message mode)', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())
  const pid = kernel.child.pid
  const [, bySignal, byMessage, pending, kept] = await drive(kernel, [
    { op: 'execute', code: 'let keep = 41' },
    { op: 'execute', code: 'while (true) {}', interrupt: { after_s: 0.5, via: 'signal', pid } },
    { op: 'execute', code: 'for (;;) {}', interrupt: { after_s: 0.5, via: 'message' } },
    { op: 'execute', code: 'await new Promise(() => {})', interrupt: { after_s: 0.5, via: 'signal', pid } },
    { op: 'execute', code: 'keep + 1' },
  ])
  for (const [name, r] of [['signal', bySignal], ['message', byMessage], ['pending await', pending]] as const) {
    t.equal(r.reply.status, 'error', name)
    t.equal(r.reply.ename, 'Interrupted', name)
  }
  t.same(outputs(kept).at(-1), ['execute_result', '42'], 'variables survive the interrupts')
  t.equal(kernel.child.exitCode, null, 'the kernel is still running')
})

test('top-level await, static import, display() and input()', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())
  const [imported, shown, asked, refused] = await drive(kernel, [
    { op: 'execute', code: 'import { join } from "node:path"\nimport * as os from "node:os"\nawait Promise.resolve(join("a", typeof os.cpus))' },
    { op: 'execute', code: 'display({ "text/html": "<b>hi</b>" }); display([1, 2])' },
    { op: 'execute', code: 'const name = await input("name? "); `hello ${name}`', stdin: ['Ada'] },
    { op: 'execute', code: 'await input("x")', allow_stdin: false },
  ])
  t.same(outputs(imported).at(-1), ['execute_result', "'a/function'"])
  t.same(shown.iopub.filter((m: any) => m.msg_type === 'display_data').map((m: any) => m.content.data), [{ 'text/html': '<b>hi</b>' }, { 'text/plain': '[ 1, 2 ]' }])
  t.same(asked.input_requests, [{ prompt: 'name? ', password: false }])
  t.same(outputs(asked).at(-1), ['execute_result', "'hello Ada'"])
  t.equal(refused.reply.ename, 'StdinNotImplementedError')
})

test('typescript kernel strips types and reports syntax errors', { skip: missing }, async (t) => {
  const kernel = await startKernel('typescript')
  t.teardown(() => kernel.stop())
  const pid = kernel.child.pid
  const [info, typed, again, bad, incomplete, stopped, afterwards] = await drive(kernel, [
    { op: 'kernel_info' },
    { op: 'execute', code: 'interface P { a: number }\nconst p: P = { a: 21 }\nfunction twice(n: number): number { return n * 2 }\ntwice(p.a)' },
    { op: 'execute', code: 'const p: { a: string } = { a: "re-declared" }; p.a as string' },
    { op: 'execute', code: 'const q: number = ' },
    { op: 'is_complete', code: 'function f(a: number) {' },
    { op: 'execute', code: 'while (true) {}', interrupt: { after_s: 0.5, via: 'group', pid } },
    { op: 'execute', code: 'const n: number = p.a.length; n' },
  ])
  t.equal(info.language_info.name, 'typescript')
  t.equal(info.language_info.file_extension, '.ts')
  t.same(outputs(typed).at(-1), ['execute_result', '42'])
  t.same(outputs(again).at(-1), ['execute_result', "'re-declared'"])
  t.equal(bad.reply.ename, 'SyntaxError')
  t.equal(incomplete.status, 'incomplete')
  t.equal(stopped.reply.ename, 'Interrupted')
  t.same(outputs(afterwards).at(-1), ['execute_result', '11'], 'TypeScript still compiles after a group-wide SIGINT')
})

test('is_complete, complete and inspect', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())
  const [, done, open, invalid, members, inspected, unknown] = await drive(kernel, [
    { op: 'execute', code: 'const answer = { value: 42, valueOf() { return 42 } }' },
    { op: 'is_complete', code: 'let a = 1' },
    { op: 'is_complete', code: 'for (let i = 0; i < 3; i++) {' },
    { op: 'is_complete', code: 'let = = 1' },
    { op: 'complete', code: 'answer.val' },
    { op: 'inspect', code: 'answer' },
    { op: 'inspect', code: 'nothingHere' },
  ])
  t.same([done.status, open.status, invalid.status], ['complete', 'incomplete', 'invalid'])
  t.same(members.matches, ['value', 'valueOf'])
  t.same([members.cursor_start, members.cursor_end], [7, 10])
  t.equal(inspected.found, true)
  t.match(inspected.data['text/plain'], /value: 42/)
  t.equal(unknown.found, false)
})

test('shutdown_request on control replies, then the process exits 0', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())
  const [reply] = await drive(kernel, [{ op: 'shutdown' }])
  t.same(reply, { status: 'ok', restart: false })
  t.equal(await kernel.exited, 0)
})

test('a badly signed or malformed message is dropped with a log line; the kernel keeps serving', { skip: missing }, async (t) => {
  const kernel = await startKernel('javascript')
  t.teardown(() => kernel.stop())
  const info = JSON.parse(readFileSync(kernel.connectionFile, 'utf8'))
  const dealer = new zmq.Dealer({ linger: 1000 })
  dealer.connect(`tcp://127.0.0.1:${info.shell_port}`)
  const forged = new Wire('not-the-key').encode(createMessage('execute_request', { code: 'globalThis.hacked = 1' }, { session: 's' }))
  await dealer.send(forged)
  await dealer.send([Buffer.from('no delimiter')])
  const dropped = /dropped a shell message: message signature does not match[^]*dropped a shell message: no <IDS\|MSG> delimiter/
  for (let i = 0; i < 200 && !dropped.test(kernel.stderr()); i++) await new Promise((r) => setTimeout(r, 50))
  dealer.close()
  t.match(kernel.stderr(), dropped, 'both were logged, in order')
  const [r] = await drive(kernel, [{ op: 'execute', code: 'typeof hacked' }])
  t.same(outputs(r).at(-1), ['execute_result', "'undefined'"], 'the forged execute_request did not run')
})

test('a kernel started without -f exits 1 with its usage', async (t) => {
  const [file, ...args] = kernelArgv('javascript').slice(0, -2)
  const r = spawnSync(file, args, { encoding: 'utf8' })
  t.equal(r.status, 1)
  t.match(r.stderr, /usage: <kernel> -f <connection_file>/)
})
