/**
 * The Python thread of the pyodide kernel: loads Pyodide (npm `pyodide`, standard library only, no
 * network) and runs cells in `__main__`'s namespace, one at a time.
 *
 * workerData: `{ interrupt: SharedArrayBuffer(4), stdin: SharedArrayBuffer }` — the main thread sets
 *   `interrupt[0] = 2` on SIGINT (Pyodide raises KeyboardInterrupt at the next bytecode check); `stdin`
 *   carries input_reply text back to a blocked `input()` (Int32 state + Int32 length + UTF-8 bytes).
 * in:  `{ id, op: 'execute' | 'isComplete' | 'complete' | 'inspect', code, cursorPos?, filename? }`
 * out: `{ ready: { version } }` | `{ failed: message }` | `{ stream: { name, text } }` |
 *      `{ input: { prompt, password } }` | `{ id, result }` (the Python helper's JSON answer, parsed)
 */
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { loadPyodide, type PyodideInterface } from 'pyodide'

const port = parentPort!
const { interrupt, stdin } = workerData as { interrupt: SharedArrayBuffer; stdin: SharedArrayBuffer }
const stdinState = new Int32Array(stdin, 0, 2)
const stdinBytes = new Uint8Array(stdin, 8)

/** The helpers cells run through: results and errors as JSON, tracebacks without Pyodide's own frames. */
const HELPERS = String.raw`
import builtins, codeop, inspect as _inspect, json, rlcompleter, re, sys, traceback, __main__
from pyodide.code import eval_code_async

def _wk_error(e, filename):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    lines = traceback.format_exception(type(e), e, tb)
    return {"status": "error", "ename": type(e).__name__, "evalue": str(e), "traceback": [l.rstrip("\n") for l in lines]}

async def _wk_execute(code, filename):
    try:
        value = await eval_code_async(code, __main__.__dict__, filename=filename)
    except BaseException as e:
        return json.dumps(_wk_error(e, filename))
    finally:
        sys.stdout.flush(); sys.stderr.flush()
    if value is None:
        return json.dumps({"status": "ok"})
    builtins._ = value
    return json.dumps({"status": "ok", "repr": repr(value)})

def _wk_is_complete(code):
    try:
        compiled = codeop.compile_command(code, "<input>", "exec")
    except (SyntaxError, OverflowError, ValueError):
        return json.dumps({"status": "invalid"})
    if compiled is None:
        indent = "    " if code.rstrip().endswith(":") else ""
        return json.dumps({"status": "incomplete", "indent": indent})
    return json.dumps({"status": "complete"})

def _wk_complete(code, pos):
    token = re.search(r"[\w.]*$", code[:pos]).group(0)
    completer = rlcompleter.Completer(__main__.__dict__)
    matches, i = [], 0
    while True:
        m = completer.complete(token, i)
        if m is None:
            break
        matches.append(m.rstrip("("))
        i += 1
    start = pos - len(token)
    return json.dumps({"matches": sorted(set(matches)), "cursor_start": start, "cursor_end": pos})

def _wk_inspect(code, pos):
    name = re.search(r"[\w.]*$", code[:pos]).group(0) + re.match(r"\w*", code[pos:]).group(0)
    if not name:
        return json.dumps(None)
    try:
        obj = eval(name, __main__.__dict__)
    except Exception:
        return json.dumps(None)
    text = type(obj).__name__ + ": " + repr(obj)[:2000]
    doc = _inspect.getdoc(obj)
    return json.dumps({"text/plain": text + ("\n\n" + doc if doc else "")})

class StdinNotImplementedError(RuntimeError):
    pass

def input(prompt=""):
    line = _wk_read_line(str(prompt), False)
    if line is None:
        raise StdinNotImplementedError("raw_input was called, but this frontend does not support input requests.")
    return line

__main__.__dict__["input"] = input
builtins.input = input
`

/** Blocks this thread until the main thread answers the input_request (stdin SAB protocol above). */
function readLine(prompt: string, password: boolean): string | undefined {
  Atomics.store(stdinState, 0, 0)
  port.postMessage({ input: { prompt, password } })
  Atomics.wait(stdinState, 0, 0)
  const state = Atomics.load(stdinState, 0)
  if (state === 2) return undefined // (None in Python) the frontend takes no input (allow_stdin false)
  return new TextDecoder().decode(stdinBytes.slice(0, stdinState[1]))
}

function writer(name: 'stdout' | 'stderr') {
  const decoder = new TextDecoder()
  return (buffer: Uint8Array): number => {
    port.postMessage({ stream: { name, text: decoder.decode(buffer, { stream: true }) } })
    return buffer.length
  }
}

async function load(): Promise<PyodideInterface> {
  const indexURL = dirname(createRequire(import.meta.url).resolve('pyodide')) + '/'
  const py = await loadPyodide({
    indexURL,
    stdout: (s) => port.postMessage({ stream: { name: 'stdout', text: `${s}\n` } }),
    stderr: (s) => port.postMessage({ stream: { name: 'stderr', text: `${s}\n` } }),
  })
  py.setStdout({ write: writer('stdout') })
  py.setStderr({ write: writer('stderr') })
  py.setInterruptBuffer(new Int32Array(interrupt))
  py.FS.mkdirTree('/home/pyodide')
  py.FS.mount(py.FS.filesystems.NODEFS, { root: process.cwd() }, '/home/pyodide')
  py.globals.set('_wk_read_line', readLine)
  py.runPython(HELPERS)
  py.runPython('import os; os.chdir("/home/pyodide")')
  return py
}

type Request = { id: number; op: 'execute' | 'isComplete' | 'complete' | 'inspect'; code: string; cursorPos?: number; filename?: string }

async function serve(py: PyodideInterface): Promise<void> {
  const call = (name: string, ...args: unknown[]) => (py.globals.get(name) as (...a: unknown[]) => unknown)(...args)
  let queue = Promise.resolve()
  port.on('message', (req: Request) => {
    queue = queue.then(async () => {
      let json: unknown
      if (req.op === 'execute') json = await call('_wk_execute', req.code, req.filename)
      else if (req.op === 'isComplete') json = call('_wk_is_complete', req.code)
      else if (req.op === 'complete') json = call('_wk_complete', req.code, req.cursorPos)
      else json = call('_wk_inspect', req.code, req.cursorPos)
      port.postMessage({ id: req.id, result: JSON.parse(String(json)) })
    })
  })
  const version = String(py.runPython('import sys; sys.version.split()[0]'))
  port.postMessage({ ready: { version } })
}

load().then(serve, (err: Error) => port.postMessage({ failed: err.message }))
