/**
 * Contention scaling: get+put from 1..N worker threads at once, on the same
 * page (one cache line bouncing between cores) and on a page of their own
 * (no sharing), in wasm via PageTable.attach and in C (benchGetPut called
 * from each worker) on the same side-table memory.
 */
import type { Worker } from 'node:worker_threads'
import { spawnWorker } from '../../src/util/worker.js'
import type { Benchmark, BenchResult } from '../types.js'
import { median, result } from '../measure.js'
import { nativeShim } from '../../src/region/index.js'


function workerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  return new URL('./contention-worker' + ext, import.meta.url)
}

async function runRound(ws: Worker[], mode: 'js' | 'c', pfns: number[], iters: number, refOff: (p: number) => number): Promise<number[]> {
  const sync = new SharedArrayBuffer(8)
  const s = new Int32Array(sync)
  const done = ws.map((w, i) => new Promise<number>((res, rej) => {
    const onErr = (e: Error): void => { w.off('message', onMsg); rej(e) }
    const onMsg = (m: { ns: number }): void => { w.off('error', onErr); res(m.ns) }
    w.once('message', onMsg)
    w.once('error', onErr)
    w.postMessage({ cmd: 'run', mode, pfn: pfns[i]!, refOff: refOff(pfns[i]!), iters, sync })
  }))
  while (Atomics.load(s, 1) < ws.length) await new Promise(r => setTimeout(r, 1))
  Atomics.store(s, 0, 1)
  Atomics.notify(s, 0)
  return Promise.all(done)
}

export const contention: Benchmark = {
  id: 'contention', title: 'get+put from 1..N workers (same page, own page)',
  paths: ['contention-same-page', 'contention-own-page'], scope: 'model', weight: 2,
  available: async () => { try { nativeShim(); return null } catch (e) { return `the native shim is not built: ${String((e as Error)?.message)}` } },
  async run(ctx) {
    const { dev, budget: b } = ctx
    const maxW = Math.max(1, ctx.workers)
    const iters = Math.max(1000, Math.round(b.contentionMs * 1e6 / 40))
    const tableT = dev.table.transferable()
    const ws: Worker[] = []
    const out: BenchResult[] = []
    const L = await import('../../src/page/layout.js')
    const refOff = (p: number) => L.RECORDS + p * L.RECORD_BYTES + L.W_REF * 4
    try {
      for (let i = 0; i < maxW; i++) {
        const w = spawnWorker(new URL(workerUrl()), { workerData: { table: tableT } })
        ws.push(w)
      }
      for (let n = 1; n <= maxW; n++) {
        const active = ws.slice(0, n)
        for (const placement of ['same-page', 'own-page'] as const) {
          // own pages are 64 records apart: no two share a cache line
          const pfns = active.map((_, i) => placement === 'same-page' ? 5 : 5 + 64 * (i + 1))
          if (pfns.some(p => p >= dev.pageCount)) continue
          // median of 3 rounds; each round's figure is the median over its workers
          const jsR: number[] = []
          const cR: number[] = []
          for (let rep = 0; rep < 3; rep++) {
            jsR.push(median((await runRound(active, 'js', pfns, iters, refOff)).map(ns => ns / iters)))
            cR.push(median((await runRound(active, 'c', pfns, iters, refOff)).map(ns => ns / iters)))
          }
          const js = median(jsR)
          const c = median(cR)
          out.push(result({ path: `contention-${placement}`, model: ctx.model, workers: n, unit: 'ns/op', js, c, jsSamples: jsR,
            note: `${n} worker thread(s), each ${iters} get+put on ${placement === 'same-page' ? 'one shared page' : 'its own page'}; per-worker ns/op: median over workers and over 3 rounds` }))
        }
      }
    } finally {
      await Promise.all(ws.map(w => w.terminate()))
    }
    return out
  },
}
