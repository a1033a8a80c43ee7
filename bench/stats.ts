/** Shared helpers of the benchmarks: percentiles and a plain-text table. */

/** The p-th percentile (0–100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((x, y) => x - y)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

/** Prints a titled table; numbers are shown with one decimal. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map((v) => (typeof v === 'number' ? v.toFixed(1) : v)))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)))
  const line = (r: (string | number)[]) =>
    '| ' + r.map((v, i) => (i === 0 ? String(v).padEnd(widths[i]) : String(v).padStart(widths[i]))).join(' | ') + ' |'
  console.log(`\n${title}`)
  console.log(line(cells[0]))
  console.log('|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|')
  for (const r of cells.slice(1)) console.log(line(r))
}
