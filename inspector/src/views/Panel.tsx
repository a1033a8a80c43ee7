import { useEffect, useMemo, useState } from 'preact/hooks'
import Form from '@rjsf/core'
import validator from '@rjsf/validator-ajv8'
import type { RJSFSchema } from '@rjsf/utils'
import type { PanelDescription } from '../../../schemas/panels.js'
import { ApiError, api, seg } from '../api.js'
import { PanelSocket, type Run } from '../panel-socket.js'
import { Card, ErrorBox, clock, usePoll } from './common.js'
import { JsonTree } from './JsonTree.js'
import { SourceView, knownSources } from './Source.js'

type ToolInfo = PanelDescription['tools'][number]

const EMPTY_ARGS: RJSFSchema = { type: 'object', properties: {} }

function Capabilities({ list, inferred }: { list: string[]; inferred: boolean }) {
  return (
    <p class="caps">
      <span class={`badge ${inferred ? 'inferred' : 'declared'}`} title={inferred ? 'inferred from the handler source' : 'declared in the definition'}>
        {inferred ? 'inferred' : 'declared'}
      </span>{' '}
      {list.length === 0 ? <span class="muted">no capabilities</span> : list.map((c) => <code class="cap">{c}</code>)}
    </p>
  )
}

/** One tool: description, capabilities and a form generated from its JSON Schema args. */
function Tool({ tool, onRun }: { tool: ToolInfo; onRun: (args: unknown) => void }) {
  const [data, setData] = useState<unknown>(undefined)
  return (
    <article class="tool" data-tool={tool.name} aria-labelledby={`tool-${tool.name}-title`}>
      <h3 id={`tool-${tool.name}-title`}>{tool.name}</h3>
      {tool.description && <p class="muted">{tool.description}</p>}
      <Capabilities list={tool.capabilities} inferred={tool.capabilitiesInferred} />
      <Form
        schema={(tool.args as RJSFSchema | undefined) ?? EMPTY_ARGS}
        validator={validator}
        formData={data}
        idPrefix={`tool-${tool.name}`}
        showErrorList={false}
        noHtml5Validate
        uiSchema={{ 'ui:submitButtonOptions': { submitText: `Run ${tool.name}` } }}
        onChange={(e) => setData(e.formData)}
        onSubmit={(e) => onRun(e.formData)}
      />
    </article>
  )
}

function RunRow({ run, panelId }: { run: Run; panelId: string }) {
  const source = run.error?.line !== undefined ? knownSources.get(panelId)?.get(run.tool) : undefined
  return (
    <li class={`run ${run.status}`} data-request-id={run.requestId} data-status={run.status}>
      <div>
        <span class="muted">{clock(run.startedAt)}</span> <strong>{run.tool}</strong>{' '}
        <code>{JSON.stringify(run.args ?? {})}</code> <span class={`badge ${run.status}`}>{run.status}</span>
        {run.via && <span class="muted"> via {run.via}</span>}
        {run.durationMs !== undefined && <span class="muted"> {run.durationMs.toFixed(1)} ms</span>}
      </div>
      {run.status === 'suspended' && run.pendingCalls && (
        <div>suspended on {run.pendingCalls.map((c) => <code>{`$ext.${c.extension}.${c.method}()`}</code>)}</div>
      )}
      {run.status === 'success' && <div>returned <code>{JSON.stringify(run.returnValue) ?? 'undefined'}</code></div>}
      {run.error && (
        <div class="run-error" role="alert">
          <strong>{run.error.code}</strong> {run.error.message}
          {run.error.line !== undefined && <span class="where"> at line {run.error.line}, column {run.error.column ?? '?'}</span>}
          {source && <SourceView source={source} line={run.error.line} column={run.error.column} label={`handler of ${run.tool}`} />}
        </div>
      )}
    </li>
  )
}

/** Subscribes to a PanelSocket and re-renders on each of its changes. */
function usePanelSocket(id: string): PanelSocket {
  const socket = useMemo(() => new PanelSocket(id), [id])
  const [, setTick] = useState(0)
  useEffect(() => {
    socket.onChange = () => setTick((n) => n + 1)
    return () => socket.close()
  }, [socket])
  return socket
}

/** #/panels/<id>: live state, tools with forms, runs and the event log. */
export function PanelView({ id }: { id: string }) {
  const { value: panel, error } = usePoll(() => api<PanelDescription>('GET', `/panels/${seg(id)}`), 0, [id])
  const s = usePanelSocket(id)
  useEffect(() => {
    if (error instanceof ApiError && error.status === 404) s.close() // no such panel here: stop reconnecting
  }, [error])
  return (
    <>
      <p class="crumbs"><a href="#/panels">Panels</a> / <strong>{id}</strong></p>
      <ErrorBox error={error} />
      {s.notice && <p class="notice" role="status">{s.notice}</p>}
      <div class="grid panel">
        <div>
          <Card
            title="State"
            id="panel-state"
            actions={
              <span class="meta" role="status" aria-live="polite">
                <span class={`dot ${s.link}`} aria-hidden="true" /> {s.link}
                {s.resumed && ' (resumed)'} · version <strong data-testid="version">{s.version < 0 ? '–' : s.version}</strong>
              </span>
            }
          >
            <JsonTree value={s.state} changed={(k) => s.isChanged(k)} />
          </Card>
          <Card title="Runs" id="panel-runs">
            {s.runs.length === 0 ? <p class="muted">Run a tool to see its RESULT, ERROR or PROGRESS here.</p> : (
              <ol class="log" aria-live="polite" data-testid="runs">
                {s.runs.map((r) => <RunRow run={r} panelId={id} />)}
              </ol>
            )}
          </Card>
          <Card title="Events" id="panel-events">
            {s.events.length === 0 ? <p class="muted">No events yet (they appear as handlers call $emit).</p> : (
              <ol class="log" aria-live="polite" data-testid="events">
                {s.events.map((e) => (
                  <li><time class="muted">{clock(e.at)}</time> <strong>{e.name}</strong> <code>{JSON.stringify(e.payload)}</code></li>
                ))}
              </ol>
            )}
          </Card>
        </div>
        <Card title="Tools" id="panel-tools">
          {panel ? (
            <>
              <p class="muted">{panel.kind}{panel.title ? ` · ${panel.title}` : ''} · namespace {panel.namespace}</p>
              {panel.tools.map((t) => <Tool tool={t} onRun={(args) => s.trigger(t.name, args)} />)}
              {(panel.lifecycle.mount || panel.lifecycle.unmount) && (
                <div>
                  <h3>Lifecycle</h3>
                  {panel.lifecycle.mount && <><p>mount</p><Capabilities list={panel.lifecycle.mount.capabilities} inferred={panel.lifecycle.mount.capabilitiesInferred} /></>}
                  {panel.lifecycle.unmount && <><p>unmount</p><Capabilities list={panel.lifecycle.unmount.capabilities} inferred={panel.lifecycle.unmount.capabilitiesInferred} /></>}
                </div>
              )}
            </>
          ) : (
            !error && <p class="muted">Loading…</p>
          )}
        </Card>
      </div>
    </>
  )
}
