/**
 * The part of a DMA transfer that runs where the copy runs — in a worker
 * thread, or on the main thread on the mmap-io backend: pin_user_pages over
 * the mapping's ptes (fast path with re-check, slow path through the owning
 * thread), the poison check, the copy with the device model, the hold, and
 * the unpin (the model's wake rule notifies waiting truncates).
 *
 * Every pin goes through the transfer's **ledger** (a SharedArrayBuffer the
 * main thread also holds): one entry per **run** of consecutive pfns pinned
 * with one pinRange/getRange call — (pfn, pages, state) — allocated before
 * the pin, set to PINNED right after it (in the same synchronous block, so a
 * worker that dies — at an await, the only place it can — never leaves a pin
 * unrecorded) and swapped back to 0 (compareExchange) by whoever unpins it.
 * So the worker's `finally` and, if the worker dies, the main thread release
 * exactly the pins that were taken, and never twice. Zero-page stretches (a
 * hole read through a read-only mapping) are entries with pfn ZERO_PAGE that
 * hold no pin; the entries tile the transfer's pages in mapping order.
 *
 * The per-page loops (run length, gup-fast re-check, poison check) are small
 * top-level functions so that V8 optimizes them on their own (an async
 * function such as runJob is optimized late, and never on-stack-replaced).
 */
import { PmemuAbortError, PmemuError, pmemError } from '../errors.js'
import type { PageTable } from '../page/index.js'
import type { MappingShare } from '../dax/types.js'
import { F_POISONED, RECORDS, RECORD_WORDS, W_FLAGS } from '../page/layout.js'
import { nativeShim } from '../region/native.js'

export type Direction = 'to-device' | 'from-device'
export type PinKind = 'pin' | 'get'
/** Test-only failure injection (see DmaEngine docs). */
export type FailPoint = 'throw-after-pin' | 'exit-after-pin' | 'uncaught-after-pin' | 'hang-after-pin'

/** ctl word bits (ledger[0]) set by the main thread. */
export const CTL_RELEASE = 1
export const CTL_ABORT = 2
/**
 * ledger layout (Int32Array): [0] ctl, [1] kind (0 pin, 1 get), [2] pages of
 * the transfer, [3] runs (entries in use), then per run: pfn, pages, state.
 * At most one run per page, so the ledger is sized for `pages` runs.
 */
export const L_CTL = 0
export const L_KIND = 1
export const L_PAGES = 2
export const L_RUNS = 3
export const L_HDR = 4
export const R_PFN = 0
export const R_COUNT = 1
export const R_STATE = 2
export const RUN_WORDS = 3
export const S_NONE = 0
export const S_PINNED = 1
/** ledger pfn of a run with nothing behind it (a read of a hole: the zero page). */
export const ZERO_PAGE = -1

/** Engine-wide shared words (Int32Array over a SAB): [0] generation, [1] poison seen, [2] dead (crash/unbind/close). */
export const E_GEN = 0
export const E_POISON = 1
export const E_DEAD = 2
export const ENGINE_WORDS = 4

export function ledgerBytes(pages: number): number {
  return (L_HDR + RUN_WORDS * pages) * 4
}

/** A transfer as the copying side sees it (postable). */
export interface JobSpec {
  id: number
  share: MappingShare
  /** Mapping-relative byte offset and length. */
  offset: number
  length: number
  direction: Direction
  /** The bytes to copy to/from: `length` bytes from `bufferOffset`. */
  buffer: SharedArrayBuffer | ArrayBuffer
  bufferOffset: number
  pin: PinKind
  /** 0: no hold; > 0: ms; -1: until release. */
  hold: number
  ledger: SharedArrayBuffer
  latencyNs: number
  /** bytes/s; 0: memory speed */
  bandwidth: number
  fail?: FailPoint
}

export interface JobResult { bytes: number; ns: number; pinNs: number; faults: number; retries: number }

/** What the copying side needs from its thread. */
export interface CoreEnv {
  table: PageTable
  /** Region windows (usable offsets). All but the last have the same length. */
  windows: { offset: number; length: number; bytes: Uint8Array }[]
  engine: Int32Array
  /**
   * Slow path: have the owning thread fault [offset, offset+length) of the
   * mapping. Resolves true when the fault left the first page without a page
   * (a hole of a read-only mapping: the zero page), false when it mapped one.
   * Rejects with the fault's error.
   */
  fault(job: JobSpec, offset: number, length: number, write: boolean): Promise<boolean>
  /** All pages are pinned. */
  pinned(job: JobSpec): void
  /** Test hook: die in the middle of a transfer (worker: process.exit / uncaught). */
  die?(how: 'exit' | 'uncaught'): void
  /**
   * memcpy between SharedArrayBuffers (the native shim's `copy`), when
   * available: used for every piece whose both sides are shared memory;
   * `Uint8Array.set` otherwise (e.g. the mmap-io backend's Buffers).
   */
  copy?(dst: SharedArrayBuffer, dstOff: number, src: SharedArrayBuffer, srcOff: number, length: number): number
  /**
   * The native shim's `countSequence` (seq-cst loads in a C loop), when
   * available: the gup-fast scan and re-check of long runs of ptes (JS
   * Atomics.load costs ~10 ns a word on Node 20; a native call ~100 ns).
   */
  countSequence?(sab: SharedArrayBuffer, index: number, first: number, count: number): number
}

/** The native shim's memcpy and pte scan, when the shim loads (else Uint8Array.set and JS loops). */
export function nativeHelpers(): Pick<CoreEnv, 'copy' | 'countSequence'> {
  try {
    const shim = nativeShim()
    return {
      ...(typeof shim.copy === 'function' ? { copy: shim.copy.bind(shim) } : {}),
      ...(typeof shim.countSequence === 'function' ? { countSequence: shim.countSequence.bind(shim) } : {}),
    }
  } catch {
    return {}
  }
}

const MAX_RETRIES = 64
const CHUNK = 1 << 20

/** Run one transfer to completion; always leaves nothing pinned (finally). */
export async function runJob(env: CoreEnv, job: JobSpec): Promise<JobResult> {
  const { table, engine } = env
  const { share } = job
  const ledger = new Int32Array(job.ledger)
  const ps = share.pageSize
  const first = Math.floor(job.offset / ps)
  const pages = job.length === 0 ? 0 : Math.floor((job.offset + job.length - 1) / ps) - first + 1
  const ptes = new Int32Array(share.ptes)
  const state = new Int32Array(share.state)
  const write = job.direction === 'from-device'
  const get = job.pin === 'get'
  let faults = 0

  const checkLive = (): void => {
    if (Atomics.load(engine, E_DEAD) !== 0 || Atomics.load(engine, E_GEN) !== share.generation) {
      throw pmemError('ENXIO', 'dma', 'the device was crashed, unbound or closed', { offset: job.offset, length: job.length })
    }
    if (Atomics.load(state, 0) !== 0) {
      throw pmemError('EFAULT', 'dma', `mapping ${share.id} is unmapped (dead mapping)`, { offset: job.offset, length: job.length })
    }
    if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
  }

  const tStart = performance.now()
  let pinNs = 0
  const gup: Gup = { i: 0, retries: 0, faultedAt: -1, zero: false, maxRetries: MAX_RETRIES + pages }
  try {
    checkLive()
    // --- pin_user_pages: fast path on the ptes, re-check, slow path to fault ----------------------
    for (;;) {
      checkLive()
      if (!pinFast(table, get, ptes, first, pages, ledger, gup, env.countSequence)) throw tooManyRetries(job)
      const i = gup.i
      if (i >= pages) break
      // ptes[first + i] is missing
      if (gup.faultedAt === i && !write && gup.zero) {
        // the fault succeeded and left no page: a hole of a read-only mapping (the zero page,
        // nothing to pin; the device reads zeros). A pte that the fault filled and that is
        // missing again was zapped since (a truncate or punch-hole nearby, a PMD zapped
        // whole): that is no hole, so the slow path runs again.
        addZeroPage(ledger)
        gup.i = i + 1
        continue
      }
      // slow path: fault the missing stretch on the owning thread, then retry the fast path
      const j = missingUntil(ptes, first, i + 1, pages)
      if (++gup.retries > gup.maxRetries) throw tooManyRetries(job)
      faults++
      gup.zero = await env.fault(job, (first + i) * ps, (j - i) * ps, write)
      gup.faultedAt = i
    }
    checkLive()
    const runs = ledger[L_RUNS]!
    // --- poison (PageHWPoison on any pinned page) -----------------------------------------------------
    if (Atomics.load(engine, E_POISON) !== 0) {
      const words = new Int32Array(table.memory.buffer)
      for (let e = 0, p = 0; e < runs; e++) {
        const at = L_HDR + RUN_WORDS * e
        const pfn0 = ledger[at + R_PFN]!
        const n = ledger[at + R_COUNT]!
        const bad = pfn0 === ZERO_PAGE ? -1 : firstPoisoned(words, pfn0, n)
        if (bad >= 0) {
          throw pmemError('EHWPOISON', 'dma', `page ${bad} of the transfer is poisoned (memory failure)`, {
            pfn: bad, offset: (first + p + bad - pfn0) * ps,
          })
        }
        p += n
      }
    }
    pinNs = Math.round((performance.now() - tStart) * 1e6)
    env.pinned(job)
    if (job.fail) {
      if (job.fail === 'throw-after-pin') throw pmemError('EIO', 'dma', 'injected failure after pin (test hook)')
      if (job.fail === 'exit-after-pin' || job.fail === 'uncaught-after-pin') {
        if (!env.die) throw pmemError('EIO', 'dma', 'injected worker death (test hook) on the main thread')
        env.die(job.fail === 'exit-after-pin' ? 'exit' : 'uncaught')
        // the thread is going away with the pins held: the main thread releases them from the ledger
        await new Promise<never>(() => { /* never */ })
      }
      if (job.fail === 'hang-after-pin') {
        // hangs right here, pins held, until aborted or terminated; an abort
        // ends it before any byte moves (either direction), as the name says
        await waitCtl(ledger, CTL_ABORT, Infinity)
        checkLive()
      }
    }
    // An abort that came while pinned (a hang, a slow fault) stops here: nothing is copied, in either direction.
    if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
    // --- copy, at the device model's pace --------------------------------------------------------------
    const t0 = performance.now()
    const buf = new Uint8Array(job.buffer, job.bufferOffset, job.length)
    const native = env.copy && job.buffer instanceof SharedArrayBuffer ? env.copy : undefined
    let copied = 0
    let sinceCheck = 0
    for (let e = 0, k = 0; e < runs; e++) {
      const at = L_HDR + RUN_WORDS * e
      const pfn0 = ledger[at + R_PFN]!
      const n = ledger[at + R_COUNT]!
      // bytes of this run inside the transfer
      const runStart = Math.max(job.offset, (first + k) * ps)
      const runEnd = Math.min(job.offset + job.length, (first + k + n) * ps)
      let regionOff = pfn0 * ps + (runStart - (first + k) * ps)
      let bufOff = runStart - job.offset
      let left = runEnd - runStart
      while (left > 0) {
        const m = pfn0 === ZERO_PAGE
          ? zeroPiece(buf, bufOff, Math.min(left, CHUNK))
          : copyPiece(env.windows, regionOff, buf, bufOff, Math.min(left, CHUNK), write, native)
        regionOff += m; bufOff += m; left -= m; copied += m; sinceCheck += m
        if (sinceCheck >= CHUNK) {
          sinceCheck = 0
          if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
          if (job.bandwidth > 0) await pace(ledger, t0, copied, job)
        }
      }
      k += n
    }
    if (job.bandwidth > 0 || job.latencyNs > 0) await pace(ledger, t0, copied, job)
    if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
    const ns = Math.round((performance.now() - t0) * 1e6)
    // --- hold ------------------------------------------------------------------------------------------------
    if (job.hold !== 0) {
      await waitCtl(ledger, CTL_RELEASE | CTL_ABORT, job.hold < 0 ? Infinity : job.hold)
      if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
    }
    table.bump('dmaTransfers', 1)
    table.bump('dmaBytes', copied)
    return { bytes: copied, ns, pinNs, faults, retries: gup.retries }
  } finally {
    releaseLedgerRuns(ledger, table, get, false)
  }
}

/** The gup walk's cursor: next mapping page (relative to the transfer), back-offs + faults, the page last faulted. */
interface Gup { i: number; retries: number; faultedAt: number; zero: boolean; maxRetries: number }

/**
 * gup-fast from page `g.i` of the transfer: each run of present ptes with
 * consecutive pfns gets a ledger entry, one pinRange/getRange (one atomic per
 * small page, one per folio), PINNED, then the re-check of its ptes. A pte
 * that changed meanwhile (a zap raced: it clears the pte before the layout
 * break waits for pins) backs off that part of the run (unpinned, the entry
 * shortened or dropped) and the walk retries from there. Stops at the end or
 * at a missing pte (`g.i` then points at it). False: too many back-offs.
 */
function pinFast(table: PageTable, get: boolean, ptes: Int32Array, first: number, pages: number, ledger: Int32Array, g: Gup,
  seq: CoreEnv['countSequence']): boolean {
  let i = g.i
  while (i < pages) {
    const pfn0 = Atomics.load(ptes, first + i)
    if (pfn0 < 0) break
    const n = runLength(ptes, first + i, pfn0, pages - i, seq)
    const e = ledger[L_RUNS]!
    const at = L_HDR + RUN_WORDS * e
    ledger[at + R_PFN] = pfn0
    ledger[at + R_COUNT] = n
    ledger[at + R_STATE] = S_NONE
    Atomics.store(ledger, L_RUNS, e + 1)
    if (get) table.getRange(pfn0, n)
    else table.pinRange(pfn0, n)
    Atomics.store(ledger, at + R_STATE, S_PINNED)
    // re-check (gup-fast): back off what changed onwards
    const ok = recheck(ptes, first + i, pfn0, n, seq)
    if (ok < n) {
      if (get) table.putRange(pfn0 + ok, n - ok)
      else table.unpinRange(pfn0 + ok, n - ok)
      if (ok === 0) {
        Atomics.store(ledger, at + R_STATE, S_NONE)
        Atomics.store(ledger, L_RUNS, e)
      } else {
        Atomics.store(ledger, at + R_COUNT, ok)
      }
      g.faultedAt = -1
      if (++g.retries > g.maxRetries) { g.i = i + ok; return false }
    }
    i += ok
  }
  g.i = i
  return true
}

/** Below this many ptes a JS loop beats a call into the native shim. */
const NATIVE_RUN = 16

/**
 * Pages from `at` whose ptes are pfn0, pfn0+1, … (at least 1, at most max).
 * Plain reads in JS (the re-check is what must be atomic), the rest of a long
 * run in one native call.
 */
function runLength(ptes: Int32Array, at: number, pfn0: number, max: number, seq: CoreEnv['countSequence']): number {
  let n = 1
  const lim = seq && max > NATIVE_RUN ? NATIVE_RUN : max
  while (n < lim && ptes[at + n] === pfn0 + n) n++
  if (n === lim && n < max) n += seq!(ptes.buffer as SharedArrayBuffer, at + n, pfn0 + n, max - n)
  return n
}

/**
 * The gup-fast re-check, after the pin: index of the first pte of [at, at+n)
 * that is no longer pfn0 + k, or n. Every pte is read with a seq-cst load
 * (Atomics.load, or the native loop for a long run), so a zap that cleared
 * it before our pin became visible is seen.
 */
function recheck(ptes: Int32Array, at: number, pfn0: number, n: number, seq: CoreEnv['countSequence']): number {
  if (seq && n >= NATIVE_RUN) return seq(ptes.buffer as SharedArrayBuffer, at, pfn0, n)
  for (let k = 0; k < n; k++) if (Atomics.load(ptes, at + k) !== pfn0 + k) return k
  return n
}

/** First transfer page in [from, pages) whose pte is present, or pages. */
function missingUntil(ptes: Int32Array, first: number, from: number, pages: number): number {
  let j = from
  while (j < pages && Atomics.load(ptes, first + j) < 0) j++
  return j
}

/** Record one zero page (no pin), extending the last entry when it is a zero-page one. */
function addZeroPage(ledger: Int32Array): void {
  const e = ledger[L_RUNS]!
  const last = L_HDR + RUN_WORDS * (e - 1)
  if (e > 0 && ledger[last + R_PFN] === ZERO_PAGE) { ledger[last + R_COUNT] = ledger[last + R_COUNT]! + 1; return }
  const at = L_HDR + RUN_WORDS * e
  ledger[at + R_PFN] = ZERO_PAGE
  ledger[at + R_COUNT] = 1
  ledger[at + R_STATE] = S_NONE
  Atomics.store(ledger, L_RUNS, e + 1)
}

/** PageHWPoison (on the page's own record) in [pfn, pfn+n): the first poisoned pfn, or -1. */
function firstPoisoned(words: Int32Array, pfn: number, n: number): number {
  const base = (RECORDS >> 2) + W_FLAGS
  for (let k = 0; k < n; k++) if (Atomics.load(words, base + (pfn + k) * RECORD_WORDS) & F_POISONED) return pfn + k
  return -1
}

function tooManyRetries(job: JobSpec): PmemuError {
  return pmemError('EAGAIN', 'dma', 'the mapping kept changing under the transfer (too many gup-fast retries)', { offset: job.offset, length: job.length })
}

/**
 * Unpin every run the ledger still records as PINNED; returns the pages
 * released. `atomic`: compareExchange each entry's state (each pin is
 * released exactly once, by whoever gets there: the main thread after a
 * worker died); the owning thread, while it runs, is alone on its ledger.
 */
export function releaseLedgerRuns(ledger: Int32Array, table: PageTable, get: boolean, atomic = true): number {
  let released = 0
  const runs = Atomics.load(ledger, L_RUNS)
  for (let e = 0; e < runs; e++) {
    const at = L_HDR + RUN_WORDS * e
    if (atomic) {
      if (Atomics.compareExchange(ledger, at + R_STATE, S_PINNED, S_NONE) !== S_PINNED) continue
    } else {
      if (ledger[at + R_STATE] !== S_PINNED) continue
      ledger[at + R_STATE] = S_NONE
    }
    const pfn = ledger[at + R_PFN]!
    const n = ledger[at + R_COUNT]!
    if (get) table.putRange(pfn, n)
    else table.unpinRange(pfn, n)
    released += n
  }
  return released
}

/** Release everything a ledger still records (the main thread after a worker died). */
export function releaseLedger(buf: SharedArrayBuffer, table: PageTable): number {
  const ledger = new Int32Array(buf)
  return releaseLedgerRuns(ledger, table, ledger[L_KIND] === 1)
}

/** Pages of the ledger still pinned. */
export function ledgerPinned(buf: SharedArrayBuffer): number {
  const ledger = new Int32Array(buf)
  let n = 0
  const runs = Atomics.load(ledger, L_RUNS)
  for (let e = 0; e < runs; e++) {
    const at = L_HDR + RUN_WORDS * e
    if (Atomics.load(ledger, at + R_STATE) === S_PINNED) n += ledger[at + R_COUNT]!
  }
  return n
}

/**
 * Copy up to `max` bytes between the region at `regionOff` and buf; stops at
 * a window end. With `native` (the shim's memcpy) when both sides are shared
 * memory, else Uint8Array.set.
 */
function copyPiece(windows: CoreEnv['windows'], regionOff: number, buf: Uint8Array, bufOff: number, max: number, write: boolean,
  native: CoreEnv['copy']): number {
  const wl = windows[0]!.length
  let w = windows[Math.min(Math.floor(regionOff / wl), windows.length - 1)]!
  if (regionOff < w.offset || regionOff >= w.offset + w.length) {
    const found = windows.find(x => regionOff >= x.offset && regionOff < x.offset + x.length)
    if (!found) throw pmemError('EFAULT', 'dma', `region offset ${regionOff} is outside the device`, { offset: regionOff })
    w = found
  }
  const rel = regionOff - w.offset
  const n = Math.min(max, w.length - rel)
  const wb = w.bytes.buffer
  if (native && wb instanceof SharedArrayBuffer) {
    const b = buf.buffer as SharedArrayBuffer
    if (write) native(wb, w.bytes.byteOffset + rel, b, buf.byteOffset + bufOff, n)
    else native(b, buf.byteOffset + bufOff, wb, w.bytes.byteOffset + rel, n)
  } else if (write) w.bytes.set(buf.subarray(bufOff, bufOff + n), rel)
  else buf.set(w.bytes.subarray(rel, rel + n), bufOff)
  return n
}

function zeroPiece(buf: Uint8Array, bufOff: number, n: number): number {
  buf.fill(0, bufOff, bufOff + n)
  return n
}

/** Wait until the copy of `copied` bytes is due under the device model (latency + bytes / bandwidth). */
async function pace(ledger: Int32Array, t0: number, copied: number, job: JobSpec): Promise<void> {
  const due = t0 + job.latencyNs / 1e6 + (job.bandwidth > 0 ? (copied / job.bandwidth) * 1e3 : 0)
  let left = due - performance.now()
  if (left > 2) {
    await waitCtl(ledger, CTL_ABORT, left - 1)
    left = due - performance.now()
  }
  // the last millisecond: timers are too coarse, spin (abortable)
  while (left > 0 && !(Atomics.load(ledger, L_CTL) & CTL_ABORT)) left = due - performance.now()
}

/**
 * Wait (Atomics.waitAsync on the ctl word, never polling) until one of `mask`
 * is set, or `ms` elapse. A timer keeps the event loop alive and wakes the
 * wait at the deadline (a pending waitAsync alone does neither).
 */
export async function waitCtl(ledger: Int32Array, mask: number, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  let expired = false
  if (ms !== Infinity) timer = setTimeout(() => { expired = true; Atomics.notify(ledger, L_CTL) }, Math.max(0, ms))
  try {
    for (;;) {
      const v = Atomics.load(ledger, L_CTL)
      if ((v & mask) !== 0 || expired) return
      const w = Atomics.waitAsync(ledger, L_CTL, v)
      if (w.async) await w.value
    }
  } finally {
    if (timer) clearTimeout(timer)
  }
}
