/**
 * The refcount paths of `dev.pages` (SPEC §3) against a native C baseline
 * doing the same locked operations as the model on the same side-table
 * memory (the wasm memory's SharedArrayBuffer, at the byte offset of the
 * page's refcount word), timed paired with the JS side (bench/measure.ts),
 * and the JS floor (the same number of JS→wasm calls doing one atomic each,
 * bench/floor.ts).
 *
 * Like-for-like C: a model whose get/pin of an idle page crosses the pgmap
 * edge (a per-page pgmap with idle refcount 0) does four locked operations
 * per pair by design — refcount and pgmap counter, each way — and its C
 * baseline does the same four; the others do two. The two-atomic figure is
 * reported as the machine's floor path ('atomic-pair', model-independent).
 *
 *   get-put        dev.pages.get(pfn); dev.pages.put(pfn)           ns/op    ≤ 2.0× C
 *   get-put-fused  dev.table.getPut(pfn): one JS→wasm call          ns/op    ≤ 2.0× C
 *   pin-unpin      dev.pages.pin(pfn); dev.pages.unpin(pfn)         ns/op    ≤ 2.0× C
 *   pin-sweep      pinRange(0, N) + unpinRange(0, N), N ≥ 262144    ns/page  ≤ 1.1× C
 *                  (floor: one JS→wasm call per direction looping over the atomics only)
 *   folio-pin      pinRange(head, 512) + unpinRange(head, 512)      ns/page  ≤ 0.1 ns/page (upstream)
 *                  (upstream: one order-9 folio, one atomic pair per folio;
 *                   legacy, dax-gup: no folios, 512 order-0 pages counted one
 *                   by one: reported without a target)
 *
 * Every other target applies to every model.
 */
import type { Device, PagePaths } from '../../src/region/index.js'
import type { PageTable } from '../../src/page/index.js'
import { nativeShim, openDevice } from '../../src/region/index.js'
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { collectGarbage, consume, ownSite, result, timePaired } from '../measure.js'
import { floorAdd, floorOf } from '../floor.js'
import { MODELS } from '../../src/page/index.js'
import type { ModelName } from '../types.js'

/**
 * Locked operations one get (or pin) of an idle page does beyond the
 * refcount add, read from the model table: a per-page pgmap with an idle
 * refcount of 0 takes the pgmap ref on 0→1 (and drops it on 1→0).
 */
export function pgmapEdgeOps(model: ModelName | null): number {
  if (model === null) return 0
  const m = MODELS[model] as { pgmap?: unknown; idleRefcount: number }
  // pgmap: a list of ways (this pmemu) or one policy name (a layer loaded for --compare from an older checkout)
  const perPage = Array.isArray(m.pgmap) ? m.pgmap.includes('per-page') : m.pgmap === 'per-page'
  return perPage && m.idleRefcount === 0 ? 1 : 0
}

/** An 8-byte word on a cache line of its own, for the C baseline's pgmap counter. */
const pgmapScratch = new SharedArrayBuffer(256)

/** Side-table geometry, read from src/page/layout.ts when it is there. */
interface Layout { RECORDS: number; RECORD_BYTES: number; W_REF: number; W_PIN: number; FOLIO_PAGES: number; PIN_BIAS: number }

let layout: Layout | undefined

async function pageLayer(): Promise<string | null> {
  try {
    const page = await import('../../src/page/index.js') as Record<string, unknown>
    const lay = await import('../../src/page/layout.js') as Record<string, unknown>
    if (typeof page.PageTable !== 'function') return 'not available yet: src/page does not export PageTable'
    const need = ['RECORDS', 'RECORD_BYTES', 'W_REF', 'W_PIN']
    for (const k of need) if (typeof lay[k] !== 'number') return `not available yet: src/page/layout.ts has no ${k}`
    layout = {
      RECORDS: lay.RECORDS as number, RECORD_BYTES: lay.RECORD_BYTES as number,
      W_REF: lay.W_REF as number, W_PIN: lay.W_PIN as number,
      FOLIO_PAGES: (page.FOLIO_PAGES as number | undefined) ?? 512, PIN_BIAS: (page.PIN_BIAS as number | undefined) ?? 1024,
    }
  } catch (e) {
    return `not available yet: src/page cannot be loaded (${(e as Error).message.split('\n')[0]})`
  }
  try {
    nativeShim()
  } catch (e) {
    return `the native shim is not built (npm install builds native-shims): ${(e as Error).message.split('\n')[0]}`
  }
  return null
}

/** What a benchmark needs of the side table: its memory and the byte offset of a page's words. */
function table(dev: Device): { sab: SharedArrayBuffer; i32: Int32Array; refOff(pfn: number): number; pinOff(pfn: number): number } {
  const L = layout!
  const buf = dev.table.memory.buffer
  if (!(buf instanceof SharedArrayBuffer)) throw new Error('the side table memory is not a SharedArrayBuffer')
  return {
    sab: buf,
    i32: new Int32Array(buf),
    refOff: pfn => L.RECORDS + pfn * L.RECORD_BYTES + L.W_REF * 4,
    pinOff: pfn => L.RECORDS + pfn * L.RECORD_BYTES + L.W_PIN * 4,
  }
}

/** A pfn for single-page paths: not a folio head, inside the table. */
function testPfn(dev: Device): number {
  return Math.min(3, dev.pageCount - 1)
}

const available = pageLayer

export const getPut: Benchmark = {
  id: 'get-put', title: 'page get + put', paths: ['get-put', 'get-put-fused'], scope: 'model', available,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const { dev, budget: b } = ctx
    const t = table(dev)
    const pfn = testPfn(dev)
    const pages = dev.pages
    const tab = dev.table
    const n = b.block
    // ownSite: each model's loop has call sites of its own (see bench/measure.ts)
    const loop = ownSite((p: PagePaths, f: number, k: number) => () => { for (let i = 0; i < k; i++) { p.get(f); p.put(f) } })(pages, pfn, n)
    const fusedLoop = ownSite((t: PageTable, f: number, k: number) => () => { for (let i = 0; i < k; i++) t.getPut(f) })(tab, pfn, n)
    const add = floorAdd(dev.table.memory)
    const a = t.refOff(pfn)
    const floorLoop = { fn: () => { for (let i = 0; i < n; i++) { add(a, 1); add(a, -1) } }, opsPerCall: n }
    const edge = pgmapEdgeOps(ctx.model)
    const cCall = edge
      ? () => nativeShim().benchEdgePair(t.sab, a, pgmapScratch, 64, 1, b.cIters)
      : () => nativeShim().benchGetPut(t.sab, a, b.cIters)
    const cText = edge ? 'C: four lock add (refcount and pgmap counter, each way), as the model does' : 'C: two lock xadd'
    const two = timePaired(loop, n, () => nativeShim().benchGetPut(t.sab, a, b.cIters), b.cIters, b)
    return [
      result({ path: 'get-put', model: ctx.model, unit: 'ns/op', js: 0, paired: timePaired(loop, n, cCall, b.cIters, b, floorLoop), maxRatio: 2.0,
        note: `dev.pages.get + dev.pages.put, two JS→wasm calls per op; ${cText}; floor: two JS→wasm calls of one atomic each` }),
      result({ path: 'get-put-fused', model: ctx.model, unit: 'ns/op', js: 0, paired: timePaired(fusedLoop, n, cCall, b.cIters, b), maxRatio: 2.0,
        note: `dev.table.getPut: get and put in one JS→wasm call; ${cText}` }),
      ...(edge ? [result({ path: 'get-put-vs-2-atomics', model: ctx.model, unit: 'ns/op', js: 0, paired: two,
        note: 'the same get + put against the machine\'s two-atomic floor (two lock xadd): what the model\'s extra locked operations cost' })] : []),
    ]
  },
}

export const pinUnpin: Benchmark = {
  id: 'pin-unpin', title: 'page pin + unpin', paths: ['pin-unpin'], scope: 'model', available,
  async run(ctx) {
    const { dev, budget: b } = ctx
    const t = table(dev)
    const pfn = testPfn(dev)
    const pages = dev.pages
    const n = b.block
    const bias = layout!.PIN_BIAS
    const loop = ownSite((p: PagePaths, f: number, k: number) => () => { for (let i = 0; i < k; i++) { p.pin(f); p.unpin(f) } })(pages, pfn, n)
    const add = floorAdd(dev.table.memory)
    const a = t.refOff(pfn)
    const floorLoop = { fn: () => { for (let i = 0; i < n; i++) { add(a, bias); add(a, -bias) } }, opsPerCall: n }
    const edge = pgmapEdgeOps(ctx.model)
    const cCall = edge
      ? () => nativeShim().benchEdgePair(t.sab, a, pgmapScratch, 64, bias, b.cIters)
      : () => nativeShim().benchPinUnpin(t.sab, a, bias, b.cIters)
    return [result({ path: 'pin-unpin', model: ctx.model, unit: 'ns/op', js: 0, paired: timePaired(loop, n, cCall, b.cIters, b, floorLoop), maxRatio: 2.0,
      note: `small page, +${bias}/−${bias} (GUP_PIN_COUNTING_BIAS); ${edge ? 'C: four lock add (refcount and pgmap counter, each way), as the model does' : 'C: two lock xadd'}` })]
  },
}

export const pinSweep: Benchmark = {
  id: 'pin-sweep', title: 'pinRange + unpinRange sweep', paths: ['pin-sweep'], scope: 'model', weight: 2, available,
  async run(ctx) {
    const b = ctx.budget
    let dev = ctx.dev
    let extra: Device | undefined
    let where = 'the bench region'
    if (dev.pageCount < b.sweepPages) {
      // The sweep only touches the side table: a sparse in-memory region of the
      // right page count costs nothing in bytes.
      extra = await openDevice(undefined, {
        size: (b.sweepPages + 64) * dev.pageSize, pageSize: dev.pageSize, model: ctx.model ?? 'upstream',
      })
      dev = extra
      where = `an in-memory region of ${b.sweepPages} pages (the bench region has ${ctx.dev.pageCount})`
    }
    try {
      const N = Math.min(b.sweepPages, dev.pageCount)
      const t = table(dev)
      const pages = dev.pages
      const bias = layout!.PIN_BIAS
      const loop = ownSite((p: PagePaths, k: number) => () => { p.pinRange(0, k); p.unpinRange(0, k) })(pages, N)
      const rounds = Math.max(1, Math.round(b.cIters / N))
      const cCall = () => nativeShim().benchSweep(t.sab, t.refOff(0), layout!.RECORD_BYTES, N, bias, rounds)
      const fl = floorOf(dev.table.memory)
      const a0 = t.refOff(0)
      const RB = layout!.RECORD_BYTES
      const floorLoop = { fn: () => { fl.sweep(a0, RB, N, bias); fl.sweep(a0, RB, N, -bias) }, opsPerCall: N }
      const paired = timePaired(loop, N, cCall, rounds * N, b, floorLoop)
      const gib = (N * dev.pageSize) / 2 ** 30
      return [result({ path: 'pin-sweep', model: ctx.model, unit: 'ns/page', js: 0, paired, maxRatio: 1.1,
        note: `${N} pages (${gib >= 1 ? gib.toFixed(0) + ' GiB' : (gib * 1024).toFixed(0) + ' MiB'} of ${dev.pageSize}-byte pages) on ${where}; per page: +${bias} then −${bias}` })]
    } finally {
      if (extra) { await extra.close(); extra = undefined; collectGarbage() }
    }
  },
}

/** ns/page for pinRange + unpinRange of one order-9 folio (models with folios only). */
export const FOLIO_PIN_TARGET = 0.1

export const folioPin: Benchmark = {
  id: 'folio-pin', title: 'pin of a 2 MiB extent', paths: ['folio-pin'], scope: 'model', available,
  async run(ctx) {
    const { dev, budget: b } = ctx
    const L = layout!
    const F = L.FOLIO_PAGES
    const head = F // 2 MiB-aligned, clear of the single-page paths' pfn
    if (dev.pageCount < head + F) {
      throw new Error(`the region is too small for a folio: needs ${head + F} pages, has ${dev.pageCount}`)
    }
    const t = table(dev)
    const pages = dev.pages
    const folio = ctx.model !== null && MODELS[ctx.model].folios // the model's table says whether 2 MiB extents are folios
    if (folio) dev.table.makeFolio(head)
    try {
      const n = Math.max(1, Math.floor(b.block / 8))
      const loop = ownSite((p: PagePaths, h: number, f: number, k: number) => () => {
        for (let i = 0; i < k; i++) { p.pinRange(h, f); p.unpinRange(h, f) }
      })(pages, head, F, n)
      const i32 = t.i32
      const add = floorAdd(dev.table.memory)
      let paired
      if (folio) {
        const r = t.refOff(head)
        const p = t.pinOff(head)
        const floorLoop = { fn: () => { for (let i = 0; i < n; i++) { add(r, F); add(p, F); add(p, -F); add(r, -F) } }, opsPerCall: n * F }
        paired = timePaired(loop, n * F, () => nativeShim().benchFolioPin(t.sab, r, p, b.cIters), b.cIters * F, b, floorLoop)
      } else {
        const rounds = Math.max(1, Math.round(b.cIters / F))
        const fl = floorOf(dev.table.memory)
        const h0 = t.refOff(head)
        const floorLoop = { fn: () => { for (let i = 0; i < n; i++) { fl.sweep(h0, L.RECORD_BYTES, F, L.PIN_BIAS); fl.sweep(h0, L.RECORD_BYTES, F, -L.PIN_BIAS) } }, opsPerCall: n * F }
        paired = timePaired(loop, n * F, () => nativeShim().benchSweep(t.sab, h0, L.RECORD_BYTES, F, L.PIN_BIAS, rounds), rounds * F, b, floorLoop)
      }
      consume(i32[t.refOff(head) >> 2]!)
      // The ≤ 0.1 ns/page target is for compound counting: only upstream has
      // folios. The order-0 models report their per-page figure with no target
      // (it is the per-page side of the comparison, not a miss).
      return [result({ path: 'folio-pin', model: ctx.model, unit: 'ns/page', js: 0, paired,
        ...(folio ? { maxValue: FOLIO_PIN_TARGET } : {}),
        note: folio
          ? 'one order-9 folio: +512 ref +512 pincount on the head and back, per 512 pages'
          : `no folios in this model: counted per page (512 order-0 pages pinned one by one, +${L.PIN_BIAS} each); the ≤ ${FOLIO_PIN_TARGET} ns/page target is upstream's` })]
    } finally {
      if (folio) dev.table.splitFolio(head)
    }
  },
}
