/**
 * Test helpers for our kernel processes: a connection file on free loopback ports, the kernel started
 * from it exactly as a kernelspec would, and Python's jupyter_client (from the project's `.venv`,
 * installed by scripts/setup.sh) driving it through drive_kernel.py.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as zmq from 'zeromq'
import { newKey } from '../../plugins/kernels/wire.js'

export const root = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const python = join(root, '.venv', 'bin', 'python')

/** The kernelspec argv of our kernels (`{connection_file}` left in), as the server side lists them. */
export function kernelArgv(name: 'javascript' | 'typescript' | 'pyodide'): string[] {
  const entry = name === 'pyodide' ? 'pyodide-kernel.ts' : 'node-kernel.ts'
  const argv = [process.execPath, '--import', join(root, 'node_modules/tsx/dist/loader.mjs'), join(root, 'plugins/kernels/runtimes', entry), '-f', '{connection_file}']
  return name === 'typescript' ? [...argv, '--language', 'typescript'] : argv
}

/** Why the Python client tests cannot run here, or undefined when `.venv` has jupyter_client and jupyter_kernel_test. */
export function pythonMissing(): string | undefined {
  if (!existsSync(python)) return `${python} missing (run scripts/setup.sh)`
  const r = spawnSync(python, ['-c', 'import jupyter_client, jupyter_kernel_test, ipykernel'], { encoding: 'utf8' })
  return r.status === 0 ? undefined : `jupyter_client/jupyter_kernel_test/ipykernel missing in .venv: ${r.stderr.trim().split('\n').at(-1)}`
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => res(port))
    }).on('error', rej)
  })
}

/**
 * Resolves once the kernel echoes a heartbeat. A client without a KernelManager (drive_kernel.py) judges
 * liveness by heartbeat alone and gives up after one missed beat, so it connects only after this.
 */
async function heartbeat(port: number, exited: Promise<unknown>): Promise<void> {
  let dead = false
  void exited.then(() => { dead = true })
  while (!dead) {
    const req = new zmq.Request({ receiveTimeout: 500, linger: 0 })
    req.connect(`tcp://127.0.0.1:${port}`)
    try {
      await req.send('ping')
      await req.receive()
      return
    } catch {
      // not up yet
    } finally {
      req.close()
    }
  }
  throw new Error('kernel exited before answering its heartbeat')
}

/** A started kernel process with its connection file; `stop()` kills it and removes the directory. */
export interface KernelProcess {
  child: ChildProcess
  connectionFile: string
  exited: Promise<number | null>
  stderr: () => string
  stop(): Promise<void>
}

export async function startKernel(name: 'javascript' | 'typescript' | 'pyodide'): Promise<KernelProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'wk-kernel-'))
  const connectionFile = join(dir, 'kernel.json')
  const [shell_port, iopub_port, stdin_port, control_port, hb_port] = await Promise.all([1, 2, 3, 4, 5].map(freePort))
  const info = { transport: 'tcp', ip: '127.0.0.1', shell_port, iopub_port, stdin_port, control_port, hb_port, key: newKey(), signature_scheme: 'hmac-sha256', kernel_name: name }
  writeFileSync(connectionFile, JSON.stringify(info), { mode: 0o600 })
  const [file, ...args] = kernelArgv(name).map((a) => (a === '{connection_file}' ? connectionFile : a))
  // Its own process group, as jupyter_client starts kernels (a group-wide SIGINT reaches its children too).
  const child = spawn(file, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => { stderr += d })
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)))
  await heartbeat(hb_port, exited).catch((err: Error) => { throw new Error(`${err.message}: ${stderr}`) })
  return {
    child, connectionFile, exited, stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** One drive_kernel.py step (see its docstring) and what comes back. */
export type Step = Record<string, unknown>
export interface Executed {
  reply: Record<string, any>
  iopub: { msg_type: string; content: Record<string, any> }[]
  input_requests: Record<string, any>[]
}

/** Run `steps` against the kernel with jupyter_client; resolves with one result per step. */
export async function drive(kernel: KernelProcess, steps: Step[]): Promise<any[]> {
  const child = spawn(python, [join(root, 'test/kernels/drive_kernel.py'), kernel.connectionFile], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  child.stderr.on('data', (d: Buffer) => { err += d })
  child.stdin.end(JSON.stringify(steps))
  const code = await new Promise<number | null>((res) => child.on('exit', res))
  if (code !== 0) throw new Error(`drive_kernel.py exited ${code}: ${err}\nkernel stderr: ${kernel.stderr()}`)
  return JSON.parse(out)
}

/**
 * Run jupyter_kernel_test classes of kernel_conformance.py (KernelManager starts each kernel from the
 * kernelspecs written to a temporary JUPYTER_PATH, exactly as Jupyter does). Resolves with
 * `{test id: 'ok' | 'skip: …' | 'fail: …'}`.
 */
export async function conformance(classes: string[]): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'wk-jupyter-'))
  try {
    for (const name of ['javascript', 'typescript', 'pyodide'] as const) {
      const spec = { argv: kernelArgv(name), display_name: name, language: name === 'pyodide' ? 'python' : name, interrupt_mode: 'signal' }
      mkdirSync(join(dir, 'kernels', name), { recursive: true })
      writeFileSync(join(dir, 'kernels', name, 'kernel.json'), JSON.stringify(spec))
    }
    const child = spawn(python, [join(root, 'test/kernels/kernel_conformance.py'), ...classes], {
      cwd: dir, env: { ...process.env, JUPYTER_PATH: dir, JUPYTER_RUNTIME_DIR: join(dir, 'runtime') }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d })
    child.stderr.on('data', (d: Buffer) => { err += d })
    const code = await new Promise<number | null>((res) => child.on('exit', res))
    if (code !== 0) throw new Error(`kernel_conformance.py exited ${code}: ${err}`)
    return JSON.parse(out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
