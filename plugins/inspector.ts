import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import fastifyStatic from '@fastify/static'
import { kernelError } from './errors.js'

/** Options of the inspector plugin. */
export interface InspectorPluginOptions {
  /**
   * Folder of the built page (index.html + assets/). Default: `inspector/dist` of this package,
   * built by scripts/setup.sh (`npx vite build --config inspector/vite.config.ts`).
   */
  root?: string
}

/** Where the build puts the page, relative to this file (also under dist/ once packaged). */
export const DEFAULT_INSPECTOR_ROOT = fileURLToPath(new URL('../inspector/dist/', import.meta.url))

/** Hashed asset files never change under one name; index.html must be fetched fresh. */
function cacheHeaders(res: { setHeader(name: string, value: string): void }, path: string): void {
  res.setHeader('cache-control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable')
}

async function inspectorPlugin(fastify: FastifyInstance, opts: InspectorPluginOptions): Promise<void> {
  const root = opts.root ?? DEFAULT_INSPECTOR_ROOT
  // relative, so it works under any route prefix; the query (e.g. ?token=) goes along
  fastify.get('/inspector', { schema: { hide: true } }, async (request, reply) => {
    const query = request.url.indexOf('?')
    return reply.redirect(`inspector/${query < 0 ? '' : request.url.slice(query)}`, 302)
  })
  if (!existsSync(join(root, 'index.html'))) {
    const notBuilt = async () => {
      throw kernelError('INSPECTOR_NOT_BUILT', `The inspector page is not built (no index.html in ${root}): run npm run setup`)
    }
    fastify.get('/inspector/', { schema: { hide: true } }, notBuilt)
    fastify.get('/inspector/*', { schema: { hide: true } }, notBuilt)
    return
  }
  // in a child context: @fastify/static decorates the reply, which must not clash with swagger-ui's copy
  await fastify.register(async (child) => {
    await child.register(fastifyStatic, { root, prefix: '/inspector/', index: 'index.html', cacheControl: false, setHeaders: cacheHeaders })
  })
}

/**
 * The inspector page at `/inspector/` (under the kernel's prefix): static files of the page built
 * from `inspector/` (Vite + Preact), which talks to the kernel through its public REST and
 * WebSocket API only. The files are public (they hold no data); every API call they make carries
 * the token the user gives the page. Without a build, `/inspector/` answers 503 INSPECTOR_NOT_BUILT.
 */
export default fp(inspectorPlugin, { name: 'inspector', fastify: '5.x' })
