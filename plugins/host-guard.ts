import { networkInterfaces, hostname } from 'node:os'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import { pluginOptions } from './options.js'
import { Counter, type Registry } from 'prom-client'
import { kernelError } from './errors.js'
import { hostAllowed, normalizeHost } from './extensions/address.js'

/**
 * Options of the host guard (the browser is an attacker): DNS rebinding is stopped by the `Host`
 * allow-list, cross-site requests and WebSocket hijacking by the `Origin` check.
 */
export const HostGuardOptions = Type.Object(
  {
    allowedHosts: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Host names (any port) accepted besides the listen address, localhost, 127.0.0.1 and [::1]; `*.example.com` = its subdomains; `*` = any (Host check off)',
    }),
    allowedOrigins: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'origins accepted besides the same origin as Host; `*` = any (Origin check off)',
    }),
    listenHost: Type.String({ default: '127.0.0.1', minLength: 1, description: 'address the server listens on; always an allowed Host' }),
  },
  { additionalProperties: false },
)
export type HostGuardOptions = Static<typeof HostGuardOptions>

/** Host names every server accepts: loopback ones. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1']
const UNSPECIFIED = new Set(['0.0.0.0', '::', ''])
/** A Host header value: a DNS name or IPv4 literal, or a bracketed IPv6 literal, then an optional port. */
const HOST_HEADER = /^(?:([a-z0-9_.-]+)|\[([0-9a-f:.]+)\])(?::(\d{1,5}))?$/i

/** The host name of a `Host` header without its port (IPv6 without brackets), or undefined when malformed. */
export function hostOfHeader(header: string | undefined): string | undefined {
  const m = HOST_HEADER.exec(header ?? '')
  return m ? normalizeHost(m[1] ?? m[2]) : undefined
}

/** The names a server listening on `listenHost` answers to by default (every interface's address when unspecified). */
function defaultHosts(listenHost: string): string[] {
  const names = [...LOOPBACK_HOSTS, normalizeHost(listenHost)]
  if (UNSPECIFIED.has(normalizeHost(listenHost))) {
    names.push(hostname().toLowerCase())
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.push(a.address.toLowerCase())
  }
  return names
}

/** `scheme://host[:port]` of `origin` with the scheme's default port dropped, or undefined when it is not http(s). */
function originAuthority(origin: string): { scheme: string; authority: string } | undefined {
  try {
    const url = new URL(origin)
    return url.protocol === 'http:' || url.protocol === 'https:' ? { scheme: url.protocol, authority: url.host } : undefined
  } catch {
    return undefined
  }
}

/** Whether `origin` is the same origin as the request's `Host` (scheme aside) or listed in `allowed`. */
export function originAllowed(origin: string, hostHeader: string, allowed: readonly string[]): boolean {
  if (allowed.includes('*') || allowed.includes(origin)) return true
  const o = originAuthority(origin)
  if (!o) return false
  const host = hostHeader.toLowerCase().replace(o.scheme === 'https:' ? /:443$/ : /:80$/, '')
  return o.authority === host
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The resolved options of the host guard in this context. */
    hostGuard: HostGuardOptions
  }
}

/** Counts refused requests by reason on the app's registry (when the metrics plugin is there). */
function refusalCounter(fastify: FastifyInstance): Counter<'reason'> | undefined {
  if (!fastify.hasDecorator('promRegistry')) return undefined
  const registry = (fastify as unknown as { promRegistry: Registry }).promRegistry
  return new Counter({ name: 'kernel_requests_refused_total', help: 'Requests refused by the host guard, by reason (host, origin)', labelNames: ['reason'], registers: [registry] })
}

async function hostGuardPlugin(fastify: FastifyInstance, options: Partial<HostGuardOptions>): Promise<void> {
  const opts = pluginOptions('host guard', HostGuardOptions, options)
  const anyHost = opts.allowedHosts.includes('*')
  const hosts = [...defaultHosts(opts.listenHost), ...opts.allowedHosts]
  const refused = refusalCounter(fastify)
  fastify.decorate('hostGuard', opts)

  // the Host header of the latest request that passed the Host check: a client sends the same one every time
  let lastHost: string | undefined

  // onRequest is the first hook: nothing is parsed, routed to a handler or upgraded before it passes.
  // Callback style, not async: a passing request goes on at once, without a promise and a microtask.
  fastify.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const host = request.headers.host
    if (!anyHost && (host === undefined || host !== lastHost)) {
      const name = hostOfHeader(host)
      if (name === undefined || !hostAllowed(name, hosts)) {
        refused?.inc({ reason: 'host' })
        return done(kernelError('HOST_NOT_ALLOWED', `Host ${JSON.stringify(host ?? '')} is not allowed (add it to allowedHosts / WK_ALLOWED_HOSTS)`))
      }
      lastHost = host
    }
    const origin = request.headers.origin
    // no Origin: not a browser (browsers send it on every upgrade and every non-GET request)
    if (origin !== undefined && !originAllowed(origin, host ?? '', opts.allowedOrigins)) {
      refused?.inc({ reason: 'origin' })
      return done(kernelError('ORIGIN_NOT_ALLOWED', `Origin ${JSON.stringify(origin)} is not allowed (same origin only, or list it in corsOrigins / WK_CORS_ORIGINS)`))
    }
    done()
  })
}

/**
 * Host guard: an onRequest hook that answers 421 HOST_NOT_ALLOWED when `Host` is not an allowed
 * name (DNS rebinding) and 403 ORIGIN_NOT_ALLOWED when a request (WebSocket upgrades included)
 * carries an `Origin` that is neither the same origin as `Host` nor listed. Applies to every route
 * of the context it is registered in; `allowedHosts: ['*']` and `allowedOrigins: ['*']` turn the
 * two checks off. Decorates `fastify.hostGuard` with the resolved options.
 */
export default fp(hostGuardPlugin, { name: 'host-guard', fastify: '5.x' })
