import { accessSync, constants, existsSync, lstatSync, mkdtempSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { KernelError, kernelError } from '../errors.js'
import { PidsCgroup } from './cgroup.js'

/**
 * The OS sandbox every bridge process runs in: bubblewrap (Debian `bubblewrap`) with new mount, PID,
 * IPC and UTS namespaces (and a new, empty network namespace unless the spawn shares the host's), no
 * capabilities, `--die-with-parent`, the workspace bound read-write at {@link WORKSPACE_DIR}, the
 * system directories read-only, and rlimits set by util-linux `prlimit` before bwrap runs. The README's
 * "Processes" security section lists exactly what a process can see and reach; keep the two in sync.
 */

/** Where the workspace root appears inside every sandbox. */
export const WORKSPACE_DIR = '/workspace'
/** PATH inside every sandbox, whatever the request's `env.PATH` says. */
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin'
/** HOME inside every sandbox: the sandbox's own tmpfs, gone when it ends. */
export const SANDBOX_HOME = '/tmp'

/** Top-level system directories bound read-only (or re-created as the same symlink, on merged-/usr systems). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']
/** Files and folders of the host's /etc a program needs to run (loader, time zone, TLS roots, name service). */
const ETC_ENTRIES = ['ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives', 'localtime', 'timezone', 'nsswitch.conf', 'ssl', 'ca-certificates', 'mime.types']
/** Name-service files only bound when the sandbox shares the host network. */
const NETWORK_ETC_ENTRIES = ['hosts', 'resolv.conf', 'host.conf', 'gai.conf', 'protocols', 'services']
/** A passwd and group naming only the sandbox's user (root without capabilities) and nobody. */
const PASSWD = `root:x:0:0:sandbox:${SANDBOX_HOME}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`
const GROUP = 'root:x:0:\nnogroup:x:65534:\n'

/** Per-process resource limits (rlimits, plus a pids cgroup where the host offers one). */
export interface SandboxLimits {
  /** RLIMIT_AS: address space of each process, bytes. */
  addressSpaceBytes: number
  /** RLIMIT_NOFILE: open file descriptors of each process. */
  openFiles: number
  /** Tasks (processes and threads) of the whole sandbox (pids cgroup), and RLIMIT_NPROC. */
  processes: number
}

/**
 * One sandboxed command. Paths in `file`, `args` and `cwd` are as seen inside the sandbox.
 * `network`, `readOnlyPaths` and `mounts` are how internal callers (code kernels) get loopback,
 * a virtualenv or a script folder; public spawns get `network` from the request and nothing else.
 */
export interface SandboxSpec {
  /** Program to run, absolute, inside the sandbox. */
  file: string
  args: string[]
  /** Working directory relative to the workspace root; resolved inside the sandbox by bwrap's --chdir. */
  cwd: string
  /** The complete environment (bwrap starts from an empty one). */
  env: Record<string, string>
  /** true: share the host's network namespace (loopback reachable); false: a new one with no interfaces. */
  network: boolean
  /** Host paths bound read-only at the same path (interpreter prefixes, a venv, node_modules). */
  readOnlyPaths: string[]
  /** Host paths bound read-write at the same path (an internal caller's own folder, e.g. a kernel's connection file). */
  writablePaths?: string[]
  /** Extra read-only binds `[hostPath, sandboxPath]` (workerd's binary and config). */
  mounts: Array<[string, string]>
  /** Keep the terminal as controlling tty (PTY shells); pipes get a new session (no TIOCSTI). */
  tty: boolean
  limits: SandboxLimits
}

/** The host's sandbox tools, found once at start-up. */
export interface SandboxHost {
  bwrap: string
  prlimit: string
  /** Folder holding the synthetic passwd / group, removed by `close`. */
  etcDir: string
  pids?: PidsCgroup
  close(): void
}

/** A command ready for `spawn`, plus what to release once the process has ended. */
export interface SandboxCommand {
  file: string
  args: string[]
  release(): void
}

/** First executable `name` in `dirs`, realpath'd. */
export function findExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return realpathSync(path)
    } catch {
      // not here
    }
  }
  return undefined
}

/** Find bwrap and prlimit in the system PATH. Throws `Error` naming what is missing (setup.sh installs both). */
export function probeSandboxHost(): SandboxHost {
  const dirs = SANDBOX_PATH.split(':').concat('/usr/sbin', '/sbin')
  const bwrap = findExecutable('bwrap', dirs)
  const prlimit = findExecutable('prlimit', dirs)
  if (!bwrap) throw new Error('processes: bubblewrap (bwrap) is not installed; run scripts/setup.sh or apt-get install bubblewrap')
  if (!prlimit) throw new Error('processes: prlimit (util-linux) is not installed')
  const etcDir = mkdtempSync(join(tmpdir(), 'wk-sandbox-etc-'))
  writeFileSync(join(etcDir, 'passwd'), PASSWD)
  writeFileSync(join(etcDir, 'group'), GROUP)
  const pids = PidsCgroup.probe()
  return {
    bwrap,
    prlimit,
    etcDir,
    pids,
    close: () => {
      pids?.close()
      rmSync(etcDir, { recursive: true, force: true })
    },
  }
}

/** The prefix of an interpreter binary (`/opt/py/bin/python3` → `/opt/py`) when it lies outside /usr, else undefined. */
export function prefixOutsideUsr(binary: string): string | undefined {
  return binary.startsWith('/usr/') ? undefined : dirname(dirname(binary))
}

/**
 * The argv that runs `spec` in a fresh sandbox: `[sh -c <join pids cgroup>] prlimit … -- bwrap … -- file args`.
 * Each step execs the next, so the spawned pid is bwrap's: killing it (SIGKILL) ends the sandbox's
 * PID-namespace init (`--die-with-parent`), which takes every process inside with it.
 * Throws 500 `SPAWN_FAILED` when the pids cgroup cannot be made.
 */
export function sandboxCommand(host: SandboxHost, root: string, spec: SandboxSpec): SandboxCommand {
  const { limits } = spec
  const bwrapArgs = [...namespaceArgs(spec), ...filesystemArgs(host, root, spec), ...envArgs(spec.env), '--', spec.file, ...spec.args]
  const prlimit = [`--as=${limits.addressSpaceBytes}`, `--nofile=${limits.openFiles}`, `--nproc=${limits.processes}`, '--', host.bwrap, ...bwrapArgs]
  const group = host.pids?.create(limits.processes)
  if (!group) return { file: host.prlimit, args: prlimit, release: () => {} }
  // The shell moves itself into the cgroup, then execs prlimit → bwrap, so every sandboxed task is counted.
  return { file: '/bin/sh', args: ['-c', 'echo 0 > "$0" && exec "$@"', group.procsFile, host.prlimit, ...prlimit], release: group.remove }
}

function namespaceArgs(spec: SandboxSpec): string[] {
  const args = ['--die-with-parent', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--hostname', 'sandbox', '--cap-drop', 'ALL']
  if (!spec.network) args.push('--unshare-net')
  if (!spec.tty) args.push('--new-session')
  return args
}

function filesystemArgs(host: SandboxHost, root: string, spec: SandboxSpec): string[] {
  const args: string[] = []
  for (const dir of SYSTEM_DIRS) args.push(...systemDir(dir))
  const etc = spec.network ? [...ETC_ENTRIES, ...NETWORK_ETC_ENTRIES] : ETC_ENTRIES
  for (const entry of etc) if (existsSync(`/etc/${entry}`)) args.push('--ro-bind', `/etc/${entry}`, `/etc/${entry}`)
  args.push('--ro-bind', join(host.etcDir, 'passwd'), '/etc/passwd', '--ro-bind', join(host.etcDir, 'group'), '/etc/group')
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp')
  for (const path of spec.readOnlyPaths) args.push('--ro-bind', path, path)
  for (const path of spec.writablePaths ?? []) args.push('--bind', path, path)
  for (const [from, to] of spec.mounts) args.push('--ro-bind', from, to)
  // The root was resolved once at start-up; `cwd` is resolved by bwrap inside the new mount namespace,
  // so a symlink swapped in after our check can only point at something inside the sandbox.
  args.push('--bind', root, WORKSPACE_DIR, '--chdir', spec.cwd === '.' ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${spec.cwd}`)
  return args
}

/** A system directory as the host has it: the same symlink (merged /usr) or a read-only bind; nothing if absent. */
function systemDir(dir: string): string[] {
  let st
  try {
    st = lstatSync(dir)
  } catch {
    return []
  }
  if (st.isSymbolicLink()) return ['--symlink', readlinkSync(dir), dir]
  return st.isDirectory() ? ['--ro-bind', dir, dir] : []
}

function envArgs(env: Record<string, string>): string[] {
  const args = ['--clearenv']
  for (const [key, value] of Object.entries(env)) args.push('--setenv', key, value)
  return args
}

/** 500 `SPAWN_FAILED` for an interpreter the host does not have. */
export function missingInterpreter(name: string): KernelError {
  return kernelError('SPAWN_FAILED', `${name} is not installed on this host (looked in ${SANDBOX_PATH})`)
}
