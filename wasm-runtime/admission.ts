import { availableParallelism } from 'node:os'

/**
 * Default `workerThreads`: every core but one, which stays Node's event loop's (issue 10 item 3:
 * guests on more threads than cores starve the loop), at least 1.
 */
export function defaultWorkerThreads(): number {
  return Math.max(1, availableParallelism() - 1)
}
