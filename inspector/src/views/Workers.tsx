import { useState } from 'preact/hooks'
import type { Static } from '@sinclair/typebox'
import type { HostList, RuntimeList, TranscriptPage, WorkerDiagnostic, WorkerList } from '../../../schemas/workers.js'
import { api, seg } from '../api.js'
import { Card, ErrorBox, usePoll } from './common.js'

type Runtime = Static<typeof RuntimeList>['items'][number]
type Worker = Static<typeof WorkerList>['items'][number]

/** Transcript items per page. */
const PAGE = 20

function Diagnostics({ list }: { list: Static<typeof WorkerDiagnostic>[] }) {
  if (list.length === 0) return null
  return (
    <ul class="diagnostics">
      {list.map((d) => (
        <li class={d.severity}><span class={`badge ${d.severity}`}>{d.severity}</span> <code>{d.code}</code> {d.message}</li>
      ))}
    </ul>
  )
}

/** One runtime: status, capabilities, hosts and workers. */
function RuntimeCard({ runtime, onPick }: { runtime: Runtime; onPick: (w: Worker) => void }) {
  const path = `/runtimes/${seg(runtime.runtime_id)}`
  const hosts = usePoll(() => api<Static<typeof HostList>>('GET', `${path}/hosts`), 0, [runtime.runtime_id])
  const workers = usePoll(() => api<Static<typeof WorkerList>>('GET', `${path}/workers`), 3000, [runtime.runtime_id])
  const [spawnError, setSpawnError] = useState<unknown>(null)
  const spawn = async () => {
    try {
      const r = await api<{ state: string; diagnostics: { message: string }[] }>('POST', `${path}/workers`, { intent: { kind: 'workspace_companion' } })
      setSpawnError(r.state === 'accepted' ? null : new Error(`${r.state}: ${r.diagnostics.map((d) => d.message).join('; ')}`))
      void workers.reload()
    } catch (err) {
      setSpawnError(err)
    }
  }
  // hosts and worker lists repeat the runtime's own findings; show each once
  const seen = new Set(runtime.diagnostics.map((d) => `${d.code} ${d.message}`))
  const fresh = (list: Static<typeof WorkerDiagnostic>[]) => list.filter((d) => !seen.has(`${d.code} ${d.message}`))
  const caps = Object.entries(runtime.capabilities).filter(([, v]) => v === true).map(([k]) => k.replace(/^can_/, ''))
  return (
    <Card
      title={`${runtime.label} (${runtime.kind})`}
      id={`runtime-${runtime.runtime_id}`}
      actions={<span class={`badge ${runtime.status}`}>{runtime.status}</span>}
    >
      <p class="muted">can {caps.join(', ') || 'nothing'} · max {runtime.capabilities.max_workers} workers</p>
      <Diagnostics list={runtime.diagnostics} />
      <ErrorBox error={hosts.error ?? workers.error ?? spawnError} />
      <h3>Hosts</h3>
      <ul>
        {hosts.value?.items.map((h) => (
          <li>{h.label} <span class={`badge ${h.status}`}>{h.status}</span> <Diagnostics list={fresh(h.diagnostics)} /></li>
        ))}
      </ul>
      <div class="card-head">
        <h3>Workers</h3>
        {runtime.kind === 'embedded' && runtime.capabilities.can_spawn && <button type="button" onClick={spawn}>Spawn a companion</button>}
      </div>
      {workers.value && workers.value.items.length === 0 && <p class="muted">No workers.</p>}
      <ul>
        {workers.value?.items.map((w) => (
          <li>
            <button type="button" class="link" onClick={() => onPick(w)}>{w.label}</button> <span class="badge">{w.status}</span>
            {w.exit_code !== undefined && w.exit_code !== null && <span class="muted"> exit {w.exit_code}</span>}
          </li>
        ))}
      </ul>
      <Diagnostics list={fresh(workers.value?.diagnostics ?? [])} />
    </Card>
  )
}

/** A worker's transcript, a page at a time, and an input box when it accepts input. */
function WorkerDetail({ worker }: { worker: Worker }) {
  const path = `/runtimes/${seg(worker.runtime_id)}/workers/${seg(worker.worker_id)}`
  const [start, setStart] = useState<number | null>(null) // null = the latest page
  const page = usePoll(async () => {
    if (start !== null) return api<TranscriptPage>('GET', `${path}/transcript?start=${start}&limit=${PAGE}`)
    const head = await api<TranscriptPage>('GET', `${path}/transcript?start=0&limit=0`)
    const last = Math.max(head.first_start, head.total_items - PAGE)
    return api<TranscriptPage>('GET', `${path}/transcript?start=${last}&limit=${PAGE}`)
  }, 2000, [path, start])
  const [text, setText] = useState('')
  const [inputError, setInputError] = useState<unknown>(null)
  const send = async () => {
    try {
      await api('POST', `${path}/input`, { kind: 'user', content: text })
      setText('')
      setInputError(null)
      void page.reload()
    } catch (err) {
      setInputError(err)
    }
  }
  const p = page.value
  return (
    <Card title={`Worker ${worker.label}`}>
      <p class="muted">{worker.implementation.display_hint} · {worker.status} · host {worker.host_id}</p>
      <ErrorBox error={page.error ?? inputError} />
      {p && (
        <>
          <p class="muted">items {p.start + 1}–{p.start + p.items.length} of {p.total_items} (oldest kept: {p.first_start + 1})</p>
          <div class="row">
            <button type="button" disabled={p.start <= p.first_start} onClick={() => setStart(Math.max(p.first_start, p.start - PAGE))}>Older</button>
            <button type="button" disabled={p.next_start === null} onClick={() => setStart(p.next_start)}>Newer</button>
            <button type="button" onClick={() => setStart(null)}>Latest</button>
          </div>
          <ol class="log transcript">
            {p.items.map((i) => (
              <li class={i.role}><span class="muted">#{i.sequence} {new Date(i.at).toLocaleTimeString()}</span> <strong>{i.role}</strong> <pre>{i.content}</pre></li>
            ))}
          </ol>
          <Diagnostics list={p.diagnostics} />
        </>
      )}
      {worker.capabilities.can_accept_input && (
        <form
          class="row"
          onSubmit={(e) => {
            e.preventDefault()
            void send()
          }}
        >
          <label for="worker-input" class="sr-only">Input to the worker</label>
          <input id="worker-input" value={text} placeholder="input to the worker" onInput={(e) => setText(e.currentTarget.value)} />
          <button type="submit" disabled={!text}>Send</button>
        </form>
      )}
    </Card>
  )
}

/** The registry's own findings: those its runtimes do not already show. */
function registryOnly(list: Static<typeof RuntimeList> | undefined): Static<typeof WorkerDiagnostic>[] {
  if (!list) return []
  const shown = new Set(list.items.flatMap((r) => r.diagnostics.map((d) => `${d.code} ${d.message}`)))
  return list.diagnostics.filter((d) => !shown.has(`${d.code} ${d.message}`))
}

/** #/workers: runtimes → hosts → workers, and one worker's transcript. */
export function WorkersView() {
  const runtimes = usePoll(() => api<Static<typeof RuntimeList>>('GET', '/runtimes'), 5000)
  const [picked, setPicked] = useState<Worker | null>(null)
  return (
    <div class="grid two">
      <div>
        <ErrorBox error={runtimes.error} />
        <Diagnostics list={registryOnly(runtimes.value)} />
        {runtimes.value?.items.map((r) => <RuntimeCard runtime={r} onPick={setPicked} />)}
      </div>
      <div>{picked ? <WorkerDetail key={picked.worker_id} worker={picked} /> : <Card title="Worker"><p class="muted">Pick a worker to read its transcript.</p></Card>}</div>
    </div>
  )
}
