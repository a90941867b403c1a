/**
 * One DAX mapping of a file range (SPEC §5): the `vm_area_struct` analogue.
 * Its page table is `ptes` (one pfn or PTE_NONE per mapping page) in a
 * SharedArrayBuffer, so the DMA engine's workers can walk it (gup-fast, see
 * types.ts). Faults, zaps and the layout break live in the DaxLayer; this
 * class validates arguments, keeps the mapping's state and builds views.
 *
 * With the native shim the mapping has its own address range (range.ts):
 * view() faults, maps the faulted runs into the range at their place, and
 * returns a subarray of it, for any range of the mapping. Without one
 * (map.capabilities.addressRange false) view() returns the region's bytes
 * and needs the range to be one contiguous run.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import { pmemError, type PmemuError, safeString } from '../errors.js'
import type { FsNode, PmemFile } from '../fs/index.js'
import { WINDOW_BYTES } from '../region/index.js'
import type { FileTree } from './tree.js'
import { PTE_NONE, type DaxMappingLike, type MappingHost, type MappingShare } from './types.js'
import { MappingRange, assertNoStaleStore, RANGE_STEP, type MappingCapabilities, type ZapReason } from './range.js'

let nextId = 1

/** A piece of a mapping range backed by one contiguous run of device bytes (or the zero page). */
export interface ViewSegment {
  /** Mapping-relative byte offset of the segment. */
  offset: number
  bytes: Uint8Array
  /** First pfn of the run, or PTE_NONE for a hole of a read-only mapping (a private zero-filled copy). */
  pfn: number
}

/** What `map.on('memory-failure', …)` receives: the poisoned bytes of the mapping (mapping-relative). */
export interface MemoryFailureEvent {
  offset: number
  length: number
  /** Byte offset in the file. */
  fileOffset: number
  /** The poisoned page. */
  pfn: number
}

export type MappingState = 'live' | 'unmapped' | 'dead'

export class DaxMapping extends EventEmitter implements DaxMappingLike {
  readonly id = nextId++
  /** File offset (bytes, page aligned) and length (bytes) of the mapping. */
  readonly offset: number
  readonly length: number
  readonly writable: boolean
  /** MAP_SYNC was asked for (faults are always metadata-durable here: allocation is journaled before the fault returns). */
  readonly sync: boolean
  readonly pageSize: number
  /** Device generation this mapping belongs to (a crash bumps the device's). */
  readonly generation: number
  /** Mapping pages (ceil(length / pageSize)). */
  readonly pages: number
  /** File page index of mapping page 0. */
  readonly firstIndex: number
  readonly path: string
  readonly ino: number
  /** The page table: pfn or PTE_NONE per mapping page. Shared with DMA workers. */
  readonly ptes: Int32Array
  /** @internal chunks (file index >> 9) mapped by one PMD in this mapping: true when the PMD maps a folio. */
  readonly pmd = new Map<number, { pfn: number; folio: boolean }>()
  /** @internal */ readonly node: FsNode
  /** @internal */ readonly tree: FileTree
  readonly #layer: MappingHost
  readonly #ptesSab: SharedArrayBuffer
  readonly #stateSab: SharedArrayBuffer
  readonly #stateWord: Int32Array
  #state: MappingState = 'live'
  #deadError: (() => PmemuError) | undefined
  readonly #addr: MappingRange | undefined
  /** Pages removed by a partial unmap (1), or undefined while none is. */
  #gone: Uint8Array | undefined
  #goneCount = 0
  /** What this mapping's address range can do here (see MappingCapabilities). */
  readonly capabilities: MappingCapabilities

  /** @internal use file.mmap() */
  constructor(layer: MappingHost, tree: FileTree, file: PmemFile, offset: number, length: number, opts: { write: boolean; sync: boolean }, generation: number) {
    super()
    this.#layer = layer
    this.tree = tree
    this.node = file.node
    this.path = file.path
    this.ino = file.ino
    this.pageSize = layer.pageSize
    this.offset = offset
    this.length = length
    this.writable = opts.write
    this.sync = opts.sync
    this.generation = generation
    this.firstIndex = offset / this.pageSize
    this.pages = Math.ceil(length / this.pageSize)
    // The address range first: a mapping too large for it fails with ENOMEM naming the limit.
    const r = MappingRange.create(layer.dev.region, layer.table, { id: this.id, path: this.path, ino: this.ino, offset }, this.pages, this.pageSize)
    if (typeof r === 'string') {
      this.capabilities = { addressRange: false, addressRangeError: r }
    } else {
      this.#addr = r
      this.capabilities = { addressRange: true }
    }
    try {
      this.#ptesSab = new SharedArrayBuffer(this.pages * 4)
    } catch (e) {
      throw pmemError('ENOMEM', 'mmap', `the page table of a ${this.pages}-page mapping (${this.pages * 4} bytes) cannot be allocated`, { path: this.path, length, cause: e })
    }
    this.ptes = new Int32Array(this.#ptesSab)
    this.ptes.fill(PTE_NONE)
    this.#stateSab = new SharedArrayBuffer(4)
    this.#stateWord = new Int32Array(this.#stateSab)
  }

  get live(): boolean { return this.#state === 'live' && this.#layer.generationOk(this) }
  get state(): MappingState { return this.#state }

  /** A small summary: JSON.stringify(map) must not walk the layer, the fs and the device. */
  toJSON(): Record<string, unknown> {
    return {
      type: 'DaxMapping', id: this.id, path: this.path, ino: this.ino, offset: this.offset, length: this.length,
      writable: this.writable, sync: this.sync, pageSize: this.pageSize, pages: this.pages, generation: this.generation, state: this.#state,
    }
  }

  [inspect.custom](): string {
    return `DaxMapping ${inspect(this.toJSON())}`
  }

  /** @internal throws the error a call on a mapping that is not live gets (and, strict, a stale store). */
  assertLive(op: string): void {
    assertNoStaleStore(this.#layer.table, op)
    if (this.#state === 'live' && !this.#layer.generationOk(this)) {
      this.#layer.kill(this, () => pmemError('ENXIO', op, 'the device crashed: mappings of its earlier life are dead', { path: this.path }))
    }
    if (this.#state === 'unmapped') throw pmemError('EFAULT', op, 'the mapping is unmapped', { path: this.path })
    if (this.#state === 'dead') throw this.#deadError!()
  }

  /** @internal pages [j0, j1) were zapped (their ptes are clear): fence the address range off with guard pages. */
  _zapped(j0: number, j1: number, why: ZapReason): void {
    this.#addr?.zap(j0, j1, why)
  }

  /** @internal true when any of pages [j0, j1) was removed by a partial unmap (never to be faulted again). */
  _goneIn(j0: number, j1: number): boolean {
    const g = this.#gone
    if (!g) return false
    for (let j = Math.max(0, j0); j < j1 && j < this.pages; j++) if (g[j]) return true
    return false
  }

  /** EFAULT when pages [j0, j1) reach into a part removed by unmap(offset, length). */
  #present(op: string, j0: number, j1: number): void {
    if (this.#gone && this._goneIn(j0, j1)) {
      throw pmemError('EFAULT', op, 'the range reaches into a part of the mapping that was unmapped', { path: this.path, offset: j0 * this.pageSize })
    }
  }

  /** @internal mark unmapped (state word 1 for workers). */
  _setState(s: MappingState, err?: () => PmemuError): void {
    if (this.#state === 'dead') return
    this.#state = s
    if (err) this.#deadError = err
    Atomics.store(this.#stateWord, 0, s === 'live' ? 0 : 1)
  }

  #range(op: string, offset: number, length: number): [number, number] {
    this.#check(op, offset, length)
    return [offset, length]
  }

  #check(op: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0 ||
        offset + length > this.pages * this.pageSize) {
      const size = this.pages * this.pageSize
      const bad = (v: unknown): boolean => typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0
      const show = (v: unknown): string => typeof v === 'string' ? `'${v}'` : safeString(v)
      if (bad(offset)) throw pmemError('EINVAL', op, `offset must be a non-negative integer, got ${show(offset)}`, { path: this.path })
      if (bad(length)) throw pmemError('EINVAL', op, `length must be a non-negative integer, got ${show(length)}`, { path: this.path, offset })
      throw pmemError('EINVAL', op, `range [${offset}, ${offset}+${length}) is outside the ${size}-byte mapping`, { path: this.path, offset: typeof offset === 'number' ? offset : undefined })
    }
  }

  /**
   * Fault [offset, offset+length) (mapping-relative; a write fault in a
   * writable mapping, a read fault otherwise) and return a Uint8Array on it:
   * with an address range (capabilities.addressRange), a subarray of the
   * mapping's own range, for any range of the mapping (at most 4 GiB: one
   * typed array); holes of a read-only mapping read zero. Without one, the
   * region's bytes: the range must then be one contiguous run of pages in one
   * region window (else EINVAL: use views()), and a hole of a read-only
   * mapping is a private zero-filled array.
   * Past EOF: SIGBUS. A poisoned page: SIGBUS (memory failure).
   * After a zap (unmap, truncate, punch-hole, memory failure, unbind, crash)
   * the view is stale: it reads the canary (bytes de ad be ef) and a store
   * through it reaches no device memory and is reported by dev.check().
   */
  view(offset: number, length: number): Uint8Array {
    this.assertLive('view')
    this.#check('view', offset, length)
    if (length === 0) return new Uint8Array(0)
    const ps = this.pageSize
    const j0 = Math.floor(offset / ps)
    const j1 = Math.ceil((offset + length) / ps)
    this.#present('view', j0, j1)
    this.#layer.faultRange(this, j0, j1, this.writable, 'cpu', 'view')
    const range = this.#addr
    if (range) {
      range.sync(this.ptes, j0, j1)
      return range.view(offset, length, this.path)
    }
    // The common case without building segments: one contiguous run of pfns in one window.
    const ptes = this.ptes
    const pfn = ptes[j0]!
    if (pfn !== PTE_NONE) {
      let j = j0 + 1
      while (j < j1 && ptes[j] === pfn + (j - j0)) j++
      const start = pfn * ps + (offset - j0 * ps)
      if (j === j1 && Math.floor(start / WINDOW_BYTES) === Math.floor((start + length - 1) / WINDOW_BYTES)) {
        return this.#layer.dev.view(start, length)
      }
    }
    const segs = this.#collect(offset, length, j0, j1)
    if (segs.length !== 1) {
      throw pmemError('EINVAL', 'view', `[${offset}, +${length}) of the mapping is backed by ${segs.length} discontiguous runs ` +
        '(separate extents, holes, or a region window boundary): use views(offset, length) for the segments', { path: this.path, offset, length })
    }
    return segs[0]!.bytes
  }

  /** Like view(), for any range: one segment per contiguous run of pages (or of zero-page holes). */
  views(offset: number, length: number): ViewSegment[] {
    this.assertLive('views')
    const [off, len] = this.#range('views', offset, length)
    if (len === 0) return []
    return this.#segments('views', off, len)
  }

  #segments(op: string, off: number, len: number): ViewSegment[] {
    const ps = this.pageSize
    const j0 = Math.floor(off / ps)
    const j1 = Math.ceil((off + len) / ps)
    this.#present(op, j0, j1)
    this.#layer.faultRange(this, j0, j1, this.writable, 'cpu', op)
    return this.#collect(off, len, j0, j1)
  }

  /** The segments of [off, off+len) (pages [j0, j1), already faulted). */
  #collect(off: number, len: number, j0: number, j1: number): ViewSegment[] {
    const ps = this.pageSize
    const out: ViewSegment[] = []
    const ptes = this.ptes
    const dev = this.#layer.dev
    let j = j0
    while (j < j1) {
      const pfn = ptes[j]!
      let k = j + 1
      if (pfn === PTE_NONE) {
        while (k < j1 && ptes[k] === PTE_NONE) k++
      } else {
        const win = Math.floor((pfn * ps) / WINDOW_BYTES)
        while (k < j1 && ptes[k] === pfn + (k - j) && Math.floor(((pfn + (k - j)) * ps) / WINDOW_BYTES) === win) k++
      }
      const s = Math.max(off, j * ps)
      const e = Math.min(off + len, k * ps)
      const bytes = pfn === PTE_NONE ? new Uint8Array(e - s) : dev.view(pfn * ps + (s - j * ps), e - s)
      out.push({ offset: s, bytes, pfn })
      j = k
    }
    return out
  }

  /**
   * Fault every page of the mapping below EOF (MAP_POPULATE). As Linux's
   * mm_populate, pages that cannot be faulted (poisoned) are skipped; pages
   * past EOF are left alone.
   */
  populate(): void {
    this.assertLive('populate')
    const g = this.#gone
    if (!g) { this.#layer.populate(this); this.#mapFaulted(0, this.pages); return }
    // The parts still mapped, one run at a time.
    let j = 0
    while (j < this.pages) {
      if (g[j]) { j++; continue }
      let k = j + 1
      while (k < this.pages && !g[k]) k++
      this.#layer.populate(this, j, k)
      this.#mapFaulted(j, k)
      j = k
    }
  }

  /**
   * Map the faulted pages of [j0, j1) into the address range, so workers
   * holding share().range see them without a view() on this thread. Pages
   * not faulted are left as they are (a guard page stays a guard page).
   */
  #mapFaulted(j0: number, j1: number): void {
    const range = this.#addr
    if (!range) return
    const ptes = this.ptes
    let j = j0
    while (j < j1) {
      if (ptes[j] === PTE_NONE) { j++; continue }
      let k = j + 1
      while (k < j1 && ptes[k] !== PTE_NONE) k++
      range.sync(ptes, j, k)
      j = k
    }
  }

  /** Flush + drain the mapped pages of [offset, offset+length) (pmem2_persist). Unmapped pages have nothing to flush. */
  persist(offset: number, length: number): void {
    this.assertLive('persist')
    const [off, len] = this.#range('persist', offset, length)
    if (len === 0) return
    const ps = this.pageSize
    const j0 = Math.floor(off / ps)
    const j1 = Math.ceil((off + len) / ps)
    this.#present('persist', j0, j1)
    const dev = this.#layer.dev
    let j = j0
    while (j < j1) {
      const pfn = this.ptes[j]!
      let k = j + 1
      if (pfn !== PTE_NONE) while (k < j1 && this.ptes[k] === pfn + (k - j)) k++
      if (pfn !== PTE_NONE) {
        const s = Math.max(off, j * ps)
        const e = Math.min(off + len, k * ps)
        dev.persist(pfn * ps + (s - j * ps), e - s)
      }
      j = k
    }
  }

  /**
   * The pfn backing byte `offset` of the mapping. Faults the page like a
   * touch (view of one byte). PTE_NONE for a hole of a read-only mapping
   * (the zero page is not a device page).
   */
  pfn(offset: number): number {
    this.assertLive('pfn')
    const [off] = this.#range('pfn', offset, 1)
    const j = Math.floor(off / this.pageSize)
    this.#present('pfn', j, j + 1)
    this.#layer.faultRange(this, j, j + 1, this.writable, 'cpu', 'pfn')
    return this.ptes[j]!
  }

  /** What is mapped at byte `offset` right now, without faulting: a pfn or PTE_NONE. */
  pte(offset: number): number {
    const [off] = this.#range('pte', offset, 1)
    return this.ptes[Math.floor(off / this.pageSize)]!
  }

  /**
   * munmap: the model's zap path for every installed page. Idempotent; views
   * taken before are stale. With `offset` (page aligned, mapping-relative)
   * and optionally `length` (rounded up to whole pages; default: to the end),
   * only that part goes (a partial munmap): its pages are zapped and never
   * faulted again — view/views/pfn/persist/fault reaching into it get EFAULT,
   * populate() skips it — and unmapping the last part unmaps the mapping.
   */
  unmap(offset?: number, length?: number): void {
    if (offset === undefined && length === undefined) {
      if (this.#state !== 'live') return
      this.#layer.unmap(this)
      return
    }
    const ps = this.pageSize
    const size = this.pages * ps
    const off = offset ?? 0
    const bad = (v: unknown): boolean => typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0
    const show = (v: unknown): string => typeof v === 'string' ? `'${v}'` : typeof v === 'bigint' ? `${v}n` : typeof v === 'symbol' ? 'a Symbol' : safeString(v)
    if (bad(off) || off % ps !== 0) throw pmemError('EINVAL', 'munmap', `offset must be a multiple of the ${ps}-byte page, got ${show(offset)}`, { path: this.path })
    if (length !== undefined && (bad(length) || length === 0)) throw pmemError('EINVAL', 'munmap', `length must be a positive integer, got ${show(length)}`, { path: this.path, offset: off })
    const len = length ?? size - off
    if (off + len > size || len === 0) {
      throw pmemError('EINVAL', 'munmap', `range [${off}, ${off}+${len}) is outside the ${size}-byte mapping`, { path: this.path, offset: off })
    }
    if (this.#state !== 'live') return
    const j0 = off / ps
    const j1 = Math.ceil((off + len) / ps)
    const g = this.#gone ??= new Uint8Array(this.pages)
    for (let j = j0; j < j1; j++) if (!g[j]) { g[j] = 1; this.#goneCount++ }
    if (this.#goneCount === this.pages) { this.#layer.unmap(this); return }
    this.#layer.unmapRange(this, j0, j1)
  }

  /**
   * The DMA slow path: fault [offset, offset+length) on the owning thread.
   * `write` on a read-only mapping: EFAULT. Errors: SIGBUS (past EOF),
   * EHWPOISON (poisoned page), ENOSPC (allocation), ENXIO/EIO (dead).
   * A read fault on a hole of a read-only mapping succeeds and leaves the
   * pte PTE_NONE: the zero page (reads see zeros, nothing to pin).
   */
  fault(offset: number, length: number, write: boolean): void {
    this.assertLive('fault')
    const [off, len] = this.#range('fault', offset, length)
    if (write && !this.writable) throw pmemError('EFAULT', 'fault', 'write fault on a read-only mapping', { path: this.path, offset: off })
    if (len === 0) return
    const ps = this.pageSize
    this.#present('fault', Math.floor(off / ps), Math.ceil((off + len) / ps))
    this.#layer.faultRange(this, Math.floor(off / ps), Math.ceil((off + len) / ps), this.writable, 'gup', 'fault')
  }

  share(): MappingShare {
    return {
      id: this.id, generation: this.generation, offset: this.offset, length: this.length, writable: this.writable,
      pageSize: this.pageSize, ptes: this.#ptesSab, state: this.#stateSab,
      ...(this.#addr ? { range: { sabs: this.#addr.sabs, step: RANGE_STEP } } : {}),
    }
  }
}
