/**
 * A collapsible JSON tree (native <details>, so it opens and closes from the keyboard).
 * Top-level keys for which `changed(key)` is true are highlighted.
 */
function Value({ name, value, depth }: { name: string; value: unknown; depth: number }) {
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value)
    const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`
    return (
      <details open={depth < 3}>
        <summary>
          <span class="k">{name}</span> <span class="muted">{summary}</span>
        </summary>
        <ul>
          {entries.map(([k, v]) => (
            <li><Value name={k} value={v} depth={depth + 1} /></li>
          ))}
        </ul>
      </details>
    )
  }
  const kind = value === null ? 'null' : typeof value
  return (
    <span class="leaf">
      <span class="k">{name}</span>: <span class={`v ${kind}`}>{JSON.stringify(value) ?? 'undefined'}</span>
    </span>
  )
}

/** The whole state object, one row per top-level key. */
export function JsonTree({ value, changed }: { value: Record<string, unknown>; changed: (key: string) => boolean }) {
  const keys = Object.keys(value)
  if (keys.length === 0) return <p class="muted">(empty state)</p>
  return (
    <ul class="tree" data-testid="state-tree">
      {keys.map((k) => (
        <li data-key={k} data-changed={changed(k) ? 'true' : undefined} class={changed(k) ? 'changed' : undefined}>
          <Value name={k} value={value[k]} depth={1} />
        </li>
      ))}
    </ul>
  )
}
