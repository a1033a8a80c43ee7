import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A pids cgroup per sandbox, so a fork bomb stops at `processes` tasks even when the kernel runs as
 * root (Linux does not apply RLIMIT_NPROC to uid 0). Used when the host has a writable pids
 * controller (cgroup v1 `pids` hierarchy, or cgroup v2 with `pids` delegated); otherwise only the
 * rlimit applies and `probe()` returns undefined.
 */
export class PidsCgroup {
  private next = 0

  private constructor(private readonly base: string) {}

  /** A `workspace-kernel-<pid>-<random>` group (one per manager) under our own pids cgroup, or undefined when none can be made. */
  static probe(): PidsCgroup | undefined {
    for (const dir of candidates()) {
      const base = join(dir, `workspace-kernel-${process.pid}-${randomBytes(4).toString('hex')}`)
      try {
        mkdirSync(base)
        const group = new PidsCgroup(base)
        group.create(1).remove() // proves pids.max is writable below it
        return group
      } catch {
        try {
          rmdirSync(base)
        } catch {
          // not created
        }
      }
    }
    return undefined
  }

  /** A new child group limited to `max` tasks: the file a process writes `0` to in order to join it, and its removal. */
  create(max: number): { procsFile: string; remove: () => void } {
    const dir = join(this.base, `p${++this.next}`)
    mkdirSync(dir)
    try {
      writeFileSync(join(dir, 'pids.max'), String(max))
    } catch (err) {
      rmdirSync(dir)
      throw err
    }
    return {
      procsFile: join(dir, 'cgroup.procs'),
      remove: () => {
        try {
          rmdirSync(dir) // empty once every task of the sandbox has been reaped
        } catch {
          // still busy (a zombie not yet reaped); removed with the base at close
        }
      },
    }
  }

  /** Remove every group left (all sandboxes have ended by now). */
  close(): void {
    try {
      for (let i = 1; i <= this.next; i++) {
        try {
          rmdirSync(join(this.base, `p${i}`))
        } catch {
          // already removed
        }
      }
      rmdirSync(this.base)
    } catch {
      // still busy or gone
    }
  }
}

/** Directories of our own pids cgroup: the v1 `pids` hierarchy first, then the v2 unified one. */
function candidates(): string[] {
  let mounts: string
  let own: string
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8')
    own = readFileSync('/proc/self/cgroup', 'utf8')
  } catch {
    return []
  }
  const dirs: string[] = []
  const path = (pattern: RegExp) => own.split('\n').map((l) => pattern.exec(l)?.[1]).find((p) => p !== undefined)
  for (const line of mounts.split('\n')) {
    const [, mountPoint, type, opts] = line.split(' ')
    if (type === 'cgroup' && opts?.split(',').includes('pids')) {
      const p = path(/^\d+:(?:[^:]*,)?pids(?:,[^:]*)?:(.*)$/)
      if (p !== undefined) dirs.push(join(mountPoint, p))
    }
    if (type === 'cgroup2') {
      const p = path(/^0::(.*)$/)
      if (p !== undefined) dirs.push(join(mountPoint, p))
    }
  }
  return dirs
}
