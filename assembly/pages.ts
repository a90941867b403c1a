// pmemu side table: struct page records and the four refcount models, in
// shared wasm memory. Every model is data (the header's model constants and
// event table, written by src/page/models.ts); there is ONE code path here.
// No allocations: --runtime stub, no strings, no static data.
import {
  HDR, RECORDS, RECORD_SHIFT,
  R_REF, R_MAP, R_PIN, R_FLAGS, R_INODE, R_INDEX, R_ORDER, R_GETS,
  F_HEAD, F_TAIL, F_ENTRY, F_LOCKED, F_DIRTY,
  H_PAGECOUNT, H_MODEL, H_STRICT, H_TRACKGETS, H_BOUND, ST_UNBOUND,
  M_IDLE, M_PGMAP, M_WAKE, M_BUSY, M_FOLIOS, M_ENTRY_REF, M_MAP_REF,
  PGB_WALK, PGB_PER_PAGE, BUSY_ABOVE_IDLE, BUSY_DMA_PINNED,
  T_EVENTS, E_REF, E_REF_FOLIO, E_PIN_FOLIO, E_MAP, E_GETS, E_FLAGS, E_INVERSE, E_STAT,
  EF_WALK, EF_ENTRY_SET, EF_ENTRY_CLEAR, EF_PGMAP_GET, EF_PGMAP_PUT,
  EV_GET, EV_PUT, EV_PIN, EV_UNPIN, EV_ENTRY_INSERT, EV_MAP_INSERT, EV_ZAP, EV_ENTRY_DELETE,
  EV_FREE, EV_ASSOCIATE,
  H_PGMAP_REFS, H_WAITERS, H_RING_HEAD, H_PGMAP_SEQ, M_EDGE_OLD, M_EDGE_NEW, EF_SLOW, EF_WAKE_UNPINNED, EF_WAKE_IDLE,
  STATS, STAT_SLOT_BYTES, S_FREES, S_HAZARDS, S_NOTIFIES, S_TRANSIENT,
  RING, RING_ENTRIES,
  V_REF_UNDERFLOW, V_NEVER_GOT, V_MAP_UNDERFLOW, V_PIN_UNDERFLOW, V_DOUBLE_ENTRY,
  V_MISSING_ENTRY, V_HAZARD, V_TWO_FILES,
} from './layout'

// Layout, exported as globals so that the TypeScript side can verify its mirror.
export { HDR, RECORDS, RECORD_SHIFT, T_EVENTS, H_PGMAP_REFS, H_WAITERS, H_RING_HEAD, H_PGMAP_SEQ, STATS, RING, H_BOUND, ST_UNBOUND }

const PIN_BIAS: i32 = 1024 // GUP_PIN_COUNTING_BIAS

// Per-instance (per-thread) stats slot.
let statBase: u32 = STATS
let statShared: bool = false

/** Select this instance's stats slot (0..62 exclusive; 63 shared, atomic). */
export function setSlot(slot: u32, shared: bool): void {
  statBase = STATS + slot * STAT_SLOT_BYTES
  statShared = shared
  loadModel() // the fast lanes' stat addresses (and the shared slot's generic path)
}

// Model constants, copied from the header into this instance's globals once
// (loadModel, at instantiation and when the stats slot is chosen): the fast
// lanes compare against registers instead of loading the header around their
// atomic (a locked RMW orders every later load behind it, so every
// instruction around it counts).
let gIdle: i32 = 0
let gEdgeOld: i32 = 0
let gEdgeNew: i32 = 0
let gPerPage: bool = false
// Per hot event (get, put, pin, unpin), derived from its row:
//   d   small-page refcount delta
//   s   or-ed into the record's flags before the head/tail test: F_HEAD when
//       the event must take the generic path (EF_SLOW in this model, or this
//       instance's stats slot is the shared one), else 0
//   t   the add needs edge() (a violation or a pgmap transition) iff
//       old <= t: max(edgeOld, edgeNew - d), i.e. old <= edgeOld || old + d <= edgeNew
//   w,k the wake rule may fire iff (u32)(old - w) <= k, i.e. the new count
//       idle + [0, k]: old + d == idle (EF_WAKE_IDLE: w idle - d, k 0), old + d
//       below the pin bias (EF_WAKE_UNPINNED: w idle - d, k PIN_BIAS - 1 - idle),
//       else never (w = t, which already goes to edge(); k 0)
//   a   address of the event's counter in this instance's stats slot
let dGet: i32 = 0
let dPut: i32 = 0
let dPin: i32 = 0
let dUnpin: i32 = 0
let sGet: u32 = F_HEAD
let sPut: u32 = F_HEAD
let sPin: u32 = F_HEAD
let sUnpin: u32 = F_HEAD
let tGet: i32 = 0
let tPut: i32 = 0
let tPin: i32 = 0
let tUnpin: i32 = 0
let wGet: i32 = 0
let wPut: i32 = 0
let wPin: i32 = 0
let wUnpin: i32 = 0
let kGet: u32 = 0
let kPut: u32 = 0
let kPin: u32 = 0
let kUnpin: u32 = 0
let aGet: u32 = STATS
let aPut: u32 = STATS
let aPin: u32 = STATS
let aUnpin: u32 = STATS

@inline function rowFlags(ev: i32): i32 { return load<i32>(T_EVENTS + (<u32>ev << 5), E_FLAGS) }
@inline function rowDelta(ev: i32): i32 { return load<i32>(T_EVENTS + (<u32>ev << 5), E_REF) }
@inline function rowSlow(ev: i32): u32 { return ((rowFlags(ev) & EF_SLOW) || statShared) ? F_HEAD : 0 }
@inline function rowEdge(ev: i32): i32 {
  // old <= edgeOld || old + d <= edgeNew  <=>  old <= max(edgeOld, edgeNew - d), computed without
  // wrapping (the generic path's old + d wraps only within |d| of 2^31 references)
  const viaNew = <i64>gEdgeNew - <i64>rowDelta(ev)
  const t = <i64>gEdgeOld > viaNew ? <i64>gEdgeOld : viaNew
  return t > <i64>i32.MAX_VALUE ? i32.MAX_VALUE : (t < <i64>i32.MIN_VALUE ? i32.MIN_VALUE : <i32>t)
}
@inline function rowWake(ev: i32): i32 {
  const rf = rowFlags(ev)
  if (rf & (EF_WAKE_IDLE | EF_WAKE_UNPINNED)) return gIdle - rowDelta(ev)
  return rowEdge(ev)
}
@inline function rowWakeSpan(ev: i32): u32 { return (rowFlags(ev) & EF_WAKE_UNPINNED) ? <u32>(PIN_BIAS - 1 - gIdle) : 0 }
/** Does the wake rule of an event with flags `rf` fire for new refcount `nw` (a small page, or a folio head when `head`, `pins` its pincount after)? */
@inline function wakes(rf: i32, nw: i32, head: bool, pins: i32): bool {
  if ((rf & EF_WAKE_IDLE) && nw == gIdle) return true
  // folio_maybe_dma_pinned(): pincount on a head, the bias on a small page
  return (rf & EF_WAKE_UNPINNED) != 0 && (head ? pins == 0 : nw < PIN_BIAS)
}
@inline function statAddr(ev: i32): u32 { return statBase + (<u32>ev << 3) }

/** Read the model (header constants and event rows) into this instance's globals. The header must be written. */
export function loadModel(): void {
  gIdle = load<i32>(M_IDLE)
  gEdgeOld = load<i32>(M_EDGE_OLD)
  gEdgeNew = load<i32>(M_EDGE_NEW)
  gPerPage = (load<i32>(M_PGMAP) & PGB_PER_PAGE) != 0
  dGet = rowDelta(EV_GET); sGet = rowSlow(EV_GET); tGet = rowEdge(EV_GET); wGet = rowWake(EV_GET); kGet = rowWakeSpan(EV_GET); aGet = statAddr(EV_GET)
  dPut = rowDelta(EV_PUT); sPut = rowSlow(EV_PUT); tPut = rowEdge(EV_PUT); wPut = rowWake(EV_PUT); kPut = rowWakeSpan(EV_PUT); aPut = statAddr(EV_PUT)
  dPin = rowDelta(EV_PIN); sPin = rowSlow(EV_PIN); tPin = rowEdge(EV_PIN); wPin = rowWake(EV_PIN); kPin = rowWakeSpan(EV_PIN); aPin = statAddr(EV_PIN)
  dUnpin = rowDelta(EV_UNPIN); sUnpin = rowSlow(EV_UNPIN); tUnpin = rowEdge(EV_UNPIN); wUnpin = rowWake(EV_UNPIN); kUnpin = rowWakeSpan(EV_UNPIN); aUnpin = statAddr(EV_UNPIN)
}

@inline function stat(index: u32, n: i64): void {
  const a = statBase + (index << 3)
  if (statShared) atomic.add<i64>(a, n)
  else store<i64>(a, load<i64>(a) + n)
}

/** Add n to counter `index` of this thread's slot (upper layers' counters). */
export function bump(index: u32, n: i64): void {
  stat(index, n)
}

@inline function rec(pfn: u32): u32 {
  return RECORDS + (pfn << RECORD_SHIFT)
}

/** The pfn whose record carries the counters of `pfn` (a tail resolves to its head). */
@inline function headOf(pfn: u32): u32 {
  const r = rec(pfn)
  if (load<u32>(r, R_FLAGS) & F_TAIL) return pfn & ~((<u32>1 << load<u32>(r, R_ORDER)) - 1)
  return pfn
}

export function head(pfn: u32): u32 {
  return headOf(pfn)
}

// --- violation ring ------------------------------------------------------------

function record(kind: i32, pfn: u32, op: i32, expected: i32, found: i32): void {
  const idx = atomic.add<u32>(H_RING_HEAD, 1)
  const e = RING + ((idx & (RING_ENTRIES - 1)) << 5)
  store<i32>(e, kind, 4)
  store<u32>(e, pfn, 8)
  store<i32>(e, op, 12)
  store<i32>(e, expected, 16)
  store<i32>(e, found, 20)
  store<i32>(e, load<i32>(H_MODEL), 24)
  atomic.store<u32>(e, idx + 1) // publish
}

// --- wake-ups ------------------------------------------------------------------

@inline function wake(addr: u32): void {
  if (atomic.load<i32>(H_WAITERS) > 0) {
    stat(S_NOTIFIES, 1) // first: nothing is live across the notify (a runtime call)
    atomic.notify(addr, -1)
  }
}

// --- the one code path -------------------------------------------------------------

/** Refcount transitions after a ref delta: per-page pgmap ownership and the model's wake rule. */
@inline function refTransitions(r: u32, rf: i32, old: i32, nw: i32, head: bool, pins: i32): void {
  // the reworked dax-gup: a page holds the pgmap while its refcount is
  // positive (0->1 takes it, the put that frees the page drops it).
  if (gPerPage) {
    if (old <= 0 && nw > 0) pgmapAdd(1)
    else if (old > 0 && nw <= 0) {
      pgmapAdd(-1)
      pgmapSettled()
    }
  }
  if (wakes(rf, nw, head, pins)) wake(r + R_REF)
}

/**
 * dax-gup's per-page pgmap refs are counted per thread, in the thread's
 * stats slot (counter S_TRANSIENT, which legacy uses for its walks: a model
 * has one or the other), the way a percpu_ref is; pgmapRefs() adds the slots
 * to the shared word. No cache line shared between threads is written per
 * transition. Atomic (a locked RMW on an uncontended line): a drop must be
 * ordered before pgmapSettled() reads the waiters word.
 */
@inline function pgmapAdd(n: i64): void {
  atomic.add<i64>(statBase + (S_TRANSIENT << 3), n)
}

/** pgmap refs may have reached their base: bump the sequence word unbind waits on. */
function pgmapSettled(): void {
  if (atomic.load<i32>(H_WAITERS) > 0) {
    atomic.add<i32>(H_PGMAP_SEQ, 1)
    atomic.notify(H_PGMAP_SEQ, -1)
    stat(S_NOTIFIES, 1)
  }
}

/**
 * The hot path left its fast lane after adding `d` to the refcount (old ->
 * nw): a violation, a pgmap transition or a possible wake-up.
 */
function edge(pfn: u32, r: u32, ev: i32, rf: i32, d: i32, old: i32, nw: i32, n: i32): i32 {
  const idle = load<i32>(M_IDLE)
  let st: i32 = 0
  if (nw < idle) {
    st = V_REF_UNDERFLOW
    record(st, pfn, ev, idle, nw)
    if (load<i32>(H_STRICT) != 0) {
      atomic.sub<i32>(r + R_REF, d)
      return st
    }
  }
  refTransitions(r, rf, old, nw, false, 0)
  stat(<u32>ev, <i64>n)
  return st
}

/**
 * Generic path: apply event `ev`, `n` times, to the page whose counters live
 * at `pfn` (already resolved to a head for folios). Returns 0 or a violation
 * kind; in strict mode a violating operation is undone before returning.
 */
function applyAt(pfn: u32, ev: i32, n: i32): i32 {
  // An unbound table or a closed device: nothing is counted (the fast lanes come here too).
  if (atomic.load<i32>(H_BOUND) != 1) return ST_UNBOUND
  const r = rec(pfn)
  const row = T_EVENTS + (<u32>ev << 5)
  const rf = load<i32>(row, E_FLAGS)
  const fl = load<u32>(r, R_FLAGS)
  let dRef: i32
  let dPin: i32 = 0
  if (fl & F_HEAD) {
    dRef = load<i32>(row, E_REF_FOLIO) * n
    dPin = load<i32>(row, E_PIN_FOLIO) * n
  } else {
    dRef = load<i32>(row, E_REF) * n
  }
  const dMap = load<i32>(row, E_MAP) * n
  const dGets = load<i32>(row, E_GETS) * n
  const strict = load<i32>(H_STRICT) != 0
  let st: i32 = 0
  let expected: i32 = 0
  let found: i32 = 0

  // Page-cache entry bookkeeping (one entry per page / folio).
  if (rf & EF_ENTRY_SET) {
    if (atomic.or<u32>(r + R_FLAGS, F_ENTRY) & F_ENTRY) { st = V_DOUBLE_ENTRY; expected = 0; found = 1 }
  } else if (rf & EF_ENTRY_CLEAR) {
    if (!(atomic.and<u32>(r + R_FLAGS, ~F_ENTRY) & F_ENTRY)) { st = V_MISSING_ENTRY; expected = 1; found = 0 }
  }
  if (st != 0 && strict) {
    record(st, pfn, ev, expected, found)
    return st
  }

  const idle = load<i32>(M_IDLE)
  // Decrements drop the mapcount before the ref, increments take the ref
  // first, so that refcount >= mapcount holds for any observer.
  if (dMap < 0) {
    const m = atomic.add<i32>(r + R_MAP, dMap) + dMap
    if (m < 0 && st == 0) { st = V_MAP_UNDERFLOW; expected = 0; found = m }
  }
  let oldRef: i32 = 0
  let newRef: i32 = 0
  if (dRef != 0) {
    oldRef = atomic.add<i32>(r + R_REF, dRef)
    newRef = oldRef + dRef
    if (newRef < idle && st == 0) { st = V_REF_UNDERFLOW; expected = idle; found = newRef }
  }
  if (dMap > 0) atomic.add<i32>(r + R_MAP, dMap)
  let pins: i32 = 0
  if (dPin != 0) {
    pins = atomic.add<i32>(r + R_PIN, dPin) + dPin
    if (pins < 0 && st == 0) { st = V_PIN_UNDERFLOW; expected = 0; found = pins }
  }
  const trackGets = dGets != 0 && load<i32>(H_TRACKGETS) != 0
  if (trackGets) {
    const g = atomic.add<i32>(r + R_GETS, dGets) + dGets
    if (g < 0 && st == 0) { st = V_NEVER_GOT; expected = 0; found = g }
  }

  if (st != 0) {
    record(st, pfn, ev, expected, found)
    if (strict) {
      // Undo in reverse order; no wake-ups, no pgmap transitions.
      if (trackGets) atomic.sub<i32>(r + R_GETS, dGets)
      if (dPin != 0) atomic.sub<i32>(r + R_PIN, dPin)
      if (dMap > 0) atomic.sub<i32>(r + R_MAP, dMap)
      if (dRef != 0) atomic.sub<i32>(r + R_REF, dRef)
      if (dMap < 0) atomic.sub<i32>(r + R_MAP, dMap)
      if (rf & EF_ENTRY_SET) atomic.and<u32>(r + R_FLAGS, ~F_ENTRY)
      else if (rf & EF_ENTRY_CLEAR) atomic.or<u32>(r + R_FLAGS, F_ENTRY)
      return st
    }
  }
  if (dRef != 0) refTransitions(r, rf, oldRef, newRef, (fl & F_HEAD) != 0, pins)
  // dax-gup-v1: the entry itself holds a pgmap ref (one per page it covers)
  if (rf & EF_PGMAP_GET) pgmapAdd(<i64>n)
  else if (rf & EF_PGMAP_PUT) {
    pgmapAdd(-<i64>n)
    pgmapSettled()
  }
  stat(<u32>ev, <i64>n)
  return st
}

// What a fast-lane export returns besides 0 (done) and a violation kind
// (1..8): the rest of the operation is for finish(), which the caller
// (src/page/table.ts) calls next. This keeps get/put/pin/unpin leaf functions
// without calls (no stack check, no spills): they compile to little more than
// the atomic.
const NEED_GENERIC: i32 = 0x100 // not a pure refcount delta here; nothing done yet
const NEED_EDGE: i32 = 0x200 // added (old in pendingOld): a violation or a pgmap transition to take
const NEED_DROPPED: i32 = 0x300 // added and the page's pgmap ref dropped, with a waiter present
const NEED_WAKE: i32 = 0x400 // added; the wake rule fired with a waiter present

/** The refcount before the add of the last fast-lane call that returned NEED_EDGE / NEED_DROPPED (this instance's). */
let pendingOld: i32 = 0

/**
 * One event on one page. Fast lane: an order-0 page and an event that is a
 * pure refcount delta in this model: one atomic add, compares against this
 * instance's model globals, one thread-local stat. dax-gup's per-page pgmap
 * transitions stay inline too (this thread's slot). Anything else returns a
 * NEED_* code for finish().
 */
@inline function hot(pfn: u32, ev: i32, d: i32, slow: u32, t: i32, w: i32, k: u32, a: u32): i32 {
  const r = rec(pfn)
  // A folio, or an unbound table / closed device (H_BOUND != 1: applyAt refuses): the generic path.
  if ((((load<u32>(r, R_FLAGS) | slow) & (F_HEAD | F_TAIL)) | (load<u32>(H_BOUND) ^ 1)) != 0) return NEED_GENERIC
  const old = atomic.add<i32>(r + R_REF, d)
  if (old <= t) {
    const nw = old + d
    if (!gPerPage || nw < gIdle) { pendingOld = old; return NEED_EDGE }
    // per-page pgmap: 0 -> >0 takes the page's ref, >0 -> 0 drops it
    if (nw > 0) {
      if (old <= 0) pgmapAdd(1)
    } else if (old > 0) {
      pgmapAdd(-1)
      if (atomic.load<i32>(H_WAITERS) > 0) { pendingOld = old; return NEED_DROPPED }
    }
    if (wakes(rowFlags(ev), nw, false, 0) && atomic.load<i32>(H_WAITERS) > 0) return NEED_WAKE
  } else if (<u32>(old - w) <= k && atomic.load<i32>(H_WAITERS) > 0) return NEED_WAKE
  store<i64>(a, load<i64>(a) + 1) // this thread's own slot (a shared slot takes the generic path)
  return 0
}

/**
 * The rest of a fast-lane call of event `ev` on `pfn` that returned `code`
 * (a NEED_* value). Returns 0 or a violation kind, as the generic path does.
 */
export function finish(ev: i32, pfn: u32, code: i32): i32 {
  if (code == NEED_GENERIC) return applyAt(headOf(pfn), ev, 1)
  if (code < NEED_GENERIC) return code // a status already
  const r = rec(pfn)
  const rf = rowFlags(ev)
  const d = rowDelta(ev)
  if (code == NEED_EDGE) return edge(pfn, r, ev, rf, d, pendingOld, pendingOld + d, 1)
  if (code == NEED_DROPPED) pgmapSettled()
  stat(<u32>ev, 1)
  if (code == NEED_WAKE) {
    wake(r + R_REF)
  } else {
    if (wakes(rf, pendingOld + d, false, 0)) wake(r + R_REF)
  }
  return 0
}

export function get(pfn: u32): i32 { return hot(pfn, EV_GET, dGet, sGet, tGet, wGet, kGet, aGet) }
export function put(pfn: u32): i32 { return hot(pfn, EV_PUT, dPut, sPut, tPut, wPut, kPut, aPut) }
export function pin(pfn: u32): i32 { return hot(pfn, EV_PIN, dPin, sPin, tPin, wPin, kPin, aPin) }
export function unpin(pfn: u32): i32 { return hot(pfn, EV_UNPIN, dUnpin, sUnpin, tUnpin, wUnpin, kUnpin, aUnpin) }
/** Any counting event on one page (a tail acts on its head). */
export function apply(ev: i32, pfn: u32): i32 { return applyAt(headOf(pfn), ev, 1) }

/** get then put in one call (benchmark helper). */
export function getPut(pfn: u32): i32 {
  let a = get(pfn)
  if (a != 0) a = finish(EV_GET, pfn, a)
  let b = put(pfn)
  if (b != 0) b = finish(EV_PUT, pfn, b)
  return a | b
}

let lastStop: u32 = 0

/** The pfn at which the last failing range() stopped. */
export function rangeStop(): u32 { return lastStop }

/**
 * `ev` on every page of [pfn, pfn+count): equivalent to count single
 * operations, but a folio is updated with one atomic per folio (n = pages of
 * it in range) and, in legacy, the transient pgmap ref is held (per thread,
 * like a percpu_ref) for the whole walk. Strict mode: at the first violation
 * the pages already done are rolled back and the status is returned
 * (rangeStop() tells where).
 */
export function range(ev: i32, pfn: u32, count: u32): i32 {
  if (atomic.load<i32>(H_BOUND) != 1) { lastStop = pfn; return ST_UNBOUND }
  const row = T_EVENTS + (<u32>ev << 5)
  const rf = load<i32>(row, E_FLAGS)
  const walk = (rf & EF_WALK) != 0 && (load<i32>(M_PGMAP) & PGB_WALK) != 0
  if (walk) stat(S_TRANSIENT, 1)
  const d = load<i32>(row, E_REF)
  const idle = gIdle
  const edgeOld = gEdgeOld
  const edgeNew = gEdgeNew
  const perPage = gPerPage
  const slowBits: u32 = (rf & EF_SLOW) ? F_HEAD : 0
  const end = pfn + count
  let p = pfn
  let status: i32 = 0
  let fast: i64 = 0
  let counted: i64 = 0
  // dax-gup: the pgmap transitions of the walk are counted in runPg and
  // folded into this thread's count once at the end (nothing shared is
  // written per page)
  runPg = 0
  runDrops = false
  while (p < end) {
    const q = fastRun(p, end, rf, d, idle, edgeOld, edgeNew, slowBits, perPage)
    fast += <i64>(q - p)
    p = q
    if (runWoke) {
      // page p's add is done (counted as fast); its wake-up is the only
      // call, made out of the loop so that the loop stays call-free
      wake(rec(p) + R_REF)
      fast++
      p++
      continue
    }
    if (p >= end) break
    let st: i32 = 0
    let n: u32 = 1
    if (runAdded) {
      st = edge(p, rec(p), ev, rf, d, runOld, runOld + d, 1)
    } else {
      const h = headOf(p)
      if (load<u32>(rec(h), R_FLAGS) & F_HEAD) {
        const fend = h + (<u32>1 << load<u32>(rec(h), R_ORDER))
        n = (fend < end ? fend : end) - p
      }
      st = applyAt(h, ev, <i32>n)
    }
    if (st != 0) {
      if (status == 0) { status = st; lastStop = p }
      if (load<i32>(H_STRICT) != 0) {
        rollback(ev, pfn, p)
        // nothing of this call happened: take back what edge()/applyAt() counted
        stat(<u32>ev, -counted)
        fast = 0
        break
      }
    } else {
      counted += <i64>n
    }
    p += n
  }
  stat(<u32>ev, fast)
  if (runPg != 0) pgmapAdd(runPg)
  if (runDrops) pgmapSettled()
  if (walk) {
    stat(S_TRANSIENT, -1)
    pgmapSettled()
  }
  return status
}

let runOld: i32 = 0
let runAdded: bool = false
let runWoke: bool = false
let runPg: i64 = 0
let runDrops: bool = false

/**
 * The range fast lane: a call-free loop of atomic adds over order-0 pages
 * (dax-gup's per-page pgmap transitions are counted in runPg). Returns the
 * pfn where it stopped: `end`, a page that needs the generic path (runAdded
 * false, nothing done to it), a page whose add needs edge() (runAdded true,
 * runOld = its refcount before the add), or a page whose add is done and
 * whose wake rule fired with a waiter present (runWoke).
 */
@inline function fastRun(p: u32, end: u32, rf: i32, d: i32, idle: i32, edgeOld: i32, edgeNew: i32, slowBits: u32, perPage: bool): u32 {
  runAdded = false
  runWoke = false
  if (!perPage) {
    // any threshold hit is a violation (or a value only an underflow reaches): edge()
    while (p < end) {
      const r = rec(p)
      if ((load<u32>(r, R_FLAGS) | slowBits) & (F_HEAD | F_TAIL)) return p
      const old = atomic.add<i32>(r + R_REF, d)
      const nw = old + d
      if (((<i32>(nw <= edgeNew)) | (<i32>(old <= edgeOld))) != 0) { runAdded = true; runOld = old; return p }
      if (wakes(rf, nw, false, 0) && atomic.load<i32>(H_WAITERS) > 0) { runWoke = true; return p }
      p++
    }
    return p
  }
  // per-page pgmap: transitions counted in registers, added to runPg on the way out
  let up: i32 = 0
  let down: i32 = 0
  while (p < end) {
    const r = rec(p)
    if ((load<u32>(r, R_FLAGS) | slowBits) & (F_HEAD | F_TAIL)) break
    const old = atomic.add<i32>(r + R_REF, d)
    const nw = old + d
    if (((<i32>(nw <= edgeNew)) | (<i32>(old <= edgeOld))) != 0) {
      if (nw < idle) { runAdded = true; runOld = old; break }
      if (nw > 0) up += <i32>(old <= 0)
      else down += <i32>(old > 0)
    }
    if (wakes(rf, nw, false, 0) && atomic.load<i32>(H_WAITERS) > 0) { runWoke = true; break }
    p++
  }
  runPg += <i64>up - <i64>down
  if (down) runDrops = true
  return p
}

function rollback(ev: i32, from: u32, to: u32): void {
  const inv = load<i32>(T_EVENTS + (<u32>ev << 5), E_INVERSE)
  let p = from
  while (p < to) {
    const h = headOf(p)
    let n: u32 = 1
    if (load<u32>(rec(h), R_FLAGS) & F_HEAD) {
      const fend = h + (<u32>1 << load<u32>(rec(h), R_ORDER))
      n = (fend < to ? fend : to) - p
    }
    applyAt(h, inv, <i32>n)
    // the rollback is not an operation of its own: take back its stat
    stat(<u32>inv, -<i64>n)
    p += n
  }
}

// --- rules ---------------------------------------------------------------------------

@inline function busyAt(h: u32, rule: i32): bool {
  const r = rec(h)
  const ref = atomic.load<i32>(r, R_REF)
  if (rule == BUSY_DMA_PINNED) {
    if (load<u32>(r, R_FLAGS) & F_HEAD) return atomic.load<i32>(r, R_PIN) > 0
    return ref >= PIN_BIAS
  }
  return ref > load<i32>(M_IDLE)
}

/** page_maybe_dma_pinned(): folio head pincount > 0, small page refcount >= 1024. */
export function maybeDmaPinned(pfn: u32): i32 {
  if (atomic.load<i32>(H_BOUND) != 1) return ST_UNBOUND
  return busyAt(headOf(pfn), BUSY_DMA_PINNED) ? 1 : 0
}

/**
 * First page (its head pfn) in [pfn, pfn+count) that is busy under `rule`
 * (-1: the model's truncate rule), or -1 when none is.
 */
export function firstBusy(pfn: u32, count: u32, rule: i32): i32 {
  if (rule < 0) rule = load<i32>(M_BUSY)
  const end = pfn + count
  let p = pfn
  while (p < end) {
    const h = headOf(p)
    if (busyAt(h, rule)) return <i32>h
    if (load<u32>(rec(h), R_FLAGS) & F_HEAD) p = h + (<u32>1 << load<u32>(rec(h), R_ORDER))
    else p++
  }
  return -1
}

// --- whole-table operations -----------------------------------------------------

/**
 * (Re)initialise `pageCount` records to the idle state. `zeroed`: the memory
 * is fresh from the OS (all zero), so only the non-zero words are written.
 */
export function init(pageCount: u32, idle: i32, zeroed: bool): void {
  if (!zeroed) memory.fill(RECORDS, 0, pageCount << RECORD_SHIFT)
  if (idle != 0) {
    let r = RECORDS
    const end = RECORDS + (pageCount << RECORD_SHIFT)
    while (r < end) {
      store<i32>(r, idle)
      r += 32
    }
  }
}

/**
 * First pfn >= from (< to) whose record breaks a structural invariant:
 * refcount below idle + entry refs + mapping refs, negative mapcount or
 * pincount, negative outstanding gets, counts on a tail. -1 when none.
 */
export function scan(from: u32, to: u32): i32 {
  const idle = load<i32>(M_IDLE)
  const entryRef = load<i32>(M_ENTRY_REF)
  const mapRef = load<i32>(M_MAP_REF)
  let r = rec(from)
  for (let p = from; p < to; p++, r += 32) {
    const fl = load<u32>(r, R_FLAGS)
    const ref = load<i32>(r, R_REF)
    const map = load<i32>(r, R_MAP)
    if (fl & F_TAIL) {
      if (ref != 0 || map != 0 || load<i32>(r, R_PIN) != 0) return <i32>p
      continue
    }
    const floor = idle + ((fl & F_ENTRY) ? entryRef : 0) + (map > 0 ? map * mapRef : 0)
    if (ref < floor || map < 0 || load<i32>(r, R_PIN) < 0 || load<i32>(r, R_GETS) < 0) return <i32>p
  }
  return -1
}

/** Number of pages (folio heads and small pages) with a page-cache entry in [from, to). */
export function countEntries(from: u32, to: u32): u32 {
  let n: u32 = 0
  let r = rec(from)
  for (let p = from; p < to; p++, r += 32) {
    if (load<u32>(r, R_FLAGS) & F_ENTRY) n++
  }
  return n
}

/** Number of pages (folio heads and small pages) with refcount > 0 in [from, to). */
export function countReferenced(from: u32, to: u32): u32 {
  let n: u32 = 0
  let r = rec(from)
  for (let p = from; p < to; p++, r += 32) {
    if (!(load<u32>(r, R_FLAGS) & F_TAIL) && load<i32>(r, R_REF) > 0) n++
  }
  return n
}

// --- the fs / DAX side ---------------------------------------------------------------

/**
 * The file system frees the block behind `pfn`. A page whose counters say
 * someone still holds it (refcount above idle, or mapped) is a
 * use-after-free hazard: recorded, and 0 returned so the fs can quarantine.
 */
export function free(pfn: u32): bool {
  const h = headOf(pfn)
  const r = rec(h)
  stat(S_FREES, 1)
  const ref = atomic.load<i32>(r, R_REF)
  const idle = load<i32>(M_IDLE)
  if (ref != idle || atomic.load<i32>(r, R_MAP) != 0) {
    stat(S_HAZARDS, 1)
    record(V_HAZARD, pfn, EV_FREE, idle, ref)
    return false
  }
  return true
}

/**
 * page->mapping / page->index. A folio stores it on the head (index of the
 * head = index - offset of pfn in the folio). Returns 0 or V_TWO_FILES
 * (already owned by another inode; strict: unchanged).
 */
export function associate(pfn: u32, inode: u32, index: u32): i32 {
  const h = headOf(pfn)
  const r = rec(h)
  const old = atomic.load<u32>(r, R_INODE)
  let st: i32 = 0
  if (old != 0 && old != inode && inode != 0) {
    st = V_TWO_FILES
    record(st, pfn, EV_ASSOCIATE, <i32>old, <i32>inode)
    if (load<i32>(H_STRICT) != 0) return st
  }
  atomic.store<u32>(r, index - (pfn - h), R_INDEX)
  atomic.store<u32>(r, inode, R_INODE)
  return st
}

// --- folios ------------------------------------------------------------------------

@inline function idleSmall(r: u32, idle: i32): bool {
  return load<i32>(r, R_REF) == idle && load<i32>(r, R_MAP) == 0 && load<i32>(r, R_PIN) == 0 &&
    load<i32>(r, R_GETS) == 0 && load<u32>(r, R_INODE) == 0 &&
    (load<u32>(r, R_FLAGS) & (F_HEAD | F_TAIL | F_ENTRY | F_LOCKED)) == 0
}

/**
 * Group 2^order pages from `h` into one compound folio. Returns 0, 1 when
 * the model has no folios, 2 when some page is in use or already compound.
 * Alignment and bounds are checked by the caller.
 */
export function makeFolio(h: u32, order: u32): i32 {
  if (load<i32>(M_FOLIOS) == 0) return 1
  const idle = load<i32>(M_IDLE)
  const n: u32 = <u32>1 << order
  for (let i: u32 = 0; i < n; i++) if (!idleSmall(rec(h + i), idle)) return 2
  for (let i: u32 = 1; i < n; i++) {
    const r = rec(h + i)
    store<i32>(r, 0, R_REF)
    store<u32>(r, order, R_ORDER)
    atomic.or<u32>(r + R_FLAGS, F_TAIL)
  }
  const r = rec(h)
  store<u32>(r, order, R_ORDER)
  atomic.or<u32>(r + R_FLAGS, F_HEAD)
  return 0
}

/**
 * Split a folio back to order-0 pages: only when its refcount is idle,
 * unmapped, unpinned, without a page-cache entry and unassociated.
 * Returns 0, 2 when busy, 3 when `h` is not a folio head.
 */
export function splitFolio(h: u32): i32 {
  const r = rec(h)
  const fl = load<u32>(r, R_FLAGS)
  if (!(fl & F_HEAD)) return 3
  const idle = load<i32>(M_IDLE)
  if (load<i32>(r, R_REF) != idle || load<i32>(r, R_MAP) != 0 || load<i32>(r, R_PIN) != 0 ||
    load<i32>(r, R_GETS) != 0 || load<u32>(r, R_INODE) != 0 || (fl & F_ENTRY)) return 2
  const n: u32 = <u32>1 << load<u32>(r, R_ORDER)
  for (let i: u32 = 1; i < n; i++) {
    const t = rec(h + i)
    atomic.and<u32>(t + R_FLAGS, ~F_TAIL)
    store<u32>(t, 0, R_ORDER)
    store<i32>(t, idle, R_REF)
  }
  atomic.and<u32>(r + R_FLAGS, ~F_HEAD)
  store<u32>(r, 0, R_ORDER)
  return 0
}

/** Pages in the table (from the header). */
export function pageCount(): u32 { return load<u32>(H_PAGECOUNT) }
