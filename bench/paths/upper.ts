/**
 * Benchmarks of the upper layers, written against the API.md contract:
 * mkfs/mount/fsck (src/fs), DAX faults, unmap, truncate (src/dax), DMA copy
 * and last-unpin → truncate-resumed latency (src/dma). Each is skipped with
 * "not available yet" until its layer exports what it needs (bench/layers.ts).
 */
import type { Device } from '../../src/region/index.js'
import { nativeShim } from '../../src/region/index.js'
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { DAX_LAYER, DMA_LAYER, FS_LAYER, layer, needLayers } from '../layers.js'
import { median, result, timeC } from '../measure.js'

// ---- the contract's shapes (API.md), as far as the benchmarks use them ----
interface PmemFs {
  open(path: string, flags: string): Promise<PmemFile>
  unlink(path: string): Promise<void>
  unmount(): Promise<void>
}
interface PmemFile {
  fallocate(offset: number, length: number): Promise<void>
  truncate(length: number, o?: { timeoutMs?: number }): Promise<void>
  mmap(offset: number, length: number, o?: { write?: boolean }): DaxMap
  close(): Promise<void>
}
interface DaxMap { view(offset: number, length: number): Uint8Array; populate(): void; unmap(): void }
interface Transfer { pinned: Promise<void>; done: Promise<{ bytes: number; ns: number }>; release(): void }
interface Dma { submit(o: Record<string, unknown>): Transfer; close(): Promise<void> }
type FsMod = { mkfs(dev: Device, o?: object): Promise<PmemFs>; mount(dev: Device): Promise<PmemFs>; fsck(dev: Device, o?: object): Promise<unknown> }
type DmaMod = { DmaEngine: new (dev: Device, o: { workers: number }) => Dma }

const MiB = 2 ** 20

async function fresh(ctx: BenchContext): Promise<PmemFs> {
  const fs = await layer(FS_LAYER) as unknown as FsMod
  return fs.mkfs(ctx.dev, { label: 'pmemu-bench' })
}

async function timed(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0)
}

export const fsTimes: Benchmark = {
  id: 'fs', title: 'mkfs / mount / fsck', paths: ['mkfs', 'mount', 'fsck'], scope: 'global',
  available: () => needLayers(FS_LAYER),
  async run(ctx): Promise<BenchResult[]> {
    const m = await layer(FS_LAYER) as unknown as FsMod
    let fs: PmemFs | undefined
    const mk = await timed(async () => { fs = await m.mkfs(ctx.dev, { label: 'pmemu-bench' }) })
    await fs!.unmount()
    const mo = await timed(async () => { fs = await m.mount(ctx.dev) })
    await fs!.unmount()
    const ck = await timed(() => m.fsck(ctx.dev))
    const note = `${(ctx.dev.capacity / MiB).toFixed(0)} MiB region`
    return [
      result({ path: 'mkfs', model: null, unit: 'ms', js: mk / 1e6, note }),
      result({ path: 'mount', model: null, unit: 'ms', js: mo / 1e6, note }),
      result({ path: 'fsck', model: null, unit: 'ms', js: ck / 1e6, note }),
    ]
  },
}

export const daxPaths: Benchmark = {
  id: 'dax', title: 'DAX fault (order 0, folio), unmap, truncate', paths: ['fault', 'fault-folio', 'unmap', 'truncate'],
  scope: 'model', weight: 2,
  available: () => needLayers(FS_LAYER, DAX_LAYER),
  async run(ctx) {
    const ps = ctx.dev.pageSize
    const fs = await fresh(ctx)
    const rounds = ctx.quick ? 3 : 9
    const out: BenchResult[] = []
    try {
      // order-0 faults: a 1 MiB file is never mapped as a folio
      const small = MiB
      const f0 = await fs.open('/fault0', 'w+')
      await f0.fallocate(0, small)
      const t0: number[] = []
      for (let r = 0; r < rounds; r++) {
        const map = f0.mmap(0, small, { write: true })
        t0.push(await timed(() => { for (let o = 0; o < small; o += ps) map.view(o, ps) }) / (small / ps))
        map.unmap()
      }
      out.push(result({ path: 'fault', model: ctx.model, unit: 'ns/page', js: median(t0), maxValue: 200,
        note: `map.view of each ${ps}-byte page of a 1 MiB file (order-0 faults)` }))
      // folio faults: 2 MiB-aligned, 2 MiB-long extents
      const big = (ctx.quick ? 8 : 32) * MiB
      const f1 = await fs.open('/fault9', 'w+')
      await f1.fallocate(0, big)
      const t1: number[] = []
      const tu: number[] = []
      for (let r = 0; r < rounds; r++) {
        const map = f1.mmap(0, big, { write: true })
        t1.push(await timed(() => { for (let o = 0; o < big; o += 2 * MiB) map.view(o, 2 * MiB) }) / (big / ps))
        tu.push(await timed(() => map.unmap()) / (big / ps))
      }
      out.push(result({ path: 'fault-folio', model: ctx.model, unit: 'ns/page', js: median(t1), maxValue: 200,
        note: `map.view of each 2 MiB extent of a ${big / MiB} MiB file (one fault per extent)` }))
      out.push(result({ path: 'unmap', model: ctx.model, unit: 'ns/page', js: median(tu), note: `unmap of a populated ${big / MiB} MiB mapping` }))
      const map = f1.mmap(0, big, { write: true })
      map.populate()
      map.unmap()
      const tt = await timed(() => f1.truncate(0, { timeoutMs: 10_000 })) / (big / ps)
      out.push(result({ path: 'truncate', model: ctx.model, unit: 'ns/page', js: tt, note: `truncate to 0 of an unpinned, unmapped ${big / MiB} MiB file` }))
      await f0.close()
      await f1.close()
    } finally {
      await fs.unmount()
    }
    return out
  },
}

export const dmaPaths: Benchmark = {
  id: 'dma', title: 'DMA copy vs memcpy; last unpin → truncate resumed', paths: ['dma-copy', 'unpin-to-truncate'], scope: 'model', weight: 2,
  available: () => needLayers(FS_LAYER, DAX_LAYER, DMA_LAYER),
  async run(ctx) {
    const { DmaEngine } = await layer(DMA_LAYER) as unknown as DmaMod
    const fs = await fresh(ctx)
    const out: BenchResult[] = []
    const len = Math.min(ctx.budget.copyBytes, Math.floor(ctx.dev.capacity / 4 / MiB) * MiB)
    const f = await fs.open('/dma', 'w+')
    await f.fallocate(0, len)
    const buffer = new Uint8Array(new SharedArrayBuffer(len))
    // C memcpy bandwidth for the same size, same run
    const w = ctx.dev.region.windows[0]!
    const rounds = 4
    const c = w.sab ? 1 / timeC(() => nativeShim().benchMemcpy(w.sab!, 0, buffer.buffer as SharedArrayBuffer, 0, len, rounds), len * rounds, ctx.budget) : undefined
    try {
      for (const workers of [...new Set([1, 2, ctx.workers])].sort()) {
        const dma = new DmaEngine(ctx.dev, { workers })
        try {
          const map = f.mmap(0, len, { write: true })
          const xs: number[] = []
          for (let r = 0; r < (ctx.quick ? 3 : 7); r++) {
            const t = dma.submit({ map, offset: 0, length: len, direction: 'from-device', buffer })
            const d = await t.done
            xs.push(d.bytes / d.ns)
          }
          map.unmap()
          out.push(result({ path: 'dma-copy', model: ctx.model, workers, unit: 'GB/s', js: median(xs), ...(c ? { c } : {}), maxRatio: 1.25,
            note: `${len / MiB} MiB per transfer; target ≥ 80 % of memcpy` }))
        } finally {
          await dma.close()
        }
      }
      // last unpin -> truncate resumed
      const dma = new DmaEngine(ctx.dev, { workers: 1 })
      const lat: number[] = []
      try {
        for (let r = 0; r < (ctx.quick ? 5 : 21); r++) {
          const g = await fs.open(`/t${r}`, 'w+')
          await g.fallocate(0, ctx.dev.pageSize)
          const map = g.mmap(0, ctx.dev.pageSize, { write: true })
          const t = dma.submit({ map, offset: 0, length: ctx.dev.pageSize, direction: 'to-device', hold: 'until-release' })
          await t.pinned
          let resumed = 0n
          const p = g.truncate(0, { timeoutMs: 10_000 }).then(() => { resumed = process.hrtime.bigint() })
          await new Promise(res => setTimeout(res, 2))
          const t0 = process.hrtime.bigint()
          t.release()
          await p
          await t.done
          lat.push(Number(resumed - t0) / 1000)
          await g.close()
          await fs.unlink(`/t${r}`)
        }
      } finally {
        await dma.close()
      }
      out.push(result({ path: 'unpin-to-truncate', model: ctx.model, unit: 'µs', js: median(lat), maxValue: 100,
        note: 'median time from the last unpin (release) to the waiting truncate resolving' }))
    } finally {
      await f.close()
      await fs.unmount()
    }
    return out
  },
}
