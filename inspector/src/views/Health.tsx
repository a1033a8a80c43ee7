import { useEffect, useState } from 'preact/hooks'
import { api } from '../api.js'
import { parseMetrics, quantile, sumBy, type Samples } from '../metrics.js'
import { Card, ErrorBox, usePoll } from './common.js'

/** Sampling period of /metrics, ms, and points kept per chart. */
const EVERY_MS = 2000
const POINTS = 60

interface Point {
  panels: number
  sockets: number
  runs: Record<string, number>
  p50ms: number | null
}

function figures(s: Samples): Point {
  const buckets = s.get('kernel_handler_run_duration_seconds_bucket') ?? []
  const p50 = quantile(buckets, 0.5)
  return {
    panels: sumBy(s, 'kernel_panels'),
    sockets: sumBy(s, 'kernel_panel_sockets'),
    runs: Object.fromEntries((s.get('kernel_handler_runs_total') ?? []).map((x) => [x.labels.status ?? '', x.value])),
    p50ms: p50 === null ? null : p50 * 1000,
  }
}

/** A small SVG line chart of `values` (nulls leave gaps), with its latest value as text. */
function Spark({ label, values, unit = '' }: { label: string; values: (number | null)[]; unit?: string }) {
  const w = 240
  const h = 48
  const nums = values.filter((v): v is number => v !== null)
  const max = Math.max(1, ...nums)
  const step = w / Math.max(1, POINTS - 1)
  const offset = POINTS - values.length
  const pts = values.map((v, i) => (v === null ? null : `${((i + offset) * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`))
  const last = nums.length ? nums[nums.length - 1] : null
  const end = [...pts].reverse().find((p) => p !== null)?.split(',')
  return (
    <figure class="spark" data-testid={`chart-${label}`}>
      <figcaption>
        {label} <strong>{last === null ? '–' : `${Number.isInteger(last) && !unit ? last : last.toFixed(2)}${unit}`}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${w} ${h}`} width={w} height={h} role="img" aria-label={`${label} over the last ${values.length} samples, max ${max.toFixed(2)}${unit}`}>
        <polyline points={pts.filter(Boolean).join(' ')} fill="none" stroke="currentColor" stroke-width="1.5" />
        {end && <circle cx={end[0]} cy={end[1]} r="2.5" fill="currentColor" />}
      </svg>
    </figure>
  )
}

/** #/health: /health and a few live /metrics figures. */
export function HealthView() {
  const health = usePoll(() => api<Record<string, unknown>>('GET', '/health'), EVERY_MS)
  const [history, setHistory] = useState<Point[]>([])
  const [error, setError] = useState<unknown>(null)
  useEffect(() => {
    let alive = true
    const sample = async () => {
      try {
        const text = await api<string>('GET', '/metrics')
        if (alive) setHistory((h) => [...h, figures(parseMetrics(text))].slice(-POINTS))
        setError(null)
      } catch (err) {
        if (alive) setError(err)
      }
    }
    void sample()
    const t = setInterval(sample, EVERY_MS)
    return () => {
      alive = false
      clearInterval(t)
    }
  }, [])
  // runs per sampling period, by status, from the counters' differences
  const rate = (status: string) => history.map((p, i) => (i === 0 ? null : Math.max(0, (p.runs[status] ?? 0) - (history[i - 1].runs[status] ?? 0))))
  const statuses = [...new Set(history.flatMap((p) => Object.keys(p.runs)))].sort()
  const latest = history[history.length - 1]
  return (
    <div class="grid two">
      <Card title="Health">
        <ErrorBox error={health.error} />
        {health.value && (
          <dl class="kv" data-testid="health">
            {Object.entries(health.value).map(([k, v]) => (
              <>
                <dt>{k}</dt>
                <dd>{Array.isArray(v) ? v.join(', ') || '—' : String(v)}</dd>
              </>
            ))}
          </dl>
        )}
      </Card>
      <Card title="Live figures">
        <ErrorBox error={error} />
        <div class="sparks">
          <Spark label="panels" values={history.map((p) => p.panels)} />
          <Spark label="panel sockets" values={history.map((p) => p.sockets)} />
          <Spark label="handler p50" unit=" ms" values={history.map((p) => p.p50ms)} />
          {statuses.map((s) => <Spark label={`runs ${s} / ${EVERY_MS / 1000}s`} values={rate(s)} />)}
        </div>
        {latest && (
          <p class="muted">
            runs so far: {statuses.map((s) => `${s} ${latest.runs[s]}`).join(', ') || 'none'} · sampled every {EVERY_MS / 1000}s
          </p>
        )}
      </Card>
    </div>
  )
}
