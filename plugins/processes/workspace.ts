import { closeSync, openSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { type ErrorCode, kernelError } from '../errors.js'
import { SANDBOX_HOME, SANDBOX_PATH, WORKSPACE_DIR } from './bubblewrap.js'

/**
 * Paths and environment of a spawn, checked on the host before the sandbox starts. The sandbox is
 * what confines a process; these checks turn a bad request into a clear 400 instead of a failed start.
 */

/**
 * Resolve `cwd` (relative to `root`) to a real directory inside `root`.
 * Throws 400 `CWD_OUTSIDE_WORKSPACE` for absolute paths or anything resolving outside the root
 * (through `..` or symlinks), 400 `INVALID_CWD` when it is not an existing directory.
 * `root` must already be a real path.
 */
export function resolveCwd(root: string, cwd = '.'): { abs: string; rel: string } {
  const abs = resolveInside(root, cwd, 'CWD_OUTSIDE_WORKSPACE', 'INVALID_CWD', 'cwd')
  if (!statSync(abs).isDirectory()) throw kernelError('INVALID_CWD', `cwd is not a directory: ${cwd}`)
  return { abs, rel: relative(root, abs) || '.' }
}

/**
 * Resolve a script path (relative to `dir`, which is inside `root`) to a real file inside `root`.
 * Throws 400 `SCRIPT_OUTSIDE_WORKSPACE` or 400 `SCRIPT_NOT_FOUND`.
 */
export function resolveScript(root: string, dir: string, script: string): string {
  const base = relative(root, dir)
  const abs = resolveInside(root, base ? `${base}${sep}${script}` : script, 'SCRIPT_OUTSIDE_WORKSPACE', 'SCRIPT_NOT_FOUND', 'script', script)
  if (!statSync(abs).isFile()) throw kernelError('SCRIPT_NOT_FOUND', `script is not a file: ${script}`)
  return abs
}

function resolveInside(root: string, path: string, outsideCode: ErrorCode, missingCode: ErrorCode, what: string, shown = path): string {
  if (path.includes('\0')) throw kernelError(outsideCode, `${what} contains a NUL byte`)
  if (isAbsolute(shown) || isAbsolute(path)) throw kernelError(outsideCode, `${what} must be relative to the workspace root: ${shown}`)
  if (!isInside(root, resolve(root, path))) throw kernelError(outsideCode, `${what} escapes the workspace root: ${shown}`)
  let real: string
  try {
    real = realpathSync(resolve(root, path))
  } catch {
    throw kernelError(missingCode, `${what} does not exist: ${shown}`)
  }
  // A symlink inside the root may point anywhere; judge the real target.
  if (!isInside(root, real)) throw kernelError(outsideCode, `${what} resolves outside the workspace root through a symlink: ${shown}`)
  return real
}

/** The path a host file inside `root` has inside the sandbox (`<root>/a/b.js` → `/workspace/a/b.js`). */
export function sandboxPath(root: string, abs: string): string {
  const rel = relative(root, abs)
  return rel === '' ? WORKSPACE_DIR : `${WORKSPACE_DIR}/${rel.split(sep).join('/')}`
}

/**
 * Read a file the server itself must load (a workerd module) without a check-then-open race: open
 * it, then judge the path the open descriptor really refers to. Throws 400 `SCRIPT_OUTSIDE_WORKSPACE`.
 */
export function readInsideRoot(root: string, abs: string, shown: string): string {
  const fd = openSync(abs, 'r')
  try {
    if (!isInside(root, readlinkSync(`/proc/self/fd/${fd}`))) {
      throw kernelError('SCRIPT_OUTSIDE_WORKSPACE', `script resolves outside the workspace root: ${shown}`)
    }
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))
}

/** True when `key` is in the allow-list (exact, or `PREFIX_*` entries matching a prefix). */
export function allowedKey(allowList: readonly string[], key: string): boolean {
  return allowList.some((entry) => (entry.endsWith('*') ? key.startsWith(entry.slice(0, -1)) : entry === key))
}

/** Keys a sandbox always gets with a fixed value: the request never chooses them. */
const FIXED_ENV: Readonly<Record<string, string>> = { PATH: SANDBOX_PATH, HOME: SANDBOX_HOME }
/** Keys that change how an interpreter or the loader starts; never passed, whatever the allow-list says. */
const NEVER_PASSED = /^(NODE_OPTIONS|LD_\w*|PYTHON(STARTUP|PATH|HOME|INSPECT)|BASH_ENV|ENV)$/

/**
 * The child's environment: allow-listed keys of `base` (the kernel's env), overridden by
 * allow-listed keys of `extra` (the request), then the fixed PATH and HOME of the sandbox. Keys of
 * `extra` outside the list, fixed or never passed, are returned in `dropped`.
 */
export function buildEnv(
  allowList: readonly string[],
  base: NodeJS.ProcessEnv,
  extra: Record<string, string> = {},
): { env: Record<string, string>; dropped: string[] } {
  const env: Record<string, string> = {}
  const passes = (key: string) => allowedKey(allowList, key) && !(key in FIXED_ENV) && !NEVER_PASSED.test(key)
  for (const [key, value] of Object.entries(base)) if (value !== undefined && passes(key)) env[key] = value
  const dropped: string[] = []
  for (const [key, value] of Object.entries(extra)) {
    if (passes(key)) env[key] = value
    else dropped.push(key)
  }
  return { env: { ...env, ...FIXED_ENV }, dropped: dropped.sort() }
}
