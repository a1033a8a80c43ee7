import type { ComponentChildren } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError } from '../api.js'

/** A kernel error as the page shows it: code, message and, when known, where. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null
  const e = error instanceof ApiError ? error : new ApiError(0, 'ERROR', String((error as Error).message ?? error))
  return (
    <p class="error" role="alert">
      <strong>{e.code}</strong> {e.message}
    </p>
  )
}

/**
 * Runs `load` now and every `everyMs` (0 = once) while mounted; returns the latest value, the
 * latest error and a `reload` function.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []) {
  const [value, setValue] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(null)
  const alive = useRef(true)
  const reload = async () => {
    try {
      const v = await load()
      if (alive.current) {
        setValue(v)
        setError(null)
      }
    } catch (err) {
      if (alive.current) setError(err)
    }
  }
  useEffect(() => {
    alive.current = true
    void reload()
    const timer = everyMs > 0 ? setInterval(reload, everyMs) : undefined
    return () => {
      alive.current = false
      clearInterval(timer)
    }
  }, deps)
  return { value, error, reload }
}

/** A titled card. */
export function Card({ title, children, id, actions }: { title: string; children: ComponentChildren; id?: string; actions?: ComponentChildren }) {
  const hid = `${id ?? title.toLowerCase().replace(/\W+/g, '-')}-title`
  return (
    <section class="card" aria-labelledby={hid} id={id}>
      <div class="card-head">
        <h2 id={hid}>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  )
}

/** Local time with milliseconds, for logs. */
export function clock(ms: number): string {
  const d = new Date(ms)
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`
}
