/**
 * fsck for the pmemu file system (SPEC §4), in e2fsck's exit-code convention:
 *   0 no problems, 1 problems found and all fixed, 4 problems left uncorrected,
 *   8 operational error (no usable superblock, device failure).
 *
 * Passes: superblocks (crc, geometry, backup) → journal (a committed
 * transaction is replayed: that is recovery, not a problem) → inode table
 * (crc, mode, overflow extent chains, extent ranges/order) → block ownership
 * (extents overlapping each other or metadata) → directory tree from the root
 * (block crc/format, entries pointing at free inodes, duplicate names, wrong
 * types, directories linked twice) → reachability and link counts → bitmap vs
 * ownership. Orphans (nlink 0, unreachable: unlinked while open at a crash)
 * are released as mount would, also not a problem. Extents past EOF are legal
 * (an interrupted truncate; mount trims them). Quarantined blocks belong to
 * inode 1 and are not an error.
 *
 * Repair rewrites what is wrong (dropping bad extents/entries, rebuilding the
 * bitmap, fixing link counts, restoring a superblock from its twin) and links
 * unreachable inodes into /lost+found as '#<ino>'. After a repair the image is
 * checked again; anything still wrong makes the exit code 4.
 */
import { isPmemuError, pmemError } from '../errors.js'
import { rootLogger, subsystemLogger, type Logger } from '../util/log.js'
import type { FsDevice } from './device.js'
import { checkDevice, checkHookOpts } from './check.js'
import { mountState, unmountSync } from './mount.js'
import { attachLost as attachLostFound } from './ops.js'
import { isMounted, type FsState } from './state.js'
import type { ProgressFn } from './types.js'
import { Bitmap, fillBits } from './bitmap.js'
import { readInodeHigh, writeInodeHigh } from './inodehigh.js'
import { Journal } from './journal.js'
import {
  decodeDirBlock, decodeInode, decodeOverflow, decodeSuperblock, DT_DIR, DT_REG, encodeDirBlock, encodeInode, encodeOverflow,
  encodeSuperblock, extentsPerOverflow, FIRST_FREE_INO, hasSbMagic, IFLAG_QUARANTINE, INLINE_EXTENTS, INODE_SIZE, isDir, isReg,
  MAX_LOGICAL_BLOCKS, overflowBlocksFor, QUARANTINE_INO, ROOT_INO, S_IFDIR, S_IFREG, SB_SIZE, STATE_CLEAN,
  type DirEntry, type Extent, type Inode, type Superblock,
} from './layout.js'

export interface FsckOptions {
  repair?: boolean
  progress?: ProgressFn
  logger?: Logger
}

export interface FsckReport {
  /** No problems were found. */
  clean: boolean
  /** e2fsck convention: 0 clean, 1 fixed, 4 uncorrected problems, 8 operational error. */
  exitCode: 0 | 1 | 4 | 8
  /** What was wrong (each one line). */
  problems: string[]
  /** Recovery done without counting as a problem: journal replay, orphan release. */
  recovered: string[]
  /** True when repair changed the image. */
  repaired: boolean
  /** Poisoned blocks found in the device's badblocks list and who owns them (only when there are some). */
  badblocks?: Array<{ offset: number; length: number; pfn: number; owner: string; metadata: boolean }>
  summary?: { blocks: number; freeBlocks: number; inodes: number; usedInodes: number; files: number; directories: number; quarantinedBlocks: number }
}

const MAX_LISTED = 50

/** Check (and with `repair`, fix) the file system on `dev`. Never throws for a damaged image. */
export async function fsck(dev: FsDevice, opts: FsckOptions = {}): Promise<FsckReport> {
  checkDevice(dev, 'fsck')
  checkHookOpts(opts, 'fsck')
  if (isMounted(dev)) throw pmemError('EBUSY', 'fsck', 'the file system is mounted; unmount it first')
  const repair = opts.repair === true
  if (repair && dev.readOnly) throw pmemError('EROFS', 'fsck', 'cannot repair a read-only device')
  const log = subsystemLogger(rootLogger(opts.logger ?? (dev as { log?: Logger }).log), 'fs')
  try {
    const first = new Checker(dev, repair, opts.progress, log).run()
    if (first.exitCode === 8 || !repair || first.problems.length === 0) return first
    if (first.attach.length > 0) {
      const failures = attachLost(dev, first.attach, log)
      for (const f of failures) first.problems.push(`could not reconnect: ${f}`)
    }
    const again = new Checker(dev, false, undefined, log).run()
    const left = again.problems
    const out: FsckReport = { clean: false, exitCode: left.length ? 4 : 1, problems: first.problems, recovered: first.recovered, repaired: true, summary: again.summary }
    if (again.badblocks) out.badblocks = again.badblocks
    if (left.length) out.problems = [...first.problems, ...left.map(p => `after repair: ${p}`)]
    return out
  } catch (e) {
    if (isPmemuError(e, 'EBUSY') || isPmemuError(e, 'EROFS')) throw e
    log.error({ err: e }, 'fsck failed')
    const msg = isPmemuError(e) ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`
    return { clean: false, exitCode: 8, problems: [`fsck could not complete: ${msg}`], recovered: [], repaired: false }
  }
}

function attachLost(dev: FsDevice, inos: number[], log: Logger): string[] {
  let st: FsState | undefined
  try {
    st = mountState(dev, { logger: log })
    return attachLostFound(st, inos)
  } catch (e) {
    return [`mount for /lost+found failed: ${(e as Error).message}`]
  } finally {
    if (st && !st.unmounted) { try { unmountSync(st) } catch { /* reported by the re-check */ } }
  }
}

interface Model extends Inode { changed: boolean; freed: boolean }

interface RunResult extends FsckReport { attach: number[] }

class Checker {
  private problems: string[] = []
  private recovered: string[] = []
  private bs: number
  private N: number
  private sb!: Superblock
  private inodes: Array<Model | undefined> = []
  private owner!: Int32Array
  private dirWrites = new Map<number, Uint8Array>()
  private writes = false
  private extraProblems = new Map<string, number>()

  constructor(private dev: FsDevice, private repair: boolean, private progress: ProgressFn | undefined, private log: Logger) {
    this.bs = dev.pageSize
    this.N = dev.pageCount
  }

  private problem(msg: string, group?: string): void {
    if (group) {
      const n = (this.extraProblems.get(group) ?? 0) + 1
      this.extraProblems.set(group, n)
      if (n > MAX_LISTED) return
    }
    this.problems.push(msg)
  }

  private result(exitCode: 0 | 1 | 4 | 8, attach: number[] = []): RunResult {
    for (const [g, n] of this.extraProblems) if (n > MAX_LISTED) this.problems.push(`… and ${n - MAX_LISTED} more ${g} problems`)
    const r: RunResult = { clean: this.problems.length === 0, exitCode, problems: this.problems, recovered: this.recovered, repaired: this.writes, attach }
    if (this.badHits.length > 0) r.badblocks = this.badHits
    return r
  }

  private read(off: number, len: number): Uint8Array {
    const b = new Uint8Array(len)
    this.dev.read(off, b)
    return b
  }

  private put(off: number, data: Uint8Array): void {
    this.dev.write(off, data)
    this.dev.persist(off, data.length)
    this.writes = true
  }

  run(): RunResult {
    const { bs, N, dev } = this
    this.progress?.({ phase: 'superblock', done: 0, total: 1 })
    // ------------------------------------------------------------ superblocks
    const pRaw = this.read(0, SB_SIZE)
    const bRaw = N >= 2 ? this.read((N - 1) * bs, SB_SIZE) : new Uint8Array(SB_SIZE)
    const p = decodeSuperblock(pRaw, dev)
    const b = decodeSuperblock(bRaw, dev)
    if (typeof p !== 'string') {
      this.sb = p
      if (typeof b === 'string') {
        this.problem(`backup superblock: ${b}`)
        if (this.repair) this.put((N - 1) * bs, encodeSuperblock({ ...p, state: STATE_CLEAN }))
      } else if (!sameGeometry(p, b)) {
        this.problem('backup superblock does not match the primary')
        if (this.repair) this.put((N - 1) * bs, encodeSuperblock({ ...p, state: STATE_CLEAN }))
      }
    } else if (typeof b !== 'string') {
      this.problem(`primary superblock: ${p}`)
      this.sb = b
      if (this.repair) this.put(0, encodeSuperblock(b))
    } else {
      if (!hasSbMagic(pRaw) && !hasSbMagic(bRaw)) this.problems.push(`no pmemu file system found: ${p}`)
      else this.problems.push(`primary superblock: ${p}`, `backup superblock: ${b}`)
      return this.result(8)
    }
    // ---------------------------------------------------------------- journal
    const journal = new Journal(dev, this.sb)
    const j = journal.inspect()
    if (j.state === 'committed') {
      if (dev.readOnly) this.problem(`journal transaction ${j.seq} needs recovery (read-only device)`)
      else {
        journal.replay(j.records)
        this.recovered.push(`replayed journal transaction ${j.seq}`)
      }
    } else if (j.state === 'damaged') {
      this.problem(j.why)
      if (this.repair) { journal.clear(); this.writes = true }
    }
    const sb = this.sb
    // The inode high-water mark: slots from it on are free and not read. Both
    // copies damaged: the whole table is read, and repair writes the mark anew.
    const mark = readInodeHigh(dev, sb)
    for (const why of mark.problems) this.problem(why)
    const markBad = mark.problems.length > 0
    const count = mark.high ?? sb.inodeCount
    // ----------------------------------------------------------------- inodes
    const dataStart = sb.dataStart
    const dataEnd = sb.backupBlock
    this.inodes = new Array(count)
    const itOff = sb.inodeTableStart * bs
    const per = Math.max(1, (1 << 20) / INODE_SIZE)
    for (let first = 0; first < count; first += per) {
      const n = Math.min(per, count - first)
      const buf = this.read(itOff + first * INODE_SIZE, n * INODE_SIZE)
      for (let k = 0; k < n; k++) {
        const ino = first + k
        const rec = buf.subarray(k * INODE_SIZE, (k + 1) * INODE_SIZE)
        const raw = decodeInode(rec, ino)
        if (raw === null) continue
        if (ino === 0) {
          this.problem('inode slot 0 is not empty')
          if (this.repair) this.put(itOff, new Uint8Array(INODE_SIZE))
          continue
        }
        if (typeof raw === 'string') {
          this.problem(`inode ${ino}: ${raw}`, 'inode')
          if (this.repair) this.put(itOff + ino * INODE_SIZE, new Uint8Array(INODE_SIZE))
          continue
        }
        const m: Model = { ...raw.inode, changed: false, freed: false }
        // Overflow chain.
        let remaining = raw.extentCount - m.extents.length
        let next = raw.firstOverflow
        const maxChain = overflowBlocksFor(raw.extentCount, bs)
        const seen = new Set<number>()
        let idx = 0
        const ovf = new Uint8Array(bs)
        while (remaining > 0) {
          if (idx >= maxChain || idx > dataEnd || next < dataStart || next >= dataEnd || seen.has(next)) {
            this.problem(`inode ${ino}: overflow extent chain broken at link ${idx} (block ${next})`, 'extent')
            m.changed = true
            break
          }
          seen.add(next)
          dev.read(next * bs, ovf)
          const d = decodeOverflow(ovf, ino, idx)
          if (typeof d === 'string' || d.extents.length > remaining) {
            this.problem(`inode ${ino}: overflow extent block ${next}: ${typeof d === 'string' ? d : 'holds too many extents'}`, 'extent')
            m.changed = true
            break
          }
          m.overflow.push(next)
          m.extents.push(...d.extents)
          remaining -= d.extents.length
          next = d.next
          idx++
          if (d.extents.length === 0) break
        }
        if (remaining > 0 && !m.changed) { this.problem(`inode ${ino}: extent count ${raw.extentCount} but only ${raw.extentCount - remaining} found`, 'extent'); m.changed = true }
        if (raw.extentCount <= INLINE_EXTENTS && raw.firstOverflow !== 0) { this.problem(`inode ${ino}: overflow block set with only ${raw.extentCount} extents`, 'extent'); m.changed = true }
        // Extent sanity.
        const kept: Extent[] = []
        let prevEnd = 0
        m.extents.forEach((e, i) => {
          let why: string | undefined
          if (e.n === 0) why = 'is empty'
          else if (e.l + e.n > MAX_LOGICAL_BLOCKS) why = 'runs past the largest file block'
          else if (e.p < dataStart || e.p + e.n > dataEnd) why = `(blocks ${e.p}..${e.p + e.n - 1}) is outside the data area`
          else if (e.l < prevEnd) why = 'overlaps the previous one or is out of order'
          if (why) { this.problem(`inode ${ino}: extent ${i} ${why}`, 'extent'); m.changed = true; return }
          kept.push(e)
          prevEnd = e.l + e.n
        })
        m.extents = kept
        if (ino === QUARANTINE_INO) {
          if (!isReg(m.mode) || (m.flags & IFLAG_QUARANTINE) === 0) {
            this.problem('inode 1 is not the quarantine inode')
            Object.assign(m, { mode: S_IFREG, flags: IFLAG_QUARANTINE, nlink: 1, size: 0, extents: [], changed: true })
          }
        } else if (m.flags !== 0) {
          this.problem(`inode ${ino}: bad flags 0x${m.flags.toString(16)}`, 'inode')
          m.flags = 0
          m.changed = true
        }
        if (isReg(m.mode) && m.size > MAX_LOGICAL_BLOCKS * bs) {
          this.problem(`inode ${ino}: size ${m.size} exceeds the maximum file size`, 'inode')
          m.size = MAX_LOGICAL_BLOCKS * bs
          m.changed = true
        }
        this.inodes[ino] = m
      }
      this.progress?.({ phase: 'inodes', done: Math.min(count, first + n), total: count })
    }
    // Quarantine and root inodes must exist.
    if (!this.inodes[QUARANTINE_INO]) {
      this.problem('quarantine inode 1 is missing')
      this.inodes[QUARANTINE_INO] = blank(QUARANTINE_INO, S_IFREG, IFLAG_QUARANTINE)
    }
    const root = this.inodes[ROOT_INO]
    if (!root || !isDir(root.mode)) {
      this.problem(root ? 'root inode is not a directory' : 'root directory is missing')
      this.inodes[ROOT_INO] = blank(ROOT_INO, S_IFDIR | 0o755, 0)
    }
    // -------------------------------------------------------------- ownership
    const owner = new Int32Array(N)
    this.owner = owner
    for (let x = 0; x < dataStart && x < N; x++) owner[x] = -1
    owner[N - 1] = -1
    for (let ino = 1; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m) continue
      for (let k = 0; k < m.overflow.length; k++) {
        const blk = m.overflow[k]!
        if (owner[blk] !== 0) {
          this.problem(`inode ${ino}: overflow extent block ${blk} is also used by ${ownerName(owner[blk]!)}`, 'block')
          // Drop the chain from here on, and the extents it held.
          m.overflow.length = k
          m.extents.length = Math.min(m.extents.length, INLINE_EXTENTS + k * extentsPerOverflow(bs))
          m.changed = true
          break
        }
        owner[blk] = ino
      }
    }
    for (let ino = 1; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m) continue
      m.extents = m.extents.filter((e, i) => {
        for (let x = e.p; x < e.p + e.n; x++) {
          if (owner[x] !== 0) {
            this.problem(`inode ${ino}: extent ${i} (blocks ${e.p}..${e.p + e.n - 1}) overlaps block ${x} of ${ownerName(owner[x]!)}`, 'block')
            m.changed = true
            return false
          }
        }
        for (let x = e.p; x < e.p + e.n; x++) owner[x] = ino
        return true
      })
    }
    // ---------------------------------------------------------- directory tree
    this.progress?.({ phase: 'directories', done: 0, total: 1 })
    const refs = new Uint32Array(count)
    const subdirs = new Uint32Array(count)
    const parentOf = new Int32Array(count)
    const reached = new Uint8Array(count)
    const paths = new Map<number, string>([[ROOT_INO, '/']])
    const walk = (start: number): void => {
      const queue = [start]
      reached[start] = 1
      while (queue.length) {
        const d = queue.shift()!
        const entries = this.readDir(d, paths.get(d) ?? `<inode ${d}>`)
        for (const [name, e] of entries) {
          const t = this.inodes[e.ino]!
          if (isDir(t.mode)) {
            parentOf[e.ino] = d
            subdirs[d]!++
            reached[e.ino] = 1
            const pp = paths.get(d) ?? ''
            if (pp.length < 200) paths.set(e.ino, pp === '/' ? `/${name}` : `${pp}/${name}`)
            queue.push(e.ino)
          } else {
            refs[e.ino]!++
            reached[e.ino] = 1
          }
        }
      }
    }
    this.reachedRef = reached
    walk(ROOT_INO)
    parentOf[ROOT_INO] = ROOT_INO
    // Unattached directories (and their subtrees), then files.
    const attach: number[] = []
    for (let ino = ROOT_INO + 1; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m || reached[ino] || !isDir(m.mode)) continue
      if (m.nlink === 0) continue
      this.problem(`directory inode ${ino} is not reachable from the root`, 'reachability')
      attach.push(ino)
      walk(ino)
      parentOf[ino] = 0
    }
    // Orphans: unreachable with nlink 0 (the subtree walk above may have reached some).
    for (let ino = ROOT_INO + 1; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m || reached[ino]) continue
      if (m.nlink === 0) {
        if (dev.readOnly) { this.recovered.push(`orphan inode ${ino} (left for mount to release)`); continue }
        this.recovered.push(`released orphan inode ${ino}`)
        this.freeInode(ino)
        continue
      }
      if (isDir(m.mode)) continue
      this.problem(`inode ${ino} (file, ${m.size} bytes) is not reachable from the root`, 'reachability')
      attach.push(ino)
    }
    // Link counts and parents.
    const attachSet = new Set(attach)
    for (let ino = ROOT_INO; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m || m.freed) continue
      const dir = isDir(m.mode)
      const want = dir ? 2 + subdirs[ino]! : refs[ino]! + (attachSet.has(ino) ? 1 : 0)
      if (m.nlink !== want) {
        this.problem(`inode ${ino}: link count ${m.nlink}, should be ${want}`, 'link count')
        m.nlink = want
        m.changed = true
      }
      if (dir && !attachSet.has(ino) && m.parent !== parentOf[ino]) {
        this.problem(`directory inode ${ino}: parent ${m.parent}, should be ${parentOf[ino]}`, 'link count')
        m.parent = parentOf[ino]!
        m.changed = true
      }
      if (dir && attachSet.has(ino) && m.parent === 0) { m.parent = ROOT_INO; m.changed = true }
    }
    // Overflow chains shrink with dropped extents.
    for (const m of this.inodes) {
      if (!m || m.freed) continue
      const need = overflowBlocksFor(m.extents.length, bs)
      while (m.overflow.length > need) {
        const x = m.overflow.pop()!
        if (owner[x] === m.ino) owner[x] = 0
        m.changed = true
      }
    }
    // --------------------------------------------------------------- badblocks
    this.checkBadblocks()
    // ------------------------------------------------------------------ bitmap
    this.progress?.({ phase: 'bitmap', done: 0, total: 1 })
    const bmOff = sb.bitmapStart * bs
    const bm = this.read(bmOff, sb.bitmapBlocks * bs)
    // Orphan release is recovery: their blocks go back to the on-disk bitmap first.
    for (const [p0, n0] of this.releasedRuns) fillBits(bm, p0, n0, false)
    // The bitmap ownership says: the metadata, and each surviving extent and
    // extent block where its inode still owns it (owner[x] !== 0 exactly
    // there), set run by run — O(used blocks), not O(device). Compared a byte
    // at a time, bit by bit only in a byte that differs.
    const wantBm = new Bitmap(N)
    wantBm.setRange(0, Math.min(dataStart, N))
    wantBm.setRange(N - 1, 1)
    const claim = (ino: number, p0: number, n0: number): void => {
      let s0 = -1
      for (let x = p0; x <= p0 + n0; x++) {
        const mine = x < p0 + n0 && owner[x] === ino
        if (mine && s0 < 0) s0 = x
        else if (!mine && s0 >= 0) { wantBm.setRange(s0, x - s0); s0 = -1 }
      }
    }
    for (const m of this.inodes) {
      if (!m || m.freed) continue
      for (const x of m.overflow) claim(m.ino, x, 1)
      for (const e of m.extents) claim(m.ino, e.p, e.n)
    }
    const used = N - wantBm.free
    const want = new Uint8Array(bm.length)
    want.set(wantBm.bytes)
    let runStart = -1
    let runKind = ''
    const flush = (end: number): void => {
      if (runStart < 0) return
      const span = end - 1 === runStart ? `block ${runStart}` : `blocks ${runStart}..${end - 1}`
      this.problem(runKind === 'leak' ? `bitmap: ${span} marked in use but owned by nobody` : `bitmap: ${span} in use but marked free`, 'bitmap')
      runStart = -1
      runKind = ''
    }
    let bitmapWrong = false
    for (let i = 0; i < bm.length; i++) {
      if (bm[i] === want[i]) { if (runStart >= 0) flush(Math.min(N, i * 8)); continue }
      bitmapWrong = true
      for (let x = i * 8, end = Math.min(N, x + 8); x < end; x++) {
        const have = (bm[i]! >> (x & 7)) & 1
        const should = (want[i]! >> (x & 7)) & 1
        const kind = have === should ? '' : have ? 'leak' : 'missing'
        if (kind !== runKind || !kind) flush(x)
        if (kind && runStart < 0) { runStart = x; runKind = kind }
      }
    }
    flush(N)
    // ------------------------------------------------------------------ writes
    const writeAll = this.repair
    for (let ino = 1; ino < count; ino++) {
      const m = this.inodes[ino]
      if (!m) continue
      if (m.freed) { if (!dev.readOnly) this.put(itOff + ino * INODE_SIZE, new Uint8Array(INODE_SIZE)); continue }
      if (!m.changed || !writeAll) continue
      this.writeInode(m)
    }
    if (writeAll) for (const [pfn, data] of this.dirWrites) this.put(pfn * bs, data)
    if (writeAll && markBad) {
      let top = FIRST_FREE_INO
      for (let ino = count - 1; ino >= FIRST_FREE_INO; ino--) if (this.inodes[ino] && !this.inodes[ino]!.freed) { top = ino + 1; break }
      writeInodeHigh(dev, sb, Math.max(top, mark.high ?? 0))
      this.writes = true
    }
    if (writeAll && bitmapWrong) this.put(bmOff, want)
    else if (this.releasedRuns.length > 0) this.put(bmOff, bm)
    if (writeAll && this.problems.length > 0) this.put(0, encodeSuperblock({ ...sb, state: STATE_CLEAN }))
    let files = 0
    let dirs = 0
    let usedInodes = 0
    for (const m of this.inodes) if (m && !m.freed) { usedInodes++; if (isDir(m.mode)) dirs++; else files++ }
    const q = this.inodes[QUARANTINE_INO]!.extents.reduce((s, e) => s + e.n, 0)
    const r = this.result(this.problems.length === 0 ? 0 : this.repair ? 1 : 4, writeAll ? attach : [])
    r.summary = { blocks: N, freeBlocks: N - used, inodes: sb.inodeCount - 1, usedInodes, files: files - 1, directories: dirs, quarantinedBlocks: q }
    this.progress?.({ phase: 'done', done: 1, total: 1 })
    this.log.debug({ problems: r.problems.length }, 'fsck pass done')
    return r
  }

  /**
   * Poisoned sectors (the device's badblocks list, when it has one) in
   * metadata — superblocks, journal, bitmap, inode table, extent blocks,
   * directory blocks — are problems repair cannot fix (exit code 4): the fs
   * would shut down on them. Poison in file data or free space is listed in
   * `badblocks` and is not a problem (reads there fail with EHWPOISON; a
   * whole-sector write clears it).
   */
  private checkBadblocks(): void {
    const d = this.dev as { badblocks?: () => Array<{ offset: number; length: number }> }
    if (typeof d.badblocks !== 'function') return
    let list: Array<{ offset: number; length: number }>
    try { list = d.badblocks() } catch { return }
    const { bs, N, sb } = this
    for (const r of list) {
      const first = Math.floor(r.offset / bs)
      const last = Math.floor((r.offset + r.length - 1) / bs)
      for (let x = first; x <= last && x < N; x++) {
        const s = Math.max(r.offset, x * bs)
        const e = Math.min(r.offset + r.length, (x + 1) * bs)
        const o = this.owner[x]!
        let what: string
        let meta = true
        if (x === 0) what = 'primary superblock'
        else if (x === sb.backupBlock) what = 'backup superblock'
        else if (x >= sb.journalStart && x < sb.journalStart + sb.journalBlocks) what = 'journal'
        else if (x >= sb.bitmapStart && x < sb.bitmapStart + sb.bitmapBlocks) what = 'bitmap'
        else if (x >= sb.inodeTableStart && x < sb.dataStart) what = 'inode table'
        else if (o < 0) what = 'metadata'
        else if (o === 0) { what = 'free space'; meta = false }
        else {
          const m = this.inodes[o]
          if (m && m.overflow.includes(x)) what = `extent block of inode ${o}`
          else if (m && isDir(m.mode)) what = `directory block of inode ${o}`
          else { what = o === QUARANTINE_INO ? 'quarantined block' : `data of inode ${o}`; meta = false }
        }
        this.badHits.push({ offset: s, length: e - s, pfn: x, owner: what, metadata: meta })
        if (meta) this.problem(`badblocks: bytes ${s}..${e - 1} are poisoned in block ${x} (${what})`, 'badblocks')
      }
    }
  }

  private badHits: Array<{ offset: number; length: number; pfn: number; owner: string; metadata: boolean }> = []

  private reachedRef: Uint8Array = new Uint8Array(0)
  private releasedRuns: Array<[number, number]> = []

  private freeInode(ino: number): void {
    const m = this.inodes[ino]!
    for (const e of m.extents) {
      for (let x = e.p; x < e.p + e.n; x++) if (this.owner[x] === ino) this.owner[x] = 0
      this.releasedRuns.push([e.p, e.n])
    }
    for (const x of m.overflow) {
      if (this.owner[x] === ino) this.owner[x] = 0
      this.releasedRuns.push([x, 1])
    }
    m.freed = true
  }

  private unclaim(ino: number, e: Extent): void {
    for (let x = e.p; x < e.p + e.n; x++) if (this.owner[x] === ino) this.owner[x] = 0
  }

  private writeInode(m: Model): void {
    const bs = this.bs
    const per = extentsPerOverflow(bs)
    for (let i = 0; i < m.overflow.length; i++) {
      this.put(m.overflow[i]! * bs, encodeOverflow(bs, m.ino, i, m.overflow[i + 1] ?? 0, m.extents.slice(INLINE_EXTENTS + i * per, INLINE_EXTENTS + (i + 1) * per)))
    }
    this.put(this.sb.inodeTableStart * bs + m.ino * INODE_SIZE, encodeInode(m))
  }

  /**
   * Read and check a directory: its shape, each block, each entry. Returns the
   * entries that survive; records the block rewrites a repair needs.
   */
  private readDir(d: number, path: string): Map<string, DirEntry> {
    const bs = this.bs
    const m = this.inodes[d]!
    const out = new Map<string, DirEntry>()
    // Shape: size == covered blocks, extents covering [0, n) with no hole.
    let covered = 0
    for (const e of m.extents) { if (e.l !== covered) break; covered += e.n }
    const nblocks = m.size % bs === 0 ? m.size / bs : -1
    if (nblocks !== covered || m.extents.reduce((s, e) => s + e.n, 0) !== covered) {
      this.problem(`directory ${path} (inode ${d}): size ${m.size} does not match its blocks`, 'directory')
      const keep: Extent[] = []
      let c = 0
      for (const e of m.extents) {
        if (e.l === c) { keep.push(e); c += e.n } else this.unclaim(d, e)
      }
      m.extents = keep
      m.size = c * bs
      m.changed = true
    }
    const n = m.size / bs
    const buf = new Uint8Array(bs)
    for (let i = 0; i < n; i++) {
      const e = m.extents.find(x => i >= x.l && i < x.l + x.n)!
      const pfn = e.p + (i - e.l)
      this.dev.read(pfn * bs, buf)
      const blk = decodeDirBlock(buf, d)
      if (typeof blk === 'string') {
        this.problem(`directory ${path} (inode ${d}) block ${i}: ${blk}`, 'directory')
        this.dirWrites.set(pfn, encodeDirBlock(bs, d, []))
        continue
      }
      const keep: Array<[string, DirEntry]> = []
      let changed = false
      for (const ent of blk.entries) {
        const t = ent.ino >= 1 && ent.ino < this.inodes.length ? this.inodes[ent.ino] : undefined
        const where = `directory ${path}: entry '${ent.name}'`
        if (!t || t.freed || ent.ino === ROOT_INO || ent.ino === QUARANTINE_INO) {
          this.problem(`${where} points to ${t ? 'a reserved' : 'a free or invalid'} inode ${ent.ino}`, 'entry')
          changed = true
          continue
        }
        if (out.has(ent.name)) {
          this.problem(`${where} is a duplicate`, 'entry')
          changed = true
          continue
        }
        const type = isDir(t.mode) ? DT_DIR : DT_REG
        if (type === DT_DIR && this.reachedRef[ent.ino]) {
          this.problem(`${where}: directory inode ${ent.ino} is linked more than once`, 'entry')
          changed = true
          continue
        }
        if (ent.type !== type) {
          this.problem(`${where} has the wrong type`, 'entry')
          changed = true
        }
        if (type === DT_DIR) this.reachedRef[ent.ino] = 1
        const de = { ino: ent.ino, type }
        out.set(ent.name, de)
        keep.push([ent.name, de])
      }
      if (changed) this.dirWrites.set(pfn, encodeDirBlock(bs, d, keep))
    }
    return out
  }
}

function blank(ino: number, mode: number, flags: number): Model {
  const now = Date.now()
  return {
    ino, mode, nlink: isDir(mode) ? 2 : 1, size: 0, atime: now, mtime: now, ctime: now, birthtime: now,
    parent: isDir(mode) ? ROOT_INO : 0, flags, generation: 0, extents: [], overflow: [], changed: true, freed: false,
  }
}

function ownerName(o: number): string { return o < 0 ? 'file-system metadata' : `inode ${o}` }

function sameGeometry(a: Superblock, b: Superblock): boolean {
  return a.blockSize === b.blockSize && a.blockCount === b.blockCount && a.journalBlocks === b.journalBlocks &&
    a.inodeCount === b.inodeCount && a.dataStart === b.dataStart && Buffer.compare(a.uuid, b.uuid) === 0
}
