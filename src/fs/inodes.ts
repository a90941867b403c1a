/** Live inodes (FsNode) and their release: unlink-while-open, chunked freeing of blocks. */
import { pmemError } from '../errors.js'
import { freeBlocks } from './alloc.js'
import { freedWithIndex } from './check.js'
import { commit } from './commit.js'
import { blockCount, findExtent, mapBlock, removeRange } from './extents.js'
import { allocateForFault } from './fault.js'
import type { PmemFile } from './file.js'
import type { PmemFs } from './fs.js'
import { type Extent, isDir, isReg, MAX_LOGICAL_BLOCKS } from './layout.js'
import type { FsState } from './state.js'
import { PmemStats } from './stats.js'
import { mut, Tx } from './tx.js'

/** Largest number of extents removed by one transaction of a chunked free. */
const FREE_CHUNK_EXTENTS = 256

/**
 * The live, in-memory side of an inode: shared by every open PmemFile of it
 * and by DAX mappings. While a node is open or held its blocks stay
 * allocated, even after the last link is unlinked (POSIX unlink-while-open).
 */
export class FsNode {
  openCount = 0
  holds = 0
  /** Ranges of data stores not yet persisted ([devOffset, length]). */
  dirty: Array<[number, number]> = []
  timesDirty = false
  private lockTail: Promise<unknown> = Promise.resolve()

  readonly #s: FsState

  /** @internal */
  constructor(s: FsState, readonly ino: number) { this.#s = s }

  /** The file system this inode belongs to. */
  get fs(): PmemFs { return this.#s.fs }

  /** Current size in bytes. */
  get size(): number { return this.#s.inodes[this.ino]?.size ?? 0 }
  get isDirectory(): boolean { return isDir(this.#s.inodes[this.ino]?.mode ?? 0) }
  get nlink(): number { return this.#s.inodes[this.ino]?.nlink ?? 0 }

  /** The pfn backing file page `index`, or null for a hole. */
  pfnAt(index: number): number | null {
    this.#s.live('pfnAt')
    const ino = this.#s.inodes[this.ino]
    return ino ? mapBlock(ino.extents, index) : null
  }

  /** The allocated run containing page `index`: { index, pfn, count } (count pages from index on), or null for a hole. */
  extentAt(index: number): { index: number; pfn: number; count: number } | null {
    this.#s.live('extentAt')
    const ino = this.#s.inodes[this.ino]
    if (!ino) return null
    const i = findExtent(ino.extents, index)
    if (i < 0) return null
    const e = ino.extents[i]!
    return { index, pfn: e.p + (index - e.l), count: e.n - (index - e.l) }
  }

  /** Snapshot of the extent list (logical block l -> physical p, n blocks). */
  extents(): Extent[] {
    return (this.#s.inodes[this.ino]?.extents ?? []).map(e => ({ ...e }))
  }

  /**
   * Journaled allocation for a DAX write fault at page `index` (must be below
   * EOF, else SIGBUS). Returns the run now backing `index`: with `huge`, when
   * the whole 2 MiB-aligned run around `index` is a hole inside EOF, tries an
   * aligned 2 MiB extent (index and pfn congruent mod 512) and returns it
   * whole; else one page. New blocks are zeroed and persisted before they
   * become reachable. Already-allocated pages are returned as they are.
   */
  allocateForFault(index: number, opts: { huge?: boolean } = {}): { index: number; pfn: number; count: number } {
    return allocateForFault(this.#s, this, index, opts.huge === true)
  }

  /** Pin the inode: its blocks stay allocated until release(), even if unlinked and closed. */
  hold(): void {
    this.#s.live('hold')
    this.holds++
  }

  release(): void {
    if (this.holds <= 0) throw pmemError('EINVAL', 'release', `inode ${this.ino} is not held`)
    this.holds--
    maybeDrop(this.#s, this)
  }

  /** Serialise async work on this inode (truncate, punch-hole). */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockTail.then(fn, fn)
    this.lockTail = run.catch(() => undefined)
    return run
  }

  addDirty(off: number, len: number): void {
    const last = this.dirty[this.dirty.length - 1]
    if (last && last[0] + last[1] === off) { last[1] += len; return }
    this.dirty.push([off, len])
    if (this.dirty.length > 256) {
      this.dirty.sort((a, b) => a[0] - b[0])
      const merged: Array<[number, number]> = []
      for (const [o, l] of this.dirty) {
        const m = merged[merged.length - 1]
        if (m && o <= m[0] + m[1] + 4096) m[1] = Math.max(m[1], o + l - m[0])
        else merged.push([o, l])
      }
      this.dirty = merged.length > 64 ? [[merged[0]![0], merged[merged.length - 1]![0] + merged[merged.length - 1]![1] - merged[0]![0]]] : merged
    }
  }
}

export function nodeFor(st: FsState, ino: number): FsNode {
  let n = st.nodes.get(ino)
  if (!n) { n = new FsNode(st, ino); st.nodes.set(ino, n) }
  return n
}

/** @internal called when a node may have lost its last user. */
export function maybeDrop(st: FsState, node: FsNode): void {
  if (node.openCount > 0 || node.holds > 0) return
  const inode = st.inodes[node.ino]
  // A node with unpersisted stores stays cached, so a later fsync through a new handle still persists them.
  if (st.nodes.get(node.ino) === node && (!inode || inode.nlink === 0 || node.dirty.length === 0)) st.nodes.delete(node.ino)
  if (st.dead || st.unmounted || st.device.readOnly || !inode) return
  if (inode.nlink === 0) {
    node.dirty = []
    releaseInode(st, node.ino)
  } else if (node.timesDirty) {
    flushTimes(st, node)
  }
}

export function flushTimes(st: FsState, node: FsNode): void {
  if (!node.timesDirty || !st.inodes[node.ino]) return
  const tx = new Tx('fsync')
  mut(st, tx, node.ino)
  commit(st, tx)
  node.timesDirty = false
}

export function isBusy(st: FsState, ino: number): boolean {
  const n = st.nodes.get(ino)
  return n !== undefined && (n.openCount > 0 || n.holds > 0)
}

/**
 * Free an inode and all its blocks, in as many transactions as its extent
 * list needs (an interrupted release leaves an orphan that mount finishes).
 */
export function releaseInode(st: FsState, ino: number): void {
  const inode0 = st.inodes[ino]
  if (!inode0) return
  const data = isReg(inode0.mode)
  for (;;) {
    const inode = st.inodes[ino]!
    const tx = new Tx('release')
    const m = mut(st, tx, ino)
    if (m.nlink !== 0) m.nlink = 0
    if (inode.extents.length > FREE_CHUNK_EXTENTS) {
      const cut = inode.extents[inode.extents.length - FREE_CHUNK_EXTENTS]!.l
      for (const e of m.extents.filter(x => x.l >= cut)) freeBlocks(st, tx, e.p, e.n, data ? { ino, index: e.l } : null)
      removeRange(m.extents, cut, MAX_LOGICAL_BLOCKS)
      commit(st, tx)
      continue
    }
    for (const e of m.extents) freeBlocks(st, tx, e.p, e.n, data ? { ino, index: e.l } : null)
    for (const p of m.overflow) tx.freed.push([p, 1])
    tx.inodes.set(ino, null)
    commit(st, tx)
    st.dirs.delete(ino)
    const n = st.nodes.get(ino)
    if (n && n.openCount === 0 && n.holds === 0) st.nodes.delete(ino)
    return
  }
}

/** Free logical blocks [l0, l1) of a file, chunked; `size` (if given) is set in the first transaction. */
export function freeRange(st: FsState, ino: number, l0: number, l1: number, op: string, size?: number): void {
  let first = true
  for (;;) {
    const inode = st.inodes[ino]!
    const tx = new Tx(op)
    const m = mut(st, tx, ino)
    if (first && size !== undefined) { m.size = size; m.mtime = m.ctime = Date.now() }
    // Extents overlapping [l0, l1), last ones first, at most a chunk per transaction.
    const overlapping = inode.extents.filter(e => e.l < l1 && e.l + e.n > l0)
    let from = l0
    if (overlapping.length > FREE_CHUNK_EXTENTS) from = Math.max(l0, overlapping[overlapping.length - FREE_CHUNK_EXTENTS]!.l)
    for (const [p, n, l] of freedWithIndex(m.extents, from, l1)) freeBlocks(st, tx, p, n, { ino, index: l })
    removeRange(m.extents, from, l1)
    commit(st, tx)
    first = false
    if (from === l0) return
    l1 = from
  }
}

/** @internal */
export function statIno(st: FsState, ino: number): PmemStats {
  const i = st.inodes[ino]
  if (!i) throw pmemError('ENOENT', 'stat', `inode ${ino} is gone`)
  return new PmemStats(ino, i.mode, i.nlink, i.size, st.blockSize, blockCount(i.extents) + i.overflow.length,
    i.atime, i.mtime, i.ctime, i.birthtime)
}

/** @internal */
export function closeFile(st: FsState, file: PmemFile): void {
  st.files.delete(file)
  file.node.openCount--
  if (st.dead || st.unmounted) return
  maybeDrop(st, file.node)
}
