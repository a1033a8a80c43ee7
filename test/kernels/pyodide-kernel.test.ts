// Our pyodide kernel started from a connection file, driven by jupyter_client. One kernel for the whole
// file: Pyodide takes seconds to load.
import { test } from 'tap'
import { drive, pythonMissing, startKernel, type Executed } from './kernel-process.js'

const missing = pythonMissing()
const last = (r: Executed) => r.iopub.at(-1)

test('pyodide kernel', { skip: missing }, async (t) => {
  const kernel = await startKernel('pyodide')
  t.teardown(() => kernel.stop())
  const pid = kernel.child.pid
  const [info, printed, sum, failed, bySignal, byMessage, sleeping, awaiting, kept, asked, refused, incomplete, completed, shutdown] = await drive(kernel, [
    { op: 'kernel_info' },
    { op: 'execute', code: 'import sys\nprint("hello")\nprint("oops", file=sys.stderr)\nkeep = 41' },
    { op: 'execute', code: '1+1' },
    { op: 'execute', code: 'def inner():\n    return 1 / 0\ninner()' },
    { op: 'execute', code: 'while True: pass', interrupt: { after_s: 0.5, via: 'signal', pid } },
    { op: 'execute', code: 'while True:\n    keep = keep', interrupt: { after_s: 0.5, via: 'message' } },
    { op: 'execute', code: 'import time\ntime.sleep(30)', interrupt: { after_s: 0.5, via: 'signal', pid } },
    { op: 'execute', code: 'import asyncio\nawait asyncio.sleep(30)', interrupt: { after_s: 0.5, via: 'signal', pid } },
    { op: 'execute', code: 'keep + 1' },
    { op: 'execute', code: 'name = input("name? ")\nf"hello {name}"', stdin: ['Ada'] },
    { op: 'execute', code: 'input()', allow_stdin: false },
    { op: 'is_complete', code: 'for i in range(3):' },
    { op: 'complete', code: 'sys.std' },
    { op: 'shutdown' },
  ])

  t.test('kernel_info_reply describes Python', async (t) => {
    t.equal(info.protocol_version, '5.3')
    t.equal(info.language_info.name, 'python')
    t.equal(info.language_info.file_extension, '.py')
    t.match(info.language_info.version, /^3\.\d+\.\d+$/)
  })

  t.test('print streams stdout and stderr; 1+1 is execute_result 2', async (t) => {
    t.same(printed.iopub.filter((m: any) => m.msg_type === 'stream').map((m: any) => [m.content.name, m.content.text]), [['stdout', 'hello\n'], ['stderr', 'oops\n']])
    t.notOk(printed.iopub.some((m: any) => m.msg_type === 'execute_result'), 'an assignment has no result')
    t.same(last(sum), { msg_type: 'execute_result', content: { execution_count: sum.reply.execution_count, data: { 'text/plain': '2' }, metadata: {} } })
  })

  t.test('an exception is an error reply with a Python traceback of the cell', async (t) => {
    t.same([failed.reply.status, failed.reply.ename, failed.reply.evalue], ['error', 'ZeroDivisionError', 'division by zero'])
    const tb = failed.reply.traceback.join('\n')
    t.match(tb, /File "<cell\[\d+\]>", line 3, in <module>/)
    t.match(tb, /line 2, in inner/)
    t.notMatch(tb, /_pyodide|pyodide\/code/, 'no Pyodide frames')
  })

  t.test('interrupt raises KeyboardInterrupt in a loop, time.sleep and an await, and keeps the namespace', async (t) => {
    t.same([bySignal.reply.status, bySignal.reply.ename], ['error', 'KeyboardInterrupt'])
    t.same([byMessage.reply.status, byMessage.reply.ename], ['error', 'KeyboardInterrupt'])
    t.same([sleeping.reply.status, sleeping.reply.ename], ['error', 'KeyboardInterrupt'], 'time.sleep(30)')
    t.same([awaiting.reply.status, awaiting.reply.ename], ['error', 'KeyboardInterrupt'], 'await asyncio.sleep(30)')
    t.equal(last(kept).content.data['text/plain'], '42')
  })

  t.test('input() sends input_request on stdin; without allow_stdin it is StdinNotImplementedError', async (t) => {
    t.same(asked.input_requests, [{ prompt: 'name? ', password: false }])
    t.equal(last(asked).content.data['text/plain'], "'hello Ada'")
    t.equal(refused.reply.ename, 'StdinNotImplementedError')
  })

  t.test('is_complete and complete', async (t) => {
    t.same(incomplete, { status: 'incomplete', indent: '    ' })
    t.same(completed.matches, ['stderr', 'stdin', 'stdlib_module_names', 'stdout'])
    t.equal(completed.cursor_start, 'sys.'.length)
  })

  t.test('shutdown_request replies, then the process exits 0', async (t) => {
    t.same(shutdown, { status: 'ok', restart: false })
    t.equal(await kernel.exited, 0)
  })
})
