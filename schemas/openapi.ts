import type { TSchema } from '@sinclair/typebox'

/*
 * How /openapi.json names things, so that generated clients (openapi-python-client,
 * openapi-typescript, …) read like hand-written ones. Three rules for every route and schema:
 *
 * 1. Every route schema has an `operationId`: lowerCamel, verb first, unique (`createPanel`,
 *    `triggerTool`, `spawnProcess`, `connectPanel` for a WebSocket). A route without one still gets
 *    a name derived from method and path, marked `x-derived-operation-id`, and
 *    test/infra/openapi-document.test.ts fails until the route names itself.
 * 2. A shape used in more than one place has a name: the `$id` of a top-level payload, or a
 *    `title` on a nested one (`Type.Object({...}, { title: 'ToolInfo' })`; nested schemas take a
 *    title, not an `$id`, which ajv refuses to see twice). `refineDocument` keeps each named
 *    schema once under `components.schemas` and puts a `$ref` at every use; two different shapes
 *    with one name are an error at startup.
 * 3. A union of string literals (`Literals([...])`, `Type.Union([Type.Literal('a'), …])`) is
 *    emitted as one `{ type: 'string', enum: [...] }`; give it a title when it is reused (PanelStatus).
 *
 * Error statuses use `errorReplies(...)` (schemas/common.ts): one `ErrorReply` component.
 * WebSocket routes are described like any GET route (operationId, params, error replies) plus
 * `...wsRoute(client, server)`, which names their message unions; app.ts publishes those unions.
 */

type Json = Record<string, unknown>
const NAME = /^[A-Z][A-Za-z0-9]*$/
const REF = '#/components/schemas/'

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Route-level step (@fastify/swagger `transform`): copies each schema's `$id` into its `title`
 * (swagger drops `$id` from route schemas) and fills a missing operationId.
 */
export function nameRouteSchema(schema: Json | undefined, method: string, url: string): Json {
  const named = titled(schema ?? {})
  // @fastify/websocket hides `websocket: true` routes; one marked by wsRoute() is described
  if (named['x-websocket'] !== undefined) delete named.hide
  if (typeof named.operationId !== 'string') {
    named.operationId = derivedOperationId(method, url)
    named['x-derived-operation-id'] = true
  }
  return named
}

/** A JSON copy of `schema` in which every schema with an `$id` also has it as its `title`. */
function titled(schema: unknown): Json {
  return JSON.parse(JSON.stringify(schema), (_key, value) =>
    isObject(value) && typeof value.$id === 'string' && NAME.test(value.$id) && value.title === undefined
      ? { title: value.$id, ...value }
      : value,
  ) as Json
}

/**
 * One spelling for every schema, whether @fastify/swagger converted it or not (`extra`): a
 * one-value `enum` (swagger's spelling of `const`) → `const`, so clients get a literal type
 * rather than an enum class per message `type`; TypeBox's `Record<string, T>`
 * (`patternProperties` `^(.*)$`) → `additionalProperties`, as swagger does.
 */
function asOpenapi(schema: Json): Json {
  const out = { ...schema }
  if (Array.isArray(out.enum) && out.enum.length === 1 && !('const' in out)) {
    out.const = out.enum[0]
    delete out.enum
  }
  const pattern = out.patternProperties
  if (isObject(pattern) && Object.keys(pattern).length === 1 && '^(.*)$' in pattern && !('additionalProperties' in out)) {
    out.additionalProperties = pattern['^(.*)$']
    delete out.patternProperties
  }
  return out
}

/** `POST /panels/:id/trigger/:tool` → `postPanelsIdTriggerTool` (the fallback of rule 1). */
export function derivedOperationId(method: string, url: string): string {
  const words = [method.toLowerCase(), ...url.split(/[^A-Za-z0-9]+/).filter(Boolean)]
  return words.map((w, i) => (i === 0 ? w : w[0].toUpperCase() + w.slice(1))).join('')
}

/** `anyOf` of single string constants → one string enum (rule 3); anything else unchanged. */
function mergeLiterals(schema: Json): Json {
  const members = schema.anyOf
  if (!Array.isArray(members) || members.length < 2) return schema
  const values: string[] = []
  for (const m of members) {
    if (!isObject(m) || m.type !== 'string') return schema
    const keys = Object.keys(m).filter((k) => k !== 'type' && k !== 'description' && k !== 'title')
    if (keys.length !== 1) return schema
    const value = keys[0] === 'const' ? m.const : Array.isArray(m.enum) && m.enum.length === 1 ? m.enum[0] : undefined
    if (typeof value !== 'string') return schema
    values.push(value)
  }
  const { anyOf: _members, ...rest } = schema
  return { type: 'string', enum: values, ...rest }
}

const same = (a: unknown, b: unknown) => JSON.stringify(strip(a)) === JSON.stringify(strip(b))
function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip)
  if (!isObject(v)) return v
  return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'title' && k !== '$id').map(([k, x]) => [k, strip(x)]))
}

/** Keywords whose value is one subschema, and those holding a list or a map of them. */
const ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames']
const LIST = ['anyOf', 'oneOf', 'allOf', 'prefixItems']
const MAP = ['properties', 'patternProperties', '$defs']

class Hoister {
  constructor(readonly components: Json) {}

  /** A schema with its named subschemas hoisted; a named schema itself becomes a `$ref`. */
  schema(input: unknown, top = true): unknown {
    if (!isObject(input)) return input
    const out: Json = { ...input }
    for (const k of ONE) if (isObject(out[k])) out[k] = this.schema(out[k])
    for (const k of LIST) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).map((s) => this.schema(s))
    for (const k of MAP) {
      if (isObject(out[k])) out[k] = Object.fromEntries(Object.entries(out[k] as Json).map(([n, s]) => [n, this.schema(s)]))
    }
    const merged = mergeLiterals(asOpenapi(out))
    const name = merged.title
    if (!top || typeof name !== 'string' || !NAME.test(name)) return merged
    return this.define(name, merged)
  }

  define(name: string, schema: Json): Json {
    const existing = this.components[name]
    if (existing !== undefined && !same(existing, schema)) {
      throw new Error(`/openapi.json: two different schemas are named ${name}; give one another title (schemas/openapi.ts)`)
    }
    this.components[name] = schema
    return { $ref: `${REF}${name}` }
  }

  /** Walks an operation: parameters, request body and responses. */
  operation(op: Json): void {
    if (Array.isArray(op.parameters)) {
      for (const p of op.parameters) if (isObject(p) && isObject(p.schema)) p.schema = this.schema(p.schema)
    }
    const bodies = [op.requestBody, ...(isObject(op.responses) ? Object.values(op.responses) : [])]
    for (const body of bodies) {
      if (!isObject(body) || !isObject(body.content)) continue
      for (const media of Object.values(body.content)) if (isObject(media) && media.schema) media.schema = this.schema(media.schema)
    }
  }
}

/**
 * Document-level step (@fastify/swagger `transformObject`): applies rules 2 and 3 to every
 * operation and component, and adds the `extra` components (e.g. WebSocket message unions).
 * @throws Error when two different schemas share a name.
 */
export function refineDocument<T extends Json>(doc: T, extra: Record<string, TSchema> = {}): T {
  const components = isObject(doc.components) ? { ...doc.components } : {}
  const schemas: Json = { ...(isObject(components.schemas) ? components.schemas : {}) }
  const hoister = new Hoister(schemas)
  for (const [name, schema] of Object.entries(schemas)) {
    schemas[name] = hoister.schema(schema, false)
  }
  for (const [name, schema] of Object.entries(extra)) {
    hoister.define(name, hoister.schema(titled(schema), false) as Json)
  }
  const paths = isObject(doc.paths) ? doc.paths : {}
  for (const item of Object.values(paths)) {
    if (!isObject(item)) continue
    for (const op of Object.values(item)) {
      if (!isObject(op)) continue
      hoister.operation(op)
      addSwitchingProtocols(op)
    }
  }
  return { ...doc, components: { ...components, schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))) } }
}

/**
 * Marks a WebSocket route (spread into its route schema): the document gets a 101 reply and
 * `x-websocket` naming the component of each direction's messages (published through
 * `refineDocument`'s `extra`), e.g. `wsRoute('WsClientMessage', 'WsServerMessage')`;
 * `client` null = the client sends nothing.
 */
export function wsRoute(client: string | null, server: string): { 'x-websocket': Json } {
  const ref = (name: string) => ({ $ref: `${REF}${name}` })
  return { 'x-websocket': { ...(client ? { client: ref(client) } : {}), server: ref(server) } }
}

/** The 101 reply of an operation marked by `wsRoute`. */
function addSwitchingProtocols(op: Json): void {
  const ws = op['x-websocket']
  if (!isObject(ws) || !isObject(ws.server)) return
  const name = (side: unknown) => (isObject(side) ? String(side.$ref).slice(REF.length) : 'nothing')
  const reply = { description: `Switching Protocols: JSON text frames, ${name(ws.client)} from the client, ${name(ws.server)} from the server` }
  op.responses = { 101: reply, ...(isObject(op.responses) ? op.responses : {}) }
}
