import { useState } from 'preact/hooks'
import type { ProcessInfo, ProcessList } from '../../../schemas/processes.js'
import { api } from '../api.js'
import { Card, ErrorBox, usePoll } from './common.js'

const TYPES = ['shell', 'node', 'python', 'workerd'] as const

/** Split an args field on whitespace; "quoted strings" stay one argument. */
function splitArgs(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2])
}

/** "exited 0", "exited (SIGKILL, timeout)", "running". */
export function exitText(p: Pick<ProcessInfo, 'status' | 'exit'>): string {
  if (p.status === 'running' || !p.exit) return p.status
  const bits = [p.exit.code !== null && p.exit.code !== undefined ? `code ${p.exit.code}` : '', p.exit.signal ?? '', p.exit.reason ?? '']
  return `exited (${bits.filter(Boolean).join(', ')})`
}

function Spawn({ onSpawned }: { onSpawned: () => void }) {
  const [type, setType] = useState<(typeof TYPES)[number]>('shell')
  const [args, setArgs] = useState('')
  const [cwd, setCwd] = useState('')
  const [code, setCode] = useState('')
  const [error, setError] = useState<unknown>(null)
  const spawn = async () => {
    setError(null)
    const body: Record<string, unknown> = { type }
    if (args.trim()) body.args = splitArgs(args)
    if (cwd.trim()) body.cwd = cwd.trim()
    if (code.trim() && type !== 'shell') body.code = code
    if (type === 'shell') Object.assign(body, { cols: 100, rows: 30 })
    try {
      const p = await api<ProcessInfo>('POST', '/processes', body)
      onSpawned()
      location.hash = `#/processes/${p.pid}`
    } catch (err) {
      setError(err)
    }
  }
  return (
    <Card title="Spawn a process">
      <form
        onSubmit={(e) => {
          e.preventDefault()
          void spawn()
        }}
      >
        <label for="spawn-type">Type</label>
        <select id="spawn-type" value={type} onChange={(e) => setType(e.currentTarget.value as typeof type)}>
          {TYPES.map((t) => <option value={t}>{t === 'shell' ? 'shell (bash in a PTY)' : t}</option>)}
        </select>
        <label for="spawn-args">Arguments (space separated, "quote" to keep spaces)</label>
        <input id="spawn-args" value={args} onInput={(e) => setArgs(e.currentTarget.value)} />
        <label for="spawn-cwd">Working directory (relative to the workspace root)</label>
        <input id="spawn-cwd" value={cwd} placeholder="." onInput={(e) => setCwd(e.currentTarget.value)} />
        {type !== 'shell' && (
          <>
            <label for="spawn-code">Inline code (node, python, workerd module)</label>
            <textarea id="spawn-code" rows={4} spellcheck={false} value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </>
        )}
        <button type="submit">Spawn</button>
      </form>
      <ErrorBox error={error} />
    </Card>
  )
}

/** #/processes: this namespace's processes (running and recently exited) and a spawn form. */
export function ProcessesView() {
  const { value, error, reload } = usePoll(() => api<ProcessList>('GET', '/processes'), 2000)
  return (
    <div class="grid two">
      <Card title="Processes" actions={<button type="button" onClick={reload}>Refresh</button>}>
        <ErrorBox error={error} />
        {value && value.processes.length === 0 && <p class="muted">No processes.</p>}
        {value && value.processes.length > 0 && (
          <table data-testid="process-list">
            <thead>
              <tr><th scope="col">pid</th><th scope="col">type</th><th scope="col">command</th><th scope="col">status</th><th scope="col">clients</th><th scope="col">output</th></tr>
            </thead>
            <tbody>
              {value.processes.map((p) => (
                <tr>
                  <td><a href={`#/processes/${p.pid}`}>{p.pid}</a></td>
                  <td>{p.type}</td>
                  <td><code>{p.command.join(' ')}</code></td>
                  <td><span class={`badge ${p.status}`}>{exitText(p)}</span></td>
                  <td>{p.clients}</td>
                  <td>{p.outputBytes} B</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
      <Spawn onSpawned={reload} />
    </div>
  )
}
