/**
 * The struct-page side table (SPEC §1, §3): one 32-byte record per page in a
 * shared WasmMemory, updated by the wasm hot paths of
 * assembly/pages.ts, visible to worker threads (attach), waited on with
 * Atomics.waitAsync.
 */
import { PmemuAbortError, PmemuError, pmemError, safeString } from '../errors.js'
import { rootLogger, subsystemLogger, type Logger } from '../util/log.js'
import { MODEL_BY_ID, type ModelName } from '../util/model-ids.js'
import {
  RECORDS, RECORD_SHIFT, RECORD_WORDS, W_REF, W_MAP, W_PIN, W_FLAGS, W_INODE, W_INDEX, W_ORDER, W_GETS,
  F_HEAD, F_TAIL, F_POISONED, FLAG_NAMES, SETTABLE_FLAGS, type PageFlag,
  H_MAGIC, H_VERSION, H_PAGECOUNT, H_PAGESIZE, H_MODEL, H_STRICT, H_TRACKGETS, H_BOUND,
  M_PGMAP_BASE, H_PGMAP_REFS, H_PGMAP_SEQ, H_WAITERS, H_RING_HEAD, H_SLOTS, STATS, STAT_SLOTS, STAT_COUNTERS,
  RING, RING_ENTRIES, MAGIC, LAYOUT_VERSION, MAX_PAGES, EV, OP_NAMES, COUNTER_NAMES, type CounterName,
  S_LAYOUT_WAITS, S_HAZARDS, S_TRANSIENT, S_FOLIO_MAKES, S_FOLIO_SPLITS, S_UNBINDS, S_RESETS, V,
  BUSY_ABOVE_IDLE, ST_UNBOUND, BOUND, CLOSED,
} from './layout.js'
import {
  MODELS, MODEL_IDS, MODEL_NAMES, FOLIO_ORDER, FOLIO_PAGES, encodeModel, isModelName, pgmapBase, holdsPgmap,
  type RefcountModel, type PageEvent,
} from './models.js'
import { WA, instantiate, loadModule, waitAsync, type PagesExports, type WasmMemory, type WasmModule } from './wasm.js'
import { hotPaths, HOT_NAMES, type HotPaths } from './hot.js'
import { checkWaitOptions, describe } from '../util/check.js'
import { inspect } from 'node:util'

/** One broken invariant (SPEC §3), with where and how. */
export interface Violation {
  /** SPEC §3 invariant number (1: floors / refcount >= mapcount, 2: references of entries and mappings, 3: pgmap, 4: ownership / freed while referenced, ...). */
  invariant: number
  /** Machine-readable kind, e.g. 'refcount-underflow', 'use-after-free hazard', 'pgmap-mismatch'. */
  kind: string
  pfn: number
  model: ModelName
  op: string
  expected: number
  found: number
  message: string
}

export interface PageSnapshot {
  pfn: number
  refcount: number
  mapcount: number
  pincount: number
  flags: PageFlag[]
  inode: number
  index: number
  order: number
}

export interface PageTableOptions {
  pageCount: number
  /** Bytes per page (informational here; a power of two >= 4096). Default 4096. */
  pageSize?: number
  model?: ModelName
  /** Throw at the operation that breaks an invariant (and leave the counters as they were). */
  strict?: boolean
  /** Track outstanding plain gets per page (exact "put on a page that was never got"). Default: strict. */
  trackGets?: boolean
  logger?: Logger
}

export interface WaitOptions {
  signal?: AbortSignal
  timeoutMs?: number
}

/** What a worker needs to attach to the same table: postable with postMessage. */
export interface PageTableTransferable {
  kind: 'pmemu.PageTable'
  memory: WasmMemory
  module: WasmModule
  pageCount: number
  pageSize: number
  model: ModelName
  strict: boolean
}

export type PageTableStats = Record<CounterName, number> & {
  violations: number
  waiters: number
  pgmapRefs: number
}

const KIND_NAMES: Record<number, [kind: string, invariant: number, what: string]> = {
  [V.refUnderflow]: ['refcount-underflow', 1, 'refcount below its floor'],
  [V.neverGot]: ['put-never-got', 1, 'put on a page that was never got'],
  [V.mapUnderflow]: ['mapcount-underflow', 1, 'zap of an unmapped page (mapcount below 0)'],
  [V.pinUnderflow]: ['pincount-underflow', 1, 'unpin of an unpinned folio (pincount below 0)'],
  [V.doubleEntry]: ['double-entry', 4, 'page-cache entry inserted twice for one page'],
  [V.missingEntry]: ['missing-entry', 2, 'page-cache entry deleted that was never inserted'],
  [V.hazard]: ['use-after-free hazard', 4, 'page freed while its refcount says someone still holds it'],
  [V.twoFiles]: ['two-files', 4, 'page associated with a second file'],
  [V.belowStructuralFloor]: ['below-structural-floor', 2, 'refcount below the references its entries and mappings hold'],
  [V.tailCounts]: ['tail-counts', 1, 'counters on a folio tail (they belong on the head)'],
  [V.pgmap]: ['pgmap-mismatch', 3, 'dev_pagemap refcount differs from what the model predicts'],
  [V.lost]: ['violations-lost', 0, 'violation ring overflowed; older violations were lost'],
  [V.unbindHazard]: ['use-after-unbind hazard', 6, 'page still referenced (pinned or got) when the device was unbound'],
}

const MAX_LIVE_REPORTS = 64
const EV_GET = EV.get
const EV_PUT = EV.put
const EV_PIN = EV.pin
const EV_UNPIN = EV.unpin

/**
 * The struct page array of one region, with one refcount model.
 *
 * Low-level paths (`dev.pages`): get, put, pin, unpin, pinRange, unpinRange,
 * maybeDmaPinned. DAX-layer paths: entryInsert, mapInsert, zap, entryDelete,
 * free, associate, busy, waitIdle. All pfn arguments are page numbers in
 * [0, pageCount); an operation on a folio tail acts on its head.
 */
export class PageTable {
  readonly pageCount: number
  readonly pageSize: number
  readonly model: RefcountModel
  readonly strict: boolean
  readonly memory: WasmMemory
  readonly module: WasmModule
  readonly #x: PagesExports
  readonly #i32: Int32Array
  readonly #log: Logger
  // hot-path exports, bound once
  readonly #apply: (ev: number, pfn: number) => number
  readonly #finish: (ev: number, pfn: number, code: number) => number
  readonly #rangeFn: (ev: number, pfn: number, count: number) => number
  #ringRead = 0
  readonly #recorded: Violation[] = []
  readonly #checkers: Array<() => Violation[]> = []
  readonly #activeWaits = new Set<number>()

  private constructor(memory: WasmMemory, module: WasmModule, x: PagesExports, logger: Logger) {
    this.memory = memory
    this.module = module
    this.#x = x
    this.#i32 = new Int32Array(memory.buffer)
    const i32 = this.#i32
    if (i32[H_MAGIC >> 2] !== MAGIC || i32[H_VERSION >> 2] !== LAYOUT_VERSION) {
      throw pmemError('EINVAL', 'attach', 'memory does not hold a pmemu page table (bad magic or layout version)')
    }
    this.pageCount = i32[H_PAGECOUNT >> 2]! >>> 0
    this.pageSize = i32[H_PAGESIZE >> 2]! >>> 0
    const name = MODEL_BY_ID[i32[H_MODEL >> 2]!]
    if (name === undefined) throw pmemError('EINVAL', 'attach', `the page table records model id ${i32[H_MODEL >> 2]}, which this pmemu does not know (${MODEL_NAMES.join(', ')})`)
    this.model = MODELS[name]
    this.strict = i32[H_STRICT >> 2] !== 0
    this.#log = logger
    this.#apply = x.apply
    this.#finish = x.finish
    this.#rangeFn = x.range
    // This instance's own copy of the hot paths (src/page/hot.ts), so that
    // each call site into wasm sees one target however many tables the
    // process has.
    const hot = hotPaths({
      x, pageCount: this.pageCount, ev: { get: EV_GET, put: EV_PUT, pin: EV_PIN, unpin: EV_UNPIN },
      badPfn: (op, pfn) => this.#badPfn(op, pfn),
      checkRange: (op, pfn, count) => this.#checkRange(op, pfn, count),
      finishHot: (code, ev, op, pfn) => this.#finishHot(code, ev, op, pfn),
      violated: (status, op, pfn) => this.#violated(status, op, pfn),
      longterm: pfn => this.#longterm(pfn),
    })
    // Own properties, not a per-instance prototype: every table keeps one
    // hidden class, so the other paths (DAX layer, private fields) stay
    // monomorphic however many tables exist.
    for (const k of HOT_NAMES) Object.defineProperty(this, k, { value: hot[k], writable: true, configurable: true, enumerable: false })
  }

  /** Allocate and initialise a side table for `pageCount` pages (every record idle). */
  static async create(opts: PageTableOptions): Promise<PageTable> {
    const { pageCount, pageSize = 4096, model = 'upstream', strict = false } = opts ?? ({} as PageTableOptions)
    if (!Number.isSafeInteger(pageCount) || pageCount <= 0 || pageCount > MAX_PAGES) {
      throw pmemError('EINVAL', 'PageTable.create',
        `pageCount must be a whole number in [1, ${MAX_PAGES}] (the wasm32 side table holds at most ~512 GiB of 4 KiB pages), got ${pageCount}`)
    }
    if (!Number.isSafeInteger(pageSize) || pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0 || pageSize > 2 ** 30) {
      throw pmemError('EINVAL', 'PageTable.create', `pageSize must be a power of two >= 4096, got ${pageSize}`)
    }
    if (!isModelName(model)) {
      throw pmemError('EINVAL', 'PageTable.create', `model must be one of ${MODEL_NAMES.join(', ')}, got ${safeString(model)}`)
    }
    const log = subsystemLogger(rootLogger(opts.logger), 'pages')
    const module = await loadModule()
    const bytes = RECORDS + pageCount * 32
    const pages = Math.ceil(bytes / 65536)
    let memory: WasmMemory
    try {
      memory = new WA.Memory({ initial: pages, maximum: pages, shared: true })
    } catch (e) {
      throw pmemError('ENOMEM', 'PageTable.create', `cannot allocate ${bytes} bytes of shared memory for the side table`, { cause: e })
    }
    const t0 = performance.now()
    const i32 = new Int32Array(memory.buffer)
    const spec = MODELS[model]
    i32[H_MAGIC >> 2] = MAGIC
    i32[H_VERSION >> 2] = LAYOUT_VERSION
    i32[H_PAGECOUNT >> 2] = pageCount
    i32[H_PAGESIZE >> 2] = pageSize
    i32[H_MODEL >> 2] = MODEL_IDS[model]
    i32[H_STRICT >> 2] = strict ? 1 : 0
    const trackGets = opts.trackGets ?? strict
    i32[H_TRACKGETS >> 2] = trackGets ? 1 : 0
    i32[H_BOUND >> 2] = 1
    encodeModel(i32, spec, pageCount, { trackGets })
    i32[H_PGMAP_REFS >> 2] = pgmapBase(spec, pageCount)
    i32[H_SLOTS >> 2] = 1
    const x = instantiate(module, memory)
    x.setSlot(0, 0)
    x.init(pageCount, spec.idleRefcount, 1) // fresh memory is zero: only non-zero words are written
    const table = new PageTable(memory, module, x, log)
    log.debug({ pageCount, model, strict, bytes, initMs: performance.now() - t0 }, 'side table initialised')
    return table
  }

  /** A plain object to postMessage to a worker, which calls PageTable.attach on it. */
  transferable(): PageTableTransferable {
    return {
      kind: 'pmemu.PageTable', memory: this.memory, module: this.module,
      pageCount: this.pageCount, pageSize: this.pageSize, model: this.model.name, strict: this.strict,
    }
  }

  /** In a worker: the same table (same memory, same module), no re-initialisation. */
  static attach(t: PageTableTransferable, opts: { logger?: Logger } = {}): PageTable {
    if (!t || t.kind !== 'pmemu.PageTable' || !(t.memory instanceof WA.Memory) || !(t.module instanceof WA.Module)) {
      throw pmemError('EINVAL', 'PageTable.attach', 'not a PageTable transferable')
    }
    if (!(t.memory.buffer instanceof SharedArrayBuffer)) {
      throw pmemError('EINVAL', 'PageTable.attach', 'the side table memory is not shared')
    }
    const x = instantiate(t.module, t.memory)
    const i32 = new Int32Array(t.memory.buffer)
    let slot = Atomics.add(i32, H_SLOTS >> 2, 1)
    const shared = slot >= STAT_SLOTS - 1
    if (shared) slot = STAT_SLOTS - 1
    x.setSlot(slot, shared ? 1 : 0)
    return new PageTable(t.memory, t.module, x, subsystemLogger(rootLogger(opts.logger), 'pages'))
  }

  // --- validation ----------------------------------------------------------

  #badPfn(op: string, pfn: unknown): PmemuError {
    return pmemError('EINVAL', op, `pfn must be a whole number in [0, ${this.pageCount}), got ${describe(pfn)}`, { pfn: typeof pfn === 'number' ? pfn : undefined })
  }

  #checkPfn(op: string, pfn: number): void {
    if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < this.pageCount)) throw this.#badPfn(op, pfn)
  }

  #checkRange(op: string, pfn: number, count: number): void {
    this.#checkPfn(op, pfn)
    if (!(typeof count === 'number' && count >>> 0 === count && pfn + count <= this.pageCount)) {
      throw pmemError('EINVAL', op, `count must be a whole number with pfn + count <= ${this.pageCount}, got ${describe(count)}`, { pfn })
    }
  }

  /** A wasm status != 0: ENXIO when the table is unbound or its device closed; else the violation is in the ring, strict mode throws it. */
  #violated(status: number, op: string, pfn: number): void {
    if (status === ST_UNBOUND) throw this.#unbound(op, pfn)
    if (!this.strict) return
    this.#drainRing()
    let v: Violation | undefined
    for (let i = this.#recorded.length - 1; i >= 0; i--) {
      const r = this.#recorded[i]!
      if (r.op === op && r.kind === KIND_NAMES[status]?.[0]) { v = r; break }
    }
    v ??= this.#makeViolation(status, pfn, op, 0, 0)
    throw pmemError('EINVAL', op, `invariant ${v.invariant} violated: ${v.message}`, { pfn, violation: v })
  }

  /** ENXIO: what every path gives once the table is unbound or its device closed (H_BOUND, shared with every thread's table). */
  #unbound(op: string, pfn: number | undefined): PmemuError {
    const closed = Atomics.load(this.#i32, H_BOUND >> 2) === CLOSED
    return pmemError('ENXIO', op, closed ? 'the device is closed' : 'the device was unbound', { pfn })
  }

  /** The cold paths' check of the same bound state the wasm counting paths read. */
  #checkBound(op: string, pfn: number | undefined): void {
    if (Atomics.load(this.#i32, H_BOUND >> 2) !== BOUND) throw this.#unbound(op, pfn)
  }

  // --- low-level paths (dev.pages) ----------------------------------------------
  // Own properties of each table, installed by the constructor from
  // src/page/hot.ts (the one source of these paths; see there why each table
  // compiles its own copy).

  /** Plain get (FOLL_GET): +1 ref (legacy: transient pgmap ref during the walk; dax-gup: 0->1 takes the pgmap ref). */
  declare readonly get: HotPaths['get']
  /** put_page(): -1 ref (dax-gup: the put that reaches 0 frees the page and drops its pgmap ref). */
  declare readonly put: HotPaths['put']
  /** Pin (FOLL_PIN): small page +1024; folio +1 ref +1 pincount. `longterm` is refused (EOPNOTSUPP). */
  declare readonly pin: HotPaths['pin']
  /** Unpin: the inverse of pin. */
  declare readonly unpin: HotPaths['unpin']
  /** get + put in one wasm call (benchmark path). */
  declare readonly getPut: HotPaths['getPut']
  /** pin_user_pages over [pfn, pfn+count): one atomic per small page, one per folio (n refs, n pincount). */
  declare readonly pinRange: HotPaths['pinRange']
  declare readonly unpinRange: HotPaths['unpinRange']
  declare readonly getRange: HotPaths['getRange']
  declare readonly putRange: HotPaths['putRange']
  /** page_maybe_dma_pinned(): folio pincount > 0; small page refcount >= 1024 (1024 plain gets are a false positive, as in Linux). */
  declare readonly maybeDmaPinned: HotPaths['maybeDmaPinned']

  /**
   * A fast lane (get/put/pin/unpin) returned non-zero: the rest of the
   * operation (the generic path, a violation, a pgmap transition with a
   * waiter, a wake-up) runs in wasm's finish(), out of the hot exports.
   */
  #finishHot(code: number, ev: number, op: string, pfn: number): void {
    const st = this.#finish(ev, pfn, code)
    if (st !== 0) this.#violated(st, op, pfn)
  }

  #longterm(pfn: number): PmemuError {
    return pmemError('EOPNOTSUPP', 'pin', 'FOLL_LONGTERM pins of fsdax pages are not supported (truncate cannot wait for them)', { pfn })
  }

  /**
   * One wasm call over [pfn, pfn+count) for the DAX-layer events. The checks
   * are inline (no string built per call: `op` is a constant); a failing one
   * throws what #checkRange throws.
   */
  #range(ev: number, op: PageEvent, rangeOp: string, pfn: number, count: number): void {
    if (!(typeof pfn === 'number' && typeof count === 'number' && pfn >>> 0 === pfn && pfn < this.pageCount && count >>> 0 === count && pfn + count <= this.pageCount)) {
      this.#checkRange(rangeOp, pfn, count)
    }
    const st = this.#rangeFn(ev, pfn, count)
    if (st !== 0) this.#violated(st, op, this.#x.rangeStop())
  }

  // --- DAX layer -------------------------------------------------------------------

  #event(ev: PageEvent, pfn: number, count: number): void {
    if (count === 1) {
      this.#checkPfn(ev, pfn)
      const st = this.#apply(EV[ev], pfn)
      if (st !== 0) this.#violated(st, ev, pfn)
    } else {
      this.#range(EV[ev], ev, ev + 'Range', pfn, count)
    }
  }

  /** A page-cache (DAX) entry now refers to the page (dax-gup: +1 ref, 0->1 takes a pgmap ref; dax-gup-v1: a pgmap ref, no page ref). */
  entryInsert(pfn: number, count = 1): void { this.#event('entryInsert', pfn, count) }
  /** A PTE/PMD mapping of the page (upstream: +1 ref +1 mapcount; on a folio, once per PMD). */
  mapInsert(pfn: number, count = 1): void { this.#event('mapInsert', pfn, count) }
  /** Unmap one mapping (upstream: -1 mapcount -1 ref; 1->0 wakes waiters). */
  zap(pfn: number, count = 1): void { this.#event('zap', pfn, count) }
  /** The entry is deleted (truncate/evict; dax-gup: -1 ref, 1->0 frees and drops the pgmap ref; dax-gup-v1: drops its pgmap ref). */
  entryDelete(pfn: number, count = 1): void { this.#event('entryDelete', pfn, count) }

  /**
   * The file system frees the block behind `pfn`. Returns false (and records
   * a 'use-after-free hazard' violation, invariant 4) when the page's counters
   * say someone still holds it, so the fs can quarantine the block. Never
   * throws for the hazard, even in strict mode: in dax-gup-v1 it is the model's
   * known flaw, not a caller bug.
   */
  free(pfn: number): boolean {
    this.#checkPfn('free', pfn)
    this.#checkBound('free', pfn)
    return this.#x.free(pfn) !== 0
  }

  /** page->mapping = inode, page->index = index (a folio keeps it on its head). */
  associate(pfn: number, inode: number, index: number): void {
    this.#checkPfn('associate', pfn)
    this.#checkBound('associate', pfn)
    if (!(inode >>> 0 === inode && inode !== 0)) throw pmemError('EINVAL', 'associate', `inode must be a whole number in [1, 2^32), got ${inode}`, { pfn })
    if (!(index >>> 0 === index)) throw pmemError('EINVAL', 'associate', `index must be a whole number in [0, 2^32), got ${index}`, { pfn })
    const st = this.#x.associate(pfn, inode, index)
    if (st !== 0) this.#violated(st, 'associate', pfn)
  }

  disassociate(pfn: number): void {
    this.#checkPfn('disassociate', pfn)
    this.#checkBound('disassociate', pfn)
    this.#x.associate(pfn, 0, 0)
  }

  setFlag(pfn: number, flag: PageFlag): void { this.#flag('setFlag', pfn, flag, true) }
  clearFlag(pfn: number, flag: PageFlag): void { this.#flag('clearFlag', pfn, flag, false) }

  hasFlag(pfn: number, flag: PageFlag): boolean {
    return this.snapshot(pfn).flags.includes(flag)
  }

  #flag(op: string, pfn: number, flag: PageFlag, on: boolean): void {
    this.#checkPfn(op, pfn)
    this.#checkBound(op, pfn)
    const bit = SETTABLE_FLAGS[flag]
    if (bit === undefined) {
      throw pmemError('EINVAL', op, `flag must be one of ${Object.keys(SETTABLE_FLAGS).join(', ')}, got ${safeString(flag)}`, { pfn })
    }
    // poison is per page (PageHWPoison on the subpage); the others live on the head
    const target = bit === F_POISONED ? pfn : this.#x.head(pfn)
    const w = (RECORDS >> 2) + target * RECORD_WORDS + W_FLAGS
    if (on) Atomics.or(this.#i32, w, bit)
    else Atomics.and(this.#i32, w, ~bit)
  }

  /** The pfn carrying the counters of `pfn`: its folio head, or itself. */
  headOf(pfn: number): number {
    this.#checkPfn('headOf', pfn)
    return this.#x.head(pfn)
  }

  /** Is the page busy under the model's truncate rule (legacy: refcount > 1; dax-gup-v1: maybe DMA pinned; dax-gup, upstream: refcount > 0)? */
  busy(pfn: number): boolean {
    this.#checkPfn('busy', pfn)
    return this.#x.firstBusy(pfn, 1, -1) >= 0
  }

  /** First busy page (head pfn) in [pfn, pfn+count), or -1. */
  firstBusy(pfn: number, count: number): number {
    this.#checkRange('firstBusy', pfn, count)
    return this.#x.firstBusy(pfn, count, -1)
  }

  // --- folios -------------------------------------------------------------------------

  /** Group the 512 pages from `headPfn` (2 MiB-aligned) into one order-9 folio (upstream only: EOPNOTSUPP elsewhere; EBUSY if any page is in use). */
  makeFolio(headPfn: number): void {
    this.#checkPfn('makeFolio', headPfn)
    this.#checkBound('makeFolio', headPfn)
    if (headPfn % FOLIO_PAGES !== 0 || headPfn + FOLIO_PAGES > this.pageCount) {
      throw pmemError('EINVAL', 'makeFolio', `a folio head must be ${FOLIO_PAGES}-page aligned with ${FOLIO_PAGES} pages in the table`, { pfn: headPfn })
    }
    const st = this.#x.makeFolio(headPfn, FOLIO_ORDER)
    if (st === 1) throw pmemError('EOPNOTSUPP', 'makeFolio', `the ${this.model.name} model has no compound folios: its 512 pages are counted one by one`, { pfn: headPfn })
    if (st === 2) throw pmemError('EBUSY', 'makeFolio', 'a page of the extent is in use, associated or already compound', { pfn: headPfn })
    this.#x.bump(S_FOLIO_MAKES, 1n)
  }

  /** Split a folio back to order-0 pages: only when idle and unassociated (EBUSY otherwise). */
  splitFolio(headPfn: number): void {
    this.#checkPfn('splitFolio', headPfn)
    this.#checkBound('splitFolio', headPfn)
    const st = this.#x.splitFolio(headPfn)
    if (st === 3) throw pmemError('EINVAL', 'splitFolio', 'not a folio head', { pfn: headPfn })
    if (st === 2) throw pmemError('EBUSY', 'splitFolio', 'the folio is referenced, mapped, pinned or still associated with a file', { pfn: headPfn })
    this.#x.bump(S_FOLIO_SPLITS, 1n)
  }

  // --- waiting -------------------------------------------------------------------------

  /**
   * Wait (Atomics.waitAsync on the busy page's refcount word, woken by the
   * model's wake rule; never polling, never blocking) until no page in
   * [pfn, pfn+count) is busy. Rejects with ETIMEDOUT or an AbortError;
   * either way nothing has changed. Counts `layoutWaits` when it had to wait.
   */
  waitIdle(pfn: number, count: number, opts: WaitOptions = {}): Promise<void> {
    try {
      this.#checkRange('waitIdle', pfn, count)
    } catch (e) {
      return Promise.reject(e)
    }
    return this.#waitUntil(() => {
      const b = this.#x.firstBusy(pfn, count, -1)
      return b < 0 ? -1 : (RECORDS >> 2) + b * RECORD_WORDS + W_REF
    }, opts, 'waitIdle', pfn)
  }

  /**
   * Unbind's wait, per the model's "unbind waits for" row: the pgmap refs
   * back to their bulk base (legacy: walks in flight; dax-gup-v1: entries;
   * upstream: nothing else holds one) or every page idle (dax-gup).
   */
  waitAllIdle(opts: WaitOptions = {}): Promise<void> {
    // pgmap-base: wait on the pgmap sequence word, bumped and notified by
    // the thread whose put / walk end / entry delete may have brought the
    // count to its base.
    const base = pgmapBase(this.model, this.pageCount)
    const probe = this.model.unbindWaits === 'pgmap-base'
      ? () => (this.pgmapRefs() > base ? H_PGMAP_SEQ >> 2 : -1)
      : () => {
        const b = this.#x.firstBusy(0, this.pageCount, BUSY_ABOVE_IDLE)
        return b < 0 ? -1 : (RECORDS >> 2) + b * RECORD_WORDS + W_REF
      }
    return this.#waitUntil(probe, opts, 'unbind', undefined)
  }

  async #waitUntil(probe: () => number, opts: WaitOptions, syscall: string, pfn: number | undefined): Promise<void> {
    // signal and timeoutMs are checked before anything is waited on or counted.
    checkWaitOptions(opts, syscall, { pfn })
    const { signal, timeoutMs } = opts ?? {}
    if (signal?.aborted) throw new PmemuAbortError(syscall, { pfn, cause: signal.reason })
    let word = probe()
    if (word < 0) return
    this.#x.bump(S_LAYOUT_WAITS, 1n)
    const i32 = this.#i32
    const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs
    let aborted = false
    let waitingOn = -1
    const onAbort = (): void => {
      aborted = true
      if (waitingOn >= 0) Atomics.notify(i32, waitingOn)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    const timedOut = (): PmemuError => pmemError('ETIMEDOUT', syscall,
      `pages still busy after ${timeoutMs} ms (${this.model.busy} rule of the ${this.model.name} model)`,
      { pfn: word >= (RECORDS >> 2) ? ((word - (RECORDS >> 2)) / RECORD_WORDS) | 0 : pfn })
    let deadlineTimer: ReturnType<typeof setTimeout> | undefined
    let expired = false
    try {
      for (;;) {
        // Announce the waiter before re-reading: a waker either sees it and
        // notifies, or its store is visible to the re-check below.
        Atomics.add(i32, H_WAITERS >> 2, 1)
        let res: 'ok' | 'not-equal' | 'timed-out'
        try {
          const value = Atomics.load(i32, word)
          const again = probe()
          if (again < 0) return
          if (again !== word) { word = again; continue }
          const remaining = deadline - performance.now()
          if (expired || remaining <= 0) throw timedOut()
          if (aborted) throw new PmemuAbortError(syscall, { pfn, cause: signal?.reason })
          waitingOn = word
          this.#activeWaits.add(word)
          // The deadline is a timer, not waitAsync's own timeout: a pending
          // waitAsync does not keep Node's event loop alive and its timeout is
          // a delayed V8 task the loop does not wait for. The timer (one, at
          // the deadline; no polling) keeps the loop alive and wakes the wait.
          if (remaining !== Infinity && !deadlineTimer) {
            deadlineTimer = setTimeout(() => { expired = true; if (waitingOn >= 0) Atomics.notify(i32, waitingOn) }, remaining)
          }
          const w = waitAsync(i32, word, value)
          res = w.async ? await w.value : w.value
        } finally {
          this.#activeWaits.delete(word)
          waitingOn = -1
          Atomics.sub(i32, H_WAITERS >> 2, 1)
        }
        if (aborted) throw new PmemuAbortError(syscall, { pfn, cause: signal?.reason })
        word = probe()
        if (word < 0) return
        if (expired || res === 'timed-out' || performance.now() >= deadline) throw timedOut()
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      if (deadlineTimer) clearTimeout(deadlineTimer)
    }
  }

  // --- device lifecycle ----------------------------------------------------------

  /**
   * Drop the bulk pgmap refs taken at enable and mark the table unbound.
   * Call after waitAllIdle(). Where the model's unbind does not wait for
   * pages (every model but dax-gup: memunmap_pages waits for pgmap refs
   * only), a page still referenced now (a pin or a get outstanding) is a
   * use-after-unbind hazard: each is recorded (check() lists it, invariant
   * 6) and returned. Idempotent ([] when already unbound).
   */
  unbind(): Violation[] {
    const hazards: Violation[] = []
    if (Atomics.compareExchange(this.#i32, H_BOUND >> 2, 1, 0) !== 1) return hazards
    if (this.model.unbindWaits === 'pgmap-base') {
      let n = 0
      for (let p = 0; p < this.pageCount;) {
        const h = this.#x.firstBusy(p, this.pageCount - p, BUSY_ABOVE_IDLE)
        if (h < 0) break
        n++
        const s = this.snapshot(h)
        if (hazards.length < MAX_LIVE_REPORTS) hazards.push(this.#makeViolation(V.unbindHazard, h, 'unbind', this.model.idleRefcount, s.refcount))
        p = h + (s.order > 0 ? 1 << s.order : 1)
      }
      if (n > 0) this.#x.bump(S_HAZARDS, BigInt(n))
    }
    const base = this.#i32[M_PGMAP_BASE >> 2]!
    if (base !== 0) Atomics.sub(this.#i32, H_PGMAP_REFS >> 2, base)
    this.#x.bump(S_UNBINDS, 1n)
    this.#recorded.push(...hazards)
    return hazards
  }

  /** A small summary: JSON.stringify(table) must not walk the wasm memory. */
  toJSON(): Record<string, unknown> {
    return { type: 'PageTable', pageCount: this.pageCount, pageSize: this.pageSize, model: this.model.name, strict: this.strict, bound: this.bound }
  }

  [inspect.custom](): string {
    return `PageTable ${inspect(this.toJSON())}`
  }

  /**
   * The device is closed: every counting path (here and in every worker's
   * table on the same memory) fails with ENXIO from now on. Idempotent; an
   * unbound table stays unbound-and-closed.
   */
  close(): void {
    Atomics.store(this.#i32, H_BOUND >> 2, CLOSED)
  }

  get bound(): boolean {
    return Atomics.load(this.#i32, H_BOUND >> 2) === 1
  }

  /**
   * Back to the state of a fresh open (used after a crash): every record
   * idle, pgmap at its base, bound. Stats and recorded violations are kept;
   * waiters of this thread are woken to re-check.
   */
  reset(): void {
    this.#x.init(this.pageCount, this.model.idleRefcount, 0)
    // per-page and per-entry refs are counted in the threads' slots (percpu_ref
    // style): every page is idle now, so the shared word cancels them out.
    const perThread = holdsPgmap(this.model, 'per-page') || holdsPgmap(this.model, 'per-entry') ? this.#slotPgmapRefs() : 0
    Atomics.store(this.#i32, H_PGMAP_REFS >> 2, pgmapBase(this.model, this.pageCount) - perThread)
    Atomics.store(this.#i32, H_BOUND >> 2, 1)
    this.#x.bump(S_RESETS, 1n)
    for (const w of this.#activeWaits) Atomics.notify(this.#i32, w)
  }

  // --- introspection -----------------------------------------------------------------

  snapshot(pfn: number): PageSnapshot {
    this.#checkPfn('snapshot', pfn)
    const i32 = this.#i32
    const own = (RECORDS >> 2) + pfn * RECORD_WORDS
    const h = this.#x.head(pfn)
    const r = (RECORDS >> 2) + h * RECORD_WORDS
    let bits = Atomics.load(i32, r + W_FLAGS)
    if (h !== pfn) bits = (bits & ~(F_HEAD | F_POISONED)) | F_TAIL | (Atomics.load(i32, own + W_FLAGS) & F_POISONED)
    const flags: PageFlag[] = []
    for (const [name, bit] of FLAG_NAMES) if (bits & bit) flags.push(name)
    return {
      pfn,
      refcount: Atomics.load(i32, r + W_REF),
      mapcount: Atomics.load(i32, r + W_MAP),
      pincount: Atomics.load(i32, r + W_PIN),
      flags,
      inode: Atomics.load(i32, r + W_INODE) >>> 0,
      index: ((Atomics.load(i32, r + W_INDEX) >>> 0) + (pfn - h)) >>> 0,
      order: Atomics.load(i32, own + W_ORDER),
    }
  }

  /** Outstanding plain gets on the page (0 unless trackGets). */
  outstandingGets(pfn: number): number {
    this.#checkPfn('outstandingGets', pfn)
    return Atomics.load(this.#i32, (RECORDS >> 2) + this.#x.head(pfn) * RECORD_WORDS + W_GETS)
  }

  /**
   * The dev_pagemap refcount: the shared count (bulk refs) plus what each
   * thread keeps in its own slot like a percpu_ref: the transient refs of
   * legacy walks in flight, dax-gup's one ref per referenced page (taken on
   * the 0->1 and dropped on the ->0 transitions that thread made). Exact at
   * quiescent points.
   */
  pgmapRefs(): number {
    return Atomics.load(this.#i32, H_PGMAP_REFS >> 2) + this.#slotPgmapRefs()
  }

  /** The pgmap refs counted in the threads' slots: legacy's walks in flight, dax-gup's per-page refs. */
  #slotPgmapRefs(): number {
    let n = 0
    const used = Math.min(STAT_SLOTS, Atomics.load(this.#i32, H_SLOTS >> 2))
    const words = new BigInt64Array(this.memory.buffer, STATS, STAT_SLOTS * STAT_COUNTERS)
    for (let s = 0; s < used; s++) n += Number(Atomics.load(words, s * STAT_COUNTERS + S_TRANSIENT))
    return n
  }

  /** What the model says the pgmap count should be at a quiescent point. */
  expectedPgmapRefs(): number {
    const m = this.model
    return (holdsPgmap(m, 'bulk') && this.bound ? this.pageCount : 0) +
      (holdsPgmap(m, 'per-page') ? this.#x.countReferenced(0, this.pageCount) : 0) +
      (holdsPgmap(m, 'per-entry') ? this.#x.countEntries(0, this.pageCount) : 0)
  }

  /** Counters summed over every thread's slot, plus violations, waiters and pgmap refs. */
  stats(): PageTableStats {
    const words = new BigInt64Array(this.memory.buffer, STATS, STAT_SLOTS * STAT_COUNTERS)
    const used = Math.min(STAT_SLOTS, Atomics.load(this.#i32, H_SLOTS >> 2))
    const out = {} as Record<string, number>
    COUNTER_NAMES.forEach((name, c) => {
      let sum = 0n
      for (let s = 0; s < used; s++) sum += words[s * STAT_COUNTERS + c]!
      out[name] = Number(sum)
    })
    out.violations = Atomics.load(this.#i32, H_RING_HEAD >> 2) >>> 0
    out.waiters = Atomics.load(this.#i32, H_WAITERS >> 2)
    out.pgmapRefs = this.pgmapRefs()
    return out as PageTableStats
  }

  /** Add to a counter of this thread's slot (upper layers: faults, folioFaults, truncates, ...). */
  bump(counter: CounterName, n = 1): void {
    const i = COUNTER_NAMES.indexOf(counter)
    if (i < 0) throw pmemError('EINVAL', 'bump', `unknown counter ${safeString(counter)} (one of ${COUNTER_NAMES.join(', ')})`)
    if (!Number.isSafeInteger(n)) throw pmemError('EINVAL', 'bump', `n must be a whole number, got ${n}`)
    this.#x.bump(i, BigInt(n))
  }

  /** Register an extra invariant checker (fs, DAX layer) that check() runs. */
  addChecker(fn: () => Violation[]): () => void {
    this.#checkers.push(fn)
    return () => {
      const i = this.#checkers.indexOf(fn)
      if (i >= 0) this.#checkers.splice(i, 1)
    }
  }

  /**
   * Every violation: those recorded at the faulting operation (from any
   * thread, via the shared ring), the structural invariants 1-2 of the
   * records as they are now, invariant 3 (pgmap), and registered checkers.
   * [] when every invariant holds. Meaningful at a quiescent point.
   */
  check(): Violation[] {
    this.#drainRing()
    const out = [...this.#recorded]
    const pc = this.pageCount
    let p = 0
    let reported = 0
    while (p < pc && reported < MAX_LIVE_REPORTS) {
      const bad = this.#x.scan(p, pc)
      if (bad < 0) break
      out.push(this.#liveViolation(bad))
      reported++
      p = bad + 1
    }
    const expected = this.expectedPgmapRefs()
    const found = this.pgmapRefs()
    if (expected !== found) out.push(this.#makeViolation(V.pgmap, -1, 'check', expected, found))
    for (const fn of this.#checkers) out.push(...fn())
    return out
  }

  /** Forget recorded violations (those in the ring and already drained). */
  clearViolations(): void {
    this.#drainRing()
    this.#recorded.length = 0
  }

  #liveViolation(pfn: number): Violation {
    const s = this.snapshot(pfn)
    const i32 = this.#i32
    const r = (RECORDS >> 2) + pfn * RECORD_WORDS
    const m = this.model
    if (i32[r + W_FLAGS]! & F_TAIL) {
      return this.#makeViolation(V.tailCounts, pfn, 'check', 0, i32[r + W_REF]! || i32[r + W_MAP]! || i32[r + W_PIN]!)
    }
    if (s.mapcount < 0) return this.#makeViolation(V.mapUnderflow, pfn, 'check', 0, s.mapcount)
    if (s.pincount < 0) return this.#makeViolation(V.pinUnderflow, pfn, 'check', 0, s.pincount)
    if (s.refcount < m.idleRefcount) return this.#makeViolation(V.refUnderflow, pfn, 'check', m.idleRefcount, s.refcount)
    const gets = i32[r + W_GETS]!
    if (gets < 0) return this.#makeViolation(V.neverGot, pfn, 'check', 0, gets)
    const floor = m.idleRefcount + (s.flags.includes('entry') ? m.entryRefs : 0) + Math.max(0, s.mapcount) * m.mapRefs
    return this.#makeViolation(V.belowStructuralFloor, pfn, 'check', floor, s.refcount)
  }

  #makeViolation(kind: number, pfn: number, op: string, expected: number, found: number): Violation {
    const [name, invariant, what] = KIND_NAMES[kind] ?? [`kind-${kind}`, 0, 'unknown violation']
    const where = pfn >= 0 ? `pfn ${pfn}` : 'device'
    return {
      invariant, kind: name, pfn, model: this.model.name, op, expected, found,
      message: `${what}: ${where}, op ${op}, model ${this.model.name}, expected ${expected}, found ${found}`,
    }
  }

  #drainRing(): void {
    const i32 = this.#i32
    const head = Atomics.load(i32, H_RING_HEAD >> 2) >>> 0
    let i = this.#ringRead
    if (head - i > RING_ENTRIES) {
      const lost = head - i - RING_ENTRIES
      this.#recorded.push(this.#makeViolation(V.lost, -1, 'ring', 0, lost))
      i = head - RING_ENTRIES
    }
    for (; i < head; i++) {
      const e = (RING >> 2) + (i % RING_ENTRIES) * 8
      if ((Atomics.load(i32, e) >>> 0) !== ((i + 1) >>> 0)) break // not yet published
      const kind = i32[e + 1]!
      const pfn = i32[e + 2]! >>> 0
      const op = OP_NAMES[i32[e + 3]!] ?? 'unknown'
      this.#recorded.push(this.#makeViolation(kind, pfn, op, i32[e + 4]!, i32[e + 5]!))
    }
    this.#ringRead = i
  }
}

