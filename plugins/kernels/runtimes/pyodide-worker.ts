/**
 * The Python thread of the pyodide kernel: loads Pyodide (npm `pyodide`, standard library only, no
 * network) and runs cells in `__main__`'s namespace, one at a time.
 *
 * workerData: `{ interrupt: SharedArrayBuffer(4), stdin: SharedArrayBuffer }` — the main thread sets
 *   `interrupt[0] = 2` on SIGINT (Pyodide raises KeyboardInterrupt at the next bytecode check); `stdin`
 *   carries input_reply text back to a blocked `input()` (Int32 state + Int32 length + UTF-8 bytes).
 * in:  `{ id, op: 'execute' | 'isComplete' | 'complete' | 'inspect', code, cursorPos?, filename? }`
 * out: `{ ready: { version } }` | `{ failed: message }` | `{ stream: { name, text } }` | `{ display: bundle }` |
 *      `{ input: { prompt, password } }` | `{ id, result }` (the Python helper's JSON answer, parsed)
 */
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { parentPort, workerData } from 'node:worker_threads'
import { loadPyodide, type PyodideInterface } from 'pyodide'

const port = parentPort!
const { interrupt, stdin } = workerData as { interrupt: SharedArrayBuffer; stdin: SharedArrayBuffer }
const interruptFlag = new Int32Array(interrupt)
const stdinState = new Int32Array(stdin, 0, 2)
const stdinBytes = new Uint8Array(stdin, 8)

/** The helpers cells run through: results and errors as JSON, tracebacks without Pyodide's own frames. */
const HELPERS = String.raw`
import asyncio, builtins, codeop, inspect as _inspect, json, rlcompleter, re, sys, traceback, __main__
from pyodide.code import eval_code_async

def _wk_error(e, filename):
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    lines = traceback.format_exception(type(e), e, tb)
    return {"status": "error", "ename": type(e).__name__, "evalue": str(e), "traceback": [l.rstrip("\n") for l in lines]}

_WK_REPRS = [("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"), ("_repr_svg_", "image/svg+xml"),
             ("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg"), ("_repr_latex_", "text/latex"), ("_repr_json_", "application/json")]

def _wk_bundle(obj):
    """IPython's rich display protocol, minus IPython: text/plain is repr(); _repr_*_ methods add MIME types."""
    data = {"text/plain": repr(obj)}
    for method, mime in _WK_REPRS:
        fn = getattr(obj, method, None)
        if callable(fn):
            try:
                value = fn()
            except Exception:
                continue
            if value is not None:
                data[mime] = value
    return data

def display(*objs, raw=False, metadata=None):
    """Publish display_data for each object (raw=True: the object is already a {mime: data} dict), as IPython's display."""
    for obj in objs:
        _wk_display(json.dumps({"data": obj if raw else _wk_bundle(obj), "metadata": metadata or {}}, default=str))

builtins.display = display

_wk_cell = None

def _wk_cancel():
    """An interrupt while the cell awaits: cancel it (reported as KeyboardInterrupt)."""
    if _wk_cell is not None and not _wk_cell.done():
        _wk_cell.cancel("interrupt")

async def _wk_execute(code, filename):
    global _wk_cell
    _wk_cell = asyncio.ensure_future(eval_code_async(code, __main__.__dict__, filename=filename))
    try:
        value = await _wk_cell
    except asyncio.CancelledError as e:
        if _wk_cell.cancelled():
            return json.dumps({"status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": ["KeyboardInterrupt"]})
        return json.dumps(_wk_error(e, filename))
    except BaseException as e:
        return json.dumps(_wk_error(e, filename))
    finally:
        sys.stdout.flush(); sys.stderr.flush()
    if value is None:
        return json.dumps({"status": "ok"})
    builtins._ = value
    return json.dumps({"status": "ok", "data": _wk_bundle(value)}, default=str)

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
    """Names for the dotted token before the cursor; like ipykernel, a match replaces only the last segment."""
    token = re.search(r"[\w.]*$", code[:pos]).group(0)
    completer = rlcompleter.Completer(__main__.__dict__)
    matches, i = set(), 0
    while (m := completer.complete(token, i)) is not None:
        matches.add(m.rstrip("(").rsplit(".", 1)[-1])
        i += 1
    last = token.rsplit(".", 1)[-1]
    return json.dumps({"matches": sorted(matches), "cursor_start": pos - len(last), "cursor_end": pos})

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

builtins.input = input

import time as _time

def _wk_sleep(seconds):
    """time.sleep that an interrupt ends at once (Pyodide's own only notices it when it returns)."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    deadline = _time.monotonic() + seconds
    while (left := deadline - _time.monotonic()) > 0:
        if _wk_wait(min(left, 1.0)):
            raise KeyboardInterrupt

_time.sleep = _wk_sleep
`

/**
 * Sleeps up to `seconds` on the interrupt buffer; true (buffer reset) when SIGINT woke it. The main
 * thread notifies the buffer when it sets it, so an interrupted sleep ends at once.
 */
function waitInterruptible(seconds: number): boolean {
  Atomics.wait(interruptFlag, 0, 0, seconds * 1000)
  return Atomics.compareExchange(interruptFlag, 0, 2, 0) === 2
}

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

type PyProxyDict = { get(name: string): unknown; set(name: string, value: unknown): void }

async function load(): Promise<{ py: PyodideInterface; helpers: PyProxyDict }> {
  const indexURL = dirname(createRequire(import.meta.url).resolve('pyodide')) + '/'
  const py = await loadPyodide({
    indexURL,
    stdout: (s) => port.postMessage({ stream: { name: 'stdout', text: `${s}\n` } }),
    stderr: (s) => port.postMessage({ stream: { name: 'stderr', text: `${s}\n` } }),
  })
  py.setStdout({ write: writer('stdout') })
  py.setStderr({ write: writer('stderr') })
  py.setInterruptBuffer(interruptFlag)
  py.FS.mkdirTree('/home/pyodide')
  py.FS.mount(py.FS.filesystems.NODEFS, { root: process.cwd() }, '/home/pyodide')
  // The helpers live in their own namespace: a fresh kernel's `dir()` shows only what Python itself puts there.
  const helpers = py.runPython('dict()') as PyProxyDict
  helpers.set('_wk_read_line', readLine)
  helpers.set('_wk_wait', waitInterruptible)
  helpers.set('_wk_display', (json: string) => port.postMessage({ display: JSON.parse(json) }))
  py.runPython(HELPERS, { globals: helpers as never })
  py.runPython('import os; os.chdir("/home/pyodide"); del os')
  return { py, helpers }
}

type Request = { id: number; op: 'execute' | 'isComplete' | 'complete' | 'inspect'; code: string; cursorPos?: number; filename?: string }

async function serve({ py, helpers }: { py: PyodideInterface; helpers: PyProxyDict }): Promise<void> {
  const call = (name: string, ...args: unknown[]) => (helpers.get(name) as (...a: unknown[]) => unknown)(...args)
  let queue = Promise.resolve()
  port.on('message', (req: Request | { interrupt: true }) => {
    if ('interrupt' in req) {
      Atomics.compareExchange(interruptFlag, 0, 2, 0) // the cancel below must not be interrupted itself
      return call('_wk_cancel')
    }
    queue = queue.then(async () => {
      let json: unknown
      if (req.op === 'execute') json = await call('_wk_execute', req.code, req.filename)
      else if (req.op === 'isComplete') json = call('_wk_is_complete', req.code)
      else if (req.op === 'complete') json = call('_wk_complete', req.code, req.cursorPos)
      else json = call('_wk_inspect', req.code, req.cursorPos)
      port.postMessage({ id: req.id, result: JSON.parse(String(json)) })
    })
  })
  const version = String(py.runPython('import sys; sys.version.split()[0]', { globals: helpers as never }))
  port.postMessage({ ready: { version } })
}

// Python raising outside a cell (a task left running, an interrupt landing in a loop callback) is
// reported on stderr like an unraisable exception, not a crash of the kernel.
const unraisable = (err: unknown) => port.postMessage({ stream: { name: 'stderr', text: `${(err as Error)?.message ?? String(err)}\n` } })
process.on('uncaughtException', unraisable)
process.on('unhandledRejection', unraisable)

load().then(serve, (err: Error) => port.postMessage({ failed: err.message }))
