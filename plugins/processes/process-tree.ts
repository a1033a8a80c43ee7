import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'

/**
 * The process tree of one sandbox, seen from the host's /proc. The spawned pid is bwrap's outer
 * process; its only child is bwrap's init (pid 1 of the sandbox's PID namespace), and everything
 * below init is what the user runs. Signals go to those processes, never to bwrap itself (whose
 * death would SIGKILL the whole sandbox before a program could handle the signal).
 */

interface Stat {
  state: string
  ppid: number
  pgrp: number
  tpgid: number
  cpuTicks: number
  rssPages: number
}

const CLOCK_TICKS = 100
const PAGE_SIZE = 4096

/** Fields of /proc/<pid>/stat, or undefined when the process is gone. */
export function readStat(pid: number): Stat | undefined {
  let raw: string
  try {
    raw = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name may contain spaces and parentheses; fields start after the last ')'.
  const f = raw.slice(raw.lastIndexOf(')') + 2).split(' ')
  return {
    state: f[0],
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    tpgid: Number(f[5]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    rssPages: Number(f[21]),
  }
}

/** One sandbox's processes: bwrap's init (host pid) and the live programs below it, with their stats. */
export interface SandboxTree {
  init?: number
  members: Map<number, Stat>
}

/** Walk /proc once and collect the processes below the sandbox whose outer bwrap is `outer`. */
export function sandboxTree(outer: number): SandboxTree {
  const children = new Map<number, number[]>()
  const stats = new Map<number, Stat>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0) continue
    const st = readStat(pid)
    if (!st || st.state === 'Z') continue
    stats.set(pid, st)
    const list = children.get(st.ppid)
    if (list) list.push(pid)
    else children.set(st.ppid, [pid])
  }
  const init = children.get(outer)?.[0]
  const members = new Map<number, Stat>()
  const queue = init === undefined ? [] : [...(children.get(init) ?? [])]
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    members.set(pid, stats.get(pid)!)
    queue.push(...(children.get(pid) ?? []))
  }
  return { init, members }
}

/**
 * Deliver `signal` to the programs of a sandbox: for a PTY, to the terminal's foreground job (as a
 * keyboard Ctrl-C would) when that job is one of them; otherwise to every program in the sandbox.
 * Returns how many processes were signalled.
 */
export function signalSandbox(outer: number, signal: NodeJS.Signals, tty = false): number {
  const { members } = sandboxTree(outer)
  const tpgid = tty ? readStat(outer)?.tpgid : undefined
  const job = [...members].filter(([, st]) => st.pgrp === tpgid).map(([pid]) => pid)
  const targets = job.length > 0 ? job : [...members.keys()]
  let n = 0
  for (const pid of targets) if (trySignal(pid, signal)) n++
  return n
}

/** SIGKILL the sandbox's init (which ends every process in its PID namespace) and the outer bwrap. */
export function killSandbox(outer: number): void {
  const { init } = sandboxTree(outer)
  if (init !== undefined) trySignal(init, 'SIGKILL')
  trySignal(outer, 'SIGKILL')
}

/** `process.kill` that ignores processes that are already gone. Returns false if none was signalled. */
export function trySignal(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/** CPU time (ms, user+system) and resident memory (bytes) of every program in a sandbox, if /proc has them. */
export function usageOf(outer: number): { cpuMs: number; rssBytes: number } | undefined {
  const { members } = sandboxTree(outer)
  if (members.size === 0) return undefined
  let ticks = 0
  let pages = 0
  for (const st of members.values()) {
    ticks += st.cpuTicks
    pages += st.rssPages
  }
  return { cpuMs: (ticks * 1000) / CLOCK_TICKS, rssBytes: pages * PAGE_SIZE }
}

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, num]) => [num, name]))

/** `SIGTERM` for 15, etc.; null for 0/undefined. */
export function signalName(num: number | undefined | null): string | null {
  return num ? (signalNames.get(num) ?? `SIG${num}`) : null
}

/**
 * bwrap's init exits with 128 + N when the program died of signal N (the shell convention); turn that
 * back into `{ code: null, signal }`. Other codes pass through.
 */
export function exitStatus(code: number | null, signal: string | null): { code: number | null; signal: string | null } {
  if (code !== null && code > 128 && code < 128 + 65) {
    const name = signalNames.get(code - 128)
    if (name) return { code: null, signal: name }
  }
  return { code, signal }
}
