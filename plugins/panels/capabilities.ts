import { parse, type Node } from 'acorn'
import { ancestor } from 'acorn-walk'
import { kernelError } from '../errors.js'

/*
 * Capability inference: a tool that omits `capabilities` gets the least set its source needs,
 * read off the syntax tree. Static keys give exact tokens; anything dynamic (computed keys,
 * `$state` passed around whole, aliased `$emit`) widens to the wildcard so inference never
 * grants less than the handler uses in the common, literal style.
 */

// acorn's estree types are loose; the walker only needs these fields.
interface AnyNode extends Node {
  [field: string]: any
}

/** Array/Map/Set methods that change their receiver: calling one on state data is a write. */
const MUTATING_METHODS = new Set([
  'push', 'pop', 'shift', 'unshift', 'splice', 'sort', 'reverse', 'fill', 'copyWithin', 'set', 'add', 'delete', 'clear',
])

/** Wrap the handler body the way the guest does, so line numbers match the user's source. */
function parseHandler(source: string): AnyNode {
  const wrapped = `(async function($state,$args,$scope,$emit,$view,$ext,$log){${source}\n})`
  return parse(wrapped, { ecmaVersion: 'latest', sourceType: 'script', locations: true }) as AnyNode
}

/** The static name of a member's property, or undefined when computed from a non-literal. */
function staticKey(member: AnyNode): string | undefined {
  if (!member.computed && member.property.type === 'Identifier') return member.property.name
  const p = member.property
  if (p.type === 'Literal' && (typeof p.value === 'string' || typeof p.value === 'number')) return String(p.value)
  if (p.type === 'TemplateLiteral' && p.expressions.length === 0) return p.quasis[0].value.cooked
  return undefined
}

/** First argument of a call as a static string, if it is one. */
function staticArg(call: AnyNode): string | undefined {
  const a = call.arguments[0]
  if (a?.type === 'Literal' && typeof a.value === 'string') return a.value
  if (a?.type === 'TemplateLiteral' && a.expressions.length === 0) return a.quasis[0].value.cooked
  return undefined
}

/** How an expression's value is used by its parent: is it (or a part of it) changed in place? */
function isMutatedAt(node: AnyNode, parent: AnyNode | undefined): boolean {
  if (!parent) return false
  if (parent.type === 'AssignmentExpression' && parent.left === node) return true
  if (parent.type === 'UpdateExpression') return true
  if (parent.type === 'UnaryExpression' && parent.operator === 'delete') return true
  return false
}

interface Usage {
  mutated: boolean
  /** variable bound to (a part of) the value, for alias tracking */
  alias?: string
}

/**
 * Follow an expression up through member accesses and calls on it (`x.a.b`, `x.find(f).done`)
 * and report whether the chain ends in an in-place change, or binds the value to a name.
 */
function followChain(start: AnyNode, ancestors: AnyNode[], startIndex: number): Usage {
  let cur = start
  for (let i = startIndex; i >= 0; i--) {
    const parent = ancestors[i]
    if (isMutatedAt(cur, parent)) return { mutated: true }
    if (parent.type === 'ChainExpression') { cur = parent; continue }
    if (parent.type === 'MemberExpression' && parent.object === cur) { cur = parent; continue }
    if (parent.type === 'CallExpression' && parent.callee === cur) {
      if (cur.type === 'MemberExpression' && MUTATING_METHODS.has(staticKey(cur) ?? '')) return { mutated: true }
      cur = parent
      continue
    }
    if (parent.type === 'VariableDeclarator' && parent.init === cur && parent.id.type === 'Identifier') {
      return { mutated: false, alias: parent.id.name }
    }
    if (parent.type === 'ForOfStatement' && parent.right === cur) {
      const decl = parent.left.type === 'VariableDeclaration' ? parent.left.declarations[0]?.id : parent.left
      if (decl?.type === 'Identifier') return { mutated: false, alias: decl.name }
    }
    return { mutated: false }
  }
  return { mutated: false }
}

class Collector {
  readonly tokens = new Set<string>()
  /** alias variable → state key it holds a part of */
  readonly aliases = new Map<string, string>()

  add(token: string): void {
    this.tokens.add(token)
  }

  stateUse(key: string, read: boolean, write: boolean): void {
    if (read) this.add(`state:read:${key}`)
    if (write) this.add(`state:write:${key}`)
  }
}

/** `$state.<key>` / `$state[expr]` / `$state` used whole. */
function visitState(node: AnyNode, ancestors: AnyNode[], c: Collector): void {
  const i = ancestors.length - 2
  const parent = ancestors[i]
  if (parent?.type === 'MemberExpression' && parent.object === node) {
    const key = staticKey(parent) ?? '*'
    const grand = ancestors[i - 1]
    if (grand?.type === 'AssignmentExpression' && grand.left === parent) {
      c.stateUse(key, grand.operator !== '=', true)
      return
    }
    if (isMutatedAt(parent, grand)) {
      c.stateUse(key, grand.type === 'UpdateExpression', true)
      return
    }
    const use = followChain(parent, ancestors, i - 1)
    c.stateUse(key, true, use.mutated)
    if (use.alias) c.aliases.set(use.alias, key)
    return
  }
  if (parent?.type === 'VariableDeclarator' && parent.init === node && parent.id.type === 'ObjectPattern') {
    for (const prop of parent.id.properties) {
      const key = prop.type === 'Property' && !prop.computed ? (prop.key.name ?? String(prop.key.value)) : '*'
      c.stateUse(key, true, false)
    }
    return
  }
  const isAssignTarget =
    parent?.type === 'CallExpression' &&
    parent.arguments[0] === node &&
    parent.callee.type === 'MemberExpression' &&
    parent.callee.object.name === 'Object' &&
    staticKey(parent.callee) === 'assign'
  c.stateUse('*', true, isAssignTarget)
}

function visitIdentifier(node: AnyNode, ancestors: AnyNode[], c: Collector): void {
  const parent = ancestors[ancestors.length - 2]
  switch (node.name) {
    case '$state':
      return visitState(node, ancestors, c)
    case '$emit': {
      const name = parent?.type === 'CallExpression' && parent.callee === node ? staticArg(parent) : undefined
      return c.add(`events:emit:${name ?? '*'}`)
    }
    case '$ext': {
      const name = parent?.type === 'MemberExpression' && parent.object === node ? staticKey(parent) : undefined
      return c.add(`ext:${name ?? '*'}`)
    }
    case '$view':
      return c.add('view:update:*')
  }
}

/** Second pass: an alias of state data that is changed in place means a write of its key. */
function visitAlias(node: AnyNode, ancestors: AnyNode[], c: Collector): void {
  const key = c.aliases.get(node.name)
  if (key === undefined) return
  const i = ancestors.length - 2
  const parent = ancestors[i]
  if (parent?.type === 'MemberExpression' && parent.object === node && followChain(parent, ancestors, i - 1).mutated) {
    c.stateUse(key, true, true)
  }
}

/** Drop specific tokens a wildcard of the same family already covers; sort for stable output. */
function normalize(tokens: Set<string>): string[] {
  const out = [...tokens].filter((t) => {
    if (t.endsWith(':*')) return true
    const family = t.slice(0, t.lastIndexOf(':'))
    return !tokens.has(`${family}:*`)
  })
  return out.sort()
}

/**
 * Infer the capability tokens a handler needs from its source (the body of an async function).
 * `$state.x` reads/writes → `state:read:x` / `state:write:x` (computed keys → `*`),
 * `$emit('n')` → `events:emit:n`, `$ext.http` → `ext:http`, any `$view` use → `view:update:*`.
 * Returns a sorted, de-duplicated list (possibly empty).
 * @throws KernelError 400 COMPILATION_ERROR when acorn cannot parse the source (details: line, column).
 */
export function inferCapabilities(source: string, label = 'handler'): string[] {
  let ast: AnyNode
  try {
    ast = parseHandler(source)
  } catch (err) {
    const e = err as { message: string; loc?: { line: number; column: number } }
    throw kernelError('COMPILATION_ERROR', `${label}: ${e.message}`, {
      tool: label,
      line: e.loc?.line,
      column: e.loc ? e.loc.column + 1 : undefined,
    })
  }
  const c = new Collector()
  ancestor(ast, { Identifier: (n, _s, anc) => visitIdentifier(n as AnyNode, anc as AnyNode[], c) })
  if (c.aliases.size > 0) {
    ancestor(ast, { Identifier: (n, _s, anc) => visitAlias(n as AnyNode, anc as AnyNode[], c) })
  }
  return normalize(c.tokens)
}
