import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { Value } from '@sinclair/typebox/value'
import { Agent, request, type Dispatcher } from 'undici'
import { HttpOptions } from '../../config.js'
import type { Extension, ExtensionCallContext } from '../extensions.js'
import { hostAllowed, hostListedExactly, isPrivateAddress, normalizeHost } from './address.js'
import { ExtensionError } from './error.js'
import { Slots } from './slots.js'

/**
 * Options of the built-in `http` extension (defaults from `HttpOptions` in config.ts).
 * `timeoutMs` is the default and the maximum of a call, queue wait included; `maxResponseBytes`
 * caps the body read. `resolve` is the DNS resolver (default: the system's `dns.lookup`).
 */
export interface HttpExtensionOptions {
  allowedDomains: string[]
  allowPrivateAddresses: boolean
  maxConcurrent: number
  maxQueue: number
  timeoutMs: number
  userAgent: string
  maxResponseBytes: number
  resolve?: (hostname: string) => Promise<LookupAddress[]>
}

/** What every http method resolves to. A non-2xx status is a normal result. */
export interface HttpResult {
  status: number
  headers: Record<string, string>
  /** parsed JSON when the content-type is JSON, else text; null for HEAD */
  body: unknown
}

/** Per-call options a handler may pass. */
export interface HttpCallOptions {
  headers?: Record<string, string>
  /** added to the URL's query string */
  query?: Record<string, string | number | boolean>
  /** ≤ the configured timeoutMs */
  timeoutMs?: number
}

interface HttpRequestSpec extends HttpCallOptions {
  method: string
  url: string
  body?: unknown
}

export const HTTP_METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'request'] as const
const WITH_BODY = new Set(['post', 'put', 'patch'])
const VERBS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])
/** Headers a handler may not set: they would let it steer the connection itself. */
const FORBIDDEN_HEADERS = new Set([
  'host', 'connection', 'content-length', 'transfer-encoding', 'upgrade', 'keep-alive', 'te', 'trailer',
  'proxy-authorization', 'proxy-connection', 'expect',
])

const invalid = (message: string) => new ExtensionError('INVALID_REQUEST', message)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Turns a method's positional arguments into one request spec. */
function specOf(method: string, args: unknown[]): HttpRequestSpec {
  if (method === 'request') {
    const [cfg] = args
    if (!isObject(cfg) || typeof cfg.url !== 'string') throw invalid('request() needs { method, url, headers?, body?, timeoutMs? }')
    const verb = typeof cfg.method === 'string' ? cfg.method.toUpperCase() : 'GET'
    return { ...optionsOf(cfg), method: verb, url: cfg.url, body: cfg.body }
  }
  const [url, second, third] = args
  if (typeof url !== 'string') throw invalid(`${method}(url, ...) needs a URL string`)
  const hasBody = WITH_BODY.has(method)
  return { ...optionsOf(hasBody ? third : second), method: method.toUpperCase(), url, body: hasBody ? second : undefined }
}

function optionsOf(v: unknown): HttpCallOptions {
  if (v === undefined || v === null) return {}
  if (!isObject(v)) throw invalid('options must be an object { headers?, query?, timeoutMs? }')
  const out: HttpCallOptions = {}
  if (v.headers !== undefined) {
    if (!isObject(v.headers) || Object.values(v.headers).some((h) => typeof h !== 'string')) throw invalid('headers must map names to strings')
    const bad = Object.keys(v.headers).find((h) => FORBIDDEN_HEADERS.has(h.toLowerCase()))
    if (bad) throw invalid(`header ${bad} may not be set`)
    out.headers = v.headers as Record<string, string>
  }
  if (v.query !== undefined) {
    if (!isObject(v.query) || Object.values(v.query).some((q) => !['string', 'number', 'boolean'].includes(typeof q))) {
      throw invalid('query must map names to strings, numbers or booleans')
    }
    out.query = v.query as HttpCallOptions['query']
  }
  if (v.timeoutMs !== undefined) {
    if (typeof v.timeoutMs !== 'number' || !(v.timeoutMs > 0)) throw invalid('timeoutMs must be a positive number')
    out.timeoutMs = v.timeoutMs
  }
  return out
}

/** Encodes a body: strings as text, anything else as JSON; the caller's content-type wins. */
function encodeBody(body: unknown, headers: Record<string, string>): string | undefined {
  if (body === undefined || body === null) return undefined
  const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')
  if (typeof body === 'string') {
    if (!hasType) headers['content-type'] = 'text/plain; charset=utf-8'
    return body
  }
  if (!hasType) headers['content-type'] = 'application/json'
  return JSON.stringify(body)
}

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v
  return out
}

function addressRefused(host: string, address: string): ExtensionError {
  return new ExtensionError('ADDRESS_NOT_ALLOWED', `${host} resolves to ${address}, a loopback/private/link-local address (not allowed)`)
}

/**
 * The built-in `http` extension: get/post/put/patch/delete/head/options(url, [body], opts?) and
 * request({ method, url, headers, body, timeoutMs }) → `{ status, headers, body }`.
 *
 * Refuses hosts outside `allowedDomains` (DOMAIN_NOT_ALLOWED) and, unless `allowPrivateAddresses`
 * or the host is listed exactly, any loopback/private/link-local address (ADDRESS_NOT_ALLOWED) —
 * checked on the address actually connected to (DNS answers included). Redirects are not followed.
 * Also: INVALID_REQUEST, TIMEOUT, RESPONSE_TOO_LARGE, REQUEST_FAILED, QUEUE_FULL.
 */
export function createHttpExtension(options: Partial<HttpExtensionOptions> = {}): Extension {
  const opts: HttpExtensionOptions = { ...(Value.Default(HttpOptions, {}) as HttpExtensionOptions), ...options }
  const resolve = opts.resolve ?? ((host: string) => dnsLookup(host, { all: true }))
  const slots = new Slots(opts.maxConcurrent, opts.maxQueue)
  const privateOk = (host: string) => opts.allowPrivateAddresses || hostListedExactly(host, opts.allowedDomains)

  // net.connect's `lookup`: every name is resolved here, so the check sees the address used
  const lookup = (hostname: string, o: { family?: number; all?: boolean }, cb: (...a: unknown[]) => void) => {
    resolve(hostname).then(
      (found) => {
        const addrs = found.filter((a) => !o.family || a.family === o.family)
        if (addrs.length === 0) return cb(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }))
        const bad = privateOk(hostname) ? undefined : addrs.find((a) => isPrivateAddress(a.address))
        if (bad) return cb(addressRefused(hostname, bad.address))
        return o.all ? cb(null, addrs) : cb(null, addrs[0].address, addrs[0].family)
      },
      (err: unknown) => cb(err),
    )
  }
  const agent = new Agent({ connect: { lookup } as Record<string, unknown>, connections: opts.maxConcurrent })

  async function send(spec: HttpRequestSpec, signal: AbortSignal): Promise<HttpResult> {
    let url: URL
    try {
      url = new URL(spec.url)
    } catch {
      throw invalid(`invalid URL ${JSON.stringify(spec.url)}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`only http: and https: URLs, got ${url.protocol}`)
    if (!VERBS.has(spec.method)) throw invalid(`unsupported method ${spec.method}`)
    const host = normalizeHost(url.hostname)
    if (!hostAllowed(host, opts.allowedDomains)) throw new ExtensionError('DOMAIN_NOT_ALLOWED', `${host} is not in allowedDomains`)
    if (isIP(host) && !privateOk(host) && isPrivateAddress(host)) throw addressRefused(host, host)
    for (const [k, v] of Object.entries(spec.query ?? {})) url.searchParams.append(k, String(v))

    const headers: Record<string, string> = { 'user-agent': opts.userAgent, ...spec.headers }
    const body = encodeBody(spec.body, headers)
    if (body !== undefined && (spec.method === 'GET' || spec.method === 'HEAD')) throw invalid(`${spec.method} cannot carry a body`)

    const release = await slots.acquire(signal)
    try {
      const res = await request(url, { method: spec.method as Dispatcher.HttpMethod, headers, body, signal, dispatcher: agent })
      return { status: res.statusCode, headers: flatHeaders(res.headers), body: await readBody(res, spec.method, signal) }
    } finally {
      release()
    }
  }

  async function readBody(res: Dispatcher.ResponseData, method: string, signal: AbortSignal): Promise<unknown> {
    res.body.on('error', () => {}) // destroying an unread body emits an abort error; the caller gets ours
    const declared = Number(res.headers['content-length'])
    if (declared > opts.maxResponseBytes) {
      res.body.destroy()
      throw new ExtensionError('RESPONSE_TOO_LARGE', `response of ${declared} bytes exceeds maxResponseBytes (${opts.maxResponseBytes})`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > opts.maxResponseBytes) {
        res.body.destroy()
        throw new ExtensionError('RESPONSE_TOO_LARGE', `response exceeds maxResponseBytes (${opts.maxResponseBytes})`)
      }
      chunks.push(chunk as Buffer)
    }
    if (signal.aborted) throw signal.reason
    if (method === 'HEAD') return null
    const text = Buffer.concat(chunks).toString('utf8')
    const type = String(res.headers['content-type'] ?? '')
    if (!/[/+]json\b/i.test(type)) return text
    if (text === '') return null
    try {
      return JSON.parse(text)
    } catch {
      return text // a server that mislabels its body still gets its text through
    }
  }

  async function call(method: string, args: unknown[], ctx: ExtensionCallContext): Promise<HttpResult> {
    const spec = specOf(method, args)
    const timeoutMs = Math.min(spec.timeoutMs ?? opts.timeoutMs, opts.timeoutMs)
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(new ExtensionError('TIMEOUT', `http ${spec.method} ${spec.url} took longer than ${timeoutMs} ms`)), timeoutMs)
    const onAbort = () => ac.abort(ctx.signal?.reason ?? new ExtensionError('ABORTED', 'The call was cancelled'))
    ctx.signal?.addEventListener('abort', onAbort, { once: true })
    if (ctx.signal?.aborted) onAbort()
    try {
      return await send(spec, ac.signal)
    } catch (err) {
      throw failure(err, ac.signal)
    } finally {
      clearTimeout(timer)
      ctx.signal?.removeEventListener('abort', onAbort)
    }
  }

  return {
    name: 'http',
    methods: [...HTTP_METHODS],
    call,
    async shutdown() {
      await agent.destroy()
    },
  }
}

/** The typed error for whatever a call failed with (an abort reason wins over undici's own error). */
function failure(err: unknown, signal: AbortSignal): ExtensionError {
  if (signal.aborted && signal.reason instanceof ExtensionError) return signal.reason
  if (err instanceof ExtensionError) return err
  const cause = (err as { cause?: unknown })?.cause
  if (cause instanceof ExtensionError) return cause
  const e = err as { code?: unknown; message?: unknown }
  const detail = [e?.code, e?.message].filter((x) => typeof x === 'string').join(': ')
  return new ExtensionError('REQUEST_FAILED', `http request failed: ${detail || String(err)}`)
}
