/**
 * Faults through a mapping's own address range (docs/mappings.md), per model:
 * `view()` on fresh mappings of a fallocated file, so every page is a first
 * fault (the model's insert path) and then mapped into the mapping's range
 * (one mmap(MAP_FIXED) per run of contiguous blocks). Next to each, the same
 * faults through map.fault() (the DMA slow path: no remap), measured in the same rounds.
 *
 *   fault-view         view(0, 1 MiB) of 1 MiB mappings (PTE faults)         ns/page  ≤ 200
 *   fault-view-4k      view(0, 4 KiB) of a fresh one-page mapping            µs       ≤ 5
 *   fault-view-folio   view(0, size) of one mapping of a 2 MiB-aligned file  ns/page  ≤ 20
 */
import type { DaxMapping } from '../../src/dax/index.js'
import type { Benchmark, BenchResult } from '../types.js'
import { median, result } from '../measure.js'
import { daxFs, fileBytes, mapOf, nsOf } from './dax.js'

const MiB = 2 ** 20

export const daxViewFaults: Benchmark = {
  id: 'dax-view', title: 'DAX fault through the mapping\'s address range (view)', paths: ['fault-view', 'fault-view-4k', 'fault-view-folio'],
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
      const win = MiB
      const rounds = ctx.budget.rounds
      const v0: number[] = [], p0: number[] = [], v9: number[] = [], p9: number[] = [], one: number[] = [], oneP: number[] = []
      let range = true
      const f = await fs.open('/view', 'w+')
      const timeOrder0 = (how: 'view' | 'fault'): number => {
        const maps: DaxMapping[] = []
        for (let o = 0; o < S; o += win) maps.push(mapOf(f, o, win))
        range &&= maps[0]!.capabilities.addressRange
        let ns = 0
        for (const m of maps) ns += nsOf(() => how === 'view' ? m.view(0, win) : m.fault(0, win, m.writable))
        for (const m of maps) m.unmap()
        return ns / pages
      }
      const timeFolio = (how: 'view' | 'fault'): number => {
        const m = mapOf(f, 0, S)
        const ns = nsOf(() => how === 'view' ? m.view(0, S) : m.fault(0, S, m.writable))
        m.unmap()
        return ns / pages
      }
      // Three warm-up rounds, not kept: the view path (fault, then the range's sync) is
      // more code than fault and takes longer to reach optimized code.
      const WARM = 3
      for (let r = 1 - WARM; r <= rounds; r++) {
        for (const how of ['view', 'fault'] as const) {
          await f.fallocate(0, S)
          const a = timeOrder0(how)
          await f.truncate(0)
          await f.fallocate(0, S)
          const b = timeFolio(how)
          await f.truncate(0)
          if (r > 0) { (how === 'view' ? v0 : p0).push(a); (how === 'view' ? v9 : p9).push(b) }
        }
        // single pages: a fresh one-page mapping each, first fault of the page
        await f.fallocate(0, 64 * ps)
        for (const how of ['view', 'fault'] as const) {
          for (let i = 0; i < 32; i++) {
            const j = (how === 'view' ? 0 : 32) + i
            const m = mapOf(f, j * ps, ps)
            const ns = nsOf(() => how === 'view' ? m.view(0, ps) : m.fault(0, ps, m.writable))
            m.unmap()
            if (r > 0) (how === 'view' ? one : oneP).push(ns / 1000)
          }
        }
        await f.truncate(0)
      }
      await f.close()
      await fs.unlink('/view')
      const path = range ? 'through the address range (fault + mmap(MAP_FIXED) of each run)' : 'WITHOUT an address range on this backend (no remap: same as map.fault)'
      const sizes = `${S / MiB} MiB fallocated file (${pages} pages); median of ${rounds} rounds`
      out.push(
        result({ path: 'fault-view', model: ctx.model, unit: 'ns/page', js: median(v0), maxValue: 200,
          note: `view(0, 1 MiB) of ${S / win} fresh 1 MiB mappings (PTE faults) ${path}; map.fault() of the same (no remap): ${median(p0).toFixed(1)} ns/page; ${sizes}` }),
        result({ path: 'fault-view-4k', model: ctx.model, unit: 'µs', js: median(one), maxValue: 5,
          note: `view(0, 4 KiB) of a fresh one-page mapping ${path}; map.fault() of the same (no remap): ${median(oneP).toFixed(2)} µs; median of ${one.length}` }),
        result({ path: 'fault-view-folio', model: ctx.model, unit: 'ns/page', js: median(v9), maxValue: 20,
          note: `view(0, size) of one mapping of the 2 MiB-aligned file (PMD faults) ${path}; map.fault() of the same (no remap): ${median(p9).toFixed(1)} ns/page; ${sizes}` }),
      )
    } finally {
      await fs.unmount()
    }
    return out
  },
}
