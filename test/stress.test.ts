/**
 * Randomized DMA stress: fast-check, seeded, bounded. A random
 * sequence of DMA transfers (both directions, 'pin' and 'get', held until
 * release and released later in the sequence, or aborted), view faults with
 * CPU stores, truncates (shrink and grow), punch-holes (page-aligned and
 * not: a start or end inside a page), remaps, and poison: sectors of
 * file pages under load are poisoned (`dev.poison`), rewritten by whole-sector
 * `file.write`s (the recovery write that clears them) or by writes that cover
 * part of a poisoned sector (EHWPOISON), and scrubbed (`dev.clearPoison`),
 * across a
 * 2-worker engine, on two files (one fallocated 4 MiB: PMD / folio faults;
 * one small and sparse), for every model. After the sequence, everything is
 * released and awaited (a truncate or punch-hole that waits on a held
 * transfer is only awaited after the release: no sleeps anywhere), then:
 * no pin and no plain get left, `dev.check()` is [] (in dax-gup-v1 the plain-get
 * use-after-free hazard is the only kind allowed: SPEC §3), every file has the
 * size of its last truncate, and no byte is lost: a byte model of every
 * store (DMA and CPU), truncate and punch-hole says what each byte holds
 * wherever the order of events decides it — in particular everywhere that
 * was never truncated or punched. Every to-device transfer's buffer and every
 * view read are checked against the model too.
 *
 * Poison: a poisoned sector's bytes are unknown to the model until rewritten.
 * DMA transfers over a poisoned page may fail with EHWPOISON (and leave no pin:
 * the pin and get counts are back to zero at every settle), views raise
 * SIGBUS, truncates and punch-holes whose in-place zeroing covers part of a
 * poisoned sector fail with EHWPOISON and change nothing (a punch may have
 * zeroed its first edge). At the end the device's poison list, read through
 * each file's pages, must lie where the test poisoned (poison never moves into
 * other data), every poisoned sector reads EHWPOISON, and every other byte is
 * checked against the model.
 *
 * Scale: PMEMU_STRESS_OPS operations in all (default 1500, split over the
 * models; PMEMU_GOAL=1: 100000). PMEMU_STRESS_SEED fixes the seed;
 * PMEMU_STRESS_SHRINK=1 lets fast-check shrink a failure (slow: each run
 * starts a device and two workers).
 */
import t from 'tap'
import fc from 'fast-check'
import { writeFileSync } from 'node:fs'
import { openDevice, type Device } from '../src/region/index.js'
import type { DaxMapping } from '../src/dax/index.js'
import { mkfs } from '../src/mount.js' // the public mkfs: DAX and the fault layer (poison through file.read / write)
import type { PmemFile, PmemFs } from '../src/fs/index.js'
import { MODELS, MODEL_NAMES, type ModelName } from '../src/page/index.js'
import { DmaEngine, type DmaTransfer } from '../src/dma/index.js'

const PS = 4096
/** Transfers that ended in EAGAIN (gup-fast retries exhausted), over the whole run. */
let gupGaveUp = 0
const SECTOR = 512
// PMEMU_GOAL=1 (the suite's one goal-size switch) means the goal's 100 000 operations unless PMEMU_STRESS_OPS says otherwise.
const OPS = Math.max(1, Number(process.env.PMEMU_STRESS_OPS ?? (process.env.PMEMU_GOAL === '1' ? 100000 : 1500)) | 0)
const SEED = process.env.PMEMU_STRESS_SEED !== undefined ? Number(process.env.PMEMU_STRESS_SEED) : 0x5eed7
const SHRINK = process.env.PMEMU_STRESS_SHRINK === '1'
/** Replay one failing run: its model and the fast-check path the failure printed. */
const ONLY_MODEL = process.env.PMEMU_STRESS_MODEL
const PATH = process.env.PMEMU_STRESS_PATH
const RUN_LEN = 150

// ---------------------------------------------------------------------------------------------
// operations

type Op =
  | { k: 'dma'; file: number; map: number; page: number; sub: number; pages: number; dir: 'to-device' | 'from-device'; pin: 'pin' | 'get'; held: boolean; seed: number }
  | { k: 'release'; which: number }
  | { k: 'abort'; which: number }
  | { k: 'view'; file: number; map: number; page: number; sub: number; pages: number; write: boolean; seed: number }
  // aim: start inside a sector the test poisoned (the in-place zeroing meets it), when there is one
  | { k: 'truncate'; file: number; pages: number; delta: number; jump: boolean; tail: number; aim: boolean }
  | { k: 'punch'; file: number; page: number; pages: number; skew: number; trim: number; aim: boolean }
  | { k: 'remap'; file: number; map: number }
  // poison `sectors` sectors from `sector` of a file page: near the file's latest DMA ranges or anywhere
  | { k: 'poison'; file: number; page: number; sector: number; sectors: number; at: 'dma' | 'any' }
  // file.write of whole sectors (a recovery write where poisoned), or unaligned by `skew` bytes: at a poisoned sector, a DMA range or anywhere
  | { k: 'write'; file: number; page: number; sector: number; sectors: number; skew: number; at: 'poison' | 'dma' | 'any'; seed: number }
  // dev.clearPoison of one file page (an address-range scrub: the bytes stay unknown)
  | { k: 'scrub'; file: number; page: number; at: 'poison' | 'dma' | 'any' }
  | { k: 'tick' }
  | { k: 'settle' }

/** Files: [max pages, mappings: [first page, pages, writable]]. File 0 starts fallocated and written (4 MiB: PMD faults), file 1 small and sparse. */
const FILES = [
  { pages: 1024 + 64, initial: 1024, maps: [[0, 1024 + 64, true], [0, 1024 + 64, false], [500, 40, true]] },
  { pages: 96, initial: 48, maps: [[0, 96, true], [0, 96, false], [8, 24, true]] },
] as const

const opArb: fc.Arbitrary<Op> = (() => {
  const file = fc.constantFrom(0, 1)
  const map = fc.nat(2)
  const page = fc.nat(1100)
  const sub = fc.constantFrom(0, 0, 0, 1, 777)
  const seed = fc.nat(0xffff)
  const aim = fc.nat(3).map(n => n === 0)
  const at = fc.constantFrom('poison' as const, 'poison' as const, 'dma' as const, 'any' as const)
  return fc.oneof(
    { weight: 10, arbitrary: fc.record({ k: fc.constant('dma' as const), file, map, page, sub, pages: fc.integer({ min: 1, max: 12 }), dir: fc.constantFrom('to-device' as const, 'from-device' as const), pin: fc.constantFrom('pin' as const, 'pin' as const, 'get' as const), held: fc.boolean(), seed }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('release' as const), which: fc.nat(64) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('abort' as const), which: fc.nat(64) }) },
    { weight: 5, arbitrary: fc.record({ k: fc.constant('view' as const), file, map, page, sub, pages: fc.integer({ min: 1, max: 8 }), write: fc.boolean(), seed }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('truncate' as const), file, pages: fc.nat(1100), delta: fc.integer({ min: -12, max: 12 }), jump: fc.nat(7).map(n => n === 0), tail: fc.constantFrom(0, 0, 100), aim }) },
    // skew / trim: unaligned punches (start or end inside a page) half the time
    { weight: 2, arbitrary: fc.record({ k: fc.constant('punch' as const), file, page, pages: fc.integer({ min: 1, max: 16 }),
      skew: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: PS - 1 })), trim: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: PS - 1 })), aim }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('remap' as const), file, map }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('poison' as const), file, page, sector: fc.nat(7), sectors: fc.integer({ min: 1, max: 3 }), at: fc.constantFrom('dma' as const, 'any' as const) }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('write' as const), file, page, sector: fc.nat(7), sectors: fc.integer({ min: 1, max: 12 }),
      skew: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: SECTOR - 1 })), at, seed }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('scrub' as const), file, page, at }) },
    { weight: 3, arbitrary: fc.constant({ k: 'tick' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'settle' as const }) },
  )
})()

function fill(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff }
  return b
}

// ---------------------------------------------------------------------------------------------
// the byte model

interface Range { start: number; end: number }
interface Reader extends Range { expect: Uint8Array; mask: Uint8Array }
/** A truncate or punch-hole in flight: it zeroes [start, end) when it completes; `dirty`: stores that may land on either side of it. */
interface Clear extends Range { dirty: Range[] }

const overlap = (s: number, e: number, r: Range): [number, number] | undefined => {
  const a = Math.max(s, r.start)
  const b = Math.min(e, r.end)
  return a < b ? [a, b] : undefined
}

/**
 * What each byte of a file must hold: `bytes` where `known`. Stores (CPU
 * stores through a view, DMA writes at submit) set bytes; a truncate or a
 * punch-hole zeroes its range when it completes (bytes past EOF are kept as
 * zeros: a later grow reads them so). What the order of events leaves open
 * is unknown: DMA writes that overlap while in flight, stores that overlap a
 * truncate / punch-hole in flight, failed or aborted DMA writes.
 */
class FileModel {
  readonly bytes: Uint8Array
  readonly known: Uint8Array
  /** Size after every truncate issued so far (they serialise in call order). */
  size: number
  /** from-device transfers in flight (file byte ranges). */
  readonly writers = new Set<Range>()
  /** to-device transfers in flight. */
  readonly readers = new Set<Reader>()
  /** truncates and punch-holes in flight. */
  readonly clears = new Set<Clear>()
  /**
   * The size the file has once every truncate issued so far completed: a
   * truncate that fails (EHWPOISON) leaves the size it found. Applied in call
   * order (truncates and punch-holes serialise on the inode lock), through `chain`.
   */
  effective: number
  /** Sizes the file may have while truncates are in flight (one may fail): clears issued now cover them all. */
  sizeLo: number
  sizeHi: number
  /** The model's side of truncates and punch-holes, applied in call order. */
  chain: Promise<void> = Promise.resolve()
  /** Truncates and punch-holes issued whose model step has not run. */
  sizeOps = 0
  /** Per 512-byte sector: poisoned by the test and not known cleared since (a superset of the device's poison in this file). */
  readonly poisoned: Uint8Array
  /** The latest DMA ranges (where poison hurts most). */
  readonly recent: Range[] = []

  constructor(max: number, size: number) {
    this.bytes = new Uint8Array(max)
    this.known = new Uint8Array(max)
    this.poisoned = new Uint8Array(Math.ceil(max / SECTOR))
    this.size = this.effective = this.sizeLo = this.sizeHi = size
  }

  /** Bytes of [s, e) may be changing: out of every in-flight reader's check. */
  #unsettle(s: number, e: number): void {
    for (const r of this.readers) {
      const o = overlap(s, e, r)
      if (o) r.mask.fill(0, o[0] - r.start, o[1] - r.start)
    }
  }

  /** A store of `data` at `s` (a CPU store through a view, or a DMA write at submit). */
  write(s: number, data: Uint8Array, self?: Range): void {
    const e = s + data.length
    this.bytes.set(data, s)
    this.known.fill(1, s, e)
    for (const w of this.writers) { // overlapping DMA writes in flight: which lands last is not known
      const o = w !== self && overlap(s, e, w)
      if (o) this.known.fill(0, o[0], o[1])
    }
    for (const c of this.clears) { const o = overlap(s, e, c); if (o) c.dirty.push({ start: o[0], end: o[1] }) }
    this.#unsettle(s, e)
  }

  forget(s: number, e: number): void {
    this.known.fill(0, s, e)
    this.#unsettle(s, e)
  }

  /** A truncate / punch-hole of [s, e) is issued. */
  beginClear(s: number, e: number): Clear {
    s = Math.max(0, Math.min(s, this.bytes.length))
    e = Math.max(s, Math.min(e, this.bytes.length))
    const c: Clear = { start: s, end: e, dirty: [] }
    for (const w of this.writers) { const o = overlap(s, e, w); if (o) c.dirty.push({ start: o[0], end: o[1] }) }
    this.clears.add(c)
    this.#unsettle(s, e)
    return c
  }

  /**
   * It completed: [s, e) (inside the range it was issued with, which may be
   * wider: the sizes it could meet) reads zeros, but for the stores that raced it.
   */
  endClear(c: Clear, s = c.start, e = c.end): void {
    this.clears.delete(c)
    if (s < e) {
      this.bytes.fill(0, s, e)
      this.known.fill(1, s, e)
      for (const d of c.dirty) { const o = overlap(s, e, d); if (o) this.known.fill(0, o[0], o[1]) }
    }
    this.#unsettle(c.start, c.end)
  }

  /** Sectors [s, e) were poisoned: their bytes are unknown until rewritten. */
  poison(s: number, e: number): void {
    this.poisoned.fill(1, Math.floor(s / SECTOR), Math.ceil(e / SECTOR))
    this.forget(s, e)
  }

  /** No sector touching [s, e) is poisoned now (a write over it succeeded, or a scrub cleared it). */
  unpoison(s: number, e: number): void {
    this.poisoned.fill(0, Math.floor(s / SECTOR), Math.ceil(e / SECTOR))
  }

  /** Which bytes of [s, e) must read as `bytes` now: known, no DMA write, truncate or punch-hole in flight over them. */
  mask(s: number, e: number): Uint8Array {
    const mask = new Uint8Array(e - s)
    for (let i = s; i < e; i++) mask[i - s] = this.known[i]!
    for (const set of [this.writers, this.clears] as Array<Set<Range>>) {
      for (const w of set) { const o = overlap(s, e, w); if (o) mask.fill(0, o[0] - s, o[1] - s) }
    }
    return mask
  }

  reader(s: number, e: number): Reader {
    const r: Reader = { start: s, end: e, expect: this.bytes.slice(s, e), mask: this.mask(s, e) }
    this.readers.add(r)
    return r
  }
}

/** First byte where `got` differs from `r.expect` under the mask, or -1. */
function firstMismatch(got: Uint8Array, expect: Uint8Array, mask: Uint8Array): number {
  for (let i = 0; i < expect.length; i++) if (mask[i] && got[i] !== expect[i]) return i
  return -1
}

// ---------------------------------------------------------------------------------------------
// one run

/** A mapping page for `n`: mostly below the file's current EOF (plus two pages past it), where truncates bite. */
function pageIn(map: DaxMapping, fm: FileModel, n: number): number {
  const first = map.offset / PS
  const eofPages = Math.ceil(fm.size / PS) + 2
  const span = Math.max(1, Math.min(map.length / PS, eofPages - first))
  return n % span
}

/** The `n`th (modulo) sector below EOF that the test poisoned and did not see cleared, or undefined. */
function poisonedSector(fm: FileModel, n: number): number | undefined {
  const list: number[] = []
  for (let i = 0; i * SECTOR < fm.size && i < fm.poisoned.length; i++) if (fm.poisoned[i]) list.push(i)
  return list.length > 0 ? list[n % list.length] : undefined
}

/** A file page for a poison / write / scrub: one the test poisoned, inside one of the file's latest DMA ranges, or anywhere below EOF. */
function targetPage(fm: FileModel, n: number, at: 'poison' | 'dma' | 'any'): number {
  const sec = at === 'poison' ? poisonedSector(fm, n) : undefined
  if (sec !== undefined) return Math.floor(sec * SECTOR / PS)
  if (at !== 'any' && fm.recent.length > 0) {
    const r = fm.recent[n % fm.recent.length]!
    const p0 = Math.floor(r.start / PS)
    return p0 + (n >> 3) % Math.max(1, Math.ceil(r.end / PS) - p0)
  }
  return n % Math.max(1, Math.ceil(fm.size / PS))
}

/** Poison events of one run. */
interface PoisonCounts { poisoned: number; recoveryWrites: number; partialWrites: number; scrubs: number; dmaPoisoned: number; sigbus: number; clearsFailed: number; leftAtEnd: number }

interface Outcome { problems: string[]; ops: number; transfers: number; held: number; waits: number; hazards: number; poison: PoisonCounts }

async function runSequence(model: ModelName, ops: Op[]): Promise<Outcome> {
  const dev: Device = await openDevice(undefined, { size: '24MiB', model, pageSize: PS, map: 'mem' })
  const fs: PmemFs = await mkfs(dev)
  const dma = new DmaEngine(dev, { workers: 2 })
  const problems: string[] = []
  const files: PmemFile[] = []
  const models: FileModel[] = []
  const maps: DaxMapping[][] = []
  const held: DmaTransfer[] = []
  const pending: Array<Promise<unknown>> = []
  let transfers = 0
  let heldCount = 0
  const pc: PoisonCounts = { poisoned: 0, recoveryWrites: 0, partialWrites: 0, scrubs: 0, dmaPoisoned: 0, sigbus: 0, clearsFailed: 0, leftAtEnd: 0 }
  try {
    for (const [i, spec] of FILES.entries()) {
      const f = await fs.open(`/s${i}`, 'w+')
      const m = new FileModel(spec.pages * PS, spec.initial * PS)
      if (i === 0) {
        await f.fallocate(0, spec.initial * PS)
        const data = fill(spec.initial * PS, 1)
        f.write(data, 0)
        m.write(0, data)
      } else {
        await f.truncate(spec.initial * PS)
        m.known.fill(1, 0, spec.initial * PS) // holes read as zeros
        for (const p of [0, 1, 2, 9, 20, 21, 22, 40]) {
          const data = fill(PS, 100 + p)
          f.write(data, p * PS)
          m.write(p * PS, data)
        }
      }
      await f.fsync()
      files.push(f)
      models.push(m)
      maps.push(spec.maps.map(([first, pages, write]) => f.mmap(first * PS, pages * PS, { write }) as DaxMapping))
    }

    const expectCodes = (what: string, e: unknown, codes: string[]): void => {
      const code = (e as { code?: string }).code
      if (!code || !codes.includes(code)) problems.push(`${what}: unexpected ${String(code)} ${(e as Error)?.message ?? String(e)}`)
    }
    /** Pins and plain gets taken and not dropped. */
    const pinsLeft = (): string | undefined => {
      const st = dev.stats()
      const pins = (st.pins ?? 0) - (st.unpins ?? 0)
      const gets = (st.gets ?? 0) - (st.puts ?? 0)
      return pins !== 0 || gets !== 0 ? `${pins} pins and ${gets} plain gets left` : undefined
    }
    /** The model's step for a truncate / punch-hole, run after every earlier one's (they complete in call order). */
    const sizeOp = (fm: FileModel, real: Promise<void>, what: string, step: (ok: boolean) => void): void => {
      const r = real.then(() => true, e => {
        expectCodes(what, e, ['EHWPOISON'])
        pc.clearsFailed++
        return false
      })
      fm.sizeOps++
      fm.chain = fm.chain.then(() => r).then(ok => {
        step(ok)
        if (--fm.sizeOps === 0) fm.sizeLo = fm.sizeHi = fm.effective
      })
      pending.push(fm.chain)
    }

    for (const op of ops) {
      switch (op.k) {
        case 'dma': {
          const fm = models[op.file]!
          const map = maps[op.file]![op.map]!
          const dir = op.dir === 'from-device' && !map.writable ? 'to-device' : op.dir
          const page = pageIn(map, fm, op.page)
          const offset = page * PS + Math.min(op.sub, PS - 1)
          const length = Math.max(1, Math.min(op.pages * PS - op.sub, map.length - offset))
          const s = map.offset + offset
          const range: Range = { start: s, end: s + length }
          let reader: Reader | undefined
          const buffer = dir === 'from-device' ? fill(length, op.seed) : undefined
          fm.recent.push(range)
          if (fm.recent.length > 8) fm.recent.shift()
          if (buffer) {
            fm.write(s, buffer)
            fm.writers.add(range)
          } else {
            reader = fm.reader(s, s + length)
          }
          const tr = dma.submit({ map, offset, length, direction: dir, pin: op.pin, buffer, hold: op.held ? 'until-release' : undefined })
          transfers++
          if (op.held) { held.push(tr); heldCount++ }
          pending.push(tr.done.then(() => {
            if (reader) {
              const at = firstMismatch(tr.buffer, reader.expect, reader.mask)
              if (at >= 0) problems.push(`to-device ${op.pin} file ${op.file} [${s}, +${length}): byte ${s + at} read ${tr.buffer[at]}, model ${reader.expect[at]}`)
            }
          }, e => {
            // EAGAIN: gup-fast gave up after its bounded retries while truncates and
            // punch-holes kept zapping the range (Linux's gup would block on the
            // invalidate lock instead: docs/dma.md, known limits); counted, not a loss
            if ((e as { code?: string }).code === 'EAGAIN') gupGaveUp++
            if ((e as { code?: string }).code === 'EHWPOISON') pc.dmaPoisoned++
            expectCodes(`${dir} ${op.pin} file ${op.file} [${s}, +${length})`, e, ['EFAULT', 'ABORT_ERR', 'EAGAIN', 'EHWPOISON'])
            if (buffer) fm.forget(s, s + length) // partly written, or not at all
          }).finally(() => {
            fm.writers.delete(range)
            if (reader) fm.readers.delete(reader)
          }))
          break
        }
        case 'release':
        case 'abort': {
          if (held.length === 0) break
          const [tr] = held.splice(op.which % held.length, 1)
          if (op.k === 'release') tr!.release()
          else tr!.abort()
          break
        }
        case 'view': {
          const fm = models[op.file]!
          const map = maps[op.file]![op.map]!
          const page = pageIn(map, fm, op.page)
          const offset = page * PS + Math.min(op.sub, PS - 1)
          const length = Math.max(1, Math.min(op.pages * PS - op.sub, map.length - offset))
          try {
            const segs = map.views(offset, length)
            if (op.write && map.writable) {
              const data = fill(length, op.seed)
              for (const sg of segs) sg.bytes.set(data.subarray(sg.offset - offset, sg.offset - offset + sg.bytes.length))
              fm.write(map.offset + offset, data)
            } else {
              for (const sg of segs) {
                const s = map.offset + sg.offset
                const at = firstMismatch(sg.bytes, fm.bytes.subarray(s, s + sg.bytes.length), fm.mask(s, s + sg.bytes.length))
                if (at >= 0) problems.push(`view file ${op.file} byte ${s + at}: ${sg.bytes[at]}, model ${fm.bytes[s + at]}`)
              }
            }
          } catch (e) {
            if ((e as { code?: string }).code === 'SIGBUS') pc.sigbus++
            expectCodes(`view file ${op.file} [${map.offset + offset}, +${length})`, e, ['SIGBUS'])
          }
          break
        }
        case 'truncate': {
          const fm = models[op.file]!
          // mostly a few pages either way (held transfers near EOF get caught), now and then anywhere
          const max = FILES[op.file]!.pages
          const pages = op.jump ? op.pages % (max + 1) : Math.max(0, Math.min(max, Math.ceil(fm.size / PS) + op.delta))
          const sec = op.aim ? poisonedSector(fm, op.pages) : undefined
          // aimed: the new EOF inside a poisoned sector (zeroing past it meets the poison)
          const size = sec !== undefined ? sec * SECTOR + 100 : pages * PS - (pages > 0 ? op.tail : 0)
          // in flight over every size the file may have when it runs (an earlier truncate may fail on poison)
          fm.sizeLo = Math.min(fm.sizeLo, size)
          fm.sizeHi = Math.max(fm.sizeHi, size)
          const c = fm.beginClear(fm.sizeLo, fm.sizeHi)
          fm.size = size
          sizeOp(fm, files[op.file]!.truncate(size), `truncate file ${op.file} to ${size}`, ok => {
            if (!ok) { fm.endClear(c, 0, 0); return } // its zeroing met poison first: nothing changed
            const from = fm.effective
            fm.effective = size
            fm.endClear(c, Math.min(from, size), Math.max(from, size))
          })
          break
        }
        case 'punch': {
          const fm = models[op.file]!
          const page = op.page % FILES[op.file]!.pages
          const sec = op.aim ? poisonedSector(fm, op.page) : undefined
          const start = sec !== undefined ? sec * SECTOR + (op.skew % SECTOR) : page * PS + op.skew
          const len = Math.max(1, op.pages * PS - op.skew - op.trim)
          const c = fm.beginClear(start, Math.min(start + len, Math.max(fm.sizeHi, start)))
          sizeOp(fm, files[op.file]!.punchHole(start, len), `punch file ${op.file} [${start}, +${len}) bytes`, ok => {
            const end = Math.min(start + len, Math.max(fm.effective, start))
            fm.endClear(c, ok ? start : 0, ok ? end : 0)
            if (!ok) fm.forget(start, end) // one edge may have been zeroed before the other met poison
          })
          break
        }
        case 'remap': {
          const old = maps[op.file]![op.map]!
          old.unmap()
          maps[op.file]![op.map] = files[op.file]!.mmap(old.offset, old.length, { write: old.writable }) as DaxMapping
          break
        }
        case 'poison': {
          const fm = models[op.file]!
          const page = targetPage(fm, op.page, op.at)
          const pfn = files[op.file]!.pfnAt(page)
          if (pfn === null || page >= FILES[op.file]!.pages) break // a hole: no device page to poison
          const n = Math.min(op.sectors, PS / SECTOR - op.sector)
          dev.poison(pfn * PS + op.sector * SECTOR, n * SECTOR)
          fm.poison(page * PS + op.sector * SECTOR, page * PS + (op.sector + n) * SECTOR)
          pc.poisoned++
          break
        }
        case 'write': {
          // file.write with no truncate or punch-hole in flight, below EOF: the size stays what the model says
          const fm = models[op.file]!
          if (fm.clears.size > 0 || fm.sizeOps > 0) break
          const sec = op.at === 'poison' ? poisonedSector(fm, op.page) : undefined
          // at a poisoned sector: start on it or a sector before it (whole sectors: a recovery write), or skewed into it
          const s = sec !== undefined ? Math.max(0, (sec - (op.sector & 1)) * SECTOR + op.skew)
            : targetPage(fm, op.page, op.at) * PS + op.sector * SECTOR + op.skew
          const len = Math.min(op.sectors * SECTOR - (op.skew ? SECTOR : 0), fm.effective - s)
          if (len <= 0) break
          const data = fill(len, op.seed)
          const wasPoisoned = fm.poisoned.subarray(Math.floor(s / SECTOR), Math.ceil((s + len) / SECTOR)).includes(1)
          try {
            files[op.file]!.write(data, s)
            fm.write(s, data)
            fm.unpoison(s, s + len)
            if (wasPoisoned) pc.recoveryWrites++
          } catch (e) {
            // covers part of a poisoned sector: the extent run met is not stored, runs before it may be
            if ((e as { code?: string }).code === 'EHWPOISON') pc.partialWrites++
            expectCodes(`write file ${op.file} [${s}, +${len})`, e, ['EHWPOISON'])
            fm.forget(s, s + len)
          }
          break
        }
        case 'scrub': {
          const fm = models[op.file]!
          const page = targetPage(fm, op.page, op.at)
          const pfn = files[op.file]!.pfnAt(page)
          if (pfn === null || page >= FILES[op.file]!.pages) break
          if (dev.poisonedIn(pfn * PS, PS).length > 0) pc.scrubs++
          dev.clearPoison(pfn * PS, PS) // the bytes under it stay as they were: still unknown to the model
          fm.unpoison(page * PS, (page + 1) * PS)
          break
        }
        case 'tick':
          await new Promise(r => setImmediate(r))
          break
        case 'settle': {
          for (const tr of held.splice(0)) tr.release()
          await Promise.all(pending.splice(0))
          // every transfer is done, failed ones (EHWPOISON, EFAULT, aborts) included: no pin may be left
          const left = pinsLeft()
          if (left) problems.push(`at a settle: ${left}`)
          break
        }
      }
    }

    // release everything, then wait for every transfer, truncate and punch-hole
    for (const tr of held.splice(0)) tr.release()
    await Promise.all(pending.splice(0))
    const s = dev.stats()
    if ((s.pins ?? 0) !== (s.unpins ?? 0)) problems.push(`pins left: ${(s.pins ?? 0) - (s.unpins ?? 0)}`)
    if ((s.gets ?? 0) !== (s.puts ?? 0)) problems.push(`plain gets left: ${(s.gets ?? 0) - (s.puts ?? 0)}`)
    const inFlight = dma.stats().inFlight
    if (inFlight !== 0) problems.push(`${inFlight} transfers still in flight`)

    // no lost bytes where nothing was truncated or punched; sizes as the last truncate said
    for (const [i, f] of files.entries()) {
      const fm = models[i]!
      const st = await f.stat()
      if (st.size !== fm.effective) problems.push(`file ${i}: size ${st.size}, expected ${fm.effective}`)
      const size = Math.min(st.size, fm.effective)
      // the file's poisoned sectors now, from the device's list through the file's pages
      const bad = new Uint8Array(Math.ceil(size / SECTOR))
      for (let p = 0; p * PS < size; p++) {
        const pfn = f.pfnAt(p)
        if (pfn === null) continue
        for (const b of dev.poisonedIn(pfn * PS, PS)) bad.fill(1, (p * PS + b.offset - pfn * PS) / SECTOR, (p * PS + b.offset + b.length - pfn * PS) / SECTOR)
      }
      // read every clean run and compare; every poisoned sector must fail typed, and lie where the test poisoned
      for (let sec = 0; sec * SECTOR < size;) {
        let end = sec
        while (end * SECTOR < size && bad[end] === bad[sec]) end++
        const s = sec * SECTOR
        const e = Math.min(end * SECTOR, size)
        if (bad[sec]) {
          pc.leftAtEnd += end - sec
          for (let k = sec; k < end; k++) if (!fm.poisoned[k]) problems.push(`file ${i}: sector at ${k * SECTOR} is poisoned where the test never poisoned (or cleared it)`)
          try {
            f.read(new Uint8Array(e - s), s)
            problems.push(`file ${i}: read of poisoned [${s}, ${e}) succeeded`)
          } catch (err) {
            expectCodes(`read of poisoned file ${i} [${s}, ${e})`, err, ['EHWPOISON'])
            if ((err as { bytesRead?: number }).bytesRead !== 0) problems.push(`file ${i}: read of poisoned [${s}, ${e}) says bytesRead ${(err as { bytesRead?: number }).bytesRead}`)
          }
        } else {
          const got = new Uint8Array(e - s)
          try {
            f.read(got, s)
            const at = firstMismatch(got, fm.bytes.subarray(s, e), fm.mask(s, e))
            if (at >= 0) problems.push(`file ${i}: byte ${s + at} reads ${got[at]}, model ${fm.bytes[s + at]} `)
          } catch (err) {
            problems.push(`file ${i}: read of clean [${s}, ${e}) failed: ${(err as { code?: string }).code} ${(err as Error).message}`)
          }
        }
        sec = end
      }
    }
    for (const ms of maps) for (const m of ms) m.unmap()
    const violations = dev.check()
    const hazards = violations.filter(v => v.kind === 'use-after-free hazard')
    const others = violations.filter(v => !(MODELS[model].busy === 'maybe-dma-pinned' && v.kind === 'use-after-free hazard'))
    for (const v of others.slice(0, 5)) problems.push(`violation: ${v.message}`)
    const waits = dev.stats().layoutWaits ?? 0
    return { problems, ops: ops.length, transfers, held: heldCount, waits, hazards: hazards.length, poison: pc }
  } finally {
    for (const tr of held.splice(0)) tr.release()
    await Promise.allSettled(pending)
    await dma.close()
    await fs.unmount().catch(() => {})
    await dev.close()
  }
}

// ---------------------------------------------------------------------------------------------

const perModel = Math.ceil(OPS / MODEL_NAMES.length)
const runLen = Math.min(RUN_LEN, perModel)
const numRuns = Math.ceil(perModel / runLen)

for (const model of MODEL_NAMES) {
  if (ONLY_MODEL && model !== ONLY_MODEL) continue
  t.test(`DMA stress [${model}]: ${numRuns} × ${runLen} random operations, 2 workers, seed ${SEED}`, async t => {
    const totals = { ops: 0, transfers: 0, held: 0, waits: 0, hazards: 0 }
    const poison: PoisonCounts = { poisoned: 0, recoveryWrites: 0, partialWrites: 0, scrubs: 0, dmaPoisoned: 0, sigbus: 0, clearsFailed: 0, leftAtEnd: 0 }
    let last: Outcome | undefined
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: runLen, maxLength: runLen }), async ops => {
        if (process.env.PMEMU_STRESS_DUMP) writeFileSync(process.env.PMEMU_STRESS_DUMP, JSON.stringify(ops))
        last = await runSequence(model, ops)
        totals.ops += last.ops
        totals.transfers += last.transfers
        totals.held += last.held
        totals.waits += last.waits
        totals.hazards += last.hazards
        for (const k of Object.keys(poison) as Array<keyof PoisonCounts>) poison[k] += last.poison[k]
        return last.problems.length === 0
      }),
      { seed: SEED + MODEL_NAMES.indexOf(model), numRuns, endOnFailure: !SHRINK, ...(PATH ? { path: PATH } : {}) },
    ).catch(e => {
      const head = (e as Error).message.split('\n').filter(l => !l.startsWith('Counterexample')).join(' ').slice(0, 400)
      t.fail(`${model}: ${head}; problems: ${JSON.stringify(last?.problems.slice(0, 8))} (replay: PMEMU_STRESS_SEED=${SEED} PMEMU_STRESS_OPS=${OPS} PMEMU_STRESS_MODEL=${model} PMEMU_STRESS_PATH=<path above>; PMEMU_STRESS_SHRINK=1 to shrink)`)
    })
    t.ok(totals.ops > 0, `${totals.ops} operations`)
    t.comment(`${model}: ${totals.ops} ops, ${totals.transfers} transfers (${totals.held} held), ${totals.waits} layout waits, ${totals.hazards} plain-get hazards (dax-gup-v1's, expected); ${gupGaveUp} transfers so far ended in EAGAIN (gup retries exhausted)`)
    t.comment(`${model} poison: ${poison.poisoned} poison injections, ${poison.recoveryWrites} recovery writes, ${poison.partialWrites} writes refused (part of a poisoned sector), ${poison.scrubs} scrubs, ${poison.dmaPoisoned} transfers failed EHWPOISON, ${poison.sigbus} views SIGBUS, ${poison.clearsFailed} truncates/punch-holes failed EHWPOISON, ${poison.leftAtEnd} sectors poisoned at the end (read EHWPOISON)`)
  })
}
