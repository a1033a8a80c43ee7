/*
 * Worker-thread side of capability inference (see inference.ts): parses handlers with acorn off
 * the event loop. Each message `{ id, source, label }` is answered with `{ id, tokens }` or
 * `{ id, error: { code, message, details } }` (the status is the code's, plugins/errors.ts).
 */
import { parentPort } from 'node:worker_threads'
import { KernelError, kernelError } from '../errors.js'
import { inferCapabilities } from './capabilities.js'

interface Job {
  id: number
  source: string
  label: string
}

parentPort!.on('message', ({ id, source, label }: Job) => {
  try {
    parentPort!.postMessage({ id, tokens: inferCapabilities(source, label) })
  } catch (err) {
    const e = err instanceof KernelError ? err : kernelError('INTERNAL_ERROR', `${label}: capability inference failed: ${(err as Error).message}`)
    parentPort!.postMessage({ id, error: { code: e.code, message: e.message, details: e.details } })
  }
})
