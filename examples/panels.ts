import type { PanelDefinition } from '../schemas/panels.js'

/*
 * Example panels. Handlers are the bodies of async functions run in the wasm sandbox; none of
 * them declares `capabilities`, so the kernel infers them from the source (GET /panels/:id shows them).
 */

const idArgs = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1 } },
  additionalProperties: false,
}

/** A todo list: add / toggle / remove, each committing `todos` and emitting an event. */
export function todoPanel(id = 'todos'): PanelDefinition {
  return {
    id,
    kind: 'todo-list',
    title: 'Todo list',
    initialState: { todos: [], nextId: 1 },
    tools: [
      {
        name: 'add',
        description: 'Add a todo',
        args: {
          type: 'object',
          required: ['text'],
          properties: { text: { type: 'string', minLength: 1, maxLength: 200 } },
          additionalProperties: false,
        },
        handler: `
const id = $state.nextId
$state.nextId = id + 1
$state.todos = [...$state.todos, { id, text: $args.text, done: false }]
$emit('todo:added', { id, text: $args.text })
return { id }`,
      },
      {
        name: 'toggle',
        description: 'Flip a todo between done and not done',
        args: idArgs,
        handler: `
const todo = $state.todos.find((t) => t.id === $args.id)
if (!todo) throw new Error('no todo with id ' + $args.id)
$state.todos = $state.todos.map((t) => (t.id === $args.id ? { ...t, done: !t.done } : t))
$emit('todo:toggled', { id: $args.id, done: !todo.done })
return { id: $args.id, done: !todo.done }`,
      },
      {
        name: 'remove',
        description: 'Remove a todo',
        args: idArgs,
        handler: `
const left = $state.todos.filter((t) => t.id !== $args.id)
if (left.length === $state.todos.length) throw new Error('no todo with id ' + $args.id)
$state.todos = left
$emit('todo:removed', { id: $args.id })
return { removed: $args.id }`,
      },
    ],
  }
}

/**
 * A forecast panel reading a (slow) HTTP service through `$ext.http`: `load` sets `loading: true`,
 * which every client sees at once while the handler waits, then stores the answer;
 * `compare` fetches two cities in parallel with Promise.all.
 * @param source base URL of the forecast service, e.g. http://127.0.0.1:4000/forecast
 */
export function forecastPanel(source: string, id = 'forecast'): PanelDefinition {
  const cityArgs = {
    type: 'object',
    required: ['city'],
    properties: { city: { type: 'string', minLength: 1, maxLength: 80 } },
    additionalProperties: false,
  }
  return {
    id,
    kind: 'forecast',
    title: 'Forecast',
    initialState: { source, loading: false, forecast: null, error: null },
    tools: [
      {
        name: 'load',
        description: "Fetch one city's forecast",
        args: cityArgs,
        handler: `
$state.loading = true
$state.error = null
try {
  const res = await $ext.http.get($state.source + '?city=' + encodeURIComponent($args.city))
  if (res.status !== 200) throw new Error('forecast service answered ' + res.status)
  $state.forecast = res.body
  $emit('forecast:loaded', { city: res.body.city })
  return res.body
} catch (err) {
  $state.error = (err.code ? err.code + ': ' : '') + err.message
  return null
} finally {
  $state.loading = false
}`,
      },
      {
        name: 'compare',
        description: 'Fetch two cities at once and store the warmer one',
        args: {
          type: 'object',
          required: ['a', 'b'],
          properties: { a: { type: 'string', minLength: 1 }, b: { type: 'string', minLength: 1 } },
          additionalProperties: false,
        },
        handler: `
$state.loading = true
const url = (c) => $state.source + '?city=' + encodeURIComponent(c)
const [a, b] = await Promise.all([$ext.http.get(url($args.a)), $ext.http.get(url($args.b))])
$state.forecast = a.body.tempC >= b.body.tempC ? a.body : b.body
$state.loading = false
return { warmer: $state.forecast.city }`,
      },
    ],
  }
}
