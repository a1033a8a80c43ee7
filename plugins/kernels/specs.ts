/**
 * The kernelspec registry: the built-in kinds (specs/kernels.md section 0), each probed once at startup.
 * A kind whose runtime is missing stays listed with `available: false` and a `reason`; it never fails the server.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packageRoot } from '../../wasm-runtime/addon.js'

const here = dirname(fileURLToPath(import.meta.url))
/** Our own kernel programs (the `kernels-node` work): standalone, started with `-f <connection file>`. */
export const RUNTIMES_DIR = join(here, 'runtimes')
/** The clone, or the installed package (whose code is dist/). */
const PROJECT_ROOT = packageRoot(import.meta.url)
/**
 * Whether this is the compiled package (dist/*.js): its kernel programs are JavaScript run by plain
 * Node; a clone runs the TypeScript sources through tsx, its dev dependency.
 */
const COMPILED = import.meta.url.endsWith('.js')
/** npm packages our kernel programs import (their folders are bound read-only into the sandbox). */
const KERNEL_PACKAGES = ['zeromq', 'acorn', 'esbuild', 'pyodide']
/**
 * RLIMIT_AS of our Node kernels: V8 reserves ~10 GiB of address space per WebAssembly memory (tsx's
 * lexer in each of its threads, Pyodide), so the bridge's 4 GiB default cannot start them. Virtual, not resident;
 * the heap is bounded by `nodeHeapMb`.
 */
const NODE_KERNEL_ADDRESS_SPACE_BYTES = 256 * 1024 ** 3

/** Jupyter's kernelspec (`kernel.json`) plus where it runs (`metadata.wk`). `{connection_file}` is replaced at launch. */
export interface KernelSpecFile {
  argv: string[]
  display_name: string
  language: string
  interrupt_mode: 'signal' | 'message'
  env: Record<string, string>
  metadata: { wk: { mode: 'process' | 'worker'; sandbox: 'bubblewrap' } }
}

/** One kind of kernel as the server knows it. */
export interface KernelSpec {
  name: string
  spec: KernelSpecFile
  available: boolean
  /** Why it cannot start (when unavailable). */
  reason?: string
  /** Process label for the bridge. */
  processType: 'node' | 'python'
  /** Paths the kernel process reads besides the workspace (sandbox read-only binds). */
  readOnlyPaths: string[]
  /** RLIMIT_AS the process needs beyond the bridge's default (V8 + WebAssembly), bytes. */
  addressSpaceBytes?: number
}

/** What the registry needs from the plugin's options. */
export interface SpecOptions {
  python: string
  nodeHeapMb: number
}

function run(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((done) => {
    execFile(file, args, { timeout: 10_000 }, (err, _stdout, stderr) => done(err ? (stderr.trim().split('\n').pop() || err.message) : undefined))
  })
}

/** `python3` means the project's virtualenv (scripts/setup.sh installs ipykernel there) when it exists. */
export function pythonPath(option: string): string {
  const venv = join(PROJECT_ROOT, '.venv', 'bin', 'python3')
  return option === 'python3' && existsSync(venv) ? venv : option
}

async function python3(opts: SpecOptions): Promise<KernelSpec> {
  const py = pythonPath(opts.python)
  const probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('ipykernel') else 3)"
  const failed = await run(py, ['-c', probe])
  return {
    name: 'python3',
    available: failed === undefined,
    ...(failed === undefined ? {} : { reason: `ipykernel is not importable by ${opts.python} (run scripts/setup.sh): ${failed || 'not installed'}` }),
    processType: 'python',
    readOnlyPaths: [dirname(dirname(py))],
    spec: {
      argv: [py, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: 'Python 3 (ipykernel)',
      language: 'python',
      interrupt_mode: 'signal',
      env: {},
      metadata: { wk: { mode: 'process', sandbox: 'bubblewrap' } },
    },
  }
}

/** Where `pkg` resolves from this package, or undefined when it is not installed. */
function resolved(pkg: string): string | undefined {
  try {
    return createRequire(join(PROJECT_ROOT, 'package.json')).resolve(pkg)
  } catch {
    return undefined
  }
}

/**
 * The `node_modules` folders our kernel programs load packages from: the project's own, and in an
 * installed app the one npm hoisted the dependencies into (outside the package).
 */
function moduleFolders(): string[] {
  const folders = new Set([join(PROJECT_ROOT, 'node_modules')])
  const marker = `${sep}node_modules${sep}`
  for (const file of KERNEL_PACKAGES.map(resolved)) {
    const at = file?.lastIndexOf(marker) ?? -1
    if (file && at >= 0) folders.add(file.slice(0, at + marker.length - 1))
  }
  return [...folders].filter((f) => existsSync(f))
}

/**
 * One of our Node kernel programs: `<script>.js` run by Node in the compiled package, `<script>.ts`
 * through tsx's loader in a clone; unavailable when its file (or an npm package it needs) is missing.
 */
function nodeKernel(name: string, display: string, language: string, script: string, args: string[], opts: SpecOptions, needs?: string): KernelSpec {
  const file = join(RUNTIMES_DIR, `${script}${COMPILED ? '.js' : '.ts'}`)
  const loader = COMPILED ? [] : ['--import', join(PROJECT_ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs')]
  const reason = !existsSync(file)
    ? `the ${name} kernel program is not installed (${script}${COMPILED ? '.js' : '.ts'} missing)`
    : needs && !resolved(needs)
      ? `npm package ${needs} is not installed (run scripts/setup.sh)`
      : undefined
  return {
    name,
    available: reason === undefined,
    ...(reason ? { reason } : {}),
    processType: 'node',
    // the programs import ../wire, so the whole kernels folder is visible (read-only); package.json says "type": "module"
    readOnlyPaths: [here, ...moduleFolders(), join(PROJECT_ROOT, 'package.json'), dirname(process.execPath)],
    addressSpaceBytes: NODE_KERNEL_ADDRESS_SPACE_BYTES,
    spec: {
      argv: [process.execPath, `--max-old-space-size=${opts.nodeHeapMb}`, ...loader, file, '-f', '{connection_file}', ...args],
      display_name: display,
      language,
      interrupt_mode: 'signal',
      env: {},
      metadata: { wk: { mode: name === 'pyodide' ? 'worker' : 'process', sandbox: 'bubblewrap' } },
    },
  }
}

/** Probes every built-in kind (python3 runs its interpreter once) and returns them by name. */
export async function loadSpecs(opts: SpecOptions): Promise<Map<string, KernelSpec>> {
  const specs = [
    await python3(opts),
    nodeKernel('pyodide', 'Python 3 (Pyodide)', 'python', 'pyodide-kernel', [], opts, 'pyodide'),
    nodeKernel('javascript', 'JavaScript (Node.js)', 'javascript', 'node-kernel', ['--language', 'javascript'], opts),
    nodeKernel('typescript', 'TypeScript (Node.js)', 'typescript', 'node-kernel', ['--language', 'typescript'], opts, 'esbuild'),
  ]
  return new Map(specs.map((s) => [s.name, s]))
}

/** The seed's `mode`/`lang` pair mapped to a kernelspec name (specs/kernels.md section 3); `main_thread` → null. */
export function specForMode(mode: string, lang?: string): string | null | undefined {
  if (mode === 'main_thread') return null
  const key = `${mode}-${lang ?? 'python'}`
  return { 'worker-python': 'pyodide', 'worker-typescript': 'typescript', 'worker-javascript': 'javascript', 'process-python': 'python3' }[key]
}
