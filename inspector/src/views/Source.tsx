/**
 * A handler's source with line numbers, the line `line` (1-based) marked and a caret under
 * `column` (1-based): where a compile or run error happened.
 */
export function SourceView({ source, line, column, label }: { source: string; line?: number; column?: number; label: string }) {
  const lines = source.split('\n')
  return (
    <figure class="source">
      <figcaption>{label}</figcaption>
      <ol>
        {lines.map((text, i) => {
          const here = i + 1 === line
          return (
            <li class={here ? 'marked' : undefined} aria-current={here ? 'location' : undefined} data-line={i + 1}>
              <code>{text || ' '}</code>
              {here && column !== undefined && <code class="caret" aria-hidden="true">{' '.repeat(Math.max(0, column - 1))}^</code>}
            </li>
          )
        })}
      </ol>
    </figure>
  )
}

/** Handler sources of the panels this tab created, by panel id then tool (or mount/unmount) name. */
export const knownSources = new Map<string, Map<string, string>>()

/** Remember a definition's handler sources for later error display. */
export function rememberSources(id: string, def: { tools?: { name: string; handler: string }[]; lifecycle?: { mount?: string; unmount?: string } }): void {
  const m = new Map<string, string>()
  for (const t of def.tools ?? []) m.set(t.name, t.handler)
  if (def.lifecycle?.mount) m.set('mount', def.lifecycle.mount)
  if (def.lifecycle?.unmount) m.set('unmount', def.lifecycle.unmount)
  knownSources.set(id, m)
}
