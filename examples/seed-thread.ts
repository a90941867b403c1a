/**
 * The seed thread — Dan Williams / Jason Gunthorpe, "Fix the DAX-gup mistake"
 * (Sep 2022) — replayed on each refcount model with pmemu's counters, as
 * markdown tables (docs/models.md pastes this output):
 *
 *   1. a DMA pin and truncate: what the fault, a second mapping, the pin and
 *      the layout break do to the counters, and what wakes truncate;
 *   2. a plain get (FOLL_GET) and truncate: the review's objection — does
 *      truncate wait, or is the page freed while the get holds it?
 *   3. the pin bias: 1023 plain gets on a mapped page;
 *   4. a 2 MiB extent: 512 order-0 pages, or one order-9 folio.
 *
 *   npx tsx examples/seed-thread.ts [model ...]     (default: every model)
 *
 * Nothing here sleeps to decide anything: "truncate" is read after two
 * macrotasks (still waiting, or settled).
 */
import { pathToFileURL } from 'node:url'
import { setImmediate as macrotask } from 'node:timers/promises'
import { openDevice, type Device } from '../src/region/index.js'
import { MODEL_NAMES, isModelName, type ModelName } from '../src/page/index.js'
import { mkfs, type DaxMapping } from '../src/dax/index.js'
import type { PmemFile } from '../src/fs/index.js'
import { isPmemuError } from '../src/errors.js'

const PAGE = 4096
const MiB = 1 << 20

async function fresh(model: ModelName, bytes: number): Promise<{ dev: Device; f: PmemFile }> {
  const dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PAGE, map: 'mem' })
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  if (bytes >= 2 * MiB) await f.fallocate(0, bytes)
  f.write(new Uint8Array(bytes).fill(0x5a), 0)
  await f.fsync()
  return { dev, f }
}

/** pgmap refs as the table writes them: relative to pageCount ("all") when it is at least that. */
function pgmap(dev: Device): string {
  const n = dev.pgmapRefs()
  const d = n - dev.pageCount
  return d === 0 ? 'all' : d > 0 ? `all+${d}` : String(n)
}

function tracker(p: Promise<unknown>): () => string {
  let s = 'waiting'
  p.then(() => { s = 'completed' }, (e: unknown) => { s = isPmemuError(e) ? e.code : String(e) })
  return () => s
}

const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`

/** 1: a DMA pin and truncate. */
async function pinAndTruncate(model: ModelName, log: (l: string) => void): Promise<void> {
  const { dev, f } = await fresh(model, 8 * PAGE)
  try {
    log(row(['step', 'refcount', 'mapcount', 'pgmap', 'maybe pinned', 'truncate']))
    log(row(['---', '---', '---', '---', '---', '---']))
    let trunc = (): string => '—'
    let pfn = -1
    const show = (what: string): void => {
      const p = dev.page(pfn)
      log(row([what, p.refcount, p.mapcount, pgmap(dev), dev.pages.maybeDmaPinned(pfn) ? 'yes' : 'no', trunc()]))
    }
    const m1 = f.mmap(0, 8 * PAGE, { write: true }) as DaxMapping
    pfn = f.pfnAt(0)!
    show('idle (block allocated, not mapped)')
    m1.view(0, PAGE)
    show('fault (mapping 1)')
    const m2 = f.mmap(0, 8 * PAGE, { write: true }) as DaxMapping
    m2.view(0, PAGE)
    show('fault (mapping 2)')
    dev.pages.pin(pfn)
    show('DMA pin (FOLL_PIN)')
    trunc = tracker(f.truncate(0))
    await macrotask(); await macrotask()
    show('truncate: layout break (zap, wait)')
    dev.pages.unpin(pfn)
    await macrotask(); await macrotask()
    show('unpin')
    const bad = dev.check()
    log(`\nchecker: ${bad.length ? bad.map(v => v.message).join('; ') : 'no invariant violation'}`)
  } finally { await dev.close() }
}

/** 2: a plain get and truncate (the review's objection). */
async function getAndTruncate(model: ModelName, log: (l: string) => void): Promise<void> {
  const { dev, f } = await fresh(model, 8 * PAGE)
  try {
    const m = f.mmap(0, 8 * PAGE, { write: true }) as DaxMapping
    m.view(0, PAGE)
    const pfn = f.pfnAt(0)!
    dev.pages.get(pfn)
    const before = dev.page(pfn).refcount
    let outcome: string
    try {
      await f.truncate(0, { timeoutMs: 100 })
      outcome = 'truncate completed without waiting for the get'
    } catch (e) {
      outcome = `truncate waited for the get: ${isPmemuError(e) ? e.code : String(e)} after 100 ms`
    }
    log(`plain get: refcount ${before}; ${outcome}; refcount now ${dev.page(pfn).refcount}, hazards ${dev.stats().hazards ?? 0}`)
    for (const v of dev.check()) log(`checker: ${v.message}`)
    dev.pages.put(pfn)
    log(`late put: refcount ${dev.page(pfn).refcount}, pgmap ${pgmap(dev)}`)
  } finally { await dev.close() }
}

/** 3: 1023 plain gets on a mapped page. */
async function bias(model: ModelName, log: (l: string) => void): Promise<void> {
  const { dev, f } = await fresh(model, 8 * PAGE)
  try {
    const m = f.mmap(0, 8 * PAGE, { write: true }) as DaxMapping
    m.view(0, PAGE)
    const pfn = f.pfnAt(0)!
    const r0 = dev.page(pfn).refcount
    for (let i = 0; i < 1023; i++) dev.pages.get(pfn)
    log(`mapped page at refcount ${r0}, + 1023 plain gets: refcount ${dev.page(pfn).refcount}, maybe DMA pinned: ${dev.pages.maybeDmaPinned(pfn) ? 'yes' : 'no'}`)
    for (let i = 0; i < 1023; i++) dev.pages.put(pfn)
  } finally { await dev.close() }
}

/** 4: a 2 MiB extent (of a 4 MiB fallocated file: its first chunk is 2 MiB aligned). */
async function folio(model: ModelName, log: (l: string) => void): Promise<void> {
  const { dev, f } = await fresh(model, 4 * MiB)
  try {
    const m = f.mmap(0, 4 * MiB, { write: true }) as DaxMapping
    m.view(0, 2 * MiB)
    const head = f.pfnAt(0)!
    const tail = head + 5
    const s = (): string => { const p = dev.page(tail); return `refcount ${p.refcount}, mapcount ${p.mapcount}, pincount ${p.pincount}, order ${p.order}` }
    log(`2 MiB PMD fault: tail page ${tail - head} reads ${s()}; pgmap ${pgmap(dev)}`)
    dev.pages.pinRange(head, 512)
    log(`pinRange of the 512 pages: tail reads ${s()}`)
    dev.pages.unpinRange(head, 512)
  } finally { await dev.close() }
}

export async function seedThread(models: readonly ModelName[] = MODEL_NAMES, log: (l: string) => void = console.log): Promise<void> {
  for (const model of models) {
    log(`\n### ${model}\n`)
    await pinAndTruncate(model, log)
    log('')
    await getAndTruncate(model, log)
    await bias(model, log)
    await folio(model, log)
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const asked = process.argv.slice(2)
  const bad = asked.filter(m => !isModelName(m))
  if (bad.length) {
    console.error(`unknown model ${bad.join(', ')}: one of ${MODEL_NAMES.join(', ')}`)
    process.exit(2)
  }
  await seedThread(asked.length ? asked as ModelName[] : MODEL_NAMES)
}
