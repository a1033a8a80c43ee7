/**
 * Just enough of the Prometheus text exposition format for the health view: samples by metric
 * name with their labels, and a quantile estimate from histogram buckets (linear inside a bucket,
 * as PromQL's histogram_quantile does).
 */

export interface Sample {
  labels: Record<string, string>
  value: number
}

export type Samples = Map<string, Sample[]>

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Every sample of a /metrics text, by metric name (comments skipped). */
export function parseMetrics(text: string): Samples {
  const out: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2]
    const list = out.get(m[1]) ?? []
    list.push({ labels, value: Number(m[3]) })
    out.set(m[1], list)
  }
  return out
}

/** Sum of every sample of `name` (0 when absent). */
export function sumBy(s: Samples, name: string): number {
  return (s.get(name) ?? []).reduce((a, x) => a + x.value, 0)
}

/**
 * The q-quantile (0..1) of histogram `_bucket` samples summed over their other labels, in the
 * histogram's unit; null when it has no observations.
 */
export function quantile(buckets: Sample[], q: number): number | null {
  const byLe = new Map<number, number>()
  for (const b of buckets) {
    const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)
    byLe.set(le, (byLe.get(le) ?? 0) + b.value)
  }
  const sorted = [...byLe].sort((a, b) => a[0] - b[0])
  const total = sorted.length ? sorted[sorted.length - 1][1] : 0
  if (total === 0) return null
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount)
    }
    prevLe = le
    prevCount = count
  }
  return prevLe
}
