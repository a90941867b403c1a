/** Directories: blocks decoded on first use, changed through per-transaction overlays. */
import { pmemError, type PmemuError } from '../errors.js'
import { allocFile } from './alloc.js'
import { metaRead } from './dataio.js'
import { blockCount, lastEnd, mapBlock } from './extents.js'
import { decodeDirBlock, DIR_HEADER, DIR_MAGIC, dirCapacity, type DirEntry, DT_DIR, dtOf, dv, encodeUtf8, entrySize, type Inode, isAllZero, isDir, ROOT_INO } from './layout.js'
import type { FsState } from './state.js'
import { mut, type Tx } from './tx.js'
import type { DirBlockChange, DirBlockMem, DirMem, DirOverlay } from './types.js'

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
    // The cached bytes have a zero tail (the crc is computed so); a device block whose tail is not zero is rewritten whole at its next change.
    const bytes = buf.slice()
    const tail = DIR_HEADER + d.used
    const rewrite = !isAllZero(bytes, tail, bs - 4)
    if (rewrite) bytes.fill(0, tail, bs - 4)
    const blk: DirBlockMem = { entries: new Map(), used: d.used, bytes, rewrite }
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
    if (idx !== undefined) return ov.blocks.get(idx)?.added.get(name)
    if (ov.removed.has(name)) return undefined
  }
  const idx = dir.index.get(name)
  return idx === undefined ? undefined : dir.blocks[idx]!.entries.get(name)
}

/** The transaction's change of block `idx` (a copy of its bytes on first use; a fresh empty block past the end). */
export function blockFor(st: FsState, tx: Tx, dino: number, dir: DirMem, ov: DirOverlay, idx: number): DirBlockChange {
  let b = ov.blocks.get(idx)
  if (!b) {
    const base = dir.blocks[idx]
    let bytes: Uint8Array
    if (base) {
      // The buffer the block had before its last change, if nothing holds it: no allocation per change.
      bytes = base.spare ?? new Uint8Array(base.bytes.length)
      base.spare = undefined
      bytes.set(base.bytes)
    } else bytes = emptyDirBlock(st.blockSize, dino)
    b = { base, added: new Map(), removed: new Set(), used: base?.used ?? 0, bytes, lo: Infinity, hi: 0 }
    ov.blocks.set(idx, b)
  }
  return b
}

function emptyDirBlock(bs: number, owner: number): Uint8Array {
  const b = new Uint8Array(bs)
  const v = dv(b)
  v.setUint32(0, DIR_MAGIC, true)
  v.setUint32(4, owner, true)
  return b
}

/** Append an entry to the block's bytes (the layout of encodeDirBlock: entries in order, then zeros). */
function appendBytes(b: DirBlockChange, nb: Uint8Array, e: DirEntry): void {
  const v = dv(b.bytes)
  const off = DIR_HEADER + b.used
  v.setUint32(off, e.ino, true)
  b.bytes[off + 4] = e.type
  b.bytes[off + 5] = nb.length
  b.bytes.set(nb, off + 6)
  b.used += entrySize(nb.length)
  b.lo = Math.min(b.lo, off)
  b.hi = Math.max(b.hi, DIR_HEADER + b.used)
  v.setUint32(8, v.getUint32(8, true) + 1, true)
  v.setUint32(12, b.used, true)
}

/** Remove the entry named `nb` from the block's bytes: the entries after it move up, the tail is zeroed. */
function removeBytes(b: DirBlockChange, nb: Uint8Array): void {
  const bytes = b.bytes
  const end = DIR_HEADER + b.used
  for (let off = DIR_HEADER; off < end;) {
    const len = bytes[off + 5]!
    const size = entrySize(len)
    if (len === nb.length && nameAt(bytes, off + 6, nb)) {
      bytes.copyWithin(off, off + size, end)
      bytes.fill(0, end - size, end)
      b.used -= size
      b.lo = Math.min(b.lo, off)
      b.hi = Math.max(b.hi, end)
      const v = dv(bytes)
      v.setUint32(8, v.getUint32(8, true) - 1, true)
      v.setUint32(12, b.used, true)
      return
    }
    off += size
  }
  throw new Error('pmemu internal: directory entry not in its block')
}

function nameAt(bytes: Uint8Array, at: number, nb: Uint8Array): boolean {
  for (let i = 0; i < nb.length; i++) if (bytes[at + i] !== nb[i]) return false
  return true
}

/** A name's UTF-8 bytes; ASCII without a call into the encoder. */
function nameBytes(name: string): Uint8Array {
  const n = name.length
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i)
    if (c >= 0x80) return encodeUtf8(name)
    out[i] = c
  }
  return out
}

function usedOf(dir: DirMem, ov: DirOverlay, i: number): number {
  return ov.blocks.get(i)?.used ?? dir.blocks[i]?.used ?? 0
}

export function addEntry(st: FsState, tx: Tx, dino: number, name: string, e: DirEntry, syscall: string, path: string): void {
  const dir = getDir(st, dino, syscall, path)
  const ov = overlay(st, tx, dino)
  const nb = nameBytes(name)
  const size = entrySize(nb.length)
  const cap = dirCapacity(st.blockSize)
  const total = dir.blocks.length + ov.added
  let target = -1
  if (total > 0 && usedOf(dir, ov, total - 1) + size <= cap) target = total - 1
  for (let i = 0; target < 0 && i < total; i++) if (usedOf(dir, ov, i) + size <= cap) target = i
  if (target < 0) {
    // Grow the directory by one block.
    const dinode = mut(st, tx, dino)
    allocFile(st, tx, dinode, total, 1, false, syscall)
    dinode.size = (total + 1) * st.blockSize
    ov.added++
    target = total
  }
  const blk = blockFor(st, tx, dino, dir, ov, target)
  blk.added.set(name, e)
  appendBytes(blk, nb, e)
  ov.index.set(name, target)
  ov.removed.delete(name)
}

export function removeEntry(st: FsState, tx: Tx, dino: number, name: string, syscall: string, path: string): void {
  const dir = getDir(st, dino, syscall, path)
  const ov = overlay(st, tx, dino)
  const idx = ov.index.get(name) ?? (ov.removed.has(name) ? undefined : dir.index.get(name))
  if (idx === undefined) throw new Error(`pmemu internal: no entry ${name}`)
  const blk = blockFor(st, tx, dino, dir, ov, idx)
  if (!blk.added.delete(name)) {
    if (!blk.base?.entries.has(name) || blk.removed.has(name)) throw new Error(`pmemu internal: no entry ${name}`)
    blk.removed.add(name)
  }
  removeBytes(blk, nameBytes(name))
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
