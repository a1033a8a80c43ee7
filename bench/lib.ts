/**
 * Pieces the HTTP/WebSocket benchmarks share: JSON POST, sockets that resolve on CONNECTED,
 * autocannon in its own process, PATCH fan-out timing, the header of their kernel-vs-baseline
 * table (percentiles and the printer: stats.ts).
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import WebSocket from 'ws'

export async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  if (res.status >= 300) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`)
  return res.json()
}

export function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('message', () => resolve(ws)) // CONNECTED (the echo sends nothing first: resolved on open below)
    ws.once('error', reject)
    if (url.endsWith('/echo')) ws.once('open', () => resolve(ws))
  })
}

/** autocannon in its own process (100 connections for `seconds`); returns requests/s (mean) and latency p50/p99 (ms). */
export function autocannon(url: string, seconds: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const bin = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
  const args = [bin, '-c', '100', '-d', String(seconds), '-m', 'POST', '-H', 'content-type=application/json', '-b', '{"args":{}}', '--json', url]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`))
      const r = JSON.parse(out)
      resolve({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx })
    })
  })
}

/** TRIGGER sent on a control socket → the last of `subs` sockets received the PATCH; ms, sorted. */
export async function fanout(control: WebSocket, subs: WebSocket[], rounds: number): Promise<number[]> {
  const out: number[] = []
  for (let r = 0; r < rounds; r++) {
    let got = 0
    const start = performance.now()
    const all = new Promise<number>((resolve) => {
      for (const ws of subs) {
        ws.once('message', () => {
          if (++got === subs.length) resolve(performance.now() - start)
        })
      }
    })
    control.send(JSON.stringify({ type: 'TRIGGER', tool: 'inc', args: {}, requestId: `f${r}` }))
    out.push(await all)
  }
  return out.sort((a, b) => a - b)
}

/** Columns of the kernel-vs-baseline tables (bench:kernel, bench:state), printed left-aligned. */
export const VERSUS_HEADER = ['metric', 'kernel', 'baseline', 'ratio', 'target', '']

/**
 * Creates `panel` on `base`, opens one control socket (unsubscribed from everything) and `sockets`
 * subscribers, then times `rounds` TRIGGER(inc) → PATCH on every subscriber; ms, sorted.
 */
export async function fanoutRun(base: string, panel: unknown, sockets: number, rounds: number): Promise<number[]> {
  const fp = await post(`${base}/panels`, panel)
  const control = await open(fp.wsUrl)
  const subs: WebSocket[] = []
  for (let i = 0; i < sockets; i++) subs.push(await open(fp.wsUrl))
  // the control socket only sends; keep its PATCHes out of the way
  control.send(JSON.stringify({ type: 'UNSUBSCRIBE', topics: ['state', 'events'] }))
  await new Promise((r) => setTimeout(r, 100))
  const fo = await fanout(control, subs, rounds)
  for (const s of [control, ...subs]) s.close()
  return fo
}
