import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { ProcessManager } from './processes/manager.js'
import type { ProcessesOptions } from './processes/types.js'

export { ProcessManager, SIGNALS } from './processes/manager.js'
export type * from './processes/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The process bridge: spawn node / python / shell (PTY) / workerd processes, write stdin,
     * resize, signal, kill, attach listeners (output replay + live), all scoped by namespace.
     * See `ProcessManager` for shapes and error codes.
     */
    processes: ProcessManager
  }
}

/**
 * Decorates `fastify.processes` with a `ProcessManager`. On close every child gets SIGTERM, then
 * SIGKILL after `killGraceMs`, and is reaped before close resolves. Throws at registration if
 * `workspaceRoot` is not a directory.
 */
async function processesPlugin(fastify: FastifyInstance, options: ProcessesOptions): Promise<void> {
  const manager = new ProcessManager(options, fastify.log)
  fastify.decorate('processes', manager)
  fastify.addHook('onClose', async () => {
    await manager.close()
  })
}

export default fp(processesPlugin, { name: 'processes', fastify: '5.x' })
