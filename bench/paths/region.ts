/**
 * Region-level benchmarks: open of a 64 GiB sparse region, the
 * side table's bytes per page, and memcpy bandwidth into the region (C
 * `memcpy` vs a JS `Uint8Array.set` into the same mapping).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { FLUSH_CODES, nativeShim, openDevice } from '../../src/region/index.js'
import { formatBytes } from '../../src/util/size.js'
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { collectGarbage, result, timeC, timeJs, timePaired } from '../measure.js'

const MiB = 2 ** 20
const GiB = 2 ** 30

/** 'open-64g' for 64 GiB; 'open-1g', 'open-256m' for the smaller sizes tests use. */
export function openPathName(bytes: number): string {
  return bytes >= GiB ? `open-${Math.round(bytes / GiB)}g` : `open-${Math.round(bytes / MiB)}m`
}

export const open64g: Benchmark = {
  id: 'open-64g', title: 'open of a 64 GiB sparse region', paths: ['open-64g', 'open-64g-rss'], scope: 'model', weight: 2,
  async available() { return null },
  covers: (declared, produced) => declared.replace(/^open-64g/, '') === produced.replace(/^open-\d+[gm]/, ''),
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const bytes = ctx.budget.openBytes
    const name = openPathName(bytes)
    const file = join(ctx.scratch, `${name}.pmem`)
    const model = ctx.model ?? 'upstream'
    if (!existsSync(file)) {
      // Create once (sparse: ftruncate + the info block), with the model whose
      // table costs nothing to initialise; the timed open below is a reopen.
      const d = await openDevice(file, { size: bytes, create: true, model: 'upstream' })
      await d.close()
    }
    collectGarbage()
    const rssBefore = process.memoryUsage.rss()
    const t0 = performance.now()
    const dev = await openDevice(file, { model })
    const ms = performance.now() - t0
    const rssAfter = process.memoryUsage.rss()
    const pages = dev.pageCount
    const tableBytes = dev.table.memory.buffer.byteLength
    await dev.close()
    collectGarbage()
    const nsPage = (ms * 1e6) / pages
    return [
      result({ path: name, model: ctx.model, unit: 'ms', js: ms, maxValue: bytes >= 64 * GiB ? 1000 : undefined,
        note: `reopen of a ${formatBytes(bytes)} sparse file: map + info block + side table of ${pages} pages (${formatBytes(tableBytes)}) initialised; ${nsPage.toFixed(2)} ns/page (Linux memmap init of ZONE_DEVICE pages: 4–10 ns/page)` }),
      result({ path: `${name}-rss`, model: ctx.model, unit: 'MiB', js: rssAfter / MiB,
        note: `resident memory of the process right after the open; +${((rssAfter - rssBefore) / MiB).toFixed(1)} MiB over before it (the side table is touched only where a record is non-zero: the legacy idle refcount is 1)` }),
    ]
  },
}

export const sideTable: Benchmark = {
  id: 'side-table', title: 'side-table bytes per page', paths: ['side-table'], scope: 'global',
  async available() {
    try {
      const page = await import('../../src/page/index.js') as Record<string, unknown>
      return typeof page.PageTable === 'function' ? null : 'not available yet: src/page does not export PageTable'
    } catch (e) {
      return `not available yet: src/page cannot be loaded (${(e as Error).message.split('\n')[0]})`
    }
  },
  async run(ctx) {
    const { PageTable } = await import('../../src/page/index.js')
    const n1 = 1 << 16
    const n2 = 1 << 20
    const a = await PageTable.create({ pageCount: n1, model: 'upstream' })
    const b = await PageTable.create({ pageCount: n2, model: 'upstream' })
    const b1 = a.memory.buffer.byteLength
    const b2 = b.memory.buffer.byteLength
    const perPage = (b2 - b1) / (n2 - n1)
    const pages64 = (64 * GiB) / 4096
    const fixed = b1 - perPage * n1
    const total64 = fixed + perPage * pages64
    const dev = ctx.dev
    const here = dev.table.memory.buffer.byteLength / dev.pageCount
    collectGarbage()
    return [result({ path: 'side-table', model: null, unit: 'B/page', js: perPage, maxValue: 32,
      note: `marginal bytes per page (table for ${n2} pages minus table for ${n1}); fixed header ${formatBytes(fixed)}; ` +
        `64 GiB of 4 KiB pages: ${formatBytes(total64)} (${(total64 / pages64).toFixed(3)} B/page amortised); this region: ${here.toFixed(2)} B/page` })]
  },
}

export const memcpyBw: Benchmark = {
  id: 'memcpy', title: 'memcpy into the region (C) vs Uint8Array.set (JS)', paths: ['memcpy'], scope: 'global',
  async available() { return null },
  async run(ctx) {
    const { dev, budget: b } = ctx
    const w = dev.region.windows[0]
    if (!w) throw new Error('the region has no window')
    const len = Math.min(b.copyBytes, Math.floor(w.length / 2 / 4096) * 4096)
    if (len < 4096) throw new Error(`the region is too small to copy into (${w.length} bytes)`)
    const dst = dev.view(0, len)
    const srcSab = new SharedArrayBuffer(len)
    const src = new Uint8Array(srcSab)
    for (let i = 0; i < len; i += 4096) src[i] = i & 0xff
    dst.fill(1) // first touch of every page is a page fault on tmpfs: keep it out of the figure
    dst.set(src)
    const jsNs = await timeJs(() => dst.set(src), 1, b)
    const js = len / jsNs
    let c: number | undefined
    if (w.sab) {
      const rounds = Math.max(1, Math.round((256 * MiB) / len / (ctx.quick ? 4 : 1)))
      const nsPerByte = timeC(() => nativeShim().benchMemcpy(w.sab!, 0, srcSab, 0, len, rounds), len * rounds, b)
      c = 1 / nsPerByte
    }
    return [result({ path: 'memcpy', model: null, unit: 'GB/s', js, ...(c !== undefined ? { c } : {}),
      note: `${formatBytes(len)} from process memory into the region (${dev.backend} backend), pages pre-faulted; JS: Uint8Array.set, C: memcpy` +
        (c === undefined ? '; no C figure: the mmap-io backend has no SharedArrayBuffer to hand to C' : '') })]
  },
}

export const persistPath: Benchmark = {
  id: 'persist', title: 'dev.persist (flush + fence) vs a C loop of the same flush',
  paths: ['persist-64', 'persist-4k', 'persist-64k'], scope: 'global',
  async available() { return null },
  async run(ctx) {
    const { dev, budget: b } = ctx
    const w = dev.region.windows[0]
    if (!w?.sab) throw new Error('the region has no SharedArrayBuffer window (mmap-io backend): no C figure to compare with')
    const flush = dev.capabilities.flush
    const kind = dev.persistence === 'eadr' ? FLUSH_CODES.none : FLUSH_CODES[flush]
    if (kind === FLUSH_CODES.msync) throw new Error('this CPU has no clwb / clflushopt: persist is msync, a system call, not a flush loop')
    const out: BenchResult[] = []
    const view = dev.view(0, 65536)
    view.fill(1) // first touch outside the figures
    for (const [name, n] of [['persist-64', 64], ['persist-4k', 4096], ['persist-64k', 65536]] as const) {
      const k = Math.max(1, Math.floor(b.block * 64 / n))
      const loop = () => { for (let i = 0; i < k; i++) dev.persist(0, n) }
      const iters = Math.max(1, Math.round(b.cIters * 64 / n / 4))
      const paired = timePaired(loop, k, () => nativeShim().benchPersist(w.sab!, 0, n, kind, iters), iters, b)
      out.push(result({ path: name, model: null, unit: 'ns/op', js: 0, paired, ...(n === 64 ? { maxRatio: 1.2 } : {}),
        note: `dev.persist(0, ${n}) (${flush}${dev.persistence === 'eadr' ? ', eADR: fence only' : ''} + sfence) next to a C loop of pm_persist over the same bytes` }))
    }
    return out
  },
}
