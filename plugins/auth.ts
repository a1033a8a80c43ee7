import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import { Type } from '@sinclair/typebox'
import { kernelError } from './errors.js'

/** The auth options as config.ts composes them (top level: `WK_AUTH_ENABLED`, `WK_JWT_SECRET`, `WK_JWT_MAX_AGE`). */
export const AuthConfig = Type.Object({
  authEnabled: Type.Boolean({
    default: false,
    description: 'require a JWT on REST (Authorization: Bearer or token) and WebSocket (?token=); the standalone server turns it on',
  }),
  jwtSecret: Type.Optional(
    Type.String({ minLength: 16, secret: true, description: 'HS256 secret (≥ 16 chars); unset with auth on = generated at start, with a token printed' }),
  ),
  jwtMaxAge: Type.Integer({ default: 86_400, minimum: 1, description: 'age limit of a JWT without `exp`, counted from its `iat`, seconds' }),
})

/** Options of the auth plugin. */
export interface AuthPluginOptions {
  /** Require a JWT on every route that adds `fastify.authenticate`. Default false. */
  enabled?: boolean
  /** HS256 secret; when enabled without one, a random secret is generated and `fastify.authToken` signed with it. */
  secret?: string
  /** Age limit of a token without `exp`, from its `iat`, seconds. Default: AuthConfig's jwtMaxAge (24 h). */
  maxAge?: number
}

/**
 * The pino `req` serializer of the kernel's logs: method, url with any `token=` query value
 * replaced by `[redacted]` (WebSocket clients send their JWT there), host, remote address and port.
 */
export function requestLogFields(req: FastifyRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: req.url.replace(/([?&]token=)[^&]*/g, '$1[redacted]'),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}

/** A namespace claim: 1–64 chars of `[A-Za-z0-9_.:-]`. */
const NAMESPACE = /^[A-Za-z0-9_.:-]{1,64}$/

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook: verifies the caller's JWT (`Authorization: Bearer <jwt>` or `Authorization:
     * token <jwt>` as Jupyter clients send it, or `?token=` on a WebSocket upgrade) and sets
     * `request.namespace` from its `namespace` claim ('default' when absent). Throws 401
     * UNAUTHORIZED on a missing/invalid/expired token (no `exp`: older than maxAge by its `iat`, or
     * no `iat` either) or a malformed claim.
     * A no-op that leaves `namespace` 'default' when auth is disabled.
     */
    authenticate: (request: FastifyRequest) => Promise<void>
    /**
     * When auth is enabled without a configured secret: a token for namespace 'default' signed with
     * the secret generated at start (valid for `maxAge` seconds). Undefined otherwise.
     */
    authToken: string | undefined
  }
  interface FastifyRequest {
    /** Scope of the caller's resources; 'default' when auth is off or the claim is absent. */
    namespace: string
  }
}

/** The token a request carries: Bearer/token header, else `?token=` for WebSocket upgrades only (URLs get logged). */
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

/** A token without `exp` expires `maxAge` seconds after its `iat`; without either it has no known age. */
function checkAge(claims: Record<string, unknown>, maxAge: number): void {
  if (claims.exp !== undefined) return // fast-jwt has checked it
  if (typeof claims.iat !== 'number') throw kernelError('UNAUTHORIZED', 'Token has neither exp nor iat')
  if (Date.now() / 1000 - claims.iat > maxAge) {
    throw kernelError('UNAUTHORIZED', `Token has no exp and is older than jwtMaxAge (${maxAge} s)`)
  }
}

async function authPlugin(fastify: FastifyInstance, opts: AuthPluginOptions): Promise<void> {
  fastify.decorateRequest('namespace', 'default')
  if (!opts.enabled) {
    fastify.decorate('authenticate', async () => {})
    fastify.decorate('authToken', undefined)
    return
  }
  const maxAge = opts.maxAge ?? AuthConfig.properties.jwtMaxAge.default
  await fastify.register(fastifyJwt, {
    secret: opts.secret ?? randomBytes(32).toString('base64url'),
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'], extractToken: (r: FastifyRequest) => extractToken(r) },
  })
  fastify.decorate('authenticate', async (request: FastifyRequest) => {
    if (extractToken(request) === undefined) {
      throw kernelError('UNAUTHORIZED', 'Missing token: send "Authorization: Bearer <jwt>" (or ?token= on WebSocket)')
    }
    let claims: Record<string, unknown>
    try {
      claims = await request.jwtVerify<Record<string, unknown>>()
    } catch {
      throw kernelError('UNAUTHORIZED', 'Invalid or expired token')
    }
    checkAge(claims, maxAge)
    const ns = claims.namespace
    if (ns === undefined) return
    if (typeof ns !== 'string' || !NAMESPACE.test(ns)) {
      throw kernelError('UNAUTHORIZED', 'Token namespace claim must be 1-64 chars of [A-Za-z0-9_.:-]')
    }
    request.namespace = ns
  })
  fastify.decorate('authToken', opts.secret ? undefined : fastify.jwt.sign({ namespace: 'default' }))
}

/**
 * Auth: `fastify.authenticate` (an onRequest hook for route plugins to add), `request.namespace`
 * and `fastify.authToken`. When enabled it also registers @fastify/jwt, so
 * `fastify.jwt.sign({ namespace })` issues tokens (HS256).
 */
export default fp(authPlugin, { name: 'auth', fastify: '5.x' })
