/** Directories: blocks decoded on first use, changed through per-transaction overlays. */
import { pmemError, type PmemuError } from '../errors.js'
import { allocFile } from './alloc.js'
import { metaRead } from './dataio.js'
import { blockCount, lastEnd, mapBlock } from './extents.js'
import { decodeDirBlock, dirCapacity, type DirEntry, dtOf, encodeUtf8, entrySize, type Inode, isDir, ROOT_INO } from './layout.js'
import type { FsState } from './state.js'
import { mut, type Tx } from './tx.js'
import type { DirBlockMem, DirMem, DirOverlay } from './types.js'

export function getDir(st: FsState, ino: number, syscall: string, path?: string): DirMem {
  const have = st.dirs.get(ino)
  if (have) return have
  const inode = st.inodes[ino]
  if (!inode || !isDir(inode.mode)) throw new Error(`pmemu internal: ${ino} is not a directory`)
  const bs = st.blockSize
  const bad = (why: string): PmemuError => pmemError('EFSCORRUPTED', syscall, `directory inode ${ino}: ${why}`, { path })
  if (inode.size % bs !== 0) throw bad(`size ${inode.size} is not a whole number of blocks`)
  const nblocks = inode.size / bs
  if (blockCount(inode.extents) !== nblocks || lastEnd(inode.extents) !== nblocks) throw bad('extents do not cover the directory size')
  const dir: DirMem = { blocks: [], index: new Map() }
  const buf = new Uint8Array(bs)
  for (let i = 0; i < nblocks; i++) {
    const p = mapBlock(inode.extents, i)!
    metaRead(st, p * bs, buf, 'directory block')
    const d = decodeDirBlock(buf, ino)
    if (typeof d === 'string') throw bad(`block ${i}: ${d}`)
    const blk: DirBlockMem = { entries: new Map(), used: d.used }
    for (const e of d.entries) {
      if (dir.index.has(e.name) || blk.entries.has(e.name)) throw bad(`duplicate entry '${e.name}'`)
      const target = e.ino > 0 && e.ino < st.sb.inodeCount ? st.inodes[e.ino] : undefined
      if (!target || e.ino < ROOT_INO) throw bad(`entry '${e.name}' points to free or invalid inode ${e.ino}`)
      if (e.type !== dtOf(target.mode)) throw bad(`entry '${e.name}' has the wrong type`)
      blk.entries.set(e.name, { ino: e.ino, type: e.type })
      dir.index.set(e.name, i)
    }
    dir.blocks.push(blk)
  }
  st.dirs.set(ino, dir)
  return dir
}

export function overlay(st: FsState, tx: Tx, dino: number): DirOverlay {
  let ov = tx.dirs.get(dino)
  if (!ov) { ov = { blocks: new Map(), index: new Map(), removed: new Set(), added: 0 }; tx.dirs.set(dino, ov) }
  return ov
}

export function lookupTx(st: FsState, tx: Tx | undefined, dino: number, name: string, syscall: string, path?: string): DirEntry | undefined {
  const dir = getDir(st, dino, syscall, path)
  const ov = tx?.dirs.get(dino)
  if (ov) {
    const idx = ov.index.get(name)
    if (idx !== undefined) return ov.blocks.get(idx)?.entries.get(name)
    if (ov.removed.has(name)) return undefined
  }
  const idx = dir.index.get(name)
  return idx === undefined ? undefined : dir.blocks[idx]!.entries.get(name)
}

export function blockFor(st: FsState, tx: Tx, dir: DirMem, ov: DirOverlay, idx: number): DirBlockMem {
  let b = ov.blocks.get(idx)
  if (!b) {
    const src = dir.blocks[idx]
    b = src ? { entries: new Map(src.entries), used: src.used } : { entries: new Map(), used: 0 }
    ov.blocks.set(idx, b)
  }
  return b
}

export function addEntry(st: FsState, tx: Tx, dino: number, name: string, e: DirEntry, syscall: string, path: string): void {
  const dir = getDir(st, dino, syscall, path)
  const ov = overlay(st, tx, dino)
  const size = entrySize(encodeUtf8(name).length)
  const cap = dirCapacity(st.blockSize)
  const total = dir.blocks.length + ov.added
  const usedOf = (i: number): number => ov.blocks.get(i)?.used ?? dir.blocks[i]?.used ?? 0
  let target = -1
  if (total > 0 && usedOf(total - 1) + size <= cap) target = total - 1
  for (let i = 0; target < 0 && i < total; i++) if (usedOf(i) + size <= cap) target = i
  if (target < 0) {
    // Grow the directory by one block.
    const dinode = mut(st, tx, dino)
    allocFile(st, tx, dinode, total, 1, false, syscall)
    dinode.size = (total + 1) * st.blockSize
    ov.added++
    target = total
  }
  const blk = blockFor(st, tx, dir, ov, target)
  blk.entries.set(name, e)
  blk.used += size
  ov.index.set(name, target)
  ov.removed.delete(name)
}

export function removeEntry(st: FsState, tx: Tx, dino: number, name: string, syscall: string, path: string): void {
  const dir = getDir(st, dino, syscall, path)
  const ov = overlay(st, tx, dino)
  const idx = ov.index.get(name) ?? dir.index.get(name)
  if (idx === undefined) throw new Error(`pmemu internal: no entry ${name}`)
  const blk = blockFor(st, tx, dir, ov, idx)
  if (!blk.entries.delete(name)) throw new Error(`pmemu internal: no entry ${name}`)
  blk.used -= entrySize(encodeUtf8(name).length)
  ov.index.delete(name)
  ov.removed.add(name)
}

export function dirIsEmpty(st: FsState, dino: number, syscall: string, path: string): boolean {
  return getDir(st, dino, syscall, path).index.size === 0
}

export function touchDir(st: FsState, tx: Tx, dino: number, now = Date.now()): Inode {
  const d = mut(st, tx, dino)
  d.mtime = d.ctime = now
  return d
}
