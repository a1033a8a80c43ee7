import t from 'tap'
import { inferCapabilities } from '../../plugins/panels/capabilities.js'
import { KernelError } from '../../plugins/errors.js'

const table: Array<[string, string, string[]]> = [
  ['read and write of one key, literal event', "$state.count = ($state.count ?? 0) + 1; $emit('changed', $state.count)",
    ['events:emit:changed', 'state:read:count', 'state:write:count']],
  ['plain assignment needs no read', '$state.loading = true', ['state:write:loading']],
  ['read only', 'return $state.todos.length', ['state:read:todos']],
  ['mutating method on nested data is a write', '$state.todos.push($args.todo)', ['state:read:todos', 'state:write:todos']],
  ['non-mutating method is a read', 'return $state.todos.filter((t) => t.done)', ['state:read:todos']],
  ['aliased element changed in place', 'const t = $state.todos.find((x) => x.id === 1); t.done = true', ['state:read:todos', 'state:write:todos']],
  ['for-of alias changed in place', 'for (const t of $state.todos) t.done = true', ['state:read:todos', 'state:write:todos']],
  ['update expression', '$state.n++', ['state:read:n', 'state:write:n']],
  ['delete', 'delete $state.old', ['state:write:old']],
  ['string-literal computed key is exact', "$state['a-b'] = 1", ['state:write:a-b']],
  ['computed key widens to wildcard (write)', '$state[$args.key] = 1', ['state:write:*']],
  ['computed key widens to wildcard (read)', 'return $state[$args.key]', ['state:read:*']],
  ['whole state read', 'return Object.keys($state)', ['state:read:*']],
  ['Object.assign onto state', 'Object.assign($state, $args)', ['state:read:*', 'state:write:*']],
  ['destructuring reads each key', 'const { a, b } = $state; return a + b', ['state:read:a', 'state:read:b']],
  ['wildcard absorbs specific tokens', "$state.a = 1; $state[$args.k] = 2", ['state:write:*']],
  ['dynamic event name', '$emit($args.name, 1)', ['events:emit:*']],
  ['extension by name', 'const r = await $ext.http.get($args.url); return r.status', ['ext:http']],
  ['computed extension', 'return $ext[$args.ext].call()', ['ext:*']],
  ['any view use', "$view.setFilter('list', { q: 1 })", ['view:update:*']],
  ['nothing at all', 'return 1 + 1', []],
]

for (const [name, source, expected] of table) {
  t.same(inferCapabilities(source), expected, name)
}

t.test('a source acorn cannot parse is a COMPILATION_ERROR naming the tool, line and column', async (t) => {
  const err = t.throws(() => inferCapabilities('const a = 1\nreturn (', 'broken')) as KernelError
  t.equal(err.code, 'COMPILATION_ERROR')
  t.equal(err.statusCode, 400)
  t.match(err.details, { tool: 'broken', line: 3 })
})
