import { useEffect, useRef, useState } from 'preact/hooks'
import { Terminal } from '@xterm/xterm'
import { FitAddon } from '@xterm/addon-fit'
import '@xterm/xterm/css/xterm.css'
import type { ExitInfo, ProcessInfo } from '../../../schemas/processes.js'
import { api, wsUrl } from '../api.js'
import { Card, ErrorBox } from './common.js'
import { exitText } from './Processes.js'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGKILL'] as const

/** First byte of a binary OUTPUT frame: 1 stdout, 2 stderr, 3 pty; +0x80 when replayed. */
const STDERR = 2

/**
 * An xterm.js terminal attached to `GET /processes/:pid/ws?binary=true`: replayed output first
 * (late attach), then live output; keys go out as STDIN, size changes as RESIZE.
 */
function useProcessTerminal(pid: number, host: { current: HTMLDivElement | null }) {
  const [info, setInfo] = useState<ProcessInfo | null>(null)
  const [exit, setExit] = useState<ExitInfo | null>(null)
  const [error, setError] = useState<string>('')
  const send = useRef<(m: Record<string, unknown>) => void>(() => {})
  useEffect(() => {
    const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13, scrollback: 5000, screenReaderMode: true })
    const fit = new FitAddon()
    term.loadAddon(fit)
    term.open(host.current!)
    let nextId = 1
    const ws = new WebSocket(wsUrl(`/processes/${pid}/ws`, { binary: 'true' }))
    ws.binaryType = 'arraybuffer'
    send.current = (m) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ ...m, id: String(nextId++) }))
    }
    ws.onmessage = (e) => {
      if (e.data instanceof ArrayBuffer) {
        const bytes = new Uint8Array(e.data)
        const stream = bytes[0] & 0x7f
        if (stream === STDERR) term.write('\x1b[31m')
        term.write(bytes.subarray(1))
        if (stream === STDERR) term.write('\x1b[0m')
        return
      }
      const m = JSON.parse(String(e.data)) as { type: string; process?: ProcessInfo; exit?: ExitInfo; code?: string; message?: string }
      if (m.type === 'ATTACHED') {
        setInfo(m.process!)
        if (m.process!.tty) send.current({ type: 'RESIZE', cols: term.cols, rows: term.rows })
      } else if (m.type === 'EXIT') setExit(m.exit!)
      else if (m.type === 'ERROR') setError(`${m.code}: ${m.message}`)
    }
    ws.onclose = (e) => {
      if (e.code !== 1000) setError((prev) => prev || `socket closed (${e.code}${e.reason ? ` ${e.reason}` : ''})`)
    }
    term.onData((data) => send.current({ type: 'STDIN', data }))
    term.onResize(({ cols, rows }) => send.current({ type: 'RESIZE', cols, rows }))
    const refit = () => {
      try {
        fit.fit()
      } catch {
        /* hidden: nothing to measure */
      }
    }
    refit()
    const observer = new ResizeObserver(refit)
    observer.observe(host.current!)
    term.focus()
    return () => {
      observer.disconnect()
      ws.close(1000)
      term.dispose()
    }
  }, [pid])
  return { info, exit, error, send: (m: Record<string, unknown>) => send.current(m) }
}

/** #/processes/<pid>: the terminal, signals, kill and the exit status. */
export function ProcessView({ pid }: { pid: number }) {
  const host = useRef<HTMLDivElement>(null)
  const { info, exit, error, send } = useProcessTerminal(pid, host)
  const [apiError, setApiError] = useState<unknown>(null)
  const kill = async () => {
    try {
      await api('DELETE', `/processes/${pid}`)
    } catch (err) {
      setApiError(err)
    }
  }
  const status = exit ? exitText({ status: 'exited', exit }) : info ? 'running' : 'attaching'
  return (
    <>
      <p class="crumbs"><a href="#/processes">Processes</a> / <strong>{pid}</strong></p>
      <Card
        title={info ? `${info.type}: ${info.command.join(' ')}` : `process ${pid}`}
        actions={<span class={`badge ${exit ? 'exited' : 'running'}`} role="status" data-testid="exit-status">{status}</span>}
      >
        <div class="row wrap" role="toolbar" aria-label="Signals">
          {SIGNALS.map((sig) => (
            <button type="button" disabled={!!exit} onClick={() => send({ type: 'SIGNAL', signal: sig })}>{sig}</button>
          ))}
          <button type="button" class="danger" disabled={!!exit} onClick={kill}>Kill (TERM → KILL)</button>
        </div>
        {error && <p class="error" role="alert">{error}</p>}
        <ErrorBox error={apiError} />
        <div class="terminal" ref={host} data-testid="terminal" aria-label={`terminal of process ${pid}`} />
        {info && <p class="muted">cwd {info.cwd} · started {new Date(info.startedAt).toLocaleTimeString()}{info.tty ? ` · tty` : ''}</p>}
      </Card>
    </>
  )
}
