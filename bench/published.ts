/**
 * The published figures of SPEC §9, each matched with the figure of this run
 * that measures the same thing (when there is one).
 */
import type { BenchReport, BenchResult } from './types.js'

export interface Published {
  what: string
  published: string
  source: string
  /** Which figure of ours to show beside it. */
  ours(rep: BenchReport): { value: number; unit: string; how: string } | undefined
}

function find(rep: BenchReport, path: string, model?: string | null, workers?: number): BenchResult | undefined {
  const w = (r: BenchResult): boolean => workers === undefined || r.workers === workers
  return rep.results.find(r => r.path === path && w(r) && (model === undefined || r.model === model)) ??
    (model !== undefined ? rep.results.find(r => r.path === path && w(r)) : undefined)
}

const pick = (path: string, field: 'js' | 'c' | 'floor', how: string, model: string | null = 'upstream', workers?: number) =>
  (rep: BenchReport) => {
    const r = find(rep, path, model, workers)
    const v = r?.[field]
    return r && v !== undefined ? { value: v, unit: r.unit, how: `${how}${r.model ? ` (${r.model})` : ''}` } : undefined
  }

export const PUBLISHED: Published[] = [
  { what: 'get+put pair in C (two lock xadd on one word)', published: '~4.0 ns', source: 'SPEC §9, 2-core VM, gcc -O2',
    ours: pick('get-put', 'c', 'C baseline get-put') },
  { what: 'get+put as one JS→wasm call', published: '~6.0 ns', source: 'SPEC §9, AssemblyScript atomics',
    ours: pick('get-put-fused', 'js', 'dev.table.getPut') },
  { what: 'get and put as two JS→wasm calls', published: '~8.4 ns', source: 'SPEC §9',
    ours: pick('get-put', 'js', 'dev.pages.get + put') },
  { what: 'get+put with JS Atomics (raw floor)', published: '~15 ns', source: 'SPEC §9, Node 20 Atomics not inlined',
    ours: pick('get-put', 'floor', 'bare Atomics.add ×2') },
  { what: '+1024/−1024 sweep over 262 144 pages in C', published: '~5.8 ns/page', source: 'SPEC §9',
    ours: pick('pin-sweep', 'c', 'C baseline sweep') },
  { what: 'the same sweep inside wasm', published: '~5.9 ns/page (1.02× C)', source: 'SPEC §9',
    ours: pick('pin-sweep', 'js', 'pinRange + unpinRange') },
  { what: 'the same sweep with JS Atomics (raw floor)', published: '~16 ns/page', source: 'SPEC §9',
    ours: pick('pin-sweep', 'floor', 'bare Atomics.add loop') },
  { what: 'Linux devdax pin_user_pages, 12 GiB', published: '~330 → ~119 ns/page (batching)', source: 'Keith Busch',
    ours: pick('pin-sweep', 'js', 'pmemu pinRange + unpinRange', 'legacy') },
  { what: 'Linux pin with compound pages (gup_test PIN_LONGTERM)', published: '~21 → ~1.5 ns/page', source: 'Joao Martins',
    ours: pick('folio-pin', 'js', 'pmemu folio pin') },
  { what: 'Linux devdax pin_user_pages incl. the page walk (order-0 pages)', published: '~330 → ~119 ns/page', source: 'Keith Busch',
    ours: pick('dma-pin-unpin', 'js', 'DMA engine pin + unpin per page, gup walk in a worker', 'legacy') },
  { what: 'Linux pin_user_pages with compound pages, incl. the walk', published: '~1.5 ns/page', source: 'Joao Martins',
    ours: pick('dma-pin-unpin', 'js', 'DMA engine pin + unpin per page, order-9 folios', 'upstream') },
  { what: 'Linux memmap init of ZONE_DEVICE pages', published: '~4–10 ns/page', source: 'SPEC §9',
    ours: rep => {
      const r = rep.results.find(x => /^open-\d+[gm]$/.test(x.path))
      const m = r?.note?.match(/([\d.]+) ns\/page/)
      return r && m ? { value: Number(m[1]), unit: 'ns/page', how: `${r.path} / pages (${r.model ?? ''})` } : undefined
    } },
  { what: 'memcpy into a tmpfs mapping', published: '~20 GB/s', source: 'SPEC §9',
    ours: pick('memcpy', 'c', 'C memcpy into the region', null) },
  { what: 'Optane DC PMM write bandwidth per DIMM', published: '~2.3 GB/s', source: 'Izraelevitz et al. 2019',
    ours: pick('dma-copy-from-device', 'js', 'DMA buffer → region, 1 worker (tmpfs, no device model)', 'upstream', 1) },
  { what: 'Optane DC PMM read bandwidth per DIMM', published: '~6.6 GB/s', source: 'Izraelevitz et al. 2019',
    ours: pick('dma-copy-to-device', 'js', 'DMA region → buffer, 1 worker (tmpfs, no device model)', 'upstream', 1) },
  { what: 'Optane store + flush + fence', published: '~94 ns', source: 'Izraelevitz et al. 2019', ours: () => undefined },
  { what: 'first-touch page fault on tmpfs', published: '~15 µs', source: 'SPEC §9',
    ours: pick('fault', 'js', 'pmemu DAX fault, order 0 (the model\'s insert path; the region is pre-faulted)') },
]
