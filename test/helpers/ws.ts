import type WebSocket from 'ws'

/** The slice of a tap `t` the helpers need. */
interface T {
  teardown(fn: () => unknown): void
}

/** What `record` hands back: every message so far, a wait for one, and the close code. */
export interface Recorded<M> {
  messages: M[]
  /** First message (already received or future) matching `pred`; rejects after `ms` with `describe(messages)`. */
  waitFor(pred: (m: M) => boolean, ms?: number): Promise<M>
  /** Resolves with the close code. */
  closed: Promise<number>
}

/**
 * Records every message of a freshly created `socket` through `decode`, waits until it is open
 * (rejects on an error before that), and closes it at teardown. `describe` words a timeout.
 */
export async function record<M>(
  t: T,
  socket: WebSocket,
  decode: (data: Buffer, isBinary: boolean) => M,
  describe: (messages: M[]) => string,
  defaultMs: number,
): Promise<Recorded<M>> {
  const messages: M[] = []
  const waiters = new Set<() => void>()
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    messages.push(decode(data, isBinary))
    for (const w of waiters) w()
  })
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  t.teardown(() => socket.close())
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  const waitFor = (pred: (m: M) => boolean, ms = defaultMs) =>
    new Promise<M>((resolve, reject) => {
      const check = () => {
        const hit = messages.find(pred)
        if (!hit) return
        cleanup()
        resolve(hit)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`no matching message within ${ms} ms; got ${describe(messages)}`))
      }, ms)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  return { messages, waitFor, closed }
}
