import type { ExecutionContext } from '../../wasm-runtime/index.js'

/** A context with every capability unless overridden. */
export function ctx(over: Partial<ExecutionContext> = {}): ExecutionContext {
  return {
    panelId: 'p1',
    handlerName: 'test',
    state: {},
    args: {},
    scope: {},
    capabilities: ['*'],
    extensions: { http: ['get', 'post'] },
    ...over,
  }
}

/** The tiny benchmark handler. */
export const COUNTER = `const n = ($state.count ?? 0) + $args.by; $state.count = n; $emit('changed', {n}); return n;`
