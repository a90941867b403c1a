/**
 * A contention worker: attaches to the side table and runs get+put loops on
 * command, all workers released together by a flag in shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { PageTable, type PageTableTransferable } from '../../src/page/index.js'
import { nativeShim } from '../../src/region/native.js'

interface Run { cmd: 'run'; mode: 'js' | 'c'; pfn: number; refOff: number; iters: number; sync: SharedArrayBuffer }

const table = PageTable.attach(workerData.table as PageTableTransferable)
const sab = (workerData.table as PageTableTransferable).memory.buffer as SharedArrayBuffer

function loop(pfn: number, iters: number): void {
  for (let i = 0; i < iters; i++) { table.get(pfn); table.put(pfn) }
}

parentPort!.on('message', (m: Run | { cmd: 'exit' }) => {
  if (m.cmd === 'exit') { parentPort!.close(); return }
  const sync = new Int32Array(m.sync)
  if (m.mode === 'js') loop(m.pfn, Math.min(m.iters, 10_000)) // warm the JIT before the start line
  Atomics.add(sync, 1, 1)
  Atomics.wait(sync, 0, 0)
  let ns: number
  if (m.mode === 'c') {
    ns = nativeShim().benchGetPut(sab, m.refOff, m.iters)
  } else {
    const t0 = process.hrtime.bigint()
    loop(m.pfn, m.iters)
    ns = Number(process.hrtime.bigint() - t0)
  }
  parentPort!.postMessage({ ns })
})
