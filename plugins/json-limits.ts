import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Type, type Static } from '@sinclair/typebox'
import secureJson from 'secure-json-parse'
import { KernelError } from './errors.js'

/** Options of the JSON limits plugin. */
export const JsonLimitsOptions = Type.Object(
  {
    maxJsonDepth: Type.Integer({
      default: 64,
      minimum: 1,
      description: 'deepest nesting of arrays/objects in a JSON request body or WebSocket message (deeper: 400 JSON_TOO_DEEP)',
    }),
  },
  { additionalProperties: false },
)
export type JsonLimitsOptions = Static<typeof JsonLimitsOptions>

const OPEN_BRACE = 0x7b
const OPEN_BRACKET = 0x5b
const CLOSE_BRACE = 0x7d
const CLOSE_BRACKET = 0x5d
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Whether `text` nests arrays/objects deeper than `maxDepth`, by one scan over it (strings
 * skipped), so nothing deep is ever built: later recursive walks (schema checks, serializers,
 * structured clones) cannot overflow the stack on it.
 */
export function tooDeep(text: string, maxDepth: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === BACKSLASH) i++
        else if (d === QUOTE) break
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return true
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--
    }
  }
  return false
}

/** The 400 every edge answers with for too deep JSON. */
function depthError(maxDepth: number): KernelError {
  return new KernelError(400, 'JSON_TOO_DEEP', `JSON nests deeper than maxJsonDepth (${maxDepth})`, { maxJsonDepth: maxDepth })
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * `JSON.parse` with the context's depth limit and Fastify's prototype-poisoning rule (the server's
     * `onProtoPoisoning` / `onConstructorPoisoning`, both 'error' by default: a `__proto__` key or a
     * `constructor.prototype` is refused), for WebSocket messages and the kernels routes' own body parser.
     * @throws KernelError 400 JSON_TOO_DEEP when nested deeper than maxJsonDepth; SyntaxError when not JSON or poisoned.
     */
    parseJson: (text: string) => unknown
  }
}

async function jsonLimitsPlugin(fastify: FastifyInstance, options: Partial<JsonLimitsOptions>): Promise<void> {
  const maxDepth = options.maxJsonDepth ?? JsonLimitsOptions.properties.maxJsonDepth.default
  // the poisoning rule Fastify's own parser applies on this server (secure-json-parse, as Fastify uses)
  const protoAction = fastify.initialConfig.onProtoPoisoning ?? 'error'
  const constructorAction = fastify.initialConfig.onConstructorPoisoning ?? 'error'
  // Fastify's own parser after the depth check: its errors are the app's 400 INVALID_JSON (plugins/errors.ts)
  const parse = fastify.getDefaultJsonParser(protoAction, constructorAction)
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (tooDeep(body as string, maxDepth)) return done(depthError(maxDepth), undefined)
    parse(request, body as string, done)
  })
  fastify.decorate('parseJson', (text: string): unknown => {
    if (tooDeep(text, maxDepth)) throw depthError(maxDepth)
    return secureJson.parse(text, null, { protoAction, constructorAction })
  })
}

/**
 * JSON limits at the API edge: replaces the `application/json` body parser of its context with
 * one that answers 400 JSON_TOO_DEEP past `maxJsonDepth` before parsing, and decorates
 * `fastify.parseJson` for WebSocket routes to apply the same limit.
 */
export default fp(jsonLimitsPlugin, { name: 'json-limits', fastify: '5.x' })
