import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { pluginOptions } from './options.js'
import { EmbeddedRuntime } from './workers/embedded.js'
import { LocalRuntime } from './workers/local.js'
import { ProcessRuntime, type ProcessBridge } from './workers/process.js'
import { WorkerRegistry } from './workers/registry.js'
import type { WorkerRuntime } from './workers/runtime.js'
import { WorkersConfig } from './workers/options.js'

export { WorkerRegistry } from './workers/registry.js'
export { EmbeddedRuntime } from './workers/embedded.js'
export { LocalRuntime } from './workers/local.js'
export { ProcessRuntime, type ProcessBridge } from './workers/process.js'
export { diagnostic, type CallContext, type ListResult, type WorkerEvent, type WorkerRuntime } from './workers/runtime.js'
export { opaqueId, isValidId } from './workers/ids.js'
export { WorkersConfig } from './workers/options.js'

/**
 * Options of the workers plugin: `WorkersConfig` (plugins/workers/options.ts, where every default lives)
 * with `workspaceRoot` required, plus `runtimes`: extra adapters an embedding app registers, listed after
 * `embedded`, `process`, `local`.
 */
export type WorkersOptions = Partial<WorkersConfig> & { workspaceRoot: string; runtimes?: WorkerRuntime[] }

declare module 'fastify' {
  interface FastifyInstance {
    /** The worker-runtime registry (see `WorkerRegistry`); `register(runtime)` adds an adapter. */
    workers: WorkerRegistry
  }
}

/** Fills the defaults and checks the options; throws an Error naming the bad option. */
function resolveOptions(opts: WorkersOptions): WorkersConfig {
  if (typeof opts.workspaceRoot !== 'string' || opts.workspaceRoot === '') {
    throw new Error('workers: workspaceRoot is required')
  }
  const { runtimes: _adapters, ...settings } = opts
  const resolved = pluginOptions('workers', WorkersConfig, settings)
  if (resolved.defaultListLimit > resolved.maxListLimit) throw new Error('workers: defaultListLimit exceeds maxListLimit')
  return resolved
}

async function workersPlugin(fastify: FastifyInstance, opts: WorkersOptions): Promise<void> {
  const o = resolveOptions(opts)
  const registry = new WorkerRegistry({ maxLimit: o.maxListLimit, defaultLimit: o.defaultListLimit, maxEventsPauseMs: o.maxEventsPauseMs })
  const common = {
    workspaceRoot: o.workspaceRoot,
    transcriptMaxItems: o.transcriptMaxItems,
    transcriptMaxBytes: o.transcriptMaxBytes,
    runtimeTranscriptMaxBytes: o.runtimeTranscriptMaxBytes,
    maxWorkersPerNamespace: o.maxWorkersPerNamespace,
  }
  registry.register(new EmbeddedRuntime({ ...common, maxWorkers: o.maxWorkers }))
  // Looked up at call time: the process bridge may be registered after this plugin, or not at all.
  registry.register(new ProcessRuntime({ ...common, maxWorkers: o.maxWorkers, bridge: () => bridgeOf(fastify) }))
  registry.register(new LocalRuntime({ workspaceRoot: o.workspaceRoot, dataDir: o.dataDir }))
  for (const runtime of opts.runtimes ?? []) registry.register(runtime)
  fastify.decorate('workers', registry)
  fastify.addHook('onClose', async () => registry.close())
}

function bridgeOf(fastify: FastifyInstance): ProcessBridge | undefined {
  return fastify.hasDecorator('processes') ? fastify.processes : undefined
}

/** The worker-runtime registry plugin: decorates `fastify.workers`. */
export default fp(workersPlugin, { name: 'workers', fastify: '5.x' })
