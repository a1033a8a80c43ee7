/** The benchmarks' one percentile and one table printer (every bench prints its rows through them). */

/** The p-th percentile (0–100) of `values` by nearest rank (sorted or not; not modified); NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((x, y) => x - y)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

/** How `printTable` lays a table out. */
export interface TableOptions {
  /** `right` (default): columns after the first right-aligned (a `---:` rule); `left`: every column left-aligned. */
  align?: 'left' | 'right'
  /** Printed below the table. */
  note?: string
}

/**
 * Prints `rows` under `header` as a Markdown table, after a blank line and `title` when one is given;
 * numbers are shown with one decimal, missing cells empty.
 */
export function printTable(title: string | undefined, header: string[], rows: (string | number)[][], opts: TableOptions = {}): void {
  const right = (opts.align ?? 'right') === 'right'
  const cells = [header, ...rows.map((r) => header.map((_, i) => (typeof r[i] === 'number' ? (r[i] as number).toFixed(1) : String(r[i] ?? ''))))]
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)))
  const line = (r: string[]) => `| ${r.map((v, i) => (right && i > 0 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(' | ')} |`
  if (title !== undefined) console.log(`\n${title}`)
  console.log(line(cells[0]))
  console.log(`|${widths.map((w, i) => (right && i > 0 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`)
  for (const r of cells.slice(1)) console.log(line(r))
  if (opts.note !== undefined) console.log(opts.note)
}
