import { readFileSync } from 'node:fs'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { SpawnRequest as SpawnRequestSchema } from '../../schemas/processes.js'
import { KernelError } from '../errors.js'
import type { SpawnRequest } from './types.js'
import { resolveScript } from './sandbox.js'
import { DEFAULT_COMPATIBILITY_DATE, prepareWorkerd, workerdBinary } from './workerd.js'

/** The command for one spawn request, ready for `startChild`. */
export interface Plan {
  file: string
  args: string[]
  tty: boolean
  cols: number
  rows: number
  /** workerd: read "listening" messages from fd 3; remove the temp directory on exit. */
  control?: boolean
  cleanup?: () => void
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
}

/**
 * Check a request before anything is touched. Throws 400 `UNKNOWN_PROCESS_TYPE` or
 * 400 `INVALID_SPAWN_REQUEST` (field not valid for the type, or both `code` and `script`).
 */
export function checkRequest(req: SpawnRequest): void {
  const type = (req as { type?: unknown } | null)?.type
  if (type === undefined) throw new KernelError(400, 'INVALID_SPAWN_REQUEST', 'type is required')
  if (typeof type !== 'string' || !(PROCESS_TYPES as readonly string[]).includes(type)) {
    throw new KernelError(400, 'UNKNOWN_PROCESS_TYPE', `unknown process type ${JSON.stringify(type)}; expected one of ${PROCESS_TYPES.join(', ')}`)
  }
  // In-process callers skip the HTTP schema validation, so check the shape here too.
  if (!checkShape.Check(req)) {
    const first = checkShape.Errors(req).First()
    throw new KernelError(400, 'INVALID_SPAWN_REQUEST', first ? `${first.path}: ${first.message}` : 'invalid spawn request')
  }
  for (const [field, types] of Object.entries(ONLY_FOR)) {
    if ((req as Record<string, unknown>)[field] !== undefined && !types.includes(req.type)) {
      throw new KernelError(400, 'INVALID_SPAWN_REQUEST', `${field} is not valid for ${req.type} processes (only ${types.join(', ')})`)
    }
  }
  if (req.code !== undefined && req.script !== undefined) throw new KernelError(400, 'INVALID_SPAWN_REQUEST', 'give either code or script, not both')
}

export interface PlanContext {
  root: string
  cwd: string
  nodeHeapMb: number
}

/** Build the argv for a checked request. Throws the sandbox errors for a bad `script`. */
export function planCommand(req: SpawnRequest, ctx: PlanContext): Plan {
  const script = req.script === undefined ? undefined : resolveScript(ctx.root, ctx.cwd, req.script)
  const args = req.args ?? []
  const base = { tty: false, cols: 0, rows: 0 }
  switch (req.type) {
    case 'node': {
      const heap = `--max-old-space-size=${req.heapMb ?? ctx.nodeHeapMb}`
      // `--` ends node's own options so user args reach process.argv untouched.
      const body = script ? [script] : req.code !== undefined ? ['-e', req.code, '--'] : []
      return { ...base, file: process.execPath, args: [heap, ...body, ...args] }
    }
    case 'python': {
      const body = script ? [script] : req.code !== undefined ? ['-c', req.code] : []
      return { ...base, file: 'python3', args: ['-u', ...body, ...args] }
    }
    case 'shell': {
      const quiet = ['--noprofile', '--norc']
      const body = req.code !== undefined ? ['-c', req.code, 'bash'] : script ? [script] : args.length ? [] : ['-i']
      return { file: 'bash', args: [...quiet, ...body, ...args], tty: true, cols: req.cols ?? 80, rows: req.rows ?? 24 }
    }
    case 'workerd': {
      const source = script ? readFileSync(script, 'utf8') : req.code
      const setup = prepareWorkerd(source, req.port ?? 0, req.compatibilityDate ?? DEFAULT_COMPATIBILITY_DATE)
      return { ...base, file: workerdBinary(), args: setup.args, control: true, cleanup: setup.cleanup }
    }
  }
}
