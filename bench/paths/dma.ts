/**
 * DMA engine benchmarks, per model, on a fallocated, populated
 * mapping of the bench region:
 *
 *   dma-copy-to-device ×W     region → buffer, W workers (the range split     GB/s  ≥ 80 % of memcpy
 *   dma-copy-from-device ×W   buffer → region   into W pieces: one transfer
 *                             runs on one worker); wall time submit → every
 *                             `done` (pinning, messages and unpin included)
 *                             vs C memcpy of the same bytes between the same
 *                             memory, single thread, same run
 *   dma-pin-unpin             per page through the engine: (wall − copy ns)   ns/page
 *                             of a whole-file transfer / pages
 *   dma-pin-unpin-direct      dev.pages.pinRange + unpinRange on the same     ns/page
 *                             pfn runs, on the main thread
 *   dma-submit-pinned         submit → `pinned` of a 1-page transfer on a     µs, median
 *                             populated mapping (gup-fast in the worker)
 *   dma-submit-pinned-fault   the same on a page not mapped yet (slow path:   µs, median
 *                             the worker asks the main thread to fault)
 *   unpin-to-truncate-dma     release() of a held 1-page transfer → the       µs, median  ≤ 100
 *                             truncate waiting on it resolved
 */
import { nativeShim } from '../../src/region/index.js'
import type { Device } from '../../src/region/index.js'
import type { DaxMapping } from '../../src/dax/index.js'
import { DmaEngine, type DmaResult, type DmaTransfer } from '../../src/dma/index.js'
import type { Benchmark, BenchResult } from '../types.js'
import { median, ownSite, result, timeJs } from '../measure.js'
import { daxFs, fileBytes, mapOf, tick } from './dax.js'


const KiB = 1024
const MiB = 2 ** 20

/** The region memory behind a mapping range: its window's SharedArrayBuffer and the byte offset in it. */
function regionSab(m: DaxMapping, length: number): { sab: SharedArrayBuffer; off: number } | undefined {
  try {
    const v = m.view(0, length)
    return v.buffer instanceof SharedArrayBuffer ? { sab: v.buffer, off: v.byteOffset } : undefined
  } catch {
    return undefined
  }
}

/** Start the engine's workers: one small transfer per worker at once, twice (worker start-up, JIT). */
async function warm(dma: DmaEngine, map: DaxMapping, workers: number, ps: number, buf: Uint8Array): Promise<void> {
  for (let r = 0; r < 3; r++) {
    const ts: DmaTransfer[] = []
    for (let w = 0; w < workers; w++) ts.push(dma.submit({ map, offset: w * ps, length: ps, direction: 'to-device', buffer: buf.subarray(w * ps, (w + 1) * ps) }))
    await Promise.all(ts.map(t => t.done))
  }
}

/** Wall ns of one copy of [0, len) split into `pieces` transfers submitted at once. */
async function copyOnce(dma: DmaEngine, map: DaxMapping, len: number, pieces: number, ps: number, buf: Uint8Array,
  direction: 'to-device' | 'from-device'): Promise<{ wall: number; res: DmaResult[] }> {
  const piece = Math.ceil(len / pieces / ps) * ps
  const t0 = process.hrtime.bigint()
  const ts: DmaTransfer[] = []
  for (let o = 0; o < len; o += piece) {
    const l = Math.min(piece, len - o)
    ts.push(dma.submit({ map, offset: o, length: l, direction, buffer: buf.subarray(o, o + l) }))
  }
  const res = await Promise.all(ts.map(t => t.done))
  return { wall: Number(process.hrtime.bigint() - t0), res }
}

function fmtSize(n: number): string { return n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB` }

export const dmaPaths: Benchmark = {
  id: 'dma', title: 'DMA copy vs memcpy, pin+unpin through the engine, submit → pinned, release → truncate',
  paths: ['dma-copy-to-device', 'dma-copy-from-device', 'dma-copy-size', 'dma-pin-unpin', 'dma-pin-unpin-direct', 'dma-submit-pinned',
    'dma-submit-pinned-fault', 'unpin-to-truncate-dma'],
  scope: 'model', weight: 3,
  available: async () => null,
  async run(ctx) {
    const { dev, budget: b } = ctx
    const ps = dev.pageSize
    const fs = await daxFs(dev)
    const out: BenchResult[] = []
    const engines: DmaEngine[] = []
    const engine = (workers: number): DmaEngine => {
      const e = new DmaEngine(dev, { workers })
      engines.push(e)
      return e
    }
    try {
      const len = Math.min(fileBytes(fs, Math.max(b.copyBytes, 4 * MiB), 3), Math.max(4 * MiB, b.copyBytes))
      const pages = len / ps
      const f = await fs.open('/dma', 'w+')
      await f.fallocate(0, len)
      const map = mapOf(f, 0, len)
      map.populate()
      const buffer = new Uint8Array(new SharedArrayBuffer(len))
      for (let i = 0; i < len; i += 64) buffer[i] = i & 0xff // first touch of every page, outside the figures
      const rounds = b.rounds
      const where = regionSab(map, len)
      const bufSab = buffer.buffer as SharedArrayBuffer
      /** GB/s of one C memcpy call of the same bytes (region → buffer for to-device), single thread. */
      const cGbs = where
        ? (direction: 'to-device' | 'from-device'): number => len / (direction === 'to-device'
          ? nativeShim().benchMemcpy(bufSab, 0, where.sab, where.off, len, 1)
          : nativeShim().benchMemcpy(where.sab, where.off, bufSab, 0, len, 1))
        : undefined

      // ---- copy bandwidth, 1..W workers ----
      const counts = [...new Set([1, 2, ctx.workers])].sort((x, y) => x - y)
      for (const w of counts) {
        const dma = engine(w)
        await warm(dma, map, w, ps, buffer)
        for (const direction of ['to-device', 'from-device'] as const) {
          const gbs: number[] = []
          const cs: number[] = []
          const copyNs: number[] = []
          // two full-size rounds first: the workers' pin and copy loops get compiled
          for (let r = 0; r < 2; r++) await copyOnce(dma, map, len, w, ps, buffer, direction)
          if (cGbs) cGbs(direction)
          for (let r = 0; r < rounds; r++) {
            // C right before each round: on a shared machine both sides see the same load
            if (cGbs) cs.push(cGbs(direction))
            const { wall, res } = await copyOnce(dma, map, len, w, ps, buffer, direction)
            gbs.push(len / wall)
            copyNs.push(Math.max(...res.map(x => x.ns)))
          }
          const c = cs.length ? median(cs) : undefined
          out.push(result({ path: `dma-copy-${direction}`, model: ctx.model, workers: w, unit: 'GB/s', js: median(gbs), jsSamples: gbs,
            ...(c ? { c } : {}), minOfC: 0.8,
            note: `${len / MiB} MiB ${direction === 'to-device' ? 'region → buffer' : 'buffer → region'} in ${w} transfer(s) of ${len / w / MiB} MiB on ${w} worker(s) (${dma.mode}); ` +
              `wall time submit → done (pin, copy, unpin, messages), median of ${rounds} (best ${Math.max(...gbs).toFixed(2)} GB/s); ` +
              `the copy alone (slowest worker's ns) ${(len / median(copyNs)).toFixed(2)} GB/s; C: single-thread memcpy of the same bytes between the same memory, ` +
              `one call right before each round, median (best ${cs.length ? Math.max(...cs).toFixed(2) : '—'} GB/s)` }))
        }
        await dma.close()
      }

      // ---- % of memcpy per transfer size: 1 worker, to-device, one transfer at a time ----
      // (the fixed per-transfer cost — messages, ledger, pin and unpin — is
      // what a small transfer pays for; the curve shows where it stops mattering)
      {
        const dma = engine(1)
        await warm(dma, map, 1, ps, buffer)
        for (const size of [4 * KiB, 64 * KiB, MiB, 4 * MiB, 16 * MiB, 64 * MiB].filter(x => x <= len)) {
          const reps = Math.max(1, Math.min(256, Math.floor(4 * MiB / size)))
          const gbs: number[] = []
          const cs: number[] = []
          const sub = buffer.subarray(0, size)
          for (let r = 0; r <= rounds; r++) { // round 0 warms up and is not kept
            const c = where ? size * reps / nativeShim().benchMemcpy(bufSab, 0, where.sab, where.off, size, reps) : undefined
            const t0 = process.hrtime.bigint()
            for (let k = 0; k < reps; k++) await dma.submit({ map, offset: 0, length: size, direction: 'to-device', buffer: sub }).done
            const wall = Number(process.hrtime.bigint() - t0)
            if (r > 0) { gbs.push(size * reps / wall); if (c !== undefined) cs.push(c) }
          }
          const label = size >= MiB ? `${size / MiB}m` : `${size / KiB}k`
          out.push(result({ path: `dma-copy-size-${label}`, model: ctx.model, workers: 1, unit: 'GB/s', js: median(gbs), jsSamples: gbs,
            ...(cs.length ? { c: median(cs) } : {}), ...(size >= 4 * MiB ? { minOfC: 0.8 } : {}),
            note: `${fmtSize(size)} to-device transfers one after another on 1 worker (${reps} per sample), wall submit → done; ` +
              `C: memcpy of the same ${fmtSize(size)} between the same memory, ${reps} times, right before each sample; median of ${rounds}` +
              (size >= 4 * MiB ? '' : '; no target below 4 MiB: the fixed per-transfer cost dominates') }))
        }
        await dma.close()
      }

      // ---- pin + unpin per page: through the engine vs direct ----
      const dma1 = engine(1)
      await warm(dma1, map, 1, ps, buffer)
      for (let r = 0; r < 2; r++) await copyOnce(dma1, map, len, 1, ps, buffer, 'to-device')
      const perPage: number[] = []
      const pinNs: number[] = []
      for (let r = 0; r < rounds; r++) {
        const { wall, res } = await copyOnce(dma1, map, len, 1, ps, buffer, 'to-device')
        perPage.push((wall - res[0]!.ns) / pages)
        pinNs.push(res[0]!.pinNs / pages)
      }
      const bestPerPage = Math.min(...perPage)
      // the same pfn runs, pinned and unpinned on the main thread
      const runs: [number, number][] = []
      for (let j = 0; j < pages;) {
        const p0 = map.pte(j * ps)
        let n = 1
        while (j + n < pages && map.pte((j + n) * ps) === p0 + n) n++
        runs.push([p0, n])
        j += n
      }
      const pg = dev.pages
      // ownSite: a call site of this model's own (see bench/measure.ts)
      const direct = await timeJs(ownSite((pp: typeof pg, rs: typeof runs) => () => {
        for (const [p, n] of rs) pp.pinRange(p, n)
        for (const [p, n] of rs) pp.unpinRange(p, n)
      })(pg, runs), pages, b)
      const runNote = `${pages} pages in ${runs.length} run(s) of consecutive pfns`
      out.push(
        result({ path: 'dma-pin-unpin', model: ctx.model, unit: 'ns/page', js: median(perPage), jsSamples: perPage,
          note: `through the engine (1 worker): (wall submit → done − copy ns) / pages of a ${len / MiB} MiB to-device transfer: validation, ledger, ` +
            `message, gup-fast walk (pte read, pinRange, re-check), unpin, reply; the pin alone (worker's pinNs) ${median(pinNs).toFixed(2)} ns/page; ` +
            `${(median(perPage) / direct).toFixed(1)}× direct; ${runNote}; median of ${rounds} (best ${bestPerPage.toFixed(1)} ns/page)` }),
        result({ path: 'dma-pin-unpin-direct', model: ctx.model, unit: 'ns/page', js: direct,
          note: `dev.pages.pinRange + unpinRange over the same ${runNote}, main thread (mitata)` }),
      )

      // ---- submit → pinned, fast path and slow path ----
      const n = b.samples
      const one = buffer.subarray(0, ps)
      const fast: number[] = []
      for (let i = 0; i < n + 10; i++) {
        const t0 = process.hrtime.bigint()
        const t = dma1.submit({ map, offset: (i % pages) * ps, length: ps, direction: 'to-device', buffer: one, hold: 'until-release' })
        await t.pinned
        const dt = Number(process.hrtime.bigint() - t0) / 1000
        t.release()
        await t.done
        if (i >= 10) fast.push(dt)
      }
      const g = await fs.open('/dma-fault', 'w+')
      const gPages = Math.min(256, pages)
      await g.fallocate(0, gPages * ps)
      const slow: number[] = []
      const s0 = dma1.stats().faults
      let gm = mapOf(g, 0, gPages * ps)
      for (let i = 0; i < n + 10; i++) {
        const k = i % gPages
        if (i > 0 && k === 0) { gm.unmap(); gm = mapOf(g, 0, gPages * ps) }
        const t0 = process.hrtime.bigint()
        const t = dma1.submit({ map: gm, offset: k * ps, length: ps, direction: 'to-device', buffer: one, hold: 'until-release' })
        await t.pinned
        const dt = Number(process.hrtime.bigint() - t0) / 1000
        t.release()
        await t.done
        if (i >= 10) slow.push(dt)
      }
      const faults = dma1.stats().faults - s0
      gm.unmap()
      await g.close()
      out.push(
        result({ path: 'dma-submit-pinned', model: ctx.model, unit: 'µs', js: median(fast), jsSamples: fast,
          note: `submit → pinned of a 1-page transfer (hold until release) on a populated mapping, 1 worker: main → worker message, gup-fast, worker → main message; median of ${n}, min ${Math.min(...fast).toFixed(1)} µs` }),
        result({ path: 'dma-submit-pinned-fault', model: ctx.model, unit: 'µs', js: median(slow), jsSamples: slow,
          note: `the same on a page the mapping has not faulted yet: the worker asks the main thread to fault (${faults} slow-path faults for ${n + 10} transfers), then pins; median of ${n}` }),
      )

      // ---- release of a held transfer → the truncate waiting on it resumes ----
      const h = await fs.open('/dma-truncate', 'w+')
      await h.fallocate(0, ps)
      const hm = mapOf(h, 0, ps)
      const lat: number[] = []
      for (let i = 0; i < n + 10; i++) {
        if (i > 0) await h.fallocate(0, ps)
        const t = dma1.submit({ map: hm, offset: 0, length: ps, direction: 'to-device', buffer: one, hold: 'until-release' })
        await t.pinned
        let t1 = 0n
        let settled = false
        const p = h.truncate(0, { timeoutMs: 10_000 }).then(() => { t1 = process.hrtime.bigint(); settled = true })
        await tick()
        await tick()
        if (settled) { t.release(); await t.done; throw new Error(`truncate did not wait for the DMA pin (model ${ctx.model})`) }
        const t0 = process.hrtime.bigint()
        t.release()
        await p
        await t.done
        if (i >= 10) lat.push(Number(t1 - t0) / 1000)
      }
      hm.unmap()
      await h.close()
      out.push(result({ path: 'unpin-to-truncate-dma', model: ctx.model, unit: 'µs', js: median(lat), jsSamples: lat, maxValue: 100,
        note: `median of ${n}: a DMA transfer holds a mapped page (pin: 'pin', hold until release), truncate(0) waits; release() → truncate resolved: ` +
          `the worker wakes (Atomics.waitAsync on the ledger), unpins, the model's wake rule notifies the main thread, the fs frees; min ${Math.min(...lat).toFixed(1)} µs` }))
      map.unmap()
      await f.close()
    } finally {
      for (const e of engines) await e.close()
      await fs.unmount()
    }
    return out
  },
}
