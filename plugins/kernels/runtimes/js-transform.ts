/**
 * Turns one notebook cell of JavaScript or TypeScript into a vm Script that can run again and again in
 * the same context, the way a REPL cell behaves:
 * - TypeScript goes through esbuild's `transformSync` first (types stripped, no type checking — as Deno's kernel);
 * - top-level `let` / `const` / `class` become assignments to names declared with `var` at the Script's
 *   top (context globals), so a later cell may declare them again; functions stay hoisted globals;
 * - a cell with top-level `await` or `import` runs inside an async arrow function whose value is the
 *   last expression; static `import … from 'm'` becomes `await import('m')`;
 * - the last top-level expression statement is the cell's result (`hasResult`).
 * Source positions keep their line numbers (all added text goes on existing lines).
 */
import * as acorn from 'acorn'
import { stop, transformSync } from 'esbuild'

/** A cell ready for `new vm.Script(code)`: `async` = the Script evaluates to a Promise of the result. */
export interface TransformedCell {
  code: string
  async: boolean
  hasResult: boolean
}

/** A syntax error in a cell, with the 1-based line and 0-based column acorn or esbuild reported. */
export class CellSyntaxError extends Error {
  constructor(message: string, readonly line: number, readonly column: number, readonly atEnd: boolean) {
    super(message)
    this.name = 'SyntaxError'
  }
}

type Node = acorn.AnyNode
type Edit = [start: number, end: number, text: string]

const BASE: acorn.Options = { ecmaVersion: 'latest', allowHashBang: true, locations: true }

/** Parse as a sloppy Script; failing that, as a module with top-level await (which forces the async form). */
export function parseCell(code: string): { program: acorn.Program; async: boolean } {
  try {
    return { program: acorn.parse(code, { ...BASE, sourceType: 'script' }), async: false }
  } catch {
    try {
      return { program: acorn.parse(code, { ...BASE, sourceType: 'module', allowAwaitOutsideFunction: true }), async: true }
    } catch (err) {
      const e = err as SyntaxError & { loc?: { line: number; column: number }; pos?: number }
      const atEnd = (e.pos ?? 0) >= code.trimEnd().length || /^Unterminated/.test(e.message)
      throw new CellSyntaxError(e.message, e.loc?.line ?? 1, e.loc?.column ?? 0, atEnd)
    }
  }
}

type EsbuildError = Error & { errors?: { text: string; location?: { line: number; column: number } | null }[] }

function esbuildTs(code: string): string {
  return transformSync(code, { loader: 'ts', target: 'esnext' }).code
}

/**
 * TypeScript → JavaScript (esbuild, ESNext, no module conversion). esbuild's service is a child
 * process in the kernel's process group, so a group-wide SIGINT (jupyter_client's interrupt_kernel)
 * kills it; then the service is started again once.
 * @throws CellSyntaxError
 */
export function stripTypes(code: string): string {
  try {
    return esbuildTs(code)
  } catch (err) {
    if ((err as EsbuildError).errors) throw syntaxError(err as EsbuildError)
  }
  stop() // the service is no longer running
  try {
    return esbuildTs(code)
  } catch (err) {
    throw syntaxError(err as EsbuildError)
  }
}

function syntaxError(err: EsbuildError): CellSyntaxError {
  const first = err.errors?.[0]
  const msg = first?.text ?? err.message
  return new CellSyntaxError(msg, first?.location?.line ?? 1, first?.location?.column ?? 0, /end of file/i.test(msg))
}

/** Every name a binding pattern binds (`{a, b: [c, ...d] = []}` → a, c, d). */
function patternNames(p: acorn.Pattern, out: string[]): string[] {
  switch (p.type) {
    case 'Identifier': out.push(p.name); break
    case 'ObjectPattern':
      for (const prop of p.properties) patternNames(prop.type === 'RestElement' ? prop.argument : prop.value, out)
      break
    case 'ArrayPattern': for (const el of p.elements) if (el) patternNames(el, out); break
    case 'RestElement': patternNames(p.argument, out); break
    case 'AssignmentPattern': patternNames(p.left, out); break
    default: break
  }
  return out
}

/** Rewrites of one cell: edits in place, statements to hoist to the top, names to declare with `var`. */
class Rewriter {
  readonly edits: Edit[] = []
  readonly hoisted: string[] = []
  readonly names = new Set<string>()
  private imports = 0

  constructor(private readonly src: string, private readonly async: boolean) {}

  private text(n: { start: number; end: number }): string {
    return this.src.slice(n.start, n.end)
  }

  statement(node: Node): void {
    if (node.type === 'ExportNamedDeclaration' && node.declaration) return this.declaration(node.declaration, node)
    if (node.type === 'VariableDeclaration' || node.type === 'ClassDeclaration' || node.type === 'FunctionDeclaration') {
      return this.declaration(node, node)
    }
    if (node.type === 'ImportDeclaration') return this.importDeclaration(node)
  }

  /** `decl` is the declaration; `range` the statement it replaces (an `export` wraps it). */
  private declaration(decl: Node, range: Node): void {
    if (decl.type === 'VariableDeclaration') {
      const parts = decl.declarations.map((d) => {
        patternNames(d.id, []).forEach((n) => this.names.add(n))
        if (!d.init) return decl.kind === 'var' || d.id.type !== 'Identifier' ? '' : `${d.id.name} = undefined;`
        const assign = `${this.text(d.id)} = ${this.text(d.init)}`
        return d.id.type === 'Identifier' ? `${assign};` : `(${assign});`
      })
      this.edits.push([range.start, range.end, parts.join(' ')])
    } else if (decl.type === 'ClassDeclaration' && decl.id) {
      this.names.add(decl.id.name)
      this.edits.push([range.start, range.end, `${decl.id.name} = ${this.text(decl)};`])
    } else if (decl.type === 'FunctionDeclaration' && decl.id) {
      if (!this.async) { // a Script's top-level function is already a re-declarable global
        if (range !== decl) this.edits.push([range.start, range.end, this.text(decl)])
        return
      }
      this.names.add(decl.id.name)
      this.hoisted.push(`${decl.id.name} = ${this.text(decl)};`)
      this.edits.push([range.start, range.end, ''])
    }
  }

  private importDeclaration(node: acorn.ImportDeclaration): void {
    const tmp = `__cell_import${this.imports++}`
    const parts = [`const ${tmp} = await import(${this.text(node.source)});`]
    for (const s of node.specifiers) {
      this.names.add(s.local.name)
      if (s.type === 'ImportNamespaceSpecifier') parts.push(`${s.local.name} = ${tmp};`)
      else if (s.type === 'ImportDefaultSpecifier') parts.push(`${s.local.name} = ${tmp}.default;`)
      else parts.push(`${s.local.name} = ${tmp}[${JSON.stringify(s.imported.type === 'Identifier' ? s.imported.name : s.imported.value)}];`)
    }
    this.hoisted.push(parts.join(' '))
    this.edits.push([node.start, node.end, ''])
  }
}

function applyEdits(src: string, edits: Edit[]): string {
  let out = src
  for (const [start, end, text] of [...edits].sort((a, b) => b[0] - a[0])) out = out.slice(0, start) + text + out.slice(end)
  return out
}

/**
 * The Script text for one cell (see the module comment).
 * @throws CellSyntaxError when the cell does not parse (or esbuild rejects the TypeScript)
 */
export function transformCell(source: string, language: 'javascript' | 'typescript'): TransformedCell {
  const code = language === 'typescript' ? stripTypes(source) : source
  const { program, async } = parseCell(code)
  const rw = new Rewriter(code, async)
  for (const node of program.body) rw.statement(node)
  const last = program.body.at(-1)
  const hasResult = last?.type === 'ExpressionStatement'
  if (async && last?.type === 'ExpressionStatement') {
    rw.edits.push([last.start, last.expression.end, `return (${code.slice(last.expression.start, last.expression.end)})`])
  }
  const body = applyEdits(code, rw.edits)
  const vars = rw.names.size > 0 ? `var ${[...rw.names].join(', ')}; ` : ''
  if (!async) return { code: vars + body, async, hasResult }
  return { code: `${vars}(async () => { ${rw.hoisted.join(' ')} ${body}\n})()`, async, hasResult }
}
