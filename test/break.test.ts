// The layout break (SPEC §3 ★, §5): whole-file by default (XFS / ext4), per
// range with breakScope 'range' (FUSE-DAX); what the break does with the
// page-cache entries is the model's breakEntries; partial munmap of PTE and
// PMD mappings. Every test runs for every model of the exported model list.
import t from 'tap'
import { setImmediate as macrotask } from 'node:timers/promises'
import { openDevice, type Device } from '../src/region/index.js'
import { mkfs, mount, daxOf, PTE_NONE, type DaxMapping } from '../src/dax/index.js'
import type { BreakScope, PmemFile, PmemFs } from '../src/fs/index.js'
import { MODELS, MODEL_NAMES, FOLIO_PAGES, type ModelName } from '../src/page/index.js'
import { DmaEngine } from '../src/dma/index.js'
import { code, track } from './fixtures/settle.js'

const PS = 4096
const MiB = 1 << 20
const PAGES = 16

const stats = (dev: Device) => dev.stats() as ReturnType<Device['table']['stats']>
const mmap = (f: PmemFile, off: number, len: number, o: { write?: boolean } = {}): DaxMapping => f.mmap(off, len, o) as DaxMapping


/** File page i holds the byte i + 1. */
function pattern(pages: number): Uint8Array {
  const b = new Uint8Array(pages * PS)
  for (let i = 0; i < pages; i++) b.fill(i + 1, i * PS, (i + 1) * PS)
  return b
}

/** Byte equality without tap's deep diff (slow on MiB arrays): the first differing offset, or -1. */
function differs(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) return -1
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return n
}

function readAll(f: PmemFile, len: number, at = 0): Uint8Array {
  const b = new Uint8Array(len)
  f.read(b, at)
  return b
}

async function setup(model: ModelName, opts: { breakScope?: BreakScope; pages?: number } = {}): Promise<{ dev: Device; fs: PmemFs; f: PmemFile }> {
  const dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PS, map: 'mem' })
  const fs = await mkfs(dev, opts.breakScope === undefined ? {} : { breakScope: opts.breakScope })
  const f = await fs.open('/f', 'w+')
  const pages = opts.pages ?? PAGES
  if (pages * PS >= 2 * MiB) await f.fallocate(0, pages * PS)
  f.write(pattern(pages), 0)
  await f.fsync()
  return { dev, fs, f }
}

const mappedPages = (m: DaxMapping): number => { let n = 0; for (const p of m.ptes) if (p !== PTE_NONE) n++; return n }

for (const model of MODEL_NAMES) {
  t.test(`${model}: a DMA pin in one part of the file holds a punch-hole elsewhere; every mapping goes, only the range is freed`, async t => {
    const { dev, fs, f } = await setup(model)
    const dma = new DmaEngine(dev, { workers: 1 })
    t.teardown(async () => { await dma.close(); await dev.close() })
    t.equal(fs.breakScope, 'file', 'the default scope is the whole file')
    const m1 = mmap(f, 0, 8 * PS, { write: true })
    const m2 = mmap(f, 8 * PS, 8 * PS)
    const m3 = mmap(f, 0, PAGES * PS)
    m1.populate(); m2.populate(); m3.populate()
    t.equal(mappedPages(m1) + mappedPages(m2) + mappedPages(m3), 32, 'all mapped')
    const h = dma.submit({ map: m2, offset: 4 * PS, length: PS, direction: 'to-device', hold: 'until-release' }) // file page 12
    await h.pinned
    const free0 = fs.statfs().free
    const waits0 = stats(dev).layoutWaits
    const punch = track(f.punchHole(2 * PS, 2 * PS))
    await macrotask(); await macrotask()
    t.equal(punch.settled(), false, 'punch-hole of pages 2-3 waits for the pin on page 12')
    t.ok(stats(dev).layoutWaits > waits0, 'it is a layout wait')
    t.same([mappedPages(m1), mappedPages(m2), mappedPages(m3)], [0, 0, 0], 'every mapping of the file is unmapped, at every offset')
    t.equal(fs.statfs().free, free0, 'nothing freed yet')
    // a fault during the break (the pinned page itself) kicks the wait: it is zapped again
    t.equal(m2.view(4 * PS, 1)[0], 13, 'a view during the break faults the page back in')
    t.equal(punch.settled(), false, 'still waiting')
    h.release()
    await h.done
    await punch.p
    t.same([mappedPages(m1), mappedPages(m2), mappedPages(m3)], [0, 0, 0], 'the page faulted in during the wait was zapped again')
    t.equal(fs.statfs().free, free0 + 2, 'only the two blocks of the hole are freed')
    t.equal(f.pfnAt(2), null); t.equal(f.pfnAt(3), null)
    const want = pattern(PAGES)
    want.fill(0, 2 * PS, 4 * PS)
    t.equal(differs(readAll(f, PAGES * PS), want), -1, 'bytes outside the hole are intact, the hole reads zero')
    t.equal(m1.view(5 * PS, 1)[0], 6, 'pages fault back in after the break')
    t.equal(m3.view(12 * PS, 1)[0], 13)
    t.same(dev.check(), [], 'no invariant violation')
    m1.unmap(); m2.unmap(); m3.unmap()
  })

  t.test(`${model}: a pin holds a truncate that frees other pages; timeout changes nothing`, async t => {
    const { dev, fs, f } = await setup(model)
    t.teardown(() => dev.close())
    const m = mmap(f, 0, PAGES * PS)
    m.populate()
    const p1 = f.pfnAt(1)!
    dev.pages.pin(p1)
    const free0 = fs.statfs().free
    t.equal(await code(() => f.truncate(8 * PS, { timeoutMs: 10 })), 'ETIMEDOUT', 'a pin on a kept page times the truncate out')
    t.equal(f.size, PAGES * PS, 'size unchanged')
    t.equal(fs.statfs().free, free0, 'blocks unchanged')
    const tr = track(f.truncate(8 * PS))
    await macrotask(); await macrotask()
    t.equal(tr.settled(), false, 'truncate pending while page 1 is pinned')
    dev.pages.unpin(p1)
    await tr.p
    t.equal(f.size, 8 * PS)
    t.equal(fs.statfs().free, free0 + 8, 'the eight pages past the new EOF are freed')
    t.equal(differs(readAll(f, 8 * PS), pattern(8)), -1, 'the kept part is intact')
    t.same(dev.check(), [], 'no invariant violation')
    m.unmap()
  })

  t.test(`${model}: breakScope 'range' breaks only the range (FUSE-DAX)`, async t => {
    const { dev, fs, f } = await setup(model, { breakScope: 'range' })
    const dma = new DmaEngine(dev, { workers: 1 })
    t.teardown(async () => { await dma.close(); await dev.close() })
    t.equal(fs.breakScope, 'range')
    t.match(fs.toJSON(), { breakScope: 'range', durability: 'strict' }, 'toJSON shows the mount options')
    const m1 = mmap(f, 0, 8 * PS)
    const m2 = mmap(f, 8 * PS, 8 * PS)
    m1.populate(); m2.populate()
    const h = dma.submit({ map: m2, offset: 4 * PS, length: PS, direction: 'to-device', hold: 'until-release' })
    await h.pinned
    const free0 = fs.statfs().free
    await f.punchHole(2 * PS, 2 * PS) // resolves with the pin on page 12 still held
    t.equal(h.state, 'pinned', 'the pin elsewhere is still held')
    t.equal(fs.statfs().free, free0 + 2, 'the hole is freed')
    t.equal(mappedPages(m1), 6, 'only the range is unmapped from the first mapping')
    t.equal(mappedPages(m2), 8, 'the other mapping keeps its pages')
    h.release()
    await h.done
    t.same(dev.check(), [], 'no invariant violation')
    m1.unmap(); m2.unmap()
  })

  t.test(`${model}: after a break the page-cache entries go as breakEntries '${MODELS[model].breakEntries}' says; folios split; pages fault back in`, async t => {
    const pages = 2 * FOLIO_PAGES
    const { dev, fs, f } = await setup(model, { pages })
    t.teardown(() => dev.close())
    const dax = daxOf(fs)!
    const m = mmap(f, 0, pages * PS)
    m.populate()
    const head0 = f.pfnAt(0)!
    const head1 = f.pfnAt(FOLIO_PAGES)!
    const order = MODELS[model].folios ? 9 : 0
    t.equal(dev.page(head0).order, order, 'a 2 MiB extent is one folio where the model has them')
    const before = dax.stats().entries
    t.ok(before > 0, 'entries present')
    // punch two pages of the second chunk
    await f.punchHole((FOLIO_PAGES + 10) * PS, 2 * PS)
    const entries = dax.stats().entries
    const kept = MODELS[model].breakEntries === 'range-after-free'
    if (kept) {
      t.ok(entries > 0, 'entries of the pages not freed stay')
    } else {
      t.equal(entries, 0, 'every entry of the file is deleted by the break')
    }
    t.equal(dev.page(head0).order, kept ? order : 0, 'the folio of the untouched chunk is split when its entry is deleted')
    t.equal(dev.page(head1).order, 0, 'the punched chunk is no folio any more')
    t.equal(mappedPages(m), 0, 'nothing mapped after the break')
    const want = pattern(pages)
    want.fill(0, (FOLIO_PAGES + 10) * PS, (FOLIO_PAGES + 12) * PS)
    t.equal(differs(m.view(0, pages * PS), want), -1, 'pages fault back in, bytes as the file has them')
    t.equal(dev.page(head0).order, order, 'the intact chunk faults back in as one folio where the model has them')
    t.ok(dax.stats().entries > 0, 'faults re-insert entries')
    t.same(dev.check(), [], 'no invariant violation')
    m.unmap()
  })

  t.test(`${model}: an unlinked file pinned past its last unmap is freed when the pin goes (the final break)`, async t => {
    const { dev, fs, f } = await setup(model)
    t.teardown(() => dev.close())
    const m = mmap(f, 0, PAGES * PS, { write: true })
    m.populate()
    const p = f.pfnAt(2)!
    dev.pages.pin(p)
    const free0 = fs.statfs().free
    await f.close()
    await fs.unlink('/f')
    m.unmap()
    await macrotask()
    t.equal(fs.statfs().free, free0, 'release deferred while pinned')
    t.equal(daxOf(fs)!.stats().entries, MODELS[model].breakEntries === 'scope-before-wait' ? 0 : PAGES,
      'entries that hold page refs are dropped before the wait')
    dev.pages.unpin(p)
    for (let i = 0; i < 5 && fs.statfs().free === free0; i++) await macrotask()
    t.equal(fs.statfs().free, free0 + PAGES, 'freed after the unpin')
    t.same(dev.check(), [], 'clean, no hazard')
  })

  t.test(`${model}: partial munmap of PTE and PMD mappings`, async t => {
    const pages = 2 * FOLIO_PAGES
    const { dev, fs, f } = await setup(model, { pages })
    t.teardown(() => dev.close())
    const dax = daxOf(fs)!
    const idle = MODELS[model].idleRefcount
    // PTE mapping (of another file: a chunk with PTE entries is never PMD-faulted): just the pages go
    const g = await fs.open('/g', 'w+')
    g.write(pattern(8), 0)
    const small = mmap(g, 0, 8 * PS)
    small.populate()
    t.equal(mappedPages(small), 8, 'eight PTEs (the mapping is smaller than a PMD)')
    small.unmap(2 * PS, 2 * PS)
    t.same([...small.ptes].map(p => p !== PTE_NONE), [true, true, false, false, true, true, true, true], 'only pages 2 and 3 are unmapped')
    t.equal(await code(() => small.view(2 * PS, 1)), 'EFAULT', 'the unmapped part is gone')
    t.equal(small.view(4 * PS, 1)[0], 5, 'the rest stays live')
    small.unmap()
    // PMD mapping: a partial munmap zaps the whole PMD, the folio is not split
    const m = mmap(f, 0, pages * PS)
    const pmd0 = stats(dev).pmdFaults
    m.populate()
    t.equal(stats(dev).pmdFaults - pmd0, 2, 'two PMD faults')
    const head = f.pfnAt(0)!
    const order = MODELS[model].folios ? 9 : 0
    const entries = dax.stats().entries
    m.unmap(PS, PS)
    t.equal(m.pte(0), PTE_NONE, 'page 0 of the PMD is unmapped too')
    t.equal(m.pte(511 * PS), PTE_NONE, 'and page 511: the whole PMD is zapped')
    t.equal(m.pte(FOLIO_PAGES * PS), f.pfnAt(FOLIO_PAGES), 'the other PMD stays')
    t.equal(dev.page(head).order, order, 'the folio is not split')
    t.equal(dev.page(head).mapcount, 0, 'no mapping counted on it')
    t.equal(dev.page(head).refcount, idle + MODELS[model].entryRefs, 'its refcount is the entry\'s')
    t.equal(dax.stats().entries, entries, 'the page-cache entries stay')
    t.equal(await code(() => m.view(PS, 1)), 'EFAULT', 'the unmapped page is gone')
    t.equal(m.view(0, 1)[0], 1, 'page 0 faults back in')
    t.equal(m.pte(0), head)
    t.equal(m.pte(2 * PS), PTE_NONE, 'page by page, not as a PMD')
    t.equal(differs(m.view(2 * PS, 510 * PS), pattern(FOLIO_PAGES).subarray(2 * PS)), -1, 'the rest of the chunk faults back in')
    t.equal(dev.page(head).order, order, 'still one folio where the model has them')
    t.same(dev.check(), [], 'no invariant violation')
    m.unmap()
    t.equal(m.state, 'unmapped')
  })
}

t.test('breakScope is validated at mkfs and mount; fs.breakScope reads it back', async t => {
  const dev = await openDevice(undefined, { size: '16MiB', pageSize: PS, map: 'mem' })
  t.teardown(() => dev.close())
  for (const bad of ['whole', '', 'FILE', 1, 1n, Symbol('file'), null, {}] as unknown[]) {
    t.equal(await code(() => mkfs(dev, { breakScope: bad as BreakScope })), 'EINVAL', `mkfs refuses ${typeof bad === 'symbol' ? 'a Symbol' : typeof bad === 'bigint' ? '1n' : JSON.stringify(bad)}`)
  }
  const fs = await mkfs(dev, { breakScope: 'range' })
  t.equal(fs.breakScope, 'range')
  await fs.unmount()
  for (const bad of ['x', 2n, Symbol('range')] as unknown[]) {
    const e = await mount(dev, { breakScope: bad as BreakScope }).then(() => undefined, (err: unknown) => err as { code: string; message: string })
    t.equal(e?.code, 'EINVAL', 'mount refuses it')
    t.match(e?.message, /breakScope must be 'file' or 'range'/)
  }
  const fs2 = await mount(dev)
  t.equal(fs2.breakScope, 'file', 'a mount option, not stored: the default again')
  await fs2.unmount()
})
