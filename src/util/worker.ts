import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * Start a worker from a module URL. Compiled (dist/*.js) it is a plain
 * Worker; from TypeScript source (tests under tsx) the worker first registers
 * tsx through a small .mjs bootstrap, since Node 20 workers do not inherit
 * the parent's loader hooks.
 */
export function spawnWorker(entry: URL, opts: WorkerOptions = {}): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, opts)
  const data = { ...(opts.workerData as object | undefined), __pmemuEntry: entry.href }
  return new Worker(new URL('./ts-worker.mjs', import.meta.url), { ...opts, workerData: data })
}
