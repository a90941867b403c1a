/**
 * A DAX mapping's own address range (SPEC §5): address space reserved by the
 * native shim for the mapping's length, into which each faulted run of device
 * pages is mapped at its place (MAP_FIXED | MAP_SHARED from the region's
 * descriptor), so one Uint8Array covers any range of the mapping whatever the
 * extents below. A zap puts guard pages (private copies of a canary page,
 * never PROT_NONE) where device pages were: a store through a stale view then
 * lands in process-private memory, and the checker finds it by comparing the
 * guard pages with the canary.
 *
 * What the checker needs outlives the mapping object: a RangeRecord holds
 * plain data only (no SharedArrayBuffer), so keeping it does not keep the
 * reservation alive; the shim says when the reservation is gone (its last
 * window collected), and then the record goes too.
 */
import { pmemError } from '../errors.js'
import type { PageTable, Violation } from '../page/index.js'
import { nativeShim, type NativeShim, type Region } from '../region/index.js'
import { formatBytes } from '../util/size.js'
import { PTE_NONE } from './types.js'

/** A window every RANGE_STEP bytes, RANGE_SPAN bytes long: any view of at most RANGE_STEP bytes lies inside one. */
export const RANGE_STEP = 2 ** 31
/** The longest typed array Node 20 makes (and so the longest single view). */
export const RANGE_SPAN = 2 ** 32

/** rmap values besides a pfn: private zero pages (never faulted, or a hole of a read-only mapping), guard pages. */
const R_ZERO = -1
const R_GUARD = -3

/** What the mapping's address range can do here (map.capabilities). */
export interface MappingCapabilities {
  /**
   * The mapping is one address range: view() works for any range of the
   * mapping, and stale views are fenced off by guard pages. false on the
   * mmap-io backend, a memory backend without memfd_create, or a shim built
   * without ranges: view() then returns the region's bytes, one run at a time.
   */
  addressRange: boolean
  /** Why addressRange is false. */
  addressRangeError?: string
}

/** Why and when pages of a mapping were zapped. */
export type ZapReason = 'unmap' | 'truncate' | 'punch-hole' | 'memory failure' | 'unbind' | 'crash' | 'unmount' | 'device closed' | 'free'

interface GuardRun {
  j0: number
  j1: number
  /** pfn mapped at page j0 when zapped (pages of a run were contiguous). */
  pfn: number
  why: ZapReason
  /** ISO time of the zap. */
  at: string
}

/** Plain data about one range, kept for the checker while the reservation lives. */
interface RangeRecord {
  id: number
  mapId: number
  path: string
  ino: number
  /** File byte offset of mapping byte 0. */
  fileOffset: number
  pageSize: number
  /** What is in the range at each mapping page: a pfn, R_ZERO or R_GUARD. */
  rmap: Int32Array
  guards: GuardRun[]
}

/** Stale stores found on one page table's devices: reported by dev.check() from then on. */
class StaleWatch {
  readonly records = new Set<RangeRecord>()
  readonly found: Violation[] = []
  readonly #seen = new Set<string>()
  #thrown = 0

  constructor(readonly table: PageTable) {
    table.addChecker(() => this.check())
  }

  /** Look at the guard pages of run g in [j0, j1) (pages still guards) and record what differs from the canary. */
  scan(rec: RangeRecord, g: GuardRun, j0: number, j1: number, shim: NativeShim): void {
    const ps = rec.pageSize
    let j = Math.max(j0, g.j0)
    const end = Math.min(j1, g.j1)
    while (j < end) {
      if (rec.rmap[j] !== R_GUARD) { j++; continue }
      let k = j + 1
      while (k < end && rec.rmap[k] === R_GUARD) k++
      let from = j * ps
      const to = k * ps
      // Every stale page once (a page can hold several stale stores: the first names it).
      while (from < to) {
        const at = shim.rangeCheck!(rec.id, from, to - from)
        if (at < 0) break
        const off = from + at
        const page = Math.floor(off / ps)
        this.#record(rec, g, off, page, shim)
        from = (page + 1) * ps
      }
      j = k
    }
  }

  #record(rec: RangeRecord, g: GuardRun, off: number, page: number, _shim: NativeShim): void {
    const key = `${rec.id}:${page}`
    if (this.#seen.has(key)) return
    this.#seen.add(key)
    if (this.found.length >= 1000) return
    const pfn = g.pfn + (page - g.j0)
    const fileOffset = rec.fileOffset + off
    this.found.push({
      invariant: 5, kind: 'stale-store', pfn, model: this.table.model.name, op: 'check', expected: 0, found: 1,
      message: `store through a stale view: mapping ${rec.mapId} of ${rec.path} (inode ${rec.ino}), file offset ${fileOffset} ` +
        `(mapping offset ${off}), zapped by ${g.why} at ${g.at}; pfn ${pfn} was mapped there, the store reached no device memory`,
    })
  }

  check(): Violation[] {
    let shim: NativeShim
    try { shim = nativeShim() } catch { return [...this.found] }
    for (const rec of [...this.records]) {
      if (rec.guards.length === 0) continue
      if (shim.rangeCheck!(rec.id, 0, 0) === -2) { this.records.delete(rec); continue }
      for (const g of rec.guards) this.scan(rec, g, g.j0, g.j1, shim)
      // Runs whose pages were all mapped back have nothing left to watch.
      rec.guards = rec.guards.filter(g => { for (let j = g.j0; j < g.j1; j++) if (rec.rmap[j] === R_GUARD) return true; return false })
    }
    return [...this.found]
  }

  /** Strict mode: a stale store not yet thrown throws now (EFAULT, the violation attached). */
  assertClean(op: string): void {
    if (this.records.size === 0 && this.found.length === this.#thrown) return
    this.check()
    if (this.found.length > this.#thrown) {
      const v = this.found[this.#thrown]!
      this.#thrown = this.found.length
      throw pmemError('EFAULT', op, `invariant ${v.invariant} violated: ${v.message}`, { pfn: v.pfn, violation: v })
    }
  }
}

const watches = new WeakMap<PageTable, StaleWatch>()

// A range object collected with no guard runs can get none later: its record goes.
const dropUnguarded = new FinalizationRegistry<{ watch: StaleWatch; rec: RangeRecord }>(({ watch, rec }) => {
  if (rec.guards.length === 0) watch.records.delete(rec)
})

function watchOf(table: PageTable): StaleWatch {
  let w = watches.get(table)
  if (!w) { w = new StaleWatch(table); watches.set(table, w) }
  return w
}

/** Strict mode: throw for a store through a stale view made since the last call (any mapping of the table). */
export function assertNoStaleStore(table: PageTable, op: string): void {
  if (!table.strict) return
  watches.get(table)?.assertClean(op)
}

/** The identity of the mapping a range belongs to (for the checker's messages). */
export interface RangeOwner { id: number; path: string; ino: number; offset: number }

export class MappingRange {
  readonly id: number
  readonly #shim: NativeShim
  readonly #sabs: SharedArrayBuffer[]
  readonly #windows: Uint8Array[]
  readonly #rec: RangeRecord
  readonly #watch: StaleWatch
  readonly #fd: number
  readonly #dataOffset: number
  readonly #mode: number
  readonly #pageSize: number

  private constructor(shim: NativeShim, r: { id: number; sabs: SharedArrayBuffer[] }, rec: RangeRecord, watch: StaleWatch,
    src: { fd: number; dataOffset: number; mode: number }) {
    this.#shim = shim
    this.id = r.id
    this.#sabs = r.sabs
    this.#windows = r.sabs.map(s => new Uint8Array(s))
    this.#rec = rec
    this.#watch = watch
    this.#fd = src.fd
    this.#dataOffset = src.dataOffset
    this.#mode = src.mode
    this.#pageSize = rec.pageSize
  }

  /**
   * Reserve the range of a mapping of `pages` pages, or say why it cannot be
   * done here (a string: the mapping falls back to views on the region).
   * Throws ENOMEM (naming the limit) for a mapping larger than the shim can
   * reserve; a reservation the kernel refuses below it is a fallback.
   */
  static create(region: Region, table: PageTable, owner: RangeOwner, pages: number, pageSize: number): MappingRange | string {
    let shim: NativeShim
    try { shim = nativeShim() } catch { return 'the native shim is not built' }
    if (!shim.reserve || !shim.rangeMap || !shim.rangeGuard || !shim.rangeCheck || !shim.rangeLimits || !shim.rangeSpan || !shim.rangeZero) {
      return 'the native shim was built without mapping ranges (rebuild it: npm install)'
    }
    const src = region.mapSource()
    if (typeof src === 'string') return src
    const lim = shim.rangeLimits()
    if (pageSize % lim.pageSize !== 0 || src.dataOffset % lim.pageSize !== 0) {
      return `device pages of ${pageSize} bytes do not map onto ${lim.pageSize}-byte system pages`
    }
    const length = pages * pageSize
    if (length > lim.maxBytes) {
      throw pmemError('ENOMEM', 'mmap', `a ${formatBytes(length)} mapping is larger than the ${formatBytes(lim.maxBytes)} of address space a mapping can reserve`,
        { path: owner.path, length })
    }
    let r: { id: number; sabs: SharedArrayBuffer[] }
    try {
      r = shim.reserve(length, RANGE_STEP, RANGE_SPAN)
    } catch (e) {
      // Within the limit, the kernel said no (address space, vm.max_map_count):
      // the mapping works without a range of its own, and says so.
      return `the kernel refused to reserve ${formatBytes(length)} of address space for the mapping: ${String((e as Error)?.message)}`
    }
    const rec: RangeRecord = {
      id: r.id, mapId: owner.id, path: owner.path, ino: owner.ino, fileOffset: owner.offset, pageSize,
      rmap: new Int32Array(pages).fill(R_ZERO), guards: [],
    }
    const watch = watchOf(table)
    watch.records.add(rec)
    const range = new MappingRange(shim, r, rec, watch, src)
    dropUnguarded.register(range, { watch, rec })
    return range
  }

  /** The windows (for workers): window i starts at byte i * RANGE_STEP. */
  get sabs(): SharedArrayBuffer[] { return this.#sabs }

  /**
   * Make pages [j0, j1) of the range show what `ptes` maps there: device
   * runs mapped at their place, PTE_NONE as private zero pages (a hole of a
   * read-only mapping). Guard pages replaced are checked for stale stores first.
   */
  sync(ptes: Int32Array, j0: number, j1: number): void {
    const rmap = this.#rec.rmap
    const ps = this.#pageSize
    let j = j0
    while (j < j1) {
      const p = ptes[j]!
      const want = p === PTE_NONE ? R_ZERO : p
      if (rmap[j] === want) { j++; continue }
      let k = j + 1
      if (want === R_ZERO) {
        while (k < j1 && ptes[k] === PTE_NONE && rmap[k] !== R_ZERO) k++
        this.#scanGuards(j, k)
      } else if (this.#rec.guards.length > 0) {
        while (k < j1 && ptes[k] === p + (k - j) && rmap[k] !== p + (k - j)) k++
        this.#scanGuards(j, k)
      } else {
        // No guard pages to look at first: find the run and record it in one pass.
        rmap[j] = p
        while (k < j1 && ptes[k] === p + (k - j) && rmap[k] !== p + (k - j)) { rmap[k] = p + (k - j); k++ }
      }
      if (want === R_ZERO) {
        this.#shim.rangeZero!(this.id, j * ps, (k - j) * ps)
        rmap.fill(R_ZERO, j, k)
      } else {
        try {
          this.#shim.rangeMap!(this.id, j * ps, (k - j) * ps, this.#fd, this.#dataOffset + p * ps, this.#mode)
        } catch (e) {
          // The shim put private pages back: nothing of the range is left unmapped.
          rmap.fill(R_ZERO, j, k)
          throw pmemError('ENOMEM', 'view', `cannot map ${k - j} page(s) into the mapping's address range: ${String((e as Error)?.message)}`,
            { path: this.#rec.path, offset: j * ps, cause: e })
        }
        if (rmap[k - 1] !== p + (k - 1 - j)) for (let i = j; i < k; i++) rmap[i] = p + (i - j)
      }
      j = k
    }
  }

  #scanGuards(j0: number, j1: number): void {
    const rec = this.#rec
    for (let i = j0; i < j1; i++) {
      if (rec.rmap[i] !== R_GUARD) continue
      for (const g of rec.guards) if (g.j0 < j1 && g.j1 > j0) this.#watch.scan(rec, g, j0, j1, this.#shim)
      return
    }
  }

  /** A zap of pages [j0, j1): guard pages where device pages were. */
  zap(j0: number, j1: number, why: ZapReason): void {
    const rmap = this.#rec.rmap
    const ps = this.#pageSize
    const at = new Date().toISOString()
    let j = j0
    while (j < j1) {
      const p = rmap[j]!
      if (p < 0) { j++; continue }
      let k = j + 1
      while (k < j1 && rmap[k] === p + (k - j)) k++
      try {
        this.#shim.rangeGuard!(this.id, j * ps, (k - j) * ps)
      } catch {
        // Out of mappings: private zero pages still keep the device out of reach.
        try { this.#shim.rangeZero!(this.id, j * ps, (k - j) * ps) } catch { /* the shim refilled the run */ }
        rmap.fill(R_ZERO, j, k)
        j = k
        continue
      }
      rmap.fill(R_GUARD, j, k)
      const last = this.#rec.guards[this.#rec.guards.length - 1]
      if (last && last.j1 === j && last.why === why && last.at === at && last.pfn + (j - last.j0) === p) last.j1 = k
      else this.#rec.guards.push({ j0: j, j1: k, pfn: p, why, at })
      j = k
    }
  }

  /** A Uint8Array on [offset, offset+length) of the range (already synced). */
  view(offset: number, length: number, path: string): Uint8Array {
    const w = Math.floor(offset / RANGE_STEP)
    const win = this.#windows[w]!
    const rel = offset - w * RANGE_STEP
    if (rel + length <= win.length) return win.subarray(rel, rel + length)
    if (length > RANGE_SPAN) {
      throw pmemError('EINVAL', 'view', `a view is one typed array: at most ${formatBytes(RANGE_SPAN)} (Node's limit), asked for ${formatBytes(length)}; take several views`,
        { path, offset, length })
    }
    return new Uint8Array(this.#shim.rangeSpan!(this.id, offset, length))
  }
}

