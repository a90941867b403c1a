/**
 * The part of a DMA transfer that runs where the copy runs — in a worker
 * thread, or on the main thread on the mmap-io backend: pin_user_pages over
 * the mapping's ptes (fast path with re-check, slow path through the owning
 * thread), the poison check, the copy with the device model, the hold, and
 * the unpin (the model's wake rule notifies waiting truncates).
 *
 * Every pin goes through the transfer's **ledger** (a SharedArrayBuffer the
 * main thread also holds): one slot per page of the transfer, set to PINNED
 * right after the pin and swapped back to 0 (compareExchange) by whoever
 * unpins it. So the worker's `finally` and, if the worker dies, the main
 * thread release exactly the pins that were taken, and never twice.
 */
import { PmemuAbortError, PmemuError, pmemError } from '../errors.js'
import type { PageTable } from '../page/index.js'
import type { MappingShare } from '../dax/types.js'

export type Direction = 'to-device' | 'from-device'
export type PinKind = 'pin' | 'get'
/** Test-only failure injection (see DmaEngine docs). */
export type FailPoint = 'throw-after-pin' | 'exit-after-pin' | 'uncaught-after-pin' | 'hang-after-pin'

/** ctl word bits (ledger[0]) set by the main thread. */
export const CTL_RELEASE = 1
export const CTL_ABORT = 2
/** ledger layout (Int32Array): [0] ctl, [1] kind (0 pin, 1 get), [2] pages, [3] reserved, then per page: pfn, state. */
export const L_CTL = 0
export const L_KIND = 1
export const L_PAGES = 2
export const L_HDR = 4
export const S_NONE = 0
export const S_PINNED = 1
/** ledger pfn of a page with nothing behind it (a read of a hole: the zero page). */
export const ZERO_PAGE = -1

/** Engine-wide shared words (Int32Array over a SAB): [0] generation, [1] poison seen, [2] dead (crash/unbind/close). */
export const E_GEN = 0
export const E_POISON = 1
export const E_DEAD = 2
export const ENGINE_WORDS = 4

export function ledgerBytes(pages: number): number {
  return (L_HDR + 2 * pages) * 4
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
  /** Slow path: have the owning thread fault [offset, offset+length) of the mapping. Rejects with the fault's error. */
  fault(job: JobSpec, offset: number, length: number, write: boolean): Promise<void>
  /** All pages are pinned. */
  pinned(job: JobSpec): void
  /** Test hook: die in the middle of a transfer (worker: process.exit / uncaught). */
  die?(how: 'exit' | 'uncaught'): void
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
  const kind = job.pin
  let faults = 0
  let retries = 0

  const checkLive = (): void => {
    if (Atomics.load(engine, E_DEAD) !== 0 || Atomics.load(engine, E_GEN) !== share.generation) {
      throw pmemError('ENXIO', 'dma', 'the device was crashed, unbound or closed', { offset: job.offset, length: job.length })
    }
    if (Atomics.load(state, 0) !== 0) {
      throw pmemError('EFAULT', 'dma', `mapping ${share.id} is unmapped (dead mapping)`, { offset: job.offset, length: job.length })
    }
    if (Atomics.load(ledger, L_CTL) & CTL_ABORT) throw new PmemuAbortError('dma', { offset: job.offset })
  }

  const pinRun = (pfn: number, n: number): void => {
    if (kind === 'pin') table.pinRange(pfn, n)
    else table.getRange(pfn, n)
  }
  const unpinRun = (pfn: number, n: number): void => {
    if (kind === 'pin') table.unpinRange(pfn, n)
    else table.putRange(pfn, n)
  }
  /** Unpin ledger slots [from, to) that are still PINNED; returns how many were. */
  const releaseSlots = (from: number, to: number): number => releaseLedgerRange(ledger, table, kind, from, to, false)

  const tStart = performance.now()
  let pinNs = 0
  try {
    checkLive()
    // --- pin_user_pages: fast path on the ptes, re-check, slow path to fault ----------------------
    for (let k = 0; k < pages; k++) ledger[L_HDR + 2 * k] = ZERO_PAGE
    let i = 0
    let faultedAt = -1
    while (i < pages) {
      checkLive()
      // a run of consecutive mapping pages with consecutive pfns, all present
      const pfn0 = Atomics.load(ptes, first + i)
      if (pfn0 < 0) {
        if (faultedAt === i && !write) {
          // the fault succeeded and left no page: a hole of a read-only mapping (the zero page,
          // nothing to pin; the device reads zeros)
          i++
          continue
        }
        // slow path: fault the missing stretch on the owning thread, then retry the fast path
        let j = i + 1
        while (j < pages && Atomics.load(ptes, first + j) < 0) j++
        if (++retries > MAX_RETRIES + pages) throw tooManyRetries(job)
        faults++
        await env.fault(job, (first + i) * ps, (j - i) * ps, write)
        faultedAt = i
        continue
      }
      // (plain reads and writes here: the re-check below is what must be atomic; the ledger is read
      // by the main thread only after this thread has exited, which synchronizes)
      let n = 1
      while (i + n < pages && ptes[first + i + n] === pfn0 + n) n++
      for (let k = 0; k < n; k++) ledger[L_HDR + 2 * (i + k)] = pfn0 + k
      pinRun(pfn0, n)
      for (let k = 0; k < n; k++) ledger[L_HDR + 2 * (i + k) + 1] = S_PINNED
      // re-check (gup-fast): a zap that raced cleared or changed a pte; back off what changed onwards
      let ok = n
      for (let k = 0; k < n; k++) {
        if (Atomics.load(ptes, first + i + k) !== pfn0 + k) { ok = k; break }
      }
      if (ok < n) {
        faultedAt = -1
        releaseSlots(i + ok, i + n)
        for (let k = ok; k < n; k++) ledger[L_HDR + 2 * (i + k)] = ZERO_PAGE
        if (++retries > MAX_RETRIES + pages) throw tooManyRetries(job)
      }
      i += ok
    }
    checkLive()
    // --- poison (PageHWPoison on any pinned page) -----------------------------------------------------
    if (Atomics.load(engine, E_POISON) !== 0) {
      for (let k = 0; k < pages; k++) {
        const pfn = ledger[L_HDR + 2 * k]!
        if (pfn !== ZERO_PAGE && table.hasFlag(pfn, 'poisoned')) {
          throw pmemError('EHWPOISON', 'dma', `page ${pfn} of the transfer is poisoned (memory failure)`, {
            pfn, offset: (first + k) * ps,
          })
        }
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
      if (job.fail === 'hang-after-pin') await waitCtl(ledger, CTL_ABORT, Infinity)
    }
    // --- copy, at the device model's pace --------------------------------------------------------------
    const t0 = performance.now()
    const buf = new Uint8Array(job.buffer, job.bufferOffset, job.length)
    let copied = 0
    let sinceCheck = 0
    for (let k = 0; k < pages;) {
      const pfn0 = ledger[L_HDR + 2 * k]!
      let n = 1
      if (pfn0 !== ZERO_PAGE) while (k + n < pages && ledger[L_HDR + 2 * (k + n)] === pfn0 + n) n++
      // bytes of this run inside the transfer
      const runStart = Math.max(job.offset, (first + k) * ps)
      const runEnd = Math.min(job.offset + job.length, (first + k + n) * ps)
      let regionOff = pfn0 * ps + (runStart - (first + k) * ps)
      let bufOff = runStart - job.offset
      let left = runEnd - runStart
      while (left > 0) {
        const m = pfn0 === ZERO_PAGE
          ? zeroPiece(buf, bufOff, Math.min(left, CHUNK))
          : copyPiece(env.windows, regionOff, buf, bufOff, Math.min(left, CHUNK), write)
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
    return { bytes: copied, ns, pinNs, faults, retries }
  } finally {
    releaseSlots(0, pages)
  }
}

function tooManyRetries(job: JobSpec): PmemuError {
  return pmemError('EAGAIN', 'dma', 'the mapping kept changing under the transfer (too many gup-fast retries)', { offset: job.offset, length: job.length })
}

/** Unpin every slot of [from, to) still PINNED (compareExchange: each pin is released exactly once, by whoever gets there). */
export function releaseLedgerRange(ledger: Int32Array, table: PageTable, kind: PinKind, from: number, to: number, atomic = true): number {
  let released = 0
  let runPfn = -1
  let runN = 0
  const flush = (): void => {
    if (runN > 0) {
      if (kind === 'pin') table.unpinRange(runPfn, runN)
      else table.putRange(runPfn, runN)
    }
    runN = 0
  }
  for (let k = from; k < to; k++) {
    const slot = L_HDR + 2 * k
    if (atomic) {
      if (Atomics.compareExchange(ledger, slot + 1, S_PINNED, S_NONE) !== S_PINNED) continue
    } else {
      // the owning thread: nobody else touches its ledger while it runs
      if (ledger[slot + 1] !== S_PINNED) continue
      ledger[slot + 1] = S_NONE
    }
    const pfn = ledger[slot]!
    if (runN > 0 && pfn === runPfn + runN) runN++
    else { flush(); runPfn = pfn; runN = 1 }
    released++
  }
  flush()
  return released
}

/** Release everything a ledger still records (the main thread after a worker died). */
export function releaseLedger(buf: SharedArrayBuffer, table: PageTable): number {
  const ledger = new Int32Array(buf)
  const kind: PinKind = ledger[L_KIND] === 1 ? 'get' : 'pin'
  return releaseLedgerRange(ledger, table, kind, 0, ledger[L_PAGES]!)
}

/** Pages of the ledger still pinned. */
export function ledgerPinned(buf: SharedArrayBuffer): number {
  const ledger = new Int32Array(buf)
  let n = 0
  for (let k = 0; k < ledger[L_PAGES]!; k++) if (Atomics.load(ledger, L_HDR + 2 * k + 1) === S_PINNED) n++
  return n
}

/** Copy up to `max` bytes between the region at `regionOff` and buf; stops at a window end. */
function copyPiece(windows: CoreEnv['windows'], regionOff: number, buf: Uint8Array, bufOff: number, max: number, write: boolean): number {
  const wl = windows[0]!.length
  let w = windows[Math.min(Math.floor(regionOff / wl), windows.length - 1)]!
  if (regionOff < w.offset || regionOff >= w.offset + w.length) {
    const found = windows.find(x => regionOff >= x.offset && regionOff < x.offset + x.length)
    if (!found) throw pmemError('EFAULT', 'dma', `region offset ${regionOff} is outside the device`, { offset: regionOff })
    w = found
  }
  const rel = regionOff - w.offset
  const n = Math.min(max, w.length - rel)
  if (write) w.bytes.set(buf.subarray(bufOff, bufOff + n), rel)
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
