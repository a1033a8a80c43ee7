import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'

/**
 * Process-tree helpers. Every child is started as the leader of its own session (setsid), so
 * its pid is also its session id; scanning /proc for that session finds grandchildren even after
 * they left the leader's process group (bash job control) or were orphaned.
 */

const hasProc = (() => {
  try {
    readFileSync('/proc/self/stat')
    return true
  } catch {
    return false
  }
})()

interface Stat {
  state: string
  ppid: number
  pgrp: number
  session: number
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
    session: Number(f[3]),
    tpgid: Number(f[5]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    rssPages: Number(f[21]),
  }
}

/** Live (non-zombie) pids whose session id is `sid`, leader included. Empty without /proc. */
export function sessionMembers(sid: number): number[] {
  if (!hasProc) return []
  const pids: number[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid <= 0) continue
    const st = readStat(pid)
    if (st && st.session === sid && st.state !== 'Z') pids.push(pid)
  }
  return pids
}

/** Send `signal` to every process of the session led by `sid` (falls back to its process group). */
export function signalSession(sid: number, signal: NodeJS.Signals): void {
  const members = sessionMembers(sid)
  if (members.length === 0) trySignal(-sid, signal)
  for (const pid of members) trySignal(pid, signal)
}

/**
 * The process group a keyboard signal should reach: the terminal's foreground group for a PTY
 * leader (so Ctrl-C semantics hold), else the leader's own group.
 */
export function signalTarget(pid: number, tty: boolean): number {
  const st = tty ? readStat(pid) : undefined
  return st && st.tpgid > 0 ? st.tpgid : pid
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

/** CPU time (ms, user+system) and resident memory (bytes) of a running process, if /proc has them. */
export function usageOf(pid: number): { cpuMs: number; rssBytes: number } | undefined {
  const st = readStat(pid)
  if (!st || st.state === 'Z') return undefined
  return { cpuMs: (st.cpuTicks * 1000) / CLOCK_TICKS, rssBytes: st.rssPages * PAGE_SIZE }
}

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, num]) => [num, name]))

/** `SIGTERM` for 15, etc.; null for 0/undefined. */
export function signalName(num: number | undefined | null): string | null {
  return num ? (signalNames.get(num) ?? `SIG${num}`) : null
}
