/**
 * One panel's live connection (`GET /panels/:id/ws`): the state as CONNECTED gave it plus every
 * PATCH since, the EVENT log and the runs this page triggered. On a dropped socket it reconnects
 * with `?since=<version>`: a kernel that supports resuming answers `CONNECTED { resumed: true }`
 * followed by the PATCHes missed; one that does not sends the whole state again.
 * A failed run may come back as `RESULT { result: { status: 'error', error } }` or as
 * `ERROR { requestId, code, message, line?, column?, details? }`; both end the run as an error.
 */
import type { RunOutcome } from '../../schemas/panels.js'
import { wsUrl, seg } from './api.js'

/** Most EVENT entries kept (older ones drop off). */
const MAX_EVENTS = 500
/** Most runs kept in the run log. */
const MAX_RUNS = 100
/** How long a changed key stays highlighted, ms. */
export const CHANGED_MS = 3000
/** Reconnect delays, ms (the last one repeats). */
const BACKOFF_MS = [250, 1000, 2000, 5000]

export interface RunError {
  code: string
  message: string
  line?: number
  column?: number
}

/** A TRIGGER this page sent and what came back for it. */
export interface Run {
  requestId: string
  tool: string
  args: unknown
  startedAt: number
  status: 'running' | 'suspended' | 'success' | 'error'
  pendingCalls?: { extension: string; method: string }[]
  returnValue?: unknown
  error?: RunError
  durationMs?: number
  /** `result` of a RESULT, or `ERROR` when the kernel answered with an ERROR message */
  via?: 'RESULT' | 'ERROR'
}

export interface LoggedEvent {
  at: number
  name: string
  payload: unknown
}

export type Link = 'connecting' | 'open' | 'closed' | 'deleted'

type Message = { type: string; [k: string]: unknown }

/** The connection; `onChange` is called after every change of its fields. */
export class PanelSocket {
  state: Record<string, unknown> = {}
  version = -1
  /** top-level keys changed by recent PATCHes → time of the change */
  changed = new Map<string, number>()
  events: LoggedEvent[] = []
  runs: Run[] = []
  link: Link = 'connecting'
  resumed = false
  notice = ''
  onChange: () => void = () => {}
  private ws?: WebSocket
  private attempts = 0
  private closedByUs = false
  private timer?: ReturnType<typeof setTimeout>
  private nextId = 1

  constructor(readonly panelId: string) {
    this.open()
  }

  private open(): void {
    const since: Record<string, string> = this.version >= 0 ? { since: String(this.version) } : {}
    const ws = new WebSocket(wsUrl(`/panels/${seg(this.panelId)}/ws`, since))
    this.ws = ws
    this.link = 'connecting'
    ws.onmessage = (e) => this.receive(JSON.parse(String(e.data)) as Message)
    ws.onclose = (e) => {
      if (this.ws !== ws) return
      if (e.code === 4004) {
        this.link = 'deleted'
        this.notice = 'The panel was deleted.'
      } else {
        this.link = 'closed'
        if (!this.closedByUs) this.retry()
      }
      this.onChange()
    }
    this.onChange()
  }

  private retry(): void {
    const delay = BACKOFF_MS[Math.min(this.attempts++, BACKOFF_MS.length - 1)]
    this.timer = setTimeout(() => this.open(), delay)
  }

  private receive(m: Message): void {
    switch (m.type) {
      case 'CONNECTED':
        this.attempts = 0
        this.link = 'open'
        this.resumed = m.resumed === true
        if (!this.resumed) {
          this.state = (m.state ?? {}) as Record<string, unknown>
          this.version = m.version as number
        }
        break
      case 'PATCH':
        this.applyPatch(m.mutations as { key: string; operation: string; value?: unknown }[], m.version as number)
        break
      case 'EVENT': {
        const ev = m.event as { name: string; payload?: unknown }
        this.events = [{ at: Date.now(), name: ev.name, payload: ev.payload }, ...this.events].slice(0, MAX_EVENTS)
        break
      }
      case 'PROGRESS':
        this.updateRun(m.requestId as string, (r) => {
          r.status = m.phase === 'suspended' ? 'suspended' : 'running'
          r.pendingCalls = m.phase === 'suspended' ? (m.pendingCalls as Run['pendingCalls']) : undefined
        })
        break
      case 'RESULT':
        this.finishFromResult(m.requestId as string, m.result as RunOutcome)
        break
      case 'ERROR':
        this.finishFromError(m)
        break
    }
    this.onChange()
  }

  private applyPatch(mutations: { key: string; operation: string; value?: unknown }[], version: number): void {
    if (version <= this.version) return // already applied (e.g. replayed after a resume)
    const next = { ...this.state }
    const now = Date.now()
    for (const mu of mutations) {
      if (mu.operation === 'delete') delete next[mu.key]
      else next[mu.key] = mu.value
      this.changed.set(mu.key, now)
    }
    this.state = next
    this.version = version
    setTimeout(() => this.onChange(), CHANGED_MS + 50) // let the highlight fade
  }

  private updateRun(requestId: string | undefined, fn: (r: Run) => void): boolean {
    const i = this.runs.findIndex((r) => r.requestId === requestId)
    if (i < 0) return false
    const r = { ...this.runs[i] }
    fn(r)
    this.runs = this.runs.map((x, j) => (j === i ? r : x))
    return true
  }

  private finishFromResult(requestId: string, result: RunOutcome): void {
    this.updateRun(requestId, (r) => {
      r.via = 'RESULT'
      r.status = result.status
      r.returnValue = result.returnValue
      r.error = result.error
      r.durationMs = result.durationMs
      r.pendingCalls = undefined
    })
  }

  private finishFromError(m: Message): void {
    const details = (m.details ?? {}) as { line?: number; column?: number }
    const error: RunError = {
      code: m.code as string,
      message: m.message as string,
      line: (m.line as number | undefined) ?? details.line,
      column: (m.column as number | undefined) ?? details.column,
    }
    const matched = this.updateRun(m.requestId as string | undefined, (r) => {
      r.via = 'ERROR'
      r.status = 'error'
      r.error = error
      r.pendingCalls = undefined
    })
    if (!matched) this.notice = `${error.code}: ${error.message}`
  }

  /** True while highlighted: `key` changed less than CHANGED_MS ago. */
  isChanged(key: string): boolean {
    const at = this.changed.get(key)
    return at !== undefined && Date.now() - at < CHANGED_MS
  }

  /** Send `TRIGGER { tool, args, requestId }`; the run shows up in `runs` at once. */
  trigger(tool: string, args: unknown): void {
    const requestId = `inspector-${this.nextId++}`
    this.runs = [{ requestId, tool, args, startedAt: Date.now(), status: 'running' as const }, ...this.runs].slice(0, MAX_RUNS)
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'TRIGGER', tool, args, requestId }))
    else this.finishFromError({ type: 'ERROR', requestId, code: 'NOT_CONNECTED', message: 'the panel socket is not open; try again once it reconnects' })
    this.onChange()
  }

  /** Close for good (the view went away). */
  close(): void {
    this.closedByUs = true
    clearTimeout(this.timer)
    this.ws?.close(1000)
  }
}
