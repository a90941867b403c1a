/**
 * A DMA worker thread. It receives the region windows (SharedArrayBuffers
 * over the one mapping) and the side table (same wasm memory, same module)
 * ONCE, at init, and never maps anything itself. Then it runs transfers
 * concurrently (each is async: held transfers cost nothing while held), and
 * asks the main thread to fault missing pages — the worker never mutates the
 * file system.
 *
 * Protocol (main → worker): init { region, table, engine }, job { spec },
 *   fault-done { id, seq, zero?, error? } (zero: the fault left the first page without a page).
 * Protocol (worker → main): ready, pinned { id }, fault { id, seq, offset, length, write },
 *   done { id, bytes, ns, faults, retries }, failed { id, error }.
 * Release and abort are not messages: they are bits of the transfer's ctl
 * word, which the worker waits on with Atomics.waitAsync.
 */
import { parentPort } from 'node:worker_threads'
import { PageTable, type PageTableTransferable } from '../page/index.js'
import { nativeHelpers, runJob, type CoreEnv, type JobSpec } from './core.js'
import { deserializeError, serializeError, type SerializedError } from './wire.js'

export type ToWorker =
  | { t: 'init'; region: { windows: { offset: number; length: number; sab: SharedArrayBuffer }[] }; table: PageTableTransferable; engine: SharedArrayBuffer }
  | { t: 'job'; spec: JobSpec }
  | { t: 'fault-done'; id: number; seq: number; zero?: boolean; error?: SerializedError }

export type FromWorker =
  | { t: 'ready' }
  | { t: 'pinned'; id: number }
  | { t: 'fault'; id: number; seq: number; offset: number; length: number; write: boolean }
  | { t: 'done'; id: number; bytes: number; ns: number; pinNs: number; faults: number; retries: number }
  | { t: 'failed'; id: number; error: SerializedError }

const port = parentPort
if (!port) throw new Error('pmemu DMA worker: not in a worker thread')

let env: CoreEnv | undefined
let faultSeq = 0
const pendingFaults = new Map<number, { resolve(zero: boolean): void; reject(e: unknown): void }>()
const send = (m: FromWorker): void => port.postMessage(m)

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'init': {
      const table = PageTable.attach(m.table)
      env = {
        ...nativeHelpers(),
        table,
        windows: m.region.windows.map(w => ({ offset: w.offset, length: w.length, bytes: new Uint8Array(w.sab) })),
        engine: new Int32Array(m.engine),
        fault(job, offset, length, write) {
          const seq = ++faultSeq
          return new Promise<boolean>((resolve, reject) => {
            pendingFaults.set(seq, { resolve, reject })
            send({ t: 'fault', id: job.id, seq, offset, length, write })
          })
        },
        pinned(job) { send({ t: 'pinned', id: job.id }) },
        die(how) {
          if (how === 'exit') process.exit(70)
          // an exception nobody catches: the worker dies with an 'error' event
          setImmediate(() => { throw new Error('injected uncaught exception in a DMA worker (test hook)') })
        },
      }
      send({ t: 'ready' })
      return
    }
    case 'job': {
      const spec = m.spec
      if (!env) { send({ t: 'failed', id: spec.id, error: serializeError(new Error('DMA worker not initialised')) }); return }
      runJob(env, spec).then(
        r => send({ t: 'done', id: spec.id, bytes: r.bytes, ns: r.ns, pinNs: r.pinNs, faults: r.faults, retries: r.retries }),
        (e: unknown) => send({ t: 'failed', id: spec.id, error: serializeError(e) }),
      )
      return
    }
    case 'fault-done': {
      const p = pendingFaults.get(m.seq)
      if (!p) return
      pendingFaults.delete(m.seq)
      if (m.error) p.reject(deserializeError(m.error))
      else p.resolve(m.zero === true)
      return
    }
  }
})
