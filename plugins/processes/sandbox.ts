import { realpathSync, statSync } from 'node:fs'
import { isAbsolute, relative, resolve, sep } from 'node:path'
import { KernelError } from '../errors.js'

/**
 * Resolve `cwd` (relative to `root`) to a real directory inside `root`.
 * Throws 400 `CWD_OUTSIDE_WORKSPACE` for absolute paths or anything resolving outside the root
 * (through `..` or symlinks), 400 `INVALID_CWD` when it is not an existing directory.
 * `root` must already be a real path.
 */
export function resolveCwd(root: string, cwd = '.'): { abs: string; rel: string } {
  const abs = resolveInside(root, cwd, 'CWD_OUTSIDE_WORKSPACE', 'INVALID_CWD', 'cwd')
  if (!statSync(abs).isDirectory()) throw new KernelError(400, 'INVALID_CWD', `cwd is not a directory: ${cwd}`)
  return { abs, rel: relative(root, abs) || '.' }
}

/**
 * Resolve a script path (relative to `dir`, which is inside `root`) to a real file inside `root`.
 * Throws 400 `SCRIPT_OUTSIDE_WORKSPACE` or 400 `SCRIPT_NOT_FOUND`.
 */
export function resolveScript(root: string, dir: string, script: string): string {
  const base = relative(root, dir)
  const abs = resolveInside(root, base ? `${base}${sep}${script}` : script, 'SCRIPT_OUTSIDE_WORKSPACE', 'SCRIPT_NOT_FOUND', 'script', script)
  if (!statSync(abs).isFile()) throw new KernelError(400, 'SCRIPT_NOT_FOUND', `script is not a file: ${script}`)
  return abs
}

function resolveInside(root: string, path: string, outsideCode: string, missingCode: string, what: string, shown = path): string {
  if (path.includes('\0')) throw new KernelError(400, outsideCode, `${what} contains a NUL byte`)
  if (isAbsolute(shown) || isAbsolute(path)) throw new KernelError(400, outsideCode, `${what} must be relative to the workspace root: ${shown}`)
  if (!isInside(root, resolve(root, path))) throw new KernelError(400, outsideCode, `${what} escapes the workspace root: ${shown}`)
  let real: string
  try {
    real = realpathSync(resolve(root, path))
  } catch {
    throw new KernelError(400, missingCode, `${what} does not exist: ${shown}`)
  }
  // A symlink inside the root may point anywhere; judge the real target.
  if (!isInside(root, real)) throw new KernelError(400, outsideCode, `${what} resolves outside the workspace root through a symlink: ${shown}`)
  return real
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel))
}

/** True when `key` is in the allow-list (exact, or `PREFIX_*` entries matching a prefix). */
export function allowedKey(allowList: readonly string[], key: string): boolean {
  return allowList.some((entry) => (entry.endsWith('*') ? key.startsWith(entry.slice(0, -1)) : entry === key))
}

/**
 * The child's environment: allow-listed keys of `base` (the kernel's env), overridden by
 * allow-listed keys of `extra` (the request). Keys of `extra` outside the list are returned in `dropped`.
 */
export function buildEnv(
  allowList: readonly string[],
  base: NodeJS.ProcessEnv,
  extra: Record<string, string> = {},
): { env: Record<string, string>; dropped: string[] } {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(base)) if (value !== undefined && allowedKey(allowList, key)) env[key] = value
  const dropped: string[] = []
  for (const [key, value] of Object.entries(extra)) {
    if (allowedKey(allowList, key)) env[key] = value
    else dropped.push(key)
  }
  return { env, dropped: dropped.sort() }
}
