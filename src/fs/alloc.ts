/** Block and inode allocation inside a transaction; freeing through the onFree hook (quarantine). */
import { randomFillSync } from 'node:crypto'
import { pmemError } from '../errors.js'
import { findExtent, insertExtent } from './extents.js'
import { type Extent, FIRST_FREE_INO, HUGE_BYTES, type Inode, isDir, QUARANTINE_INO } from './layout.js'
import type { FsState } from './state.js'
import { mut, type Tx } from './tx.js'

/**
 * A free inode number: a free slot below the high-water mark when there is
 * one (searched from the cursor, round-robin), else the mark itself (the
 * commit raises the superblock's). Inode numbers stay dense, so mount and
 * fsck, which read the table up to the mark, cost what is used.
 */
export function allocIno(st: FsState, tx: Tx, syscall: string, path: string): number {
  const high = st.inoHigh
  const used = st.sb.inodeCount - 1 - st.freeInodeCount // slots in use, from 1
  if (high - 1 - used - st.reservedInos.size > 0) {
    const span = high - FIRST_FREE_INO
    const from = Math.max(0, st.inoCursor - FIRST_FREE_INO) % span
    for (let k = 0; k < span; k++) {
      const ino = ((from + k) % span) + FIRST_FREE_INO
      if (!st.inodes[ino] && !st.reservedInos.has(ino) && !tx.inodes.has(ino)) return reserveIno(st, tx, ino)
    }
  }
  if (high < st.sb.inodeCount) {
    st.inoHigh = high + 1
    return reserveIno(st, tx, high)
  }
  throw pmemError('ENOSPC', syscall, 'no free inodes', { path })
}

function reserveIno(st: FsState, tx: Tx, ino: number): number {
  st.reservedInos.add(ino)
  tx.newInos.push(ino)
  st.inoCursor = ino + 1
  return ino
}

/**
 * Inode generations: xorshift128 seeded once from the system's random source
 * (a generation only has to differ between the lives of one inode number;
 * one crypto call per create cost more than the rest of allocIno).
 */
const genState = randomFillSync(new Uint32Array(4))
if ((genState[0]! | genState[1]! | genState[2]! | genState[3]!) === 0) genState[0] = 1

function randomGeneration(): number {
  const s = genState
  const x = s[0]!
  const w = s[3]!
  const t = (x ^ (x << 11)) >>> 0
  s[0] = s[1]!; s[1] = s[2]!; s[2] = w
  s[3] = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) >>> 0
  return s[3]!
}

export function newInode(st: FsState, tx: Tx, ino: number, mode: number, parent: number): Inode {
  const now = Date.now()
  const inode: Inode = {
    ino, mode, nlink: isDir(mode) ? 2 : 1, size: 0, atime: now, mtime: now, ctime: now, birthtime: now,
    parent: isDir(mode) ? parent : 0, flags: 0, generation: randomGeneration(), extents: [], overflow: [],
  }
  tx.inodes.set(ino, inode)
  return inode
}

/** Allocate one run of up to `want` free blocks starting the search at `goal`. */
export function allocRun(st: FsState, tx: Tx, want: number, goal: number, syscall: string): [number, number] {
  const start0 = goal >= st.sb.dataStart && goal < st.dataEnd ? goal : st.allocCursor
  let s = st.bitmap.nextFree(start0, st.dataEnd)
  if (s < 0) s = st.bitmap.nextFree(st.sb.dataStart, st.dataEnd)
  if (s < 0) throw pmemError('ENOSPC', syscall, 'no space left on device')
  const n = st.bitmap.freeRunAt(s, want, st.dataEnd)
  takeRun(st, tx, s, n)
  return [s, n]
}

export function takeRun(st: FsState, tx: Tx, p: number, n: number): void {
  st.bitmap.setRange(p, n)
  tx.allocated.push([p, n])
  st.allocCursor = p + n < st.dataEnd ? p + n : st.sb.dataStart
}

/** First free run of `want` blocks at pfn ≡ rem (mod H), or -1. */
export function findAligned(st: FsState, want: number, rem: number, H: number): number {
  const first = Math.ceil(st.sb.dataStart / H) * H
  for (let base = first; base + rem + want <= st.dataEnd; base += H) {
    const p = base + rem
    if (st.bitmap.freeRunAt(p, want, st.dataEnd) === want) return p
  }
  return -1
}

/**
 * Allocate blocks for logical [l, l+k) of `inode` (a hole) and insert the
 * extents. With `huge`, runs are placed congruent mod 2 MiB so aligned
 * 2 MiB file ranges land on aligned 2 MiB physical ranges (DAX folios).
 * Returns the new runs [l, p, n].
 */
export function allocFile(st: FsState, tx: Tx, inode: Inode, l: number, k: number, huge: boolean, syscall: string): Extent[] {
  const H = Math.max(1, HUGE_BYTES / st.blockSize)
  const runs: Extent[] = []
  while (k > 0) {
    let p = -1
    let n = 0
    const prevIdx = findExtent(inode.extents, l - 1)
    const prev = prevIdx >= 0 ? inode.extents[prevIdx]! : undefined
    const contig = prev ? prev.p + (l - prev.l) : -1
    if (huge && H > 1) {
      const rem = l % H
      const want = Math.min(k, H - rem)
      if (contig >= 0 && contig % H === rem && st.bitmap.freeRunAt(contig, want, st.dataEnd) === want) {
        p = contig; n = want
      } else {
        const a = findAligned(st, want, rem, H)
        if (a >= 0) { p = a; n = want }
      }
      if (p >= 0) takeRun(st, tx, p, n)
    }
    if (p < 0) [p, n] = allocRun(st, tx, k, contig, syscall)
    const run = { l, p, n }
    insertExtent(inode.extents, run)
    runs.push(run)
    l += n
    k -= n
  }
  return runs
}

/** Free a run of blocks in a transaction; data blocks of regular files go through the onFree hook. */
export function freeBlocks(st: FsState, tx: Tx, p: number, n: number, data: { ino: number; index: number } | null): void {
  const hooks = st.hooks.onFree
  if (n <= 0) return
  if (!data || hooks.length === 0) { tx.freed.push([p, n]); return }
  // Every extension is asked (the DAX layer drops its page-cache entry in it); one false quarantines.
  const onFree = hooks.length === 1 ? hooks[0]! : (pfn: number, info: { ino: number; index: number }): boolean => {
    let keep = true
    for (const h of hooks) if (h(pfn, info) === false) keep = false
    return keep
  }
  // The hook is per block (the DAX layer deletes one page-cache entry and
  // frees one page per call); everything around it is per run: the run is
  // split only where the hook's answer changes, and each piece is one
  // journal record (BITCLEAR) or one quarantine extent.
  const { ino, index } = data
  const end = p + n
  let runStart = p
  let runQ = onFree(p, { ino, index }) === false
  for (let b = p + 1; b < end; b++) {
    const q = onFree(b, { ino, index: index + (b - p) }) === false
    if (q !== runQ) { freedPiece(st, tx, runStart, b - runStart, runQ); runStart = b; runQ = q }
  }
  freedPiece(st, tx, runStart, end - runStart, runQ)
}

export function freedPiece(st: FsState, tx: Tx, p: number, n: number, quarantine: boolean): void {
  if (quarantine) insertExtent(mut(st, tx, QUARANTINE_INO).extents, { l: p, p, n })
  else tx.freed.push([p, n])
}
