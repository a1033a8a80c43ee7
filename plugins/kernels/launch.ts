/**
 * Starting one kernel process: free TCP ports on 127.0.0.1, a connection file (0600 in a 0700 temp folder,
 * as jupyter_client writes it), and the kernelspec's argv started through the process bridge as an internal
 * spawn owned by the kernels plugin.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ProcessManager } from '../processes/manager.js'
import { newKey, type ConnectionInfo } from './wire.js'
import type { KernelSpec } from './specs.js'

/** The bridge owner of every kernel process (`{ owner: KERNEL_OWNER }` reaches them). */
export const KERNEL_OWNER = 'kernels'

/** `n` distinct free ports (bound at once so they differ, then released; a race is retried by the caller). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer())
  const ports = await Promise.all(
    servers.map((s) => new Promise<number>((ok, fail) => {
      s.once('error', fail)
      s.listen(0, '127.0.0.1', () => ok((s.address() as { port: number }).port))
    })),
  )
  await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))))
  return ports
}

/** A started kernel process: its pid, how to connect, and the folder to remove once it is gone. */
export interface Launched {
  pid: number
  connection: ConnectionInfo
  dir: string
  /** Removes the connection file's folder (idempotent). */
  cleanup(): void
}

/** What `launch` needs besides the spec. `cwd` is absolute and inside the workspace. */
export interface LaunchOptions {
  cwd: string
  env: Record<string, string>
}

/** The environment every kernel gets: enough to run, nothing of the server's secrets. */
function baseEnv(dir: string): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, IPYTHONDIR: join(dir, 'ipython'), JUPYTER_RUNTIME_DIR: dir, PYTHONUNBUFFERED: '1' }
  for (const key of ['LANG', 'LC_ALL', 'TZ']) if (process.env[key]) env[key] = process.env[key] as string
  return env
}

/**
 * Writes a connection file and starts the kernel. Throws the bridge's KernelError (429 TOO_MANY_PROCESSES,
 * 503 SHUTTING_DOWN, 500 SPAWN_FAILED); on any error the folder is removed.
 */
export async function launch(processes: ProcessManager, spec: KernelSpec, opts: LaunchOptions): Promise<Launched> {
  const dir = mkdtempSync(join(tmpdir(), 'wk-kernel-')) // mode 0700
  const cleanup = () => rmSync(dir, { recursive: true, force: true })
  try {
    const [shell, iopub, stdin, control, hb] = await freePorts(5)
    const connection: ConnectionInfo = {
      transport: 'tcp', ip: '127.0.0.1', shell_port: shell, iopub_port: iopub, stdin_port: stdin, control_port: control, hb_port: hb,
      key: newKey(), signature_scheme: 'hmac-sha256', kernel_name: spec.name,
    }
    const file = join(dir, 'kernel.json')
    writeFileSync(file, JSON.stringify(connection), { mode: 0o600 })
    const [exe, ...args] = spec.spec.argv.map((a) => a.replaceAll('{connection_file}', file))
    const info = await processes.spawnInternal({
      type: spec.processType,
      file: exe,
      args,
      cwd: opts.cwd,
      env: { ...baseEnv(dir), ...spec.spec.env, ...opts.env },
      owner: KERNEL_OWNER,
      sandbox: { network: 'host', readOnlyPaths: spec.readOnlyPaths, writablePaths: [dir] },
      addressSpaceBytes: spec.addressSpaceBytes,
    })
    return { pid: info.pid, connection, dir, cleanup }
  } catch (err) {
    cleanup()
    throw err
  }
}
