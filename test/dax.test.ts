import t, { type Test } from 'tap'
import { setImmediate as macrotask } from 'node:timers/promises'
import { openDevice, type Device } from '../src/region/index.js'
import { mkfs, mount, daxOf, PTE_NONE, type DaxMapping, type MemoryFailureEvent } from '../src/dax/index.js'
import type { PmemFile, PmemFs } from '../src/fs/index.js'
import { MODELS, MODEL_NAMES, PIN_BIAS, type ModelName } from '../src/page/index.js'
import { code, track } from './fixtures/settle.js'

type TT = Test
const PS = 4096
const MiB = 1 << 20

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

async function setup(model: ModelName, opts: { fileBytes?: number; crashShadow?: boolean } = {}): Promise<{ dev: Device; fs: PmemFs; f: PmemFile }> {
  const dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PS, map: 'mem', crashShadow: opts.crashShadow })
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  const bytes = opts.fileBytes ?? 8 * PS
  if (bytes >= 2 * MiB) await f.fallocate(0, bytes)
  f.write(new Uint8Array(bytes).fill(0x5a), 0)
  await f.fsync()
  return { dev, fs, f }
}

/** stats(dev) (Record<string, number>) with typed counters. */
const stats = (dev: Device) => dev.stats() as ReturnType<Device['table']['stats']>

const mmap = (f: PmemFile, off: number, len: number, o: { write?: boolean; sync?: boolean } = {}): DaxMapping => f.mmap(off, len, o) as DaxMapping


function readAll(f: PmemFile, len: number, at = 0): Uint8Array {
  const b = new Uint8Array(len)
  f.read(b, at)
  return b
}

// The conformance vectors (one file per model) run in test/vectors.test.ts.

// ---------------------------------------------------------------------------------------------
// faults, views, folios
// ---------------------------------------------------------------------------------------------

t.test('fault path: entries once per file page, mappings per model, folio vs per-page counting', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model, { fileBytes: 4 * MiB })
    const s0 = stats(dev)
    const m = mmap(f, 0, 4 * MiB, { write: true })
    m.view(0, 2 * MiB)
    const head = f.pfnAt(0)!
    t.equal(head % 512, 0, `${model}: fallocated extent is 2 MiB aligned`)
    const s1 = stats(dev)
    t.equal(s1.faults - s0.faults, 1, `${model}: one fault maps the 2 MiB extent`)
    t.equal(s1.pmdFaults - s0.pmdFaults, 1, `${model}: a PMD fault`)
    t.equal(s1.folioFaults - s0.folioFaults, model === 'upstream' ? 1 : 0, `${model}: folioFaults`)
    for (let k = 0; k < 512; k++) if (m.pte(k * PS) !== head + k) { t.fail(`pte ${k}`); break }
    const tail = dev.page(head + 100)
    t.equal(tail.order, model === 'upstream' ? 9 : 0, `${model}: order`)
    t.equal(tail.index, 100, `${model}: page->index`)
    t.equal(tail.inode, f.ino, `${model}: page->mapping`)
    // pin of the whole extent: one folio atomic vs 512 biased adds
    dev.pages.pinRange(head, 512)
    const pinned = dev.page(head)
    if (model === 'upstream') t.match(pinned, { refcount: 513, pincount: 512 }, 'folio: n refs, n pincount on the head')
    else t.equal(pinned.refcount, (model === 'legacy' ? 1 : 1) + 1024, `${model}: each page +1024`)
    dev.pages.unpinRange(head, 512)
    // a second mapping of part of the chunk: PTE faults of subpages
    const m2 = mmap(f, 4 * PS, 4 * PS)
    m2.view(0, 4 * PS)
    const h = dev.page(head)
    if (model === 'upstream') t.match(h, { mapcount: 5, refcount: 5 }, 'PMD + 4 PTEs counted on the folio head')
    t.same(dev.check(), [], `${model}: clean while mapped`)
    m2.unmap()
    m.unmap()
    const idle = dev.page(head)
    t.equal(idle.refcount, MODELS[model].idleRefcount + MODELS[model].entryRefs, `${model}: entry refs only after unmap`)
    // order-0 faults elsewhere (the 8-page file of the second file)
    const g = await fs.open('/g', 'w+')
    g.write(new Uint8Array(3 * PS).fill(1), 0)
    const mg = mmap(g, 0, 3 * PS, { write: true })
    const before = stats(dev)
    mg.populate()
    t.equal(stats(dev).faults - before.faults, 3, `${model}: 3 PTE faults`)
    t.equal(stats(dev).pmdFaults - before.pmdFaults, 0, `${model}: no PMD fault on a small file`)
    t.equal(dev.page(g.pfnAt(0)!).order, 0)
    mg.unmap()
    t.same(dev.check(), [], `${model}: check clean`)
    await dev.close()
  }
})

t.test('page-table range forms equal single calls (the fault and zap paths issue runs)', async t => {
  // entryInsert / mapInsert / zap / entryDelete over runs, on flagless pages,
  // pages that carry entries and mappings already, pins, and (upstream) a folio.
  type Ev = 'entryInsert' | 'mapInsert' | 'zap' | 'entryDelete'
  const script: Array<[Ev | 'pin' | 'unpin' | 'associate', number, number]> = [
    ['associate', 10, 40], ['entryInsert', 10, 40], ['mapInsert', 10, 40], ['mapInsert', 20, 10], ['pin', 25, 1],
    ['zap', 20, 10], ['zap', 10, 40], ['entryDelete', 10, 40], ['unpin', 25, 1],
    ['associate', 512, 1], ['entryInsert', 512, 512], ['mapInsert', 512, 512], ['mapInsert', 600, 7],
    ['zap', 600, 7], ['zap', 512, 512], ['entryDelete', 512, 512],
  ]
  for (const model of MODEL_NAMES) {
    const finals: string[] = []
    for (const ranged of [false, true]) {
      const dev = await openDevice(undefined, { size: '8MiB', model, pageSize: PS, map: 'mem' })
      const tb = dev.table
      if (model === 'upstream') tb.makeFolio(512)
      for (const [op, pfn, n] of script) {
        if (op === 'pin' || op === 'unpin') { tb[op](pfn); continue }
        if (op === 'associate') { for (let k = 0; k < n; k++) tb.associate(pfn + k, 7, pfn + k); continue }
        const count = model === 'upstream' && pfn === 512 ? 1 : n
        if (ranged) tb[op](pfn, count)
        else for (let k = 0; k < count; k++) tb[op](pfn + k)
      }
      const pages: unknown[] = []
      for (let p = 0; p < 1100; p++) pages.push(tb.snapshot(p))
      finals.push(JSON.stringify({ pages, stats: tb.stats(), check: tb.check().map(v => [v.kind, v.pfn]) }))
      await dev.close()
    }
    t.equal(finals[1], finals[0], `${model}: range forms leave what single calls leave`)
  }
})

t.test('batched faults and zaps leave what the page-at-a-time path leaves (strict tables fault one page at a time)', async t => {
  for (const model of MODEL_NAMES) {
    const finals: Array<{ pages: string; stats: string; ptes: string; check: string }> = []
    for (const strict of [true, false]) {
      const dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PS, map: 'mem', strict })
      const fs = await mkfs(dev)
      const f = await fs.open('/f', 'w+')
      await f.fallocate(0, 8 * MiB)
      const g = await fs.open('/g', 'w+') // sparse: data at pages 0-2, 9, 20-29; holes between
      await g.truncate(64 * PS)
      g.write(new Uint8Array(3 * PS).fill(1), 0)
      g.write(new Uint8Array(PS).fill(2), 9 * PS)
      g.write(new Uint8Array(10 * PS).fill(3), 20 * PS)
      const maps: DaxMapping[] = []
      const whole = mmap(f, 0, 8 * MiB, { write: true }); maps.push(whole)
      whole.view(3 * PS, 5 * PS) // a PMD fault
      const inner = mmap(f, 2 * MiB + 4 * PS, 2 * MiB); maps.push(inner)
      inner.populate() // PTEs over entries of a chunk nobody faulted yet, then of the next one
      whole.populate() // PMDs over chunks with PTE-made entries: PTEs
      const part = mmap(f, 6 * MiB - 8 * PS, 16 * PS, { write: true }); maps.push(part)
      part.view(2 * PS, 10 * PS)
      const ro = mmap(g, 0, 64 * PS); maps.push(ro)
      ro.populate() // zero page over holes
      const rw = mmap(g, 0, 64 * PS, { write: true }); maps.push(rw)
      rw.views(0, 40 * PS) // holes allocate
      inner.unmap()
      await f.truncate(5 * MiB + 3 * PS) // zaps a PMD in part, PTE runs elsewhere
      await f.punchHole(MiB, 5 * PS)
      whole.view(MiB, 8 * PS) // refault in the punched hole: allocation
      await g.punchHole(20 * PS, 4 * PS)
      rw.populate()
      const pages: unknown[] = []
      for (let p = 0; p < dev.pageCount; p++) { const s = dev.page(p); if (s.refcount || s.mapcount || s.inode || s.flags.length || s.order) pages.push(s) }
      const st = stats(dev) as Record<string, number>
      finals.push({
        pages: JSON.stringify(pages),
        stats: JSON.stringify(Object.fromEntries(Object.entries(st).filter(([k]) => k !== 'layoutWaits'))),
        ptes: JSON.stringify(maps.filter(m => m.live).map(m => Array.from(m.ptes))),
        check: JSON.stringify(dev.check()),
      })
      await fs.unmount()
      await dev.close()
    }
    const [one, batched] = finals as [typeof finals[0], typeof finals[0]]
    t.equal(batched.check, '[]', `${model}: check clean`)
    t.equal(batched.pages, one.pages, `${model}: every page record`)
    t.equal(batched.stats, one.stats, `${model}: every counter`)
    t.equal(batched.ptes, one.ptes, `${model}: every pte`)
  }
})

t.test('views: contiguity, discontiguous extents, zero page, SIGBUS past EOF, persist + read back + remount', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const m = mmap(f, 0, 16 * PS, { write: true })
    t.equal(await code(() => mmap(f, 100, PS)), 'EINVAL', 'unaligned offset')
    t.equal(await code(() => m.view(8 * PS, 10)), 'SIGBUS', 'past EOF')
    t.equal(stats(dev).sigbus > 0, true, 'sigbus counted')
    const v = m.view(PS - 2, 4)
    t.same([...v], [0x5a, 0x5a, 0x5a, 0x5a], 'view spans two contiguous pages')
    v.set([1, 2, 3, 4])
    m.persist(PS - 2, 4)
    t.same([...readAll(f, 4, PS - 2)], [1, 2, 3, 4], 'DAX store visible to file.read')
    // a discontiguous file: extend with a hole, then allocate elsewhere
    const g = await fs.open('/g', 'w+')
    g.write(new Uint8Array(PS).fill(9), 0)
    f.write(new Uint8Array(PS).fill(7), 8 * PS) // page 8 comes after /g's block: not contiguous
    const mm = mmap(f, 0, 16 * PS, { write: true })
    t.not(f.pfnAt(8), f.pfnAt(7)! + 1, 'page 8 is not contiguous with page 7')
    if (mm.capabilities.addressRange) {
      // the mapping's own address range: one view over both extents
      const both = mm.view(7 * PS, 2 * PS)
      t.same([both[0], both[PS - 1], both[PS], both[2 * PS - 1]], [0x5a, 0x5a, 7, 7], 'one view across two extents')
    } else {
      t.equal(await code(() => mm.view(7 * PS, 2 * PS)), 'EINVAL', 'discontiguous range without an address range: EINVAL')
    }
    const segs = mm.views(7 * PS, 2 * PS)
    t.equal(segs.length, 2, 'two segments')
    t.equal(segs[0]!.offset, 7 * PS)
    t.equal(segs[1]!.bytes[0], 7)
    // a read-only mapping of a hole reads the zero page
    await f.truncate(12 * PS)
    const ro = await fs.open('/f', 'r')
    const mr = mmap(ro, 0, 12 * PS)
    const z = mr.view(10 * PS, PS)
    t.ok(z.every(b => b === 0), 'hole reads zeros')
    t.equal(mr.pte(10 * PS), PTE_NONE, 'zero page: no device page mapped')
    t.equal(f.pfnAt(10), null, 'read fault did not allocate')
    t.equal(await code(() => mr.fault(0, PS, true)), 'EFAULT', 'write gup on a read-only mapping')
    mr.fault(10 * PS, PS, false)
    // a writable mapping allocates the hole (journaled) and the fresh block is zeroed
    const w = mm.view(10 * PS, PS)
    t.ok(w.every(b => b === 0), 'new block zeroed')
    t.not(f.pfnAt(10), null, 'write fault allocated')
    w.fill(0xab)
    mm.persist(10 * PS, PS)
    t.same(dev.check(), [], 'clean')
    mr.unmap(); mm.unmap(); m.unmap()
    await ro.close(); await g.close(); await f.close()
    await fs.unmount()
    const fs2 = await mount(dev)
    const f2 = await fs2.open('/f', 'r')
    t.equal(readAll(f2, 1, 10 * PS)[0], 0xab, 'data stored through a view survives remount')
    t.same([...readAll(f2, 4, PS - 2)], [1, 2, 3, 4])
    t.same(dev.check(), [], 'clean after remount')
    await dev.close()
  }
})

// ---------------------------------------------------------------------------------------------
// truncate / punch-hole: the layout break
// ---------------------------------------------------------------------------------------------

t.test('views are stale after truncate and punch-hole; refault: SIGBUS past EOF, allocation in a hole', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    const m2 = mmap(f, 4 * PS, 4 * PS, { write: true })
    m.populate(); m2.populate()
    const old5 = f.pfnAt(5)!
    const free0 = fs.statfs().free
    await f.truncate(6 * PS)
    t.equal(m.pte(6 * PS), PTE_NONE, 'm: truncated range unmapped')
    t.equal(m2.pte(2 * PS), PTE_NONE, 'm2: truncated range unmapped')
    // whole-file break (SPEC §3 ★): the kept pages are unmapped too, and fault back in to the same blocks
    t.equal(m.pte(5 * PS), PTE_NONE, 'm: pages below EOF are unmapped too (whole-file break)')
    t.equal(m.pfn(5 * PS), old5, 'm: ... and fault back in to the same block')
    t.equal(fs.statfs().free, free0 + 2, 'blocks freed')
    t.equal(await code(() => m.view(6 * PS, 1)), 'SIGBUS', 'refault past the new EOF')
    t.equal(await code(() => m2.view(3 * PS, 1)), 'SIGBUS')
    t.same(dev.check(), [], 'clean after truncate')
    // punch a hole: unmapped, freed, refault allocates again
    const p2 = f.pfnAt(2)!
    await f.punchHole(2 * PS, PS)
    t.equal(m.pte(2 * PS), PTE_NONE, 'hole unmapped')
    t.equal(f.pfnAt(2), null, 'hole deallocated')
    t.same(dev.check(), [], 'clean after punch-hole')
    const v = m.view(2 * PS, PS)
    t.ok(v.every(b => b === 0), 'refault in the hole: a fresh zeroed block')
    t.not(f.pfnAt(2), null, 'allocated again')
    t.equal(dev.page(p2).inode === 0 || f.pfnAt(2) === p2, true, 'old block disassociated (or reused for this page)')
    m.unmap(); m2.unmap()
    t.same(dev.check(), [], 'clean')
    await dev.close()
  }
})

t.test('pin holds truncate and punch-hole; timeout and abort change nothing', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    m.view(0, 8 * PS).fill(0x33)
    m.persist(0, 8 * PS)
    const p3 = f.pfnAt(3)!
    dev.pages.pin(p3)
    const before = { size: f.size, bytes: readAll(f, 8 * PS), ext: JSON.stringify(f.node.extents()), free: fs.statfs().free }
    const waits0 = stats(dev).layoutWaits
    t.equal(await code(() => f.truncate(0, { timeoutMs: 20 })), 'ETIMEDOUT', `${model}: truncate times out`)
    t.ok(stats(dev).layoutWaits > waits0, 'layoutWaits counted')
    const ac = new AbortController()
    const pend = track(f.punchHole(2 * PS, 3 * PS, { signal: ac.signal }))
    await macrotask()
    t.equal(pend.settled(), false, 'punch-hole pending')
    ac.abort()
    t.equal(await code(() => pend.p), 'ABORT_ERR', 'abort')
    try { await pend.p } catch (e) { t.equal((e as Error).name, 'AbortError') }
    t.equal(f.size, before.size, 'size unchanged')
    t.same(readAll(f, 8 * PS), before.bytes, 'bytes unchanged')
    t.equal(JSON.stringify(f.node.extents()), before.ext, 'blocks unchanged')
    t.equal(fs.statfs().free, before.free, 'free count unchanged')
    t.equal(m.pte(3 * PS), PTE_NONE, 'the range stays unmapped')
    t.equal(m.view(3 * PS, 1)[0], 0x33, '... and refaults on the next view')
    // pending until the unpin, then resolves
    const tr = track(f.truncate(PS))
    await macrotask(); await macrotask()
    t.equal(tr.settled(), false, 'truncate pending while pinned')
    const t0 = performance.now()
    dev.pages.unpin(p3)
    await tr.p
    t.ok(performance.now() - t0 < 1000, 'resolves promptly after the unpin')
    t.equal(f.size, PS)
    t.equal(f.pfnAt(3), null)
    t.same(dev.check(), [], 'clean')
    m.unmap()
    await dev.close()
  }
})

t.test('a page faulted in again during the layout wait is zapped again: truncate / punch-hole still end after the unpin', async t => {
  // Linux blocks such faults on the invalidate lock; here the fault cannot
  // block, so it kicks the wait. Without that, upstream waited forever: the
  // unpin left the new mapping's ref (no 1->0 transition, no wake-up).
  const guard = <T>(p: Promise<T>): Promise<T | 'hung'> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    const hung = new Promise<'hung'>(resolve => { timer = setTimeout(() => resolve('hung'), 5000) })
    return Promise.race([p, hung]).finally(() => clearTimeout(timer))
  }
  for (const model of MODEL_NAMES) {
    for (const shape of ['pte', 'folio'] as const) {
      const bytes = shape === 'folio' ? 4 * MiB : 8 * PS
      const { dev, f } = await setup(model, { fileBytes: bytes })
      const m = mmap(f, 0, bytes, { write: true })
      m.populate()
      const pfn = m.pfn(3 * PS)
      dev.pages.pin(pfn)
      const tr = track(f.truncate(0))
      await macrotask()
      t.equal(tr.settled(), false, `${model} ${shape}: truncate waits for the pin`)
      m.view(3 * PS, PS) // faulted in again while the truncate waits
      if (shape === 'folio') m.populate()
      dev.pages.unpin(pfn)
      t.not(await guard(tr.p), 'hung', `${model} ${shape}: truncate ended after the unpin`)
      t.equal(f.size, 0)
      t.equal(m.pte(3 * PS), PTE_NONE, `${model} ${shape}: nothing left mapped`)
      t.same(dev.check(), [], `${model} ${shape}: clean`)
      // punch-hole of a writable mapping: the refault during the wait is zapped; afterwards it allocates anew
      await f.truncate(8 * PS)
      const p2 = m.pfn(5 * PS)
      dev.pages.pin(p2)
      const ph = track(f.punchHole(4 * PS, 2 * PS))
      await macrotask()
      t.equal(ph.settled(), false, `${model} ${shape}: punch-hole waits`)
      m.view(5 * PS, PS)
      dev.pages.unpin(p2)
      t.not(await guard(ph.p), 'hung', `${model} ${shape}: punch-hole ended after the unpin`)
      t.equal(f.pfnAt(5), null, `${model} ${shape}: the hole is a hole`)
      t.same(dev.check(), [], `${model} ${shape}: clean after the punch-hole`)
      m.unmap()
      await dev.close()
    }
  }
})

t.test('concurrent truncates of one file serialise; other files are not held up', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const g = await fs.open('/g', 'w+')
    g.write(new Uint8Array(4 * PS).fill(1), 0)
    const m = mmap(f, 0, 8 * PS, { write: true })
    m.populate()
    const p6 = f.pfnAt(6)!
    dev.pages.pin(p6)
    const order: string[] = []
    const a = track(f.truncate(4 * PS).then(() => { order.push('a') }))
    const b = track(f.truncate(2 * PS).then(() => { order.push('b') }))
    await macrotask(); await macrotask()
    t.equal(a.settled() || b.settled(), false, 'both pending (b queued behind a)')
    await g.truncate(PS)
    t.equal(g.size, PS, 'another file truncates meanwhile')
    dev.pages.unpin(p6)
    await Promise.all([a.p, b.p])
    t.same(order, ['a', 'b'], 'in order')
    t.equal(f.size, 2 * PS)
    t.same(dev.check(), [], 'clean')
    m.unmap()
    await dev.close()
  }
})

t.test('upstream and dax-gup wait for a plain get; legacy waits for refcount 1; dax-gup-v1 frees and quarantines (the hazard)', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    m.populate()
    const p0 = f.pfnAt(0)!
    dev.pages.get(p0)
    if (MODELS[model].busy !== 'maybe-dma-pinned') {
      t.equal(await code(() => f.truncate(0, { timeoutMs: 30 })), 'ETIMEDOUT', `${model}: a plain get holds truncate`)
      const tr = track(f.truncate(0))
      await macrotask()
      t.equal(tr.settled(), false)
      dev.pages.put(p0)
      await tr.p
      t.same(dev.check(), [], `${model}: clean`)
    } else {
      await f.truncate(0)
      const v = dev.check()
      t.ok(v.some(x => x.kind === 'use-after-free hazard' && x.pfn === p0), 'hazard reported')
      t.same(fs.quarantined().map(([p]) => p).includes(p0), true, 'block quarantined')
      t.equal(fs.blockOwner(p0).kind, 'quarantine')
      t.equal(fs.statfs().quarantined, 1)
      // the quarantined block is never handed to another file while referenced
      const g = await fs.open('/g', 'w+')
      g.write(new Uint8Array(64 * PS).fill(2), 0)
      for (let i = 0; i < 64; i++) t.not(g.pfnAt(i), p0)
      t.equal(daxOf(fs)!.reclaimQuarantine(), 0, 'still referenced: stays quarantined')
      dev.pages.put(p0)
      t.match(dev.page(p0), { refcount: MODELS[model].idleRefcount })
      t.equal(daxOf(fs)!.reclaimQuarantine(), 1, 'idle again: back to the free list')
      t.equal(fs.blockOwner(p0).kind, 'free')
    }
    m.unmap()
    await dev.close()
  }
})

t.test('2 MiB folio truncated in part: zapped whole, split, the rest refaults per page', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, f } = await setup(model, { fileBytes: 4 * MiB })
    const m = mmap(f, 0, 4 * MiB, { write: true })
    m.populate()
    const head = f.pfnAt(0)!
    await f.punchHole(100 * PS, PS)
    t.equal(m.pte(0), PTE_NONE, 'the whole PMD is zapped')
    t.equal(dev.page(head).order, 0, 'folio split (or never made)')
    t.same(dev.check(), [], 'clean after the partial punch')
    t.equal(m.view(5 * PS, 1)[0], 0x5a, 'data kept; refault')
    t.equal(dev.page(head + 5).order, 0)
    await f.truncate(3 * MiB)
    t.same(dev.check(), [], 'clean after truncating into the second chunk')
    m.unmap()
    t.same(dev.check(), [], 'clean')
    await dev.close()
  }
})

// ---------------------------------------------------------------------------------------------
// lifetimes and device events
// ---------------------------------------------------------------------------------------------

t.test('close and unlink of a mapped file keep the blocks until the last mapping goes', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    const m2 = mmap(f, 0, 4 * PS)
    m.view(0, 8 * PS).fill(0x44)
    m2.populate()
    const free0 = fs.statfs().free
    await f.close()
    await fs.unlink('/f')
    t.equal(fs.statfs().free, free0, 'blocks kept while mapped')
    t.equal(m.view(7 * PS, 1)[0], 0x44, 'data still there')
    m.unmap()
    t.equal(fs.statfs().free, free0, 'one mapping left')
    t.equal(await code(() => m.view(0, 1)), 'EFAULT', 'unmapped mapping')
    m.unmap() // idempotent
    m2.unmap()
    t.equal(fs.statfs().free, free0 + 8, 'freed with the last mapping')
    t.same(dev.check(), [], 'clean')
    await dev.close()
  }
})

// An unlinked file pinned past its last unmap: test/break.test.ts (the final break, every model).

t.test('poison: faulting a poisoned page is SIGBUS; mapped pages poisoned later raise memory-failure and are unmapped', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    const m2 = mmap(f, 0, 8 * PS)
    m.populate(); m2.view(0, 4 * PS)
    const events: MemoryFailureEvent[] = []
    const events2: MemoryFailureEvent[] = []
    m.on('memory-failure', e => events.push(e))
    m2.on('memory-failure', e => events2.push(e))
    const p1 = f.pfnAt(1)!
    dev.poison(p1 * PS + 512, 512)
    t.same(events, [{ offset: PS + 512, length: 512, fileOffset: PS + 512, pfn: p1 }], 'm notified')
    t.equal(events2.length, 1, 'm2 notified')
    t.equal(m.pte(PS), PTE_NONE, 'poisoned page unmapped')
    t.equal(m.pte(0), f.pfnAt(0), 'others stay')
    t.equal(await code(() => m.view(PS, 1)), 'SIGBUS', 'refault: memory failure')
    t.equal(await code(() => m.fault(PS, 1, false)), 'EHWPOISON', 'gup: EHWPOISON')
    const p5 = f.pfnAt(5)!
    dev.poison(p5 * PS, 512)
    t.equal(events.length, 2)
    t.equal(events2.length, 1, 'm2 did not map page 5')
    m.populate() // skips poisoned pages, as mm_populate
    t.equal(m.pte(5 * PS), PTE_NONE)
    t.ok(stats(dev).memoryFailures >= 2)
    m.unmap(); m2.unmap()
    t.same(dev.check(), [], 'clean')
    await dev.close()
  }
})

t.test('crash kills every mapping of the old life; unbind unmaps first, then ENXIO', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, f } = await setup(model, { crashShadow: true })
    const m = mmap(f, 0, 8 * PS, { write: true })
    m.populate()
    const st = new Int32Array(m.share().state)
    await dev.crash({ keep: 'all' })
    t.equal(m.live, false, 'dead')
    t.equal(st[0], 1, 'state word says dead to workers')
    t.equal(await code(() => m.view(0, 1)), 'ENXIO')
    t.equal(await code(() => m.populate()), 'ENXIO')
    m.unmap() // harmless
    const fs2 = await mount(dev)
    const f2 = await fs2.open('/f', 'r+')
    const m2 = mmap(f2, 0, 8 * PS, { write: true })
    t.equal(m2.view(0, 1)[0], 0x5a, 'the new life maps fine')
    t.same(dev.check(), [], 'clean after crash + remount')
    // unbind: mappings are zapped before the wait, entries dropped, then ENXIO
    await dev.unbind({ timeoutMs: 1000 })
    t.equal(await code(() => m2.view(0, 1)), 'ENXIO', 'unbound')
    t.equal(m2.pte(0), PTE_NONE)
    await dev.close()
  }
})

t.test('unbind with a pinned page: dax-gup waits for the unpin; the others report a use-after-unbind hazard', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, f } = await setup(model)
    const m = mmap(f, 0, 8 * PS, { write: true })
    m.populate()
    const p = f.pfnAt(0)!
    dev.pages.pin(p)
    if (MODELS[model].unbindWaits === 'pgmap-base') {
      // memunmap_pages waits for pgmap refs only: the pin does not hold it
      await dev.unbind({ timeoutMs: 5000 })
      t.equal(await code(() => m.view(0, 1)), 'ENXIO', `${model}: unbound with the pin held`)
      const v = dev.check().filter(x => x.kind === 'use-after-unbind hazard')
      t.match(v, [{ invariant: 6, pfn: p, model, op: 'unbind', found: MODELS[model].idleRefcount + PIN_BIAS }], `${model}: the pinned page is reported`)
      t.equal(dev.stats().hazards, 1, 'counted')
      await dev.close()
      continue
    }
    t.equal(await code(() => dev.unbind({ timeoutMs: 20 })), 'ETIMEDOUT', `${model}: unbind waits`)
    t.equal(m.pte(0), PTE_NONE, 'unmapped before the wait')
    t.equal(m.live, true, 'mapping survives the failed unbind')
    t.equal(m.view(0, 1)[0], 0x5a, 'and refaults')
    const u = track(dev.unbind())
    await macrotask()
    t.equal(u.settled(), false)
    dev.table.unpin(p)
    await u.p
    t.equal(await code(() => m.view(0, 1)), 'ENXIO')
    await dev.close()
  }
})

t.test('unmount tears mappings down (EIO) and leaves the table clean', async t => {
  for (const model of MODEL_NAMES) {
    const { dev, fs, f } = await setup(model, { fileBytes: 4 * MiB })
    const m = mmap(f, 0, 4 * MiB, { write: true })
    m.populate()
    const head = f.pfnAt(0)!
    await fs.unmount()
    t.equal(await code(() => m.view(0, 1)), 'EIO')
    t.match(dev.page(head), { mapcount: 0, inode: 0, order: 0 })
    t.same(dev.check(), [], 'clean after unmount')
    const fs2 = await mount(dev)
    const f2 = await fs2.open('/f', 'r+')
    const m2 = mmap(f2, 0, 4 * MiB, { write: true })
    m2.populate()
    t.equal(dev.page(head).order, model === 'upstream' ? 9 : 0, 'folio made again')
    m2.unmap()
    t.same(dev.check(), [], 'clean')
    await dev.close()
  }
})

t.test('gup-fast protocol: share() and fault()', async t => {
  const { dev, f } = await setup('upstream')
  const m = mmap(f, 0, 8 * PS, { write: true })
  const sh = m.share()
  t.match(sh, { id: m.id, offset: 0, length: 8 * PS, writable: true, pageSize: PS, generation: dev.generation })
  const ptes = new Int32Array(sh.ptes)
  t.equal(ptes[3], PTE_NONE)
  m.fault(3 * PS, 2 * PS, true)
  t.equal(ptes[3], f.pfnAt(3))
  t.equal(ptes[4], f.pfnAt(4))
  // pin via the pte, then truncate: the zap clears the pte first and the truncate waits for the pin
  const p = Atomics.load(ptes, 3)
  dev.pages.pin(p)
  t.equal(Atomics.load(ptes, 3), p, 're-check ok')
  const tr = track(f.truncate(0))
  await macrotask()
  t.equal(Atomics.load(ptes, 3), PTE_NONE, 'pte cleared before the wait')
  t.equal(tr.settled(), false)
  dev.pages.unpin(p)
  await tr.p
  t.equal(await code(() => m.fault(0, PS, false)), 'SIGBUS', 'past EOF')
  m.unmap()
  t.equal(new Int32Array(sh.state)[0], 1, 'state word: unmapped')
  t.same(dev.check(), [], 'clean')
  await dev.close()
})

t.test('SPEC §8: mmap options, argument names in mapping errors, small JSON of fs/file/map', async t => {
  const { inspect } = await import('node:util')
  const { dev, fs, f } = await setup('upstream', { fileBytes: 4 * PS })
  t.teardown(async () => { await fs.unmount().catch(() => {}); await dev.close() })
  t.throws(() => f.mmap(0, PS, null as never), { code: 'EINVAL', syscall: 'mmap', message: /options must be an object/ })
  t.throws(() => f.mmap(0, PS, 5 as never), { code: 'EINVAL', syscall: 'mmap', message: /options must be an object/ })
  t.throws(() => f.mmap(0, PS, { write: 'yes' } as never), { code: 'EINVAL', syscall: 'mmap', message: /write must be a boolean, got 'yes'/ })
  t.throws(() => f.mmap(0, PS, { sync: 1 } as never), { code: 'EINVAL', syscall: 'mmap', message: /sync must be a boolean/ })
  const m = f.mmap(0, 4 * PS, { write: true }) as DaxMapping
  t.throws(() => m.view(0, -1), { code: 'EINVAL', message: /length must be a non-negative integer, got -1/ }, 'no "[0, +-1)"')
  t.throws(() => m.view(-1, 1), { code: 'EINVAL', message: /offset must be a non-negative integer, got -1/ }, 'no "[-1, +1)"')
  t.throws(() => m.view('3' as never, 1), { code: 'EINVAL', message: /offset must be a non-negative integer, got '3'/ })
  t.throws(() => m.view(0, 5 * PS), { code: 'EINVAL', message: /range \[0, 0\+20480\) is outside the 16384-byte mapping/ })
  for (const [name, v, has] of [['fs', fs, dev.path ?? 'PmemFs'], ['file', f, '/f'], ['map', m, '/f']] as const) {
    const j = JSON.stringify(v)
    t.ok(j.length < 4096, `JSON.stringify(${name}) is ${j.length} bytes`)
    t.ok(j.includes(has), `${name} JSON names ${has}`)
    t.ok(inspect(v).length < 4096, `inspect(${name}) is small`)
  }
  t.match(JSON.parse(JSON.stringify(f)), { type: 'PmemFile', path: '/f', ino: f.ino })
  t.match(JSON.parse(JSON.stringify(m)), { type: 'DaxMapping', path: '/f', ino: f.ino, length: 4 * PS, state: 'live' })
  m.unmap()
})
