/**
 * Starting our kernels' worker threads. A `.ts` worker file needs tsx's loader registered inside the
 * worker (tsx's `--import` hook does not reach worker threads on Node 20), so it is started through a
 * one-line bootstrap; a compiled `.js` file is started as is.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads'

/** A Worker running the module at `url` (a file URL of this directory, `.ts` under tsx or `.js` when built). */
export function startWorker(url: URL, options: WorkerOptions = {}): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, options)
  const api = import.meta.resolve('tsx/esm/api')
  const boot = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(boot, { ...options, eval: true })
}

/** The URL of a sibling module of `base` named `name`, with the same extension as `base` (`.ts` or `.js`). */
export function sibling(base: string, name: string): URL {
  const ext = base.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./${name}${ext}`, base)
}
