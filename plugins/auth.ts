import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { KernelError } from './errors.js'

/** Options of the auth plugin. */
export interface AuthPluginOptions {
  /** Require a JWT on every route that adds `fastify.authenticate`. Default false. */
  enabled?: boolean
  /** HS256 secret; required when enabled. */
  secret?: string
}

/** A namespace claim: 1–64 chars of `[A-Za-z0-9_.:-]`. */
const NAMESPACE = /^[A-Za-z0-9_.:-]{1,64}$/

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook: verifies the caller's JWT (`Authorization: Bearer <jwt>`, or `?token=` on a
     * WebSocket upgrade) and sets `request.namespace` from its `namespace` claim ('default' when
     * absent). Throws 401 UNAUTHORIZED on a missing/invalid token or a malformed claim.
     * A no-op that leaves `namespace` 'default' when auth is disabled.
     */
    authenticate: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** Scope of the caller's resources; 'default' when auth is off or the claim is absent. */
    namespace: string
  }
}

/** The token a request carries: Bearer header, else `?token=` for WebSocket upgrades only (URLs get logged). */
function extractToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (typeof header === 'string') {
    const m = /^(?:Bearer|token)\s+(\S+)$/i.exec(header) // `token` is Jupyter's scheme
    return m ? m[1] : undefined
  }
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return undefined
  const token = (request.query as Record<string, unknown> | undefined)?.token
  return typeof token === 'string' && token !== '' ? token : undefined
}

async function authPlugin(fastify: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  fastify.decorateRequest('namespace', 'default')
  if (!opts.enabled) {
    fastify.decorate('authenticate', async () => {})
    return
  }
  if (!opts.secret) throw new KernelError(500, 'INVALID_CONFIG', 'auth: a secret is required when auth is enabled')
  await fastify.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'], extractToken: (r: FastifyRequest) => extractToken(r) },
  })
  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    if (extractToken(request) === undefined) {
      throw new KernelError(401, 'UNAUTHORIZED', 'Missing token: send "Authorization: Bearer <jwt>" (or ?token= on WebSocket)')
    }
    let claims: Record<string, unknown>
    try {
      claims = await request.jwtVerify<Record<string, unknown>>()
    } catch {
      throw new KernelError(401, 'UNAUTHORIZED', 'Invalid or expired token')
    }
    const ns = claims.namespace
    if (ns === undefined) return
    if (typeof ns !== 'string' || !NAMESPACE.test(ns)) {
      throw new KernelError(401, 'UNAUTHORIZED', 'Token namespace claim must be 1-64 chars of [A-Za-z0-9_.:-]')
    }
    request.namespace = ns
  })
}

/**
 * Auth: `fastify.authenticate` (an onRequest hook for route plugins to add) and
 * `request.namespace`. When enabled it also registers @fastify/jwt, so `fastify.jwt.sign({ namespace })`
 * issues tokens (HS256).
 */
export default fp(authPlugin, { name: 'auth', fastify: '5.x' })
