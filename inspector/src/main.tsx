/**
 * The inspector page: a hash-routed single-page app over the kernel's public REST and WebSocket API.
 * Routes: #/panels, #/panels/<id>, #/processes, #/processes/<pid>, #/workers, #/health.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, api, getToken, initialToken, setToken, unauthorized } from './api.js'
import { TokenScreen } from './views/TokenScreen.js'
import { PanelsView } from './views/Panels.js'
import { PanelView } from './views/Panel.js'
import { ProcessesView } from './views/Processes.js'
import { Suspense, lazy } from 'preact/compat'
import { WorkersView } from './views/Workers.js'
import { HealthView } from './views/Health.js'
import './style.css'

// xterm.js is the largest piece: fetched (from the kernel, like every asset) when a terminal opens
const ProcessView = lazy(() => import('./views/Process.js').then((m) => ({ default: m.ProcessView })))

const SECTIONS = [
  ['panels', 'Panels'],
  ['processes', 'Processes'],
  ['workers', 'Workers'],
  ['health', 'Health'],
] as const

function useHash(): string[] {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'panels').split('/').map(decodeURIComponent)
  const [parts, setParts] = useState(read)
  useEffect(() => {
    const on = () => setParts(read())
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return parts
}

function Route({ parts }: { parts: string[] }) {
  const [section, id] = parts
  if (section === 'panels' && id) return <PanelView id={id} />
  if (section === 'processes' && id) {
    return (
      <Suspense fallback={<p class="muted">Loading the terminal…</p>}>
        <ProcessView pid={Number(id)} />
      </Suspense>
    )
  }
  if (section === 'processes') return <ProcessesView />
  if (section === 'workers') return <WorkersView />
  if (section === 'health') return <HealthView />
  return <PanelsView />
}

function App() {
  const parts = useHash()
  const [denied, setDenied] = useState<ApiError | null>(null)
  const [epoch, setEpoch] = useState(0) // bumped on a new token, so views reload with it
  useEffect(() => {
    const on = (e: ApiError) => setDenied(e)
    unauthorized.add(on)
    // a probe, so a kernel with auth on shows the token screen at once whatever the first view is
    api('GET', '/panels').catch(() => {})
    return () => void unauthorized.delete(on)
  }, [])
  const useToken = (t: string) => {
    setToken(t)
    setDenied(null)
    setEpoch((n) => n + 1)
  }
  return (
    <>
      {/* not href="#main": the hash is the route */}
      <a
        class="skip"
        href={location.hash || '#/panels'}
        onClick={(e) => {
          e.preventDefault()
          document.getElementById('main')?.focus()
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <h1>workspace-kernel <span>inspector</span></h1>
        <nav aria-label="Sections">
          {SECTIONS.map(([key, label]) => (
            <a href={`#/${key}`} aria-current={parts[0] === key ? 'page' : undefined}>{label}</a>
          ))}
        </nav>
        {!denied && getToken() !== '' && (
          <button type="button" class="link" onClick={() => useToken('')}>Forget token</button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {denied ? <TokenScreen error={denied} onToken={useToken} /> : <Route key={epoch} parts={parts} />}
      </main>
    </>
  )
}

setToken(initialToken())
render(<App />, document.getElementById('app')!)
