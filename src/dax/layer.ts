/**
 * The DAX layer of one mounted file system (SPEC §3, §5, §7): the per-file
 * mapping tree (the i_mmap + xarray analogue), the fault path per model, the
 * zap path, the layout break that truncate / punch-hole wait on, the onFree
 * hook (entry deletion, quarantine of the dax-gup-v1 hazard), the invariant
 * checker, and the device events (poison → memory failure, unbind, crash).
 *
 * Counting is the page table's (src/page): this file only decides which
 * events happen, in which order, on which pfns; it never asks which model
 * runs except `model.folios` (is a PMD entry one compound folio?).
 */
import { isPmemuError, pmemError, PmemuAbortError, type PmemuError } from '../errors.js'
import type { FsNode, PmemFile, PmemFs } from '../fs/index.js'
import type { PageTable, Violation } from '../page/index.js'
import { Device } from '../region/index.js'
import { subsystemLogger, type Logger } from '../util/log.js'
import { DaxMapping, type MemoryFailureEvent } from './mapping.js'
import { FileTree, PMD_PAGES, type Chunk } from './tree.js'
import { checkDax } from './check.js'
import { PTE_NONE } from './types.js'
import type { ZapReason } from './range.js'

// The fault and zap paths issue the DAX events through the page table's range
// forms (entryInsert(pfn, n), mapInsert(pfn, n), zap(pfn, n)), one call per run
// of contiguous pfns; test/dax.test.ts checks them against n single calls (an
// earlier wasm core took a refcount-only fast lane on flagless order-0 pages
// and skipped the entry flag / mapcount).

export interface DaxStats {
  files: number
  mappings: number
  entries: number
  quarantined: number
}

const layers = new WeakMap<PmemFs, DaxLayer>()

/** The DAX layer attached to `fs`, if any. */
export function daxOf(fs: PmemFs): DaxLayer | undefined {
  return layers.get(fs)
}

/** True when `d` is a pmemu Device (with a page table), not a bare FsDevice stub. */
export function isDaxCapable(d: unknown): d is Device {
  return d instanceof Device
}

/**
 * Attach the DAX layer to a mounted file system: installs the mmap factory,
 * the layout breaker and the onFree hook, registers the invariant checker
 * and the device listeners. Idempotent (returns the existing layer).
 */
export function attachDax(fs: PmemFs): DaxLayer {
  const have = layers.get(fs)
  if (have) return have
  if (!isDaxCapable(fs.device)) {
    throw pmemError('EINVAL', 'attachDax', 'the file system is not on a pmemu Device (DAX needs the page table)')
  }
  fs.assertLive('attachDax')
  const layer = new DaxLayer(fs, fs.device)
  layers.set(fs, layer)
  return layer
}

interface BusyRun { pfn: number; count: number }

/** A layout break in progress on file pages [first, end) (widened); `kick` ends its current wait. */
interface Breaker { first: number; end: number; kick: AbortController | undefined }

/** How many recently freed blocks the checker keeps watching (invariant 4). */
const FREED_WATCH = 4096

export { FileTree, PMD_PAGES, type Chunk }

// No "implements MappingHost": the members it names are internal (stripped from the
// published .d.ts, where the clause would then fail a consumer's type check); the
// mapping takes the layer as a MappingHost, which still checks the fit at that call.
export class DaxLayer {
  readonly fs: PmemFs
  readonly dev: Device
  readonly table: PageTable
  readonly pageSize: number
  readonly log: Logger
  /** Files with mappings or page-cache entries, by inode number. */
  readonly trees = new Map<number, FileTree>()
  /** Blocks onFree quarantined (freed while referenced: the dax-gup-v1 hazard). */
  readonly quarantine = new Set<number>()
  /**
   * The last FREED_WATCH blocks freed through onFree, checked (invariant 4)
   * until reallocated: a ring, so a free costs one store (a Set trimmed per
   * free walked its deleted holes: ~1.8 µs per block on a 1 GiB truncate).
   */
  readonly #freedWatch = new Int32Array(FREED_WATCH).fill(-1)
  #freedAt = 0
  /** Layout breaks in progress, by inode number. */
  readonly #breakers = new Map<number, Set<Breaker>>()
  #dead: (() => PmemuError) | undefined
  readonly #undo: Array<() => void> = []

  constructor(fs: PmemFs, dev: Device) {
    this.fs = fs
    this.dev = dev
    this.table = dev.table
    this.pageSize = dev.pageSize
    this.log = subsystemLogger(dev.log, 'dax')
    // One extension: mmap, layout breaks, frees, and unmount (also fsck's repair
    // unmount) tearing every mapping down first.
    this.#undo.push(fs.attach({
      name: 'dax',
      mmap: (file, off, len, o) => this.mmap(file, off, len, o),
      breakLayout: (file, first, end, o) => this.breakLayout(file, first, end, o),
      onFree: (pfn, info) => this.onFree(pfn, info),
      beforeUnmount: () => this.#teardown(),
    }))
    this.#undo.push(this.table.addChecker(() => this.check()))
    this.#undo.push(dev.attach({
      poison: range => this.#memoryFailure(range.offset, range.length),
      unbind: () => this.#unbind(),
      dead: reason => this.#deviceDead(reason),
    }))
  }

  get model(): PageTable['model'] { return this.table.model }

  /** @internal */
  generationOk(m: DaxMapping): boolean { return m.generation === this.dev.generation }

  /** Summary counts. */
  stats(): DaxStats {
    let mappings = 0
    let entries = 0
    for (const t of this.trees.values()) {
      mappings += t.mappings.size
      for (const ch of t.chunks.values()) entries += ch.folio ? 1 : ch.count
    }
    return { files: this.trees.size, mappings, entries, quarantined: this.quarantine.size }
  }

  /** Every live mapping of the file with inode `ino`. */
  mappingsOf(ino: number): DaxMapping[] {
    return [...(this.trees.get(ino)?.mappings ?? [])]
  }

  #assertUsable(op: string, path?: string): void {
    if (this.#dead) throw this.#dead()
    this.dev.assertLive(op)
    this.fs.assertLive(op, path)
  }

  #tree(node: FsNode): FileTree {
    let t = this.trees.get(node.ino)
    if (!t || t.node !== node) {
      const old = t
      t = new FileTree(node.ino, node)
      if (old) for (const [c, ch] of old.chunks) t.chunks.set(c, ch)
      this.trees.set(node.ino, t)
    }
    return t
  }

  #maybeDropTree(t: FileTree): void {
    if (t.mappings.size === 0 && t.chunks.size === 0 && this.trees.get(t.ino) === t) this.trees.delete(t.ino)
  }

  // ------------------------------------------------------------------ mmap

  /** The mmap factory (file.mmap has validated alignment, access and the file type). */
  mmap(file: PmemFile, offset: number, length: number, opts: { write: boolean; sync: boolean }): DaxMapping {
    this.#assertUsable('mmap', file.path)
    const tree = this.#tree(file.node)
    const m = new DaxMapping(this, tree, file, offset, length, opts, this.dev.generation)
    file.node.hold()
    tree.mappings.add(m)
    this.log.debug({ id: m.id, ino: m.ino, offset, length, write: opts.write }, 'mmap')
    return m
  }

  /** @internal a dead mapping: no counters change (the device is gone or reset). */
  kill(m: DaxMapping, err: () => PmemuError, why: ZapReason = 'crash'): void {
    m.ptes.fill(PTE_NONE)
    m._zapped(0, m.pages, why)
    m.pmd.clear()
    m._setState('dead', err)
    m.tree.mappings.delete(m)
  }

  /** @internal munmap */
  unmap(m: DaxMapping): void {
    if (!this.generationOk(m) || this.#dead) {
      this.kill(m, this.#dead ?? (() => pmemError('ENXIO', 'unmap', 'the device crashed', { path: m.path })))
      return
    }
    this.#zapMapping(m, 0, m.pages, 'unmap')
    m._setState('unmapped')
    m.tree.mappings.delete(m)
    this.#maybeDropTree(m.tree)
    this.#releaseHold(m)
    this.log.debug({ id: m.id, ino: m.ino }, 'unmap')
  }

  /** @internal partial munmap of mapping pages [j0, j1) (the mapping keeps the rest). */
  unmapRange(m: DaxMapping, j0: number, j1: number): void {
    if (!this.generationOk(m) || this.#dead) {
      this.kill(m, this.#dead ?? (() => pmemError('ENXIO', 'unmap', 'the device crashed', { path: m.path })))
      return
    }
    this.#zapMapping(m, j0, j1, 'unmap')
    this.log.debug({ id: m.id, ino: m.ino, j0, j1 }, 'partial unmap')
  }

  /**
   * The mapping's hold on the inode goes. If the file is unlinked and its
   * pages are still busy (a DMA pin outlived the mapping), the release — and
   * with it the freeing of the blocks — waits for them, as Linux 6.15's
   * dax_break_layout_final() does at eviction.
   */
  #releaseHold(m: DaxMapping): void {
    const node = m.node
    const release = (): void => {
      try { node.release() } catch (e) { this.log.warn({ err: e, ino: node.ino }, 'release of a mapping hold failed') }
    }
    try {
      if (node.nlink === 0 && node.holds === 1 && node.openCount === 0) {
        // the reworked dax-gup's entries hold page refs: the final break drops them before it waits
        const tree = this.trees.get(node.ino)
        if (tree && this.model.breakEntries === 'scope-before-wait') this.#evictAll(tree)
        const runs = this.#busyRuns(node, 0, Number.MAX_SAFE_INTEGER)
        if (runs.length > 0) {
          this.log.debug({ ino: node.ino, runs: runs.length }, 'unlinked file still busy: release deferred')
          void (async () => {
            for (const r of runs) await this.table.waitIdle(r.pfn, r.count)
          })().catch(() => undefined).finally(release)
          return
        }
      }
    } catch { /* fs dead: plain release */ }
    release()
  }

  // ------------------------------------------------------------------ faults

  /** @internal fault mapping pages [j0, j1). `kind` 'cpu' (view: SIGBUS on poison) or 'gup' (EHWPOISON). */
  faultRange(m: DaxMapping, j0: number, j1: number, _write: boolean, kind: 'cpu' | 'gup', op: string): void {
    if (this.#dead) throw this.#dead()
    const ptes = m.ptes
    let j = j0
    while (j < j1 && ptes[j] !== PTE_NONE) j++
    if (j >= j1) return
    this.#assertUsable(op, m.path)
    try {
      this.#faultSpan(m, j, j1, Math.ceil(m.node.size / this.pageSize), kind, op, false)
    } finally {
      if (this.#breakers.size > 0) this.#kickBreakers(m.ino, m.firstIndex + j, m.firstIndex + j1)
    }
  }

  /** @internal MAP_POPULATE: fault below EOF, skip pages that fail (poison), as mm_populate ignores errors. */
  populate(m: DaxMapping, from = 0, to = m.pages): void {
    this.#assertUsable('populate', m.path)
    const eof = Math.ceil(m.node.size / this.pageSize)
    const end = Math.max(0, Math.min(to, eof - m.firstIndex))
    if (from >= end) return
    try {
      this.#faultSpan(m, from, end, eof, 'cpu', 'populate', true)
    } finally {
      if (this.#breakers.size > 0) this.#kickBreakers(m.ino, m.firstIndex + from, m.firstIndex + end)
    }
  }

  /**
   * Fault the unmapped pages of mapping pages [j, j1), as if one page at a
   * time in order (#faultPage), but batched: a PMD fault is tried once per
   * 2 MiB chunk (its outcome cannot change for the later pages of the chunk
   * in this call), then the rest of the chunk is mapped in runs — one extent
   * lookup and one range call of the page table per run of pages backed by
   * contiguous blocks. With poison on the device, or a strict page table
   * (whose range forms roll a failing run back whole, where single pages
   * would have left the earlier ones done), pages go one at a time.
   * `populate`: pages that fail with SIGBUS / EHWPOISON are skipped.
   */
  #faultSpan(m: DaxMapping, j: number, j1: number, eof: number, kind: 'cpu' | 'gup', op: string, populate: boolean): void {
    const ptes = m.ptes
    const first = m.firstIndex
    const single = this.table.strict || this.#anyPoison()
    while (j < j1) {
      if (ptes[j] !== PTE_NONE) { j++; continue }
      const index = first + j
      if (single || index >= eof) {
        if (!populate) this.#faultPage(m, j, eof, kind, op)
        else {
          try {
            this.#faultPage(m, j, eof, kind, op)
          } catch (e) {
            if (!isPmemuError(e, 'SIGBUS') && !isPmemuError(e, 'EHWPOISON')) throw e
          }
        }
        j++
        continue
      }
      const chunkEnd = index - (index % PMD_PAGES) + PMD_PAGES
      if (this.#pmdFault(m, index, eof)) { j = chunkEnd - first; continue }
      const stop = Math.min(j1, chunkEnd - first, eof - first)
      this.#pteRuns(m, j, stop, kind, op)
      j = stop
    }
  }

  /**
   * Order-0 faults of the unmapped pages of [j, stop) (all in one chunk,
   * below EOF, no poison, not strict): pages whose page-cache entry exists
   * get their mapping in runs of contiguous pfns; pages without one are
   * associated, entered and mapped in runs of one extent; a hole goes
   * through #pteFault (zero page, or an allocation on a write fault).
   * Counters, entries and dirty ranges end up as the per-page path leaves them.
   */
  #pteRuns(m: DaxMapping, j: number, stop: number, kind: 'cpu' | 'gup', op: string): void {
    const ptes = m.ptes
    const first = m.firstIndex
    const tree = m.tree
    const node = m.node
    const t = this.table
    const ps = this.pageSize
    const ino = m.ino
    const writable = m.writable
    const c = Math.floor((first + j) / PMD_PAGES)
    const cbase = c * PMD_PAGES
    let chunk = tree.chunks.get(c)
    while (j < stop) {
      if (ptes[j] !== PTE_NONE) { j++; continue }
      const index = first + j
      const k = index - cbase
      const have = chunk ? chunk.pfns[k]! : PTE_NONE
      let n = 1
      let pfn: number
      if (have !== PTE_NONE) {
        const pfns = chunk!.pfns
        while (j + n < stop && ptes[j + n] === PTE_NONE && pfns[k + n] === have + n) n++
        pfn = have
      } else {
        // one page left: the block alone (pfnAt allocates no extent record)
        const one = stop - j === 1
        const ext = one ? null : node.extentAt(index)
        const at = one ? node.pfnAt(index) : ext ? ext.pfn : null
        if (at === null) {
          this.#pteFault(m, j, index, kind, op)
          chunk = tree.chunks.get(c)
          j++
          continue
        }
        pfn = at
        const max = ext ? Math.min(stop - j, ext.count) : 1
        if (chunk) {
          const pfns = chunk.pfns
          while (n < max && ptes[j + n] === PTE_NONE && pfns[k + n] === PTE_NONE) n++
        } else {
          while (n < max && ptes[j + n] === PTE_NONE) n++
        }
        chunk ??= tree.chunk(c)
        for (let i = 0; i < n; i++) t.associate(pfn + i, ino, index + i)
        t.entryInsert(pfn, n)
        const pfns = chunk.pfns
        for (let i = 0; i < n; i++) pfns[k + i] = pfn + i
        chunk.count += n
      }
      t.mapInsert(pfn, n)
      for (let i = 0; i < n; i++) ptes[j + i] = pfn + i
      t.bump('faults', n)
      if (writable) node.addDirty(pfn * ps, n * ps)
      j += n
    }
  }

  #faultPage(m: DaxMapping, j: number, eof: number, kind: 'cpu' | 'gup', op: string): void {
    const index = m.firstIndex + j
    if (index >= eof) {
      this.table.bump('sigbus')
      throw pmemError('SIGBUS', op, `file page ${index} is past EOF (${m.node.size} bytes)`, { path: m.path, offset: j * this.pageSize })
    }
    if (this.#pmdFault(m, index, eof)) return
    this.#pteFault(m, j, index, kind, op)
  }

  /** Try to map the 2 MiB chunk around `index` in one fault. False: fall back to a PTE fault. */
  #pmdFault(m: DaxMapping, index: number, eof: number): boolean {
    const base = index - (index % PMD_PAGES)
    if (base < m.firstIndex || base + PMD_PAGES > m.firstIndex + m.pages || base + PMD_PAGES > eof) return false
    if (base + PMD_PAGES > this.table.pageCount) return false
    const tree = m.tree
    const c = base / PMD_PAGES
    const chunk = tree.chunks.get(c)
    if (chunk && chunk.count > 0 && !chunk.pmd) return false
    const jb = base - m.firstIndex
    const ptes = m.ptes
    for (let k = 0; k < PMD_PAGES; k++) if (ptes[jb + k] !== PTE_NONE) return false
    if (m._goneIn(jb, jb + PMD_PAGES)) return false // a partial unmap took part of the chunk
    const node = m.node
    const ps = this.pageSize
    let pfn0: number
    if (chunk && chunk.count > 0) {
      pfn0 = chunk.pfns[0]!
    } else {
      let ext = node.extentAt(base)
      if (!ext) {
        if (!m.writable || node.extentAt(index)) return false
        const r = node.allocateForFault(index, { huge: true })
        if (r.index !== base || r.count < PMD_PAGES) return false // one page was allocated: the PTE fault maps it
        ext = r
      }
      if (ext.count < PMD_PAGES || ext.pfn % PMD_PAGES !== 0) return false
      pfn0 = ext.pfn
      if (this.#anyPoison() && this.dev.poisonedIn(pfn0 * ps, PMD_PAGES * ps).length > 0) return false
      const folio = this.model.folios
      if (folio && !this.#makeFolio(pfn0)) return false
      const ch = tree.chunk(c)
      if (folio) {
        this.table.associate(pfn0, m.ino, base)
        this.table.entryInsert(pfn0)
      } else {
        for (let k = 0; k < PMD_PAGES; k++) this.table.associate(pfn0 + k, m.ino, base + k)
        this.#rangeEvent('entryInsert', pfn0, PMD_PAGES)
      }
      for (let k = 0; k < PMD_PAGES; k++) ch.pfns[k] = pfn0 + k
      ch.count = PMD_PAGES
      ch.pmd = true
      ch.folio = folio
    }
    const folio = tree.chunks.get(c)!.folio
    if (folio) this.table.mapInsert(pfn0)
    else this.#rangeEvent('mapInsert', pfn0, PMD_PAGES)
    m.pmd.set(c, { pfn: pfn0, folio })
    for (let k = 0; k < PMD_PAGES; k++) ptes[jb + k] = pfn0 + k
    this.table.bump('faults')
    this.table.bump('pmdFaults')
    if (folio) this.table.bump('folioFaults')
    if (m.writable) node.addDirty(pfn0 * ps, PMD_PAGES * ps)
    return true
  }

  #anyPoison(): boolean { return this.dev.region.info.badblocks.length > 0 }

  /**
   * A DAX event on [pfn, pfn+n): one range call of the page table (checked
   * equal to n single calls, test/dax.test.ts), or n single calls on a strict
   * table, where a failing range is rolled back whole rather than stopping
   * at the failing page.
   */
  #rangeEvent(ev: 'entryInsert' | 'mapInsert' | 'zap', pfn: number, n: number): void {
    const t = this.table
    if (!t.strict || n === 1) { t[ev](pfn, n); return }
    for (let k = 0; k < n; k++) t[ev](pfn + k)
  }

  /** makeFolio, or reuse an idle, unassociated order-9 folio left from an earlier life of the blocks. */
  #makeFolio(head: number): boolean {
    try {
      this.table.makeFolio(head)
      return true
    } catch (e) {
      if (!isPmemuError(e, 'EBUSY')) throw e
      const s = this.table.snapshot(head)
      return s.flags.includes('head') && s.order === 9 && s.inode === 0 && !s.flags.includes('entry') &&
        s.refcount === this.model.idleRefcount && s.mapcount === 0 && s.pincount === 0
    }
  }

  #pteFault(m: DaxMapping, j: number, index: number, kind: 'cpu' | 'gup', op: string): void {
    const tree = m.tree
    const c = Math.floor(index / PMD_PAGES)
    const k = index % PMD_PAGES
    const node = m.node
    const ps = this.pageSize
    let chunk = tree.chunks.get(c)
    let pfn = chunk ? chunk.pfns[k]! : PTE_NONE
    if (pfn === PTE_NONE) {
      let ext = node.extentAt(index)
      if (!ext) {
        // A hole of a read-only mapping: Linux maps the shared zero page
        // (dax_load_hole). It is not a device page: the pte stays PTE_NONE
        // and view() hands out a private zero-filled copy.
        if (!m.writable) { this.table.bump('faults'); return }
        ext = node.allocateForFault(index, { huge: false })
      }
      pfn = ext.pfn
    }
    if (this.#anyPoison() && this.dev.poisonedIn(pfn * ps, ps).length > 0) {
      this.table.bump('sigbus')
      const msg = `memory failure: file page ${index} (pfn ${pfn}) is poisoned`
      throw kind === 'gup'
        ? pmemError('EHWPOISON', op, msg, { path: m.path, pfn, offset: (index - m.firstIndex) * ps })
        : pmemError('SIGBUS', op, msg, { path: m.path, pfn, offset: (index - m.firstIndex) * ps })
    }
    if (!chunk || chunk.pfns[k] === PTE_NONE) {
      chunk ??= tree.chunk(c)
      this.table.associate(pfn, m.ino, index)
      this.table.entryInsert(pfn)
      chunk.pfns[k] = pfn
      chunk.count++
    }
    this.table.mapInsert(pfn)
    m.ptes[j] = pfn
    this.table.bump('faults')
    if (m.writable) node.addDirty(pfn * ps, ps)
  }

  // ------------------------------------------------------------------ zap

  /**
   * Zap mapping pages [j0, j1) (extended to whole PMDs): clear the ptes
   * first (gup-fast protocol), then run the model's zap per PTE / PMD.
   * Returns the number of ptes cleared.
   */
  #zapMapping(m: DaxMapping, j0: number, j1: number, why: ZapReason): number {
    const pmd = m.pmd
    if (pmd.size > 0) {
      for (const c of pmd.keys()) {
        const cj0 = c * PMD_PAGES - m.firstIndex
        const cj1 = cj0 + PMD_PAGES
        if (cj0 < j1 && cj1 > j0) { j0 = Math.min(j0, cj0); j1 = Math.max(j1, cj1) }
      }
    }
    const ptes = m.ptes
    const first = m.firstIndex
    // Clear every pte first; the counters follow, once every pte is gone: a
    // racing gup-fast either pinned before (and the layout break waits for
    // it) or sees PTE_NONE. `work` records, in pte order, runs of PTEs with
    // contiguous pfns (pfn, n) and PMDs (-1 - chunk, 0), each PMD once.
    const work: number[] = []
    let cleared = 0
    let runPfn = -1
    let runLen = 0
    let lastJ = -2
    let curC = -1
    let curPmd = false
    for (let j = j0; j < j1; j++) {
      const p = ptes[j]!
      if (p === PTE_NONE) continue
      Atomics.store(ptes, j, PTE_NONE)
      cleared++
      if (pmd.size > 0) {
        const c = Math.floor((first + j) / PMD_PAGES)
        if (c !== curC) {
          curC = c
          curPmd = pmd.has(c)
          if (curPmd) {
            if (runLen > 0) { work.push(runPfn, runLen); runLen = 0 }
            work.push(-1 - c, 0)
          }
        }
        if (curPmd) { lastJ = -2; continue }
      }
      if (runLen > 0 && j === lastJ + 1 && p === runPfn + runLen) runLen++
      else {
        if (runLen > 0) work.push(runPfn, runLen)
        runPfn = p
        runLen = 1
      }
      lastJ = j
    }
    if (cleared === 0) return 0
    m._zapped(j0, j1, why)
    if (runLen > 0) work.push(runPfn, runLen)
    for (let i = 0; i < work.length; i += 2) {
      const w = work[i]!
      if (w >= 0) { this.#rangeEvent('zap', w, work[i + 1]!); continue }
      const c = -1 - w
      const pm = pmd.get(c)!
      if (pm.folio) this.table.zap(pm.pfn)
      else this.#rangeEvent('zap', pm.pfn, PMD_PAGES)
      pmd.delete(c)
    }
    return cleared
  }

  /** [first, end) of the file widened to whole chunks where a folio entry or a PMD mapping covers an edge. */
  #widen(tree: FileTree, first: number, end: number): [number, number] {
    if (end <= first) return [first, end]
    const edge = (c: number): boolean => {
      if (tree.chunks.get(c)?.folio) return true
      for (const m of tree.mappings) if (m.pmd.has(c)) return true
      return false
    }
    const c0 = Math.floor(first / PMD_PAGES)
    const c1 = Math.floor((end - 1) / PMD_PAGES)
    if (edge(c0)) first = c0 * PMD_PAGES
    if (edge(c1)) end = (c1 + 1) * PMD_PAGES
    return [first, end]
  }

  /** Unmap file pages [first, end) from every mapping of the file. Returns ptes cleared. */
  #zapFile(tree: FileTree, first: number, end: number, why: ZapReason): number {
    const [f, e] = this.#widen(tree, first, end)
    let n = 0
    for (const m of tree.mappings) {
      const j0 = Math.max(0, f - m.firstIndex)
      const j1 = Math.min(m.pages, e - m.firstIndex)
      if (j0 < j1) n += this.#zapMapping(m, j0, j1, why)
    }
    return n
  }

  // ------------------------------------------------------------------ entries

  /** Delete the page-cache entry of chunk slot k (a folio entry: the whole chunk, then split). */
  #evict(tree: FileTree, c: number, ch: Chunk, k: number): void {
    if (ch.folio) {
      const head = ch.pfns[0]!
      this.table.entryDelete(head)
      this.table.disassociate(head)
      try {
        this.table.splitFolio(head)
      } catch (e) {
        this.log.warn({ err: e, pfn: head }, 'folio still referenced at eviction: it stays compound')
      }
      ch.pfns.fill(PTE_NONE)
      ch.count = 0
      ch.folio = false
      ch.pmd = false
    } else {
      const p = ch.pfns[k]!
      if (p === PTE_NONE) return
      this.table.entryDelete(p)
      this.table.disassociate(p)
      ch.pfns[k] = PTE_NONE
      ch.count--
      ch.pmd = false
    }
    if (ch.count === 0) tree.chunks.delete(c)
  }

  /** Delete every page-cache entry of file pages [first, end) (a folio entry overlapping it: whole, then split). */
  #evictRange(tree: FileTree, first: number, end: number): void {
    if (end <= first) return
    const c0 = Math.floor(first / PMD_PAGES)
    const c1 = Math.floor((end - 1) / PMD_PAGES)
    for (const [c, ch] of [...tree.chunks]) {
      if (c < c0 || c > c1) continue
      if (ch.folio) { this.#evict(tree, c, ch, 0); continue }
      const k0 = Math.max(0, first - c * PMD_PAGES)
      const k1 = Math.min(PMD_PAGES, end - c * PMD_PAGES)
      for (let k = k0; k < k1 && ch.count > 0; k++) if (ch.pfns[k] !== PTE_NONE) this.#evict(tree, c, ch, k)
    }
  }

  #evictAll(tree: FileTree): void {
    for (const [c, ch] of [...tree.chunks]) {
      if (ch.folio) { this.#evict(tree, c, ch, 0); continue }
      for (let k = 0; k < PMD_PAGES && ch.count > 0; k++) if (ch.pfns[k] !== PTE_NONE) this.#evict(tree, c, ch, k)
      tree.chunks.delete(c)
    }
  }

  /**
   * The fs frees the block behind file page `index`: zap anything that
   * faulted it in since the layout break, delete its page-cache entry,
   * disassociate, then table.free(). false (the page is still referenced:
   * the dax-gup-v1 plain-get hazard, or a pin taken behind the layout break's
   * back) quarantines the block: the fs keeps it allocated, owned by the
   * quarantine inode, so it is never handed to another file while referenced.
   */
  onFree(pfn: number, info: { ino: number; index: number }): boolean {
    if (this.#dead) return true
    const tree = this.trees.get(info.ino)
    if (tree) {
      if (tree.mappings.size > 0) this.#zapFile(tree, info.index, info.index + 1, 'free')
      const c = Math.floor(info.index / PMD_PAGES)
      const k = info.index % PMD_PAGES
      const ch = tree.chunks.get(c)
      if (ch && ch.pfns[k] !== PTE_NONE) {
        if (ch.pfns[k] !== pfn) this.log.warn({ ino: info.ino, index: info.index, pfn, entry: ch.pfns[k] }, 'page-cache entry does not match the block being freed')
        this.#evict(tree, c, ch, k)
      }
      this.#maybeDropTree(tree)
    }
    const ok = this.table.free(pfn)
    if (ok) {
      this.#freedWatch[this.#freedAt] = pfn
      this.#freedAt = (this.#freedAt + 1) % FREED_WATCH
    } else {
      this.quarantine.add(pfn)
      const s = this.table.snapshot(pfn)
      this.log.warn({ pfn, ino: info.ino, index: info.index, refcount: s.refcount, model: this.model.name },
        'block freed while still referenced (use-after-free hazard): quarantined')
    }
    return ok
  }

  /**
   * Give quarantined blocks whose page is idle again (the late put came)
   * back to the free list. Returns how many were released.
   */
  reclaimQuarantine(): number {
    this.#assertUsable('reclaimQuarantine')
    let n = 0
    for (const pfn of [...this.quarantine]) {
      const s = this.table.snapshot(pfn)
      if (s.refcount !== this.model.idleRefcount || s.mapcount !== 0 || s.pincount !== 0 || s.inode !== 0) continue
      try {
        this.fs.releaseQuarantine(pfn, 1)
        n++
      } catch (e) {
        if (!isPmemuError(e, 'EINVAL')) throw e // already released by someone else
      }
      this.quarantine.delete(pfn)
    }
    return n
  }

  // ------------------------------------------------------------------ layout break

  /** Allocated pfn runs of file pages [first, end) that are busy by the model's truncate rule. */
  #busyRuns(node: FsNode, first: number, end: number): BusyRun[] {
    const out: BusyRun[] = []
    for (const e of node.extents()) {
      const s = Math.max(first, e.l)
      const t = Math.min(end, e.l + e.n)
      if (s >= t) continue
      const pfn = e.p + (s - e.l)
      const count = t - s
      if (this.table.firstBusy(pfn, count) >= 0) out.push({ pfn, count })
    }
    return out
  }

  /**
   * The layout breaker (fs calls it under the inode lock before freeing or
   * zeroing blocks of [first, end)). The break scope is the whole file
   * (opts.scope 'file', the default: XFS and ext4 break every mapping of the
   * inode, ≤ 6.14 via dax_layout_busy_page(mapping), ≥ 6.15 via
   * dax_break_layout_inode(0, LLONG_MAX)) or [first, end) ('range': FUSE-DAX's
   * __fuse_dax_break_layouts). Unmap the scope from every mapping of the
   * file, then wait until no page of the scope is busy by the model's rule;
   * the model's breakEntries says what happens to the scope's page-cache
   * entries (deleted before the wait, after it, or only as blocks are freed).
   * Pages faulted back in during a wait are zapped again and waited for
   * again, so when it resolves nothing in the scope is mapped or busy
   * (xfs_break_layouts' retry loop). Rejects with ETIMEDOUT / AbortError with
   * nothing changed but the unmapped scope (and entries deleted before the wait).
   */
  async breakLayout(file: PmemFile, first: number, end: number,
    opts: { signal?: AbortSignal; timeoutMs?: number; reason: string; scope?: 'file' | 'range' }): Promise<void> {
    const syscall = opts.reason === 'punch-hole' ? 'fallocate' : opts.reason === 'open-truncate' ? 'open' : 'ftruncate'
    this.#assertUsable(syscall, file.path)
    this.table.bump(opts.reason === 'punch-hole' ? 'punchHoles' : 'truncates')
    const node = file.node
    const whole = opts.scope !== 'range'
    const [sf, se] = whole ? [0, Number.MAX_SAFE_INTEGER] : [first, end]
    const why: ZapReason = opts.reason === 'punch-hole' ? 'punch-hole' : 'truncate'
    const entries = this.model.breakEntries
    const deadline = opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs
    // A fault in the scope during the wait (a view, a DMA slow path) maps a
    // page again. Linux blocks such faults on the invalidate lock; here they
    // cannot block, so the fault kicks the wait instead (#kickBreakers): the
    // loop zaps again and waits again. Without the kick an upstream wait on
    // a page refaulted before its unpin never ends (the unpin leaves the map
    // ref: no 1->0 transition, no wake-up).
    const entry: Breaker = { first: sf, end: se, kick: undefined }
    let set = this.#breakers.get(node.ino)
    if (!set) { set = new Set(); this.#breakers.set(node.ino, set) }
    set.add(entry)
    try {
      for (;;) {
        const tree = this.trees.get(node.ino)
        let [wf, we] = [sf, se]
        if (tree) {
          [wf, we] = this.#widen(tree, sf, se)
          this.#zapFile(tree, sf, se, why)
          // the reworked dax-gup: the break drops the entries' page refs before it waits
          if (entries === 'scope-before-wait') this.#evictRange(tree, wf, we)
        }
        entry.first = wf
        entry.end = we
        const runs = this.#busyRuns(node, wf, we)
        if (runs.length === 0) {
          // ≥ 6.15: dax_delete_mapping_range over the scope once nothing is busy (folios split)
          if (tree && entries === 'scope-after-wait') this.#evictRange(tree, wf, we)
          if (tree) this.#maybeDropTree(tree)
          return
        }
        for (const r of runs) {
          const remaining = deadline === Infinity ? undefined : Math.max(0, deadline - performance.now())
          const kick = new AbortController()
          const user = opts.signal
          const onUser = (): void => kick.abort(user?.reason)
          if (user?.aborted) onUser()
          else user?.addEventListener('abort', onUser, { once: true })
          entry.kick = kick
          let kicked = false
          try {
            await this.table.waitIdle(r.pfn, r.count, { signal: kick.signal, timeoutMs: remaining })
          } catch (e) {
            if (isPmemuError(e, 'ABORT_ERR') && !user?.aborted) {
              kicked = true
            } else {
              if (isPmemuError(e, 'ETIMEDOUT')) {
                const what = whole ? `pages of the file (whole-file break for file pages [${first}, ${end}))` : `file pages [${first}, ${end})`
                throw pmemError('ETIMEDOUT', syscall,
                  `${what} still busy after ${opts.timeoutMs} ms (${this.model.busy} rule of the ${this.model.name} model, pfn ${String(e.pfn)}); nothing was changed`,
                  { path: file.path, pfn: e.pfn, cause: e })
              }
              if (isPmemuError(e, 'ABORT_ERR')) throw new PmemuAbortError(syscall, { path: file.path, cause: user?.reason })
              throw e
            }
          } finally {
            entry.kick = undefined
            user?.removeEventListener('abort', onUser)
          }
          this.#assertUsable(syscall, file.path)
          if (kicked) break // a page of the scope was faulted in again: zap it and look again
        }
        // We awaited: faults or pins may have happened meanwhile. Go round
        // again; a pass that does not need to wait runs without yielding.
      }
    } finally {
      set.delete(entry)
      if (set.size === 0 && this.#breakers.get(node.ino) === set) this.#breakers.delete(node.ino)
    }
  }

  /** A fault mapped (or tried to map) file pages [first, end) of `ino`: wake the layout breaks waiting on a range that overlaps. */
  #kickBreakers(ino: number, first: number, end: number): void {
    const set = this.#breakers.get(ino)
    if (!set) return
    // a PMD fault maps the whole chunk around the faulting page
    first -= first % PMD_PAGES
    end += (PMD_PAGES - (end % PMD_PAGES)) % PMD_PAGES
    for (const b of set) if (b.kick && first < b.end && end > b.first) b.kick.abort()
  }

  // ------------------------------------------------------------------ device events

  /** dev.poison(): every mapping holding a poisoned page loses it and hears 'memory-failure' (Linux memory_failure → SIGBUS). */
  #memoryFailure(offset: number, length: number): void {
    if (this.#dead) return
    const ps = this.pageSize
    const p0 = Math.floor(offset / ps)
    const p1 = Math.min(this.table.pageCount, Math.ceil((offset + length) / ps))
    const events = new Map<DaxMapping, MemoryFailureEvent[]>()
    for (let pfn = p0; pfn < p1; pfn++) {
      const s = this.table.snapshot(pfn)
      if (s.inode === 0) continue
      const tree = this.trees.get(s.inode)
      if (!tree) continue
      const index = s.index
      for (const m of [...tree.mappings]) {
        const j = index - m.firstIndex
        if (j < 0 || j >= m.pages || m.ptes[j] !== pfn) continue
        this.#zapMapping(m, j, j + 1, 'memory failure')
        const bs = Math.max(offset, pfn * ps)
        const be = Math.min(offset + length, (pfn + 1) * ps)
        const ev: MemoryFailureEvent = { offset: j * ps + (bs - pfn * ps), length: be - bs, fileOffset: index * ps + (bs - pfn * ps), pfn }
        const list = events.get(m) ?? []
        const last = list[list.length - 1]
        if (last && last.offset + last.length === ev.offset) last.length += ev.length
        else list.push(ev)
        events.set(m, list)
      }
    }
    for (const [m, list] of events) {
      this.table.bump('memoryFailures')
      this.log.warn({ id: m.id, ino: m.ino, ranges: list }, 'memory failure: poisoned pages unmapped')
      for (const ev of list) m.emit('memory-failure', ev)
    }
  }

  /** Unbind: unmap everything and drop every page-cache entry before the device's wait. */
  #unbind(): void {
    if (this.#dead) return
    for (const tree of [...this.trees.values()]) {
      for (const m of tree.mappings) this.#zapMapping(m, 0, m.pages, 'unbind')
      this.#evictAll(tree)
    }
  }

  #deviceDead(reason: 'unbound' | 'closed' | 'crashed'): void {
    const why = reason === 'crashed' ? 'the device crashed (power loss)' : reason === 'closed' ? 'the device is closed' : 'the device was unbound'
    this.#dead = () => pmemError('ENXIO', 'dax', why, this.dev.path ? { path: this.dev.path } : {})
    for (const tree of this.trees.values()) {
      for (const m of [...tree.mappings]) {
        this.kill(m, () => pmemError('ENXIO', 'mmap', why, { path: m.path }), reason === 'crashed' ? 'crash' : reason === 'closed' ? 'device closed' : 'unbind')
      }
    }
    this.trees.clear()
    this.#detach()
  }

  /** Unmount: unmap every mapping (later calls: EIO), evict every entry, detach. */
  #teardown(): void {
    if (this.#dead) return
    const err = (): PmemuError => pmemError('EIO', 'mmap', 'file system is unmounted')
    for (const tree of [...this.trees.values()]) {
      for (const m of [...tree.mappings]) {
        try { this.unmap(m) } catch (e) { this.log.warn({ err: e, id: m.id }, 'unmap at unmount failed') }
        m._setState('dead', () => pmemError('EIO', 'mmap', 'file system is unmounted', { path: m.path }))
      }
    }
    for (const tree of [...this.trees.values()]) this.#evictAll(tree)
    this.trees.clear()
    this.#dead = err
    this.#detach()
  }

  #detach(): void {
    for (const u of this.#undo.splice(0)) { try { u() } catch { /* already gone */ } }
    if (layers.get(this.fs) === this) layers.delete(this.fs)
  }

  // ------------------------------------------------------------------ checker

  /** SPEC §3 invariants 2, 4, 5 as the DAX layer sees them (check.ts). */
  check(): Violation[] {
    if (this.#dead) return []
    return checkDax({ table: this.table, pageSize: this.pageSize, model: this.model, trees: this.trees, fs: this.fs, freedWatch: this.#freedWatch })
  }
}
