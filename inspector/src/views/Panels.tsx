import { useState } from 'preact/hooks'
import type { CreatePanelReply, PanelList } from '../../../schemas/panels.js'
import { parseTree, printParseErrorCode, type ParseError } from 'jsonc-parser'
import { ApiError, api, seg } from '../api.js'
import { Card, ErrorBox, usePoll } from './common.js'
import { SourceView, rememberSources } from './Source.js'

/** Line and column (1-based) of character `pos` in `text`. */
function lineColumn(text: string, pos: number): { line: number; column: number } {
  const before = text.slice(0, pos).split('\n')
  return { line: before.length, column: before[before.length - 1].length + 1 }
}

/**
 * Parse a pasted definition (strict JSON); a syntax error becomes an ApiError INVALID_JSON with
 * its line/column, located by jsonc-parser (the browser's JSON.parse does not always say where).
 */
function parseDefinition(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>
  } catch (err) {
    const errors: ParseError[] = []
    parseTree(text, errors, { allowTrailingComma: false, disallowComments: true })
    const first = errors[0]
    if (!first) throw new ApiError(0, 'INVALID_JSON', (err as Error).message)
    const where = lineColumn(text, first.offset)
    throw new ApiError(0, 'INVALID_JSON', `${printParseErrorCode(first.error)} at line ${where.line}, column ${where.column}`, where)
  }
}

type Failure = { error: ApiError; source?: string; tool?: string; line?: number; column?: number }

/** Where a create failure points, with the handler source it points into. */
function locate(error: ApiError, def: Record<string, unknown> | undefined): Failure {
  const d = (error.details ?? {}) as { tool?: string; line?: number; column?: number }
  if (!def || !d.tool) return { error }
  const tools = (def.tools ?? []) as { name: string; handler: string }[]
  const lifecycle = (def.lifecycle ?? {}) as Record<string, string>
  const source = tools.find((t) => t.name === d.tool)?.handler ?? lifecycle[d.tool]
  return { error, source, tool: d.tool, line: d.line, column: d.column }
}

function CreatePanel({ onCreated }: { onCreated: () => void }) {
  const [text, setText] = useState('')
  const [failure, setFailure] = useState<Failure | null>(null)
  const [busy, setBusy] = useState(false)
  const create = async () => {
    setFailure(null)
    let def: Record<string, unknown> | undefined
    setBusy(true)
    try {
      def = parseDefinition(text)
      const panel = await api<CreatePanelReply>('POST', '/panels', def)
      rememberSources(panel.id, def as Parameters<typeof rememberSources>[1])
      setText('')
      onCreated()
      location.hash = `#/panels/${seg(panel.id)}`
    } catch (err) {
      setFailure(locate(err as ApiError, def))
    } finally {
      setBusy(false)
    }
  }
  return (
    <Card title="Create a panel">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void create()
        }}
      >
        <label for="definition">Panel definition (JSON: <code>{'{ id?, kind, initialState?, tools: [...] }'}</code>)</label>
        <textarea id="definition" rows={10} spellcheck={false} value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <div class="row">
          <label class="file">
            Upload a definition file
            <input
              type="file"
              accept=".json,application/json"
              onChange={async (e) => {
                const f = e.currentTarget.files?.[0]
                if (f) setText(await f.text())
              }}
            />
          </label>
          <button type="submit" disabled={busy || !text.trim()}>Create panel</button>
        </div>
      </form>
      {failure && (
        <div data-testid="create-error">
          <ErrorBox error={failure.error} />
          {failure.line !== undefined && (
            <p>
              in <code>{failure.tool}</code> at line {failure.line}, column {failure.column ?? '?'}
            </p>
          )}
          {failure.source && <SourceView source={failure.source} line={failure.line} column={failure.column} label={`handler of ${failure.tool}`} />}
        </div>
      )}
    </Card>
  )
}

/** #/panels: the panels of the token's namespace, create and delete. */
export function PanelsView() {
  const { value, error, reload } = usePoll(() => api<PanelList>('GET', '/panels'), 3000)
  const [deleteError, setDeleteError] = useState<unknown>(null)
  const remove = async (id: string) => {
    if (!confirm(`Delete panel ${id}? Its unmount handler runs and its sockets close.`)) return
    try {
      await api('DELETE', `/panels/${seg(id)}`)
      setDeleteError(null)
    } catch (err) {
      setDeleteError(err)
    }
    void reload()
  }
  return (
    <div class="grid two">
      <Card title="Panels" actions={<button type="button" onClick={reload}>Refresh</button>}>
        <ErrorBox error={error ?? deleteError} />
        {value && value.panels.length === 0 && <p class="muted">No panels in this namespace yet.</p>}
        {value && value.panels.length > 0 && (
          <table data-testid="panel-list">
            <thead>
              <tr><th scope="col">id</th><th scope="col">kind</th><th scope="col">status</th><th scope="col">version</th><th scope="col">clients</th><th scope="col">tools</th><th scope="col"><span class="sr-only">actions</span></th></tr>
            </thead>
            <tbody>
              {value.panels.map((p) => (
                <tr>
                  <td><a href={`#/panels/${seg(p.id)}`}>{p.id}</a></td>
                  <td>{p.kind}</td>
                  <td><span class={`badge ${p.status}`}>{p.status}</span></td>
                  <td>{p.version}</td>
                  <td>{p.clients}</td>
                  <td>{p.tools.join(', ')}</td>
                  <td><button type="button" class="danger" aria-label={`Delete panel ${p.id}`} onClick={() => remove(p.id)}>Delete</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      <CreatePanel onCreated={reload} />
    </div>
  )
}
