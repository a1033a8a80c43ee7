/**
 * Our Node kernel for the `javascript` and `typescript` kernelspecs. Started like any Jupyter kernel:
 *
 *   javascript: ["node", "<pkg>/dist/plugins/kernels/runtimes/node-kernel.js", "-f", "{connection_file}"]
 *   typescript: the same plus "--language", "typescript"
 *   (interrupt_mode "signal", the default; "message" works too; in a clone: "--import", "tsx" and the .ts source)
 *
 * Cells run in one persistent `vm` context with `breakOnSigint`, so SIGINT stops `while (true) {}` and
 * keeps every variable; an interrupted `await` ends the cell too (its promise is abandoned). A sync loop
 * reached *after* an `await` cannot be interrupted (no JavaScript runs on this thread meanwhile) — the
 * server's restart is the remedy there.
 */
import { createRequire } from 'node:module'
import { resolve as resolvePath } from 'node:path'
import { inspect } from 'node:util'
import { Writable } from 'node:stream'
import vm from 'node:vm'
import { parseArgs, runKernel, type CellIO, type CellOutcome, type DisplayBundle, type Executor } from './host.js'
import { CellSyntaxError, parseCell, stripTypes, transformCell } from './js-transform.js'

type Language = 'javascript' | 'typescript'

const LANGUAGE_INFO: Record<Language, Record<string, unknown>> = {
  javascript: { name: 'javascript', version: process.versions.node, mimetype: 'application/javascript', file_extension: '.js', codemirror_mode: 'javascript', pygments_lexer: 'javascript' },
  typescript: { name: 'typescript', version: process.versions.node, mimetype: 'text/typescript', file_extension: '.ts', codemirror_mode: { name: 'javascript', typescript: true }, pygments_lexer: 'typescript' },
}

/** Node globals a cell sees besides the language's own (the context is a fresh realm). */
const HOST_GLOBALS = ['AbortController', 'AbortSignal', 'Blob', 'Buffer', 'BroadcastChannel', 'Event', 'EventTarget', 'FormData', 'Headers', 'MessageChannel', 'Request', 'Response', 'TextDecoder', 'TextEncoder', 'URL', 'URLSearchParams', 'atob', 'btoa', 'clearImmediate', 'clearInterval', 'clearTimeout', 'crypto', 'fetch', 'performance', 'process', 'queueMicrotask', 'setImmediate', 'setInterval', 'setTimeout', 'structuredClone']

const MIME = /^[\w\-+.]+\/[\w\-+.]+$/
const KEYWORDS = ['await', 'async', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do', 'else', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'let', 'new', 'null', 'return', 'static', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'undefined', 'var', 'void', 'while', 'with', 'yield']

/** The error a cell reports when SIGINT ends it (Node's own ERR_SCRIPT_EXECUTION_INTERRUPTED for sync code). */
function interrupted(): CellOutcome {
  return { status: 'error', ename: 'Interrupted', evalue: 'Script execution was interrupted by SIGINT', traceback: ['Interrupted: Script execution was interrupted by SIGINT'] }
}

function isErrorLike(v: unknown): v is Error {
  return typeof v === 'object' && v !== null && typeof (v as Error).stack === 'string' && 'message' in v
}

/** A thrown value as Jupyter's error content; stack frames of this kernel and of Node's internals are dropped. */
function errorOutcome(err: unknown): CellOutcome {
  if (err instanceof CellSyntaxError) {
    return { status: 'error', ename: 'SyntaxError', evalue: err.message, traceback: [`SyntaxError: ${err.message}`] }
  }
  if ((err as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') return interrupted()
  if (!isErrorLike(err)) return { status: 'error', ename: 'Error', evalue: inspect(err), traceback: [`Uncaught ${inspect(err)}`] }
  const here = new URL('.', import.meta.url).pathname
  const traceback = err.stack!.split('\n')
    .filter((l) => !/^\s+at /.test(l) || !(l.includes(here) || l.includes('node:')))
    .map((l) => l.replaceAll(`${process.cwd()}/`, ''))
  return { status: 'error', ename: err.name || 'Error', evalue: err.message, traceback }
}

/** Runs cells in one vm context (see the module comment). */
export class NodeExecutor implements Executor {
  readonly ready = Promise.resolve()
  private readonly context: vm.Context
  /** The context's own global object (the sandbox object lacks the language's built-ins such as Math). */
  private readonly global: Record<string, unknown>
  private io: CellIO | undefined
  private cancel: (() => void) | undefined
  private readonly cwdRequire = createRequire(resolvePath(process.cwd(), 'cell.js'))

  constructor(private readonly language: Language) {
    this.context = vm.createContext(this.globals(), { name: `${language} kernel` })
    this.global = vm.runInContext('globalThis', this.context) as Record<string, unknown>
    process.on('SIGINT', () => this.cancel?.()) // breakOnSigint handles sync code; this ends pending awaits
    process.on('uncaughtException', (err) => this.report(err))
    process.on('unhandledRejection', (err) => this.report(err))
    // Node prints an ExperimentalWarning for USE_MAIN_CONTEXT_DEFAULT_LOADER on the first import(); keep the rest.
    process.removeAllListeners('warning')
    process.on('warning', (w) => {
      if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.name}: ${w.message}\n`)
    })
  }

  /** Errors thrown outside a cell (timers, abandoned promises) go to the latest cell's stderr, as in Node's REPL. */
  private report(err: unknown): void {
    const out = errorOutcome(err)
    if (out.status === 'error') this.io?.stream('stderr', `Uncaught ${out.traceback.join('\n')}\n`)
  }

  private globals(): Record<string, unknown> {
    const g: Record<string, unknown> = {}
    for (const name of HOST_GLOBALS) g[name] = (globalThis as Record<string, unknown>)[name]
    const stream = (name: 'stdout' | 'stderr') => new Writable({
      decodeStrings: false,
      write: (chunk: string | Buffer, _enc, done) => { this.io?.stream(name, String(chunk)); done() },
    })
    g.console = new console.Console({ stdout: stream('stdout'), stderr: stream('stderr'), colorMode: false })
    g.require = this.cwdRequire
    g.ENVIRONS = process.env
    g.display = Object.assign((value: unknown, metadata?: Record<string, unknown>) => this.io?.display(this.bundle(value, metadata)), {
      clear: (wait = false) => this.io?.clearOutput(Boolean(wait)),
    })
    g.input = (prompt = '', password = false) => this.io?.input(String(prompt), Boolean(password))
    return g
  }

  /** A plain object whose keys are all MIME types is a bundle; anything else is shown as `text/plain`. */
  private bundle(value: unknown, metadata?: Record<string, unknown>): DisplayBundle {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value)
      if (keys.length > 0 && keys.every((k) => MIME.test(k))) return { data: value as Record<string, unknown>, metadata: metadata ?? {} }
    }
    return { data: { 'text/plain': inspect(value) }, metadata: metadata ?? {} }
  }

  kernelInfo() {
    return {
      implementation: 'workspace-kernel-node',
      implementation_version: '0.1.0',
      banner: `Node.js ${process.version} ${this.language} kernel (workspace-kernel)`,
      language_info: LANGUAGE_INFO[this.language],
    }
  }

  async execute(code: string, io: CellIO, options: { silent: boolean; executionCount: number }): Promise<CellOutcome> {
    this.io = io
    try {
      const cell = transformCell(code, this.language)
      const script = new vm.Script(cell.code, {
        // A file name in the working directory: `import()` in a cell resolves from there, with Node's own loader.
        filename: resolvePath(process.cwd(), `cell[${options.executionCount}]`),
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      })
      let value: unknown = script.runInContext(this.context, { breakOnSigint: true })
      if (cell.async) value = await this.interruptible(value as Promise<unknown>)
      if (!cell.hasResult || value === undefined) return { status: 'ok' }
      return { status: 'ok', result: { data: { 'text/plain': inspect(value) }, metadata: {} } }
    } catch (err) {
      return err === INTERRUPT ? interrupted() : errorOutcome(err)
    } finally {
      this.cancel = undefined
    }
  }

  /** Await `p`, or give up on it when SIGINT arrives. */
  private interruptible<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.cancel = () => reject(INTERRUPT)
      p.then(resolve, reject)
    })
  }

  isComplete(code: string): { status: 'complete' | 'incomplete' | 'invalid'; indent?: string } {
    try {
      parseCell(this.language === 'typescript' ? stripTypes(code) : code)
      return { status: 'complete' }
    } catch (err) {
      return err instanceof CellSyntaxError && err.atEnd ? { status: 'incomplete', indent: '' } : { status: 'invalid' }
    }
  }

  /** The value a dotted path (`a.b.c`) names in the context, reading properties only (no code runs but getters). */
  private lookup(path: string): { found: boolean; value: unknown } {
    let value: unknown = this.global
    for (const part of path.split('.')) {
      if (value === null || value === undefined || !(part in Object(value))) return { found: false, value: undefined }
      value = (value as Record<string, unknown>)[part]
    }
    return { found: true, value }
  }

  async complete(code: string, cursorPos: number): Promise<{ matches: string[]; cursor_start: number; cursor_end: number }> {
    const m = /(?:([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\.)?([A-Za-z_$][\w$]*)?$/.exec(code.slice(0, cursorPos))
    const prefix = m?.[2] ?? ''
    const names = new Set<string>()
    if (m?.[1]) {
      const { found, value } = this.lookup(m[1])
      for (let o: unknown = found && value != null ? Object(value) : null; o; o = Object.getPrototypeOf(o)) {
        for (const k of Object.getOwnPropertyNames(o)) names.add(k)
      }
    } else {
      for (const k of Object.getOwnPropertyNames(this.global)) names.add(k)
      for (const k of KEYWORDS) names.add(k)
    }
    const matches = [...names].filter((k) => k.startsWith(prefix) && /^[A-Za-z_$][\w$]*$/.test(k)).sort()
    return { matches, cursor_start: cursorPos - prefix.length, cursor_end: cursorPos }
  }

  async inspect(code: string, cursorPos: number): Promise<Record<string, unknown> | undefined> {
    const before = /[A-Za-z_$][\w$.]*$/.exec(code.slice(0, cursorPos))?.[0] ?? ''
    const after = /^[\w$]*/.exec(code.slice(cursorPos))?.[0] ?? ''
    const path = (before + after).replace(/\.$/, '')
    if (!path) return undefined
    const { found, value } = this.lookup(path)
    if (!found) return undefined
    const text = typeof value === 'function' ? `${String(value).split('\n')[0]}\n${inspect(value)}` : inspect(value)
    return { 'text/plain': text }
  }
}

const INTERRUPT = Symbol('interrupt')

const { connectionFile, options } = parseArgs(process.argv.slice(2))
const language = (options.language ?? 'javascript') as Language
if (!(language in LANGUAGE_INFO)) throw new Error(`--language must be javascript or typescript, not "${language}"`)
runKernel(connectionFile, new NodeExecutor(language))
