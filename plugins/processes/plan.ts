import { realpathSync } from 'node:fs'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { SpawnRequest as SpawnRequestSchema } from '../../schemas/processes.js'
import { kernelError } from '../errors.js'
import type { SpawnRequest } from './types.js'
import { findExecutable, missingInterpreter, prefixOutsideUsr, SANDBOX_PATH } from './bubblewrap.js'
import { readInsideRoot, resolveScript, sandboxPath } from './workspace.js'
import { DEFAULT_COMPATIBILITY_DATE, WORKERD_ADDRESS_SPACE_BYTES, WORKERD_BINARY, WORKERD_CONFIG_DIR, prepareWorkerd, workerdBinary } from './workerd.js'

/** The command for one spawn, as seen inside the sandbox, ready for `sandboxCommand` + `startChild`. */
export interface Plan {
  /** Absolute path of the program inside the sandbox. */
  file: string
  args: string[]
  tty: boolean
  cols: number
  rows: number
  /** Share the host network namespace. */
  network: boolean
  /** Host paths bound read-only at the same path (interpreter prefixes outside /usr, internal extras). */
  readOnlyPaths: string[]
  /** Host paths bound read-write at the same path (internal spawns only). */
  writablePaths?: string[]
  /** Read-only binds `[hostPath, sandboxPath]`. */
  mounts: Array<[string, string]>
  /** Address-space limit when the program needs more than the configured one (workerd's V8 cage). */
  addressSpaceBytes?: number
  /** workerd: read "listening" messages from fd 3; remove the temp directory on exit. */
  control?: boolean
  cleanup?: () => void
}

/** Absolute, real paths of the interpreters, resolved once at start-up from the fixed system PATH (never a caller's). */
export interface Interpreters {
  node: string
  python?: string
  bash?: string
  workerd?: string
}

/** Find the interpreters: node is the one running the kernel; python3 and bash come from {@link SANDBOX_PATH}. */
export function resolveInterpreters(): Interpreters {
  const dirs = SANDBOX_PATH.split(':')
  let workerd: string | undefined
  try {
    workerd = realpathSync(workerdBinary())
  } catch {
    workerd = undefined // the optional npm package is absent: workerd spawns fail with SPAWN_FAILED
  }
  return { node: realpathSync(process.execPath), python: findExecutable('python3', dirs), bash: findExecutable('bash', dirs), workerd }
}

const checkShape = TypeCompiler.Compile(SpawnRequestSchema)

export const PROCESS_TYPES = ['node', 'python', 'shell', 'workerd'] as const

/** Fields that only make sense for some types; giving them elsewhere is a 400, not silently ignored. */
const ONLY_FOR: Record<string, readonly string[]> = {
  heapMb: ['node'],
  cols: ['shell'],
  rows: ['shell'],
  port: ['workerd'],
  compatibilityDate: ['workerd'],
  args: ['node', 'python', 'shell'],
  network: ['node', 'python', 'shell'],
}

/**
 * Check a request before anything is touched. Throws 400 `UNKNOWN_PROCESS_TYPE` or
 * 400 `INVALID_SPAWN_REQUEST` (field not valid for the type, or both `code` and `script`).
 */
export function checkRequest(req: SpawnRequest): void {
  const type = (req as { type?: unknown } | null)?.type
  if (type === undefined) throw kernelError('INVALID_SPAWN_REQUEST', 'type is required')
  if (typeof type !== 'string' || !(PROCESS_TYPES as readonly string[]).includes(type)) {
    throw kernelError('UNKNOWN_PROCESS_TYPE', `unknown process type ${JSON.stringify(type)}; expected one of ${PROCESS_TYPES.join(', ')}`)
  }
  // In-process callers skip the HTTP schema validation, so check the shape here too.
  if (!checkShape.Check(req)) {
    const first = checkShape.Errors(req).First()
    throw kernelError('INVALID_SPAWN_REQUEST', first ? `${first.path}: ${first.message}` : 'invalid spawn request')
  }
  for (const [field, types] of Object.entries(ONLY_FOR)) {
    if ((req as Record<string, unknown>)[field] !== undefined && !types.includes(req.type)) {
      throw kernelError('INVALID_SPAWN_REQUEST', `${field} is not valid for ${req.type} processes (only ${types.join(', ')})`)
    }
  }
  if (req.code !== undefined && req.script !== undefined) throw kernelError('INVALID_SPAWN_REQUEST', 'give either code or script, not both')
}

export interface PlanContext {
  /** Real workspace root on the host. */
  root: string
  /** Real cwd on the host (inside `root`), for resolving `script`. */
  cwd: string
  nodeHeapMb: number
  interpreters: Interpreters
}

/** Build the sandboxed command for a checked request. Throws the workspace errors for a bad `script`. */
export function planCommand(req: SpawnRequest, ctx: PlanContext): Plan {
  const hostScript = req.script === undefined ? undefined : resolveScript(ctx.root, ctx.cwd, req.script)
  const script = hostScript && sandboxPath(ctx.root, hostScript)
  const args = req.args ?? []
  const base = { tty: false, cols: 0, rows: 0, network: req.network === true, mounts: [] }
  const { interpreters: bin } = ctx
  switch (req.type) {
    case 'node': {
      const heap = `--max-old-space-size=${req.heapMb ?? ctx.nodeHeapMb}`
      // Everything after `--` reaches process.argv (or names the script): never a node option.
      const body = script ? ['--', script] : req.code !== undefined ? ['-e', req.code, '--'] : ['--']
      return { ...base, file: bin.node, args: [heap, ...body, ...args], readOnlyPaths: prefixes(bin.node) }
    }
    case 'python': {
      const python = bin.python ?? missing('python3')
      const body = script ? [script] : req.code !== undefined ? ['-c', req.code] : []
      return { ...base, file: python, args: ['-u', ...body, ...args], readOnlyPaths: prefixes(python) }
    }
    case 'shell': {
      const bash = bin.bash ?? missing('bash')
      const quiet = ['--noprofile', '--norc']
      const body = req.code !== undefined ? ['-c', req.code, 'bash'] : script ? [script] : args.length ? [] : ['-i']
      return { ...base, file: bash, args: [...quiet, ...body, ...args], readOnlyPaths: prefixes(bash), tty: true, cols: req.cols ?? 80, rows: req.rows ?? 24 }
    }
    case 'workerd': {
      const binary = bin.workerd ?? missing('workerd')
      const source = hostScript ? readInsideRoot(ctx.root, hostScript, req.script!) : req.code
      const setup = prepareWorkerd(source, req.port ?? 0, req.compatibilityDate ?? DEFAULT_COMPATIBILITY_DATE)
      return {
        ...base,
        // workerd serves on loopback, which the kernel (and its clients) must reach.
        network: true,
        file: WORKERD_BINARY,
        args: setup.args,
        readOnlyPaths: [],
        mounts: [[binary, WORKERD_BINARY], [setup.dir, WORKERD_CONFIG_DIR]],
        addressSpaceBytes: WORKERD_ADDRESS_SPACE_BYTES,
        control: true,
        cleanup: setup.cleanup,
      }
    }
  }
}

function prefixes(binary: string): string[] {
  const prefix = prefixOutsideUsr(binary)
  return prefix ? [prefix] : []
}

function missing(name: string): never {
  throw missingInterpreter(name)
}
