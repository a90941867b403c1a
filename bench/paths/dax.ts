/**
 * DAX benchmarks, per model, through the public mkfs (src/mount.ts)
 * and `file.mmap()`:
 *
 *   fault              populate() of 1 MiB mappings of a fallocated file:   ns/page  ≤ 200
 *                      a mapping covering half a 2 MiB chunk cannot take a
 *                      PMD fault, so every page is an order-0 (PTE) fault
 *   fault-folio        populate() of one mapping of a fallocated, 2 MiB-     ns/page  ≤ 200
 *                      aligned file: one PMD fault per 2 MiB extent (a folio
 *                      in upstream; 512 order-0 records in legacy/dax-gup)
 *   unmap, unmap-folio unmap() of those populated mappings                   ns/page
 *   truncate           truncate(0) of an unpinned, mapped and populated      ms
 *                      file of 1 GiB (full run; 128 MiB with --quick) on a
 *                      device of its own
 *   unpin-to-truncate  dev.pages.pin(pfn) of a mapped page, truncate(0)      µs, median  ≤ 100
 *                      (waits: layout break), dev.pages.unpin(pfn) → the
 *                      truncate promise resolved
 */
import { join } from 'node:path'
import { openDevice, type Device } from '../../src/region/index.js'
import type { PmemFile, PmemFs } from '../../src/fs/index.js'
import type { DaxMapping } from '../../src/dax/index.js'
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { collectGarbage, median, result } from '../measure.js'
import { mkfs } from '../../src/mount.js'

const MiB = 2 ** 20
const CHUNK = 2 * MiB

/** The public mkfs: the fs with DAX attached. */
export async function daxFs(dev: Device): Promise<PmemFs> {
  return mkfs(dev, { label: 'pmemu-bench' })
}

export function mapOf(f: PmemFile, offset: number, length: number, write = true): DaxMapping {
  return f.mmap(offset, length, { write }) as unknown as DaxMapping
}

/** ns of a synchronous action (hrtime). */
export function nsOf(fn: () => unknown): number {
  const t0 = process.hrtime.bigint()
  fn()
  return Number(process.hrtime.bigint() - t0)
}

/**
 * Bytes of a fault-benchmark file: the budget, capped at a third of the free
 * space (whole 2 MiB chunks), at least two chunks plus one (a file must be
 * larger than 2 MiB for fallocate to hand out 2 MiB-aligned extents).
 */
export function fileBytes(fs: PmemFs, want: number, share = 3): number {
  const st = fs.statfs()
  const free = st.free * st.bsize
  const n = Math.floor(Math.min(want, free / share) / CHUNK) * CHUNK
  if (n < 2 * CHUNK) throw new Error(`the region is too small for the DAX benchmarks: ${(free / MiB).toFixed(1)} MiB free, needs ≥ ${(2 * CHUNK * share / MiB).toFixed(0)} MiB`)
  return n
}

function delta(dev: Device, before: Record<string, number>, key: string): number {
  return (dev.stats()[key] ?? 0) - (before[key] ?? 0)
}

export const daxFaults: Benchmark = {
  id: 'dax', title: 'DAX fault (order 0, folio) and unmap', paths: ['fault', 'fault-folio', 'unmap', 'unmap-folio'],
  scope: 'model', weight: 2,
  available: async () => null,
  async run(ctx) {
    const { dev } = ctx
    const ps = dev.pageSize
    const fs = await daxFs(dev)
    const out: BenchResult[] = []
    try {
      const S = fileBytes(fs, ctx.budget.daxBytes)
      const pages = S / ps
      const win = MiB // half a chunk: never a PMD fault
      const rounds = ctx.budget.rounds
      const f0: number[] = []
      const u0: number[] = []
      const f9: number[] = []
      const u9: number[] = []
      let pmd0 = 0
      let pmd9 = 0
      let folios = 0
      const f = await fs.open('/fault', 'w+')
      for (let r = 0; r <= rounds; r++) { // round 0 warms the JIT up and is not kept
        // order 0: every page a first fault (the page-cache entry is created, then mapped)
        await f.fallocate(0, S)
        const maps: DaxMapping[] = []
        for (let o = 0; o < S; o += win) maps.push(mapOf(f, o, win))
        let s0 = dev.stats()
        let ns = 0
        for (const m of maps) ns += nsOf(() => m.populate())
        if (r > 0) { f0.push(ns / pages); pmd0 += delta(dev, s0, 'pmdFaults') }
        ns = 0
        for (const m of maps) ns += nsOf(() => m.unmap())
        if (r > 0) u0.push(ns / pages)
        await f.truncate(0)
        // folio: one mapping of the whole 2 MiB-aligned file
        await f.fallocate(0, S)
        const m = mapOf(f, 0, S)
        s0 = dev.stats()
        ns = nsOf(() => m.populate())
        if (r > 0) { f9.push(ns / pages); pmd9 += delta(dev, s0, 'pmdFaults'); folios += delta(dev, s0, 'folioFaults') }
        ns = nsOf(() => m.unmap())
        if (r > 0) u9.push(ns / pages)
        await f.truncate(0)
      }
      await f.close()
      await fs.unlink('/fault')
      if (pmd0 !== 0) throw new Error(`the order-0 fault benchmark took ${pmd0} PMD faults: its mappings are not order 0`)
      const chunks = S / CHUNK
      const howFolio = pmd9 === rounds * chunks
        ? `${chunks} PMD faults of 512 pages${folios ? ' (order-9 folios)' : ' (512 order-0 records each: no folios in this model)'}`
        : `only ${pmd9 / rounds} of ${chunks} chunks took a PMD fault`
      const sizes = `${S / MiB} MiB fallocated file (${pages} pages); median of ${rounds} rounds`
      out.push(
        result({ path: 'fault', model: ctx.model, unit: 'ns/page', js: median(f0), jsSamples: f0, maxValue: 200,
          note: `populate() of ${S / win} mappings of 1 MiB each (half a 2 MiB chunk: PTE faults only); first fault of every page: page-cache entry + map; ${sizes}` }),
        result({ path: 'fault-folio', model: ctx.model, unit: 'ns/page', js: median(f9), jsSamples: f9, maxValue: 200,
          note: `populate() of one mapping of the whole file: ${howFolio}; ${sizes}` }),
        result({ path: 'unmap', model: ctx.model, unit: 'ns/page', js: median(u0), jsSamples: u0, note: `unmap() of the populated 1 MiB (order-0) mappings; ${sizes}` }),
        result({ path: 'unmap-folio', model: ctx.model, unit: 'ns/page', js: median(u9), jsSamples: u9, note: `unmap() of the populated whole-file (PMD) mapping; ${sizes}` }),
      )
    } finally {
      await fs.unmount()
    }
    return out
  },
}

export const daxTruncate: Benchmark = {
  id: 'truncate', title: 'truncate of an unpinned file (mapped, and never mapped)', paths: ['truncate', 'truncate-unmapped'], scope: 'model', weight: 2,
  available: async () => null,
  async run(ctx) {
    const T = ctx.budget.truncateBytes
    const ps = ctx.dev.pageSize
    // a device of its own: 1 GiB does not fit the bench region; metadata + slack on top
    const file = join(ctx.scratch, 'truncate.pmem')
    const size = Math.ceil((T * 1.08 + 32 * MiB) / CHUNK) * CHUNK
    const dev = await openDevice(file, { size, create: true, model: ctx.model ?? 'upstream', pageSize: ps })
    const out: BenchResult[] = []
    try {
      const fs = await daxFs(dev)
      try {
        const rounds = Math.max(1, Math.min(5, ctx.budget.rounds))
        const ms: number[] = []
        const msPlain: number[] = []
        const msPop: number[] = []
        const f = await fs.open('/big', 'w+')
        let zaps = 0
        for (let r = 0; r < rounds; r++) {
          // the fs part alone: a file never mapped
          await f.fallocate(0, T)
          let t0 = process.hrtime.bigint()
          await f.truncate(0)
          msPlain.push(Number(process.hrtime.bigint() - t0) / 1e6)
          // mapped and populated, not pinned: the layout break zaps, checks, then the fs frees
          await f.fallocate(0, T)
          const m = mapOf(f, 0, T)
          msPop.push(nsOf(() => m.populate()) / 1e6)
          const s0 = dev.stats()
          t0 = process.hrtime.bigint()
          await f.truncate(0)
          ms.push(Number(process.hrtime.bigint() - t0) / 1e6)
          zaps += delta(dev, s0, 'zaps')
          m.unmap()
        }
        await f.close()
        const v = dev.check()
        if (v.length) throw new Error(`the side table broke an invariant: ${v[0]!.message}`)
        const js = median(ms)
        const plain = median(msPlain)
        const sz = T >= 2 ** 30 ? T / 2 ** 30 + ' GiB' : T / MiB + ' MiB'
        const where = `median of ${rounds} rounds, on a ${(size / MiB).toFixed(0)} MiB device of its own`
        out.push(
          result({ path: 'truncate', model: ctx.model, unit: 'ms', js, jsSamples: ms,
            note: `truncate(0) of a ${sz} file (${T / ps} pages) that is mapped and populated but not pinned: ` +
              `zap of the mapping (${Math.round(zaps / rounds)} zaps), busy check, then the fs frees every block (journaled); ${(js * 1e6 / (T / ps)).toFixed(0)} ns/page, ` +
              `of which ${(plain * 1e6 / (T / ps)).toFixed(0)} ns/page is the fs part (truncate-unmapped); ${where} (populate before it: ${median(msPop).toFixed(1)} ms)` }),
          result({ path: 'truncate-unmapped', model: ctx.model, unit: 'ms', js: plain, jsSamples: msPlain,
            note: `truncate(0) of the same ${sz} file never mapped: no zap, no busy check beyond the page-cache tree, the fs free path alone; ` +
              `${(plain * 1e6 / (T / ps)).toFixed(0)} ns/page; ${where}` }),
        )
      } finally {
        await fs.unmount()
      }
    } finally {
      await dev.close()
      collectGarbage()
    }
    return out
  },
}

/** Resolve after the event loop has run once (a pending truncate reaches its wait). */
export const tick = (): Promise<void> => new Promise(r => setImmediate(r))

export const unpinToTruncate: Benchmark = {
  id: 'unpin-truncate', title: 'last unpin → truncate resumed', paths: ['unpin-to-truncate'], scope: 'model',
  available: async () => null,
  async run(ctx) {
    const { dev } = ctx
    const ps = dev.pageSize
    const fs = await daxFs(dev)
    const lat: number[] = []
    try {
      const f = await fs.open('/unpin', 'w+')
      await f.fallocate(0, ps)
      const m = mapOf(f, 0, ps)
      const n = ctx.budget.samples
      const before = dev.stats()
      for (let i = 0; i < n + 10; i++) { // the first 10 warm up
        if (i > 0) await f.fallocate(0, ps)
        const pfn = m.pfn(0) // faults the page back in after the last truncate
        dev.pages.pin(pfn)
        let t1 = 0n
        let settled = false
        const p = f.truncate(0, { timeoutMs: 10_000 }).then(() => { t1 = process.hrtime.bigint(); settled = true })
        await tick()
        await tick()
        if (settled) { dev.pages.unpin(pfn); throw new Error(`truncate did not wait for the pinned page (pfn ${pfn}, model ${ctx.model})`) }
        const t0 = process.hrtime.bigint()
        dev.pages.unpin(pfn)
        await p
        if (i >= 10) lat.push(Number(t1 - t0) / 1000)
      }
      const waits = delta(dev, before, 'layoutWaits')
      m.unmap()
      await f.close()
      const s = [...lat].sort((a, b) => a - b)
      const p90 = s[Math.floor(s.length * 0.9)]!
      return [result({ path: 'unpin-to-truncate', model: ctx.model, unit: 'µs', js: median(lat), jsSamples: lat, maxValue: 100,
        note: `median of ${n}: dev.pages.pin(pfn) of a mapped page, truncate(0) waits (layout break; ${waits} waits counted), ` +
          `dev.pages.unpin(pfn) → truncate promise resolved (wake through Atomics.waitAsync, then the journaled free); ` +
          `min ${s[0]!.toFixed(1)} µs, p90 ${p90.toFixed(1)} µs` })]
    } finally {
      await fs.unmount()
    }
  },
}
