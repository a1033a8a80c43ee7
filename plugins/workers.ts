import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { EmbeddedRuntime } from './workers/embedded.js'
import { LocalRuntime } from './workers/local.js'
import { ProcessRuntime, type ProcessBridge } from './workers/process.js'
import { WorkerRegistry } from './workers/registry.js'
import type { WorkerRuntime } from './workers/runtime.js'

export { WorkerRegistry } from './workers/registry.js'
export { EmbeddedRuntime } from './workers/embedded.js'
export { LocalRuntime } from './workers/local.js'
export { ProcessRuntime, type ProcessBridge } from './workers/process.js'
export { diagnostic, type CallContext, type ListResult, type WorkerEvent, type WorkerRuntime } from './workers/runtime.js'
export { opaqueId, isValidId } from './workers/ids.js'

/** Options of the workers plugin. Counts are items, sizes bytes. */
export interface WorkersOptions {
  /** The workspace this kernel serves: `local` shows only metadata of this root; it is hashed into host ids, never shown. */
  workspaceRoot: string
  /** Holds `pods/<name>/metadata.json` for the `local` runtime; absent → its host is `degraded`. */
  dataDir?: string
  /** Largest `limit` a list or transcript read accepts (default 200); above it → 400 LIMIT_TOO_LARGE. */
  maxListLimit?: number
  /** `limit` when none is given (default 50). */
  defaultListLimit?: number
  /** Items kept per worker transcript, oldest dropped first (default 1000). */
  transcriptMaxItems?: number
  /** Bytes kept per worker transcript, oldest items dropped first (default 1 MiB). */
  transcriptMaxBytes?: number
  /** Bytes kept by all transcripts of one runtime together; the namespace holding most gives way first (default 64 MiB). */
  runtimeTranscriptMaxBytes?: number
  /** Workers each built-in runtime keeps at once (default 1000 embedded, 32 process). */
  maxWorkers?: number
  /** Workers one namespace may hold in each built-in runtime (default a quarter of that runtime's `maxWorkers`). */
  maxWorkersPerNamespace?: number
  /** Extra adapters an embedding app registers, listed after `embedded`, `process`, `local`. */
  runtimes?: WorkerRuntime[]
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The worker-runtime registry (see `WorkerRegistry`); `register(runtime)` adds an adapter. */
    workers: WorkerRegistry
  }
}

/** Checks the options; throws an Error naming the bad option. */
function resolveOptions(opts: WorkersOptions): Required<Omit<WorkersOptions, 'dataDir' | 'runtimes' | 'maxWorkers' | 'maxWorkersPerNamespace'>> {
  if (typeof opts.workspaceRoot !== 'string' || opts.workspaceRoot === '') {
    throw new Error('workers: workspaceRoot is required')
  }
  const resolved = {
    workspaceRoot: opts.workspaceRoot,
    maxListLimit: opts.maxListLimit ?? 200,
    defaultListLimit: opts.defaultListLimit ?? 50,
    transcriptMaxItems: opts.transcriptMaxItems ?? 1000,
    transcriptMaxBytes: opts.transcriptMaxBytes ?? 1024 * 1024,
    runtimeTranscriptMaxBytes: opts.runtimeTranscriptMaxBytes ?? 64 * 1024 * 1024,
  }
  for (const key of ['maxListLimit', 'defaultListLimit', 'transcriptMaxItems', 'transcriptMaxBytes', 'runtimeTranscriptMaxBytes'] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) throw new Error(`workers: ${key} must be an integer ≥ 1`)
  }
  if (resolved.defaultListLimit > resolved.maxListLimit) throw new Error('workers: defaultListLimit exceeds maxListLimit')
  return resolved
}

async function workersPlugin(fastify: FastifyInstance, opts: WorkersOptions): Promise<void> {
  const o = resolveOptions(opts)
  const registry = new WorkerRegistry({ maxLimit: o.maxListLimit, defaultLimit: o.defaultListLimit })
  const common = {
    workspaceRoot: o.workspaceRoot,
    transcriptMaxItems: o.transcriptMaxItems,
    transcriptMaxBytes: o.transcriptMaxBytes,
    runtimeTranscriptMaxBytes: o.runtimeTranscriptMaxBytes,
    maxWorkersPerNamespace: opts.maxWorkersPerNamespace,
  }
  registry.register(new EmbeddedRuntime({ ...common, maxWorkers: opts.maxWorkers }))
  // Looked up at call time: the process bridge may be registered after this plugin, or not at all.
  registry.register(new ProcessRuntime({ ...common, maxWorkers: opts.maxWorkers, bridge: () => bridgeOf(fastify) }))
  registry.register(new LocalRuntime({ workspaceRoot: o.workspaceRoot, dataDir: opts.dataDir }))
  for (const runtime of opts.runtimes ?? []) registry.register(runtime)
  fastify.decorate('workers', registry)
  fastify.addHook('onClose', async () => registry.close())
}

function bridgeOf(fastify: FastifyInstance): ProcessBridge | undefined {
  return fastify.hasDecorator('processes') ? fastify.processes : undefined
}

/** The worker-runtime registry plugin: decorates `fastify.workers`. */
export default fp(workersPlugin, { name: 'workers', fastify: '5.x' })
