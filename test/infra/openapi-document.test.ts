import t from 'tap'
import { Type } from '@sinclair/typebox'
import { derivedOperationId, nameRouteSchema, refineDocument } from '../../schemas/openapi.js'
import { startKernel } from '../panels/helpers.js'

type Json = Record<string, any>

/** Every schema object in `value`, depth first. */
function* schemas(value: unknown): Generator<Json> {
  if (Array.isArray(value)) for (const v of value) yield* schemas(v)
  else if (value && typeof value === 'object') {
    yield value as Json
    for (const v of Object.values(value)) yield* schemas(v)
  }
}

t.test('/openapi.json: operationIds, named components, enums, one error reply, servers, WS routes', async (t) => {
  const { base } = await startKernel(t)
  const doc: Json = await (await fetch(`${base}/openapi.json`)).json()
  const ops = Object.entries(doc.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op: op as Json })))

  t.same(ops.filter(({ op }) => op['x-derived-operation-id']).map(({ route }) => route), [],
    'every route names its operation (schemas/openapi.ts rule 1)')
  const ids = ops.map(({ op }) => op.operationId)
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique')
  t.same(ids.filter((id) => !/^[a-z]+[A-Z][A-Za-z]*$/.test(id)), [], 'lowerCamel verb + noun')
  const byId = Object.fromEntries(ops.map(({ route, op }) => [op.operationId, { route, op }]))
  for (const [id, route] of Object.entries({
    createPanel: 'POST /panels', triggerTool: 'POST /panels/{id}/trigger/{tool}', getPanelState: 'GET /panels/{id}/state',
    spawnProcess: 'POST /processes', connectPanel: 'GET /panels/{id}/ws', connectProcess: 'GET /processes/{pid}/ws',
  })) t.equal(byId[id]?.route, route, id)

  const json = (op: Json, status: number) => op.responses[status]?.content?.['application/json']?.schema
  t.same(json(byId.triggerTool.op, 200), { $ref: '#/components/schemas/RunOutcome' })
  t.same(json(byId.getPanel.op, 200), { $ref: '#/components/schemas/Panel' })
  const errors = ops.flatMap(({ route, op }) => Object.keys(op.responses).filter((s) => Number(s) >= 400).map((s) => ({ route, s, schema: json(op, Number(s)) })))
  t.ok(errors.length > 40)
  t.same(errors.filter(({ schema }) => schema?.$ref !== '#/components/schemas/ErrorReply' &&
    !schema?.anyOf?.some((m: Json) => m.$ref === '#/components/schemas/ErrorReply')).map(({ route, s }) => `${route} ${s}`), [],
  'every error reply is the one ErrorReply component')

  const components: Json = doc.components.schemas
  for (const name of ['Panel', 'PanelStatus', 'ToolInfo', 'RunOutcome', 'RunError', 'ErrorReply', 'Mutation', 'WsClientMessage', 'WsServerMessage', 'TriggerMessage', 'ProcessServerMessage']) {
    t.ok(components[name], `component ${name}`)
  }
  t.same(components.PanelStatus, { type: 'string', enum: ['ready', 'running', 'suspended', 'closing'], title: 'PanelStatus' })
  t.same(components.Panel.properties.tools, { type: 'array', items: { $ref: '#/components/schemas/ToolInfo' } })
  t.same(components.WsServerMessage.anyOf.map((m: Json) => m.$ref.split('/').pop()),
    ['ConnectedMessage', 'ResultMessage', 'PatchMessage', 'EventMessage', 'ProgressMessage', 'PongMessage', 'ErrorMessage'])
  t.same(components.TriggerMessage.properties.type, { const: 'TRIGGER', type: 'string' }, 'a one-value literal stays a const')
  const literalUnions = [...schemas(doc)].filter((s) => Array.isArray(s.anyOf) && s.anyOf.length > 1 &&
    s.anyOf.every((m: Json) => m.type === 'string' && (m.const !== undefined || m.enum?.length === 1)))
  t.same(literalUnions, [], 'no string-literal union is left as anyOf (rule 3)')

  t.same(doc.servers, [{ url: base, description: 'the kernel that served this document' }])
  const ws = byId.connectPanel.op
  t.match(ws.responses[101].description, /WsClientMessage from the client, WsServerMessage from the server/)
  t.same(ws['x-websocket'], { client: { $ref: '#/components/schemas/WsClientMessage' }, server: { $ref: '#/components/schemas/WsServerMessage' } })
  t.ok(ws.responses[404] && ws.parameters.some((p: Json) => p.name === 'token'), '404 before the upgrade, ?token=')
})

t.test('refineDocument: one component per name, a clear error for two shapes with one name', async (t) => {
  const named = (extra: object) => Type.Object({ a: Type.String(), ...extra }, { title: 'Thing' })
  // plain JSON, as @fastify/swagger hands it over
  const doc = (body: unknown, reply: unknown) => JSON.parse(JSON.stringify({
    paths: { '/x': { post: {
      requestBody: { content: { 'application/json': { schema: body } } },
      responses: { 200: { content: { 'application/json': { schema: reply } } } },
    } } },
  }))
  const once = refineDocument(doc(named({}), { type: 'array', items: named({}) }))
  t.same(once.components, { schemas: { Thing: { title: 'Thing', type: 'object', required: ['a'], properties: { a: { type: 'string' } } } } })
  t.same(once.paths['/x'].post.responses[200].content['application/json'].schema, { type: 'array', items: { $ref: '#/components/schemas/Thing' } })
  t.throws(() => refineDocument(doc(named({}), named({ b: Type.Number() }))), /two different schemas are named Thing/)
})

t.test('a route without an operationId gets a derived one, marked so the document test fails', async (t) => {
  t.equal(derivedOperationId('POST', '/panels/:id/trigger/:tool'), 'postPanelsIdTriggerTool')
  t.match(nameRouteSchema({ summary: 's' }, 'GET', '/kernels/:id'), { operationId: 'getKernelsId', 'x-derived-operation-id': true })
  t.match(nameRouteSchema({ body: { $id: 'Body', type: 'object' } }, 'POST', '/x'), { body: { title: 'Body' } }, '$id becomes the title')
})
