/** Data I/O: read, write (allocating holes in journaled chunks), fsync, fallocate. */
import { isPmemuError, pmemError, PmemuError } from '../errors.js'
import { allocFile } from './alloc.js'
import { journalAndInstall, prepare } from './commit.js'
import { dataRead, dataWrite } from './dataio.js'
import { forEachRun, mapBlock } from './extents.js'
import { flushTimes, type FsNode } from './inodes.js'
import { type Extent, HUGE_BYTES } from './layout.js'
import type { ReadRefusal } from './types.js'
import type { FsState } from './state.js'
import { abort, mut, Tx } from './tx.js'

/** Largest number of blocks a write or fallocate allocates per transaction. */
const ALLOC_CHUNK_BLOCKS = 1024

/** @internal */
export function readAt(st: FsState, node: FsNode, buf: Uint8Array, pos: number, path: string): number {
  const inode = st.inodes[node.ino]!
  if (pos >= inode.size || buf.length === 0) return 0
  const n = Math.min(buf.length, inode.size - pos)
  const bs = st.blockSize
  const l0 = Math.floor(pos / bs)
  const l1 = Math.ceil((pos + n) / bs)
  let at = pos
  let refusal: ReadRefusal | undefined
  try {
    forEachRun(inode.extents, l0, l1, (l, k, p) => {
      if (refusal) return
      const s = Math.max(pos, l * bs)
      const e = Math.min(pos + n, (l + k) * bs)
      at = s
      const dst = buf.subarray(s - pos, e - pos)
      if (p === null) dst.fill(0)
      else refusal = dataRead(st, p * bs + (s - l * bs), dst, { ino: node.ino, fileOffset: s })
    })
  } catch (e) {
    if (e instanceof PmemuError) {
      ;(e as { bytesRead?: number }).bytesRead = at - pos
      if (e.path === undefined) e.path = path
    }
    throw e
  }
  if (refusal) {
    // A refused read (poison): tell the caller how many bytes at the start of buf are good.
    const e = refusal.error
    if (e instanceof PmemuError) {
      ;(e as { bytesRead?: number }).bytesRead = at - pos + refusal.readable
      if (e.path === undefined) e.path = path
    }
    throw e
  }
  return n
}

/** @internal */
export function fsyncNode(st: FsState, node: FsNode, path: string): void {
  st.live('fsync', path)
  for (const [o, l] of node.dirty) st.device.persist(o, l)
  node.dirty = []
  if (node.timesDirty && !st.device.readOnly) flushTimes(st, node)
}

/** @internal */
export function writeAt(st: FsState, node: FsNode, buf: Uint8Array, pos: number, path: string): number {
  st.writable('write', path)
  let len = buf.length
  if (len === 0) return 0
  if (pos >= st.maxFileSize) throw pmemError('EFBIG', 'write', `file size limit ${st.maxFileSize} reached`, { path, offset: pos })
  len = Math.min(len, st.maxFileSize - pos)
  const bs = st.blockSize
  const H = Math.max(1, HUGE_BYTES / bs)
  let done = 0
  let chunk = ALLOC_CHUNK_BLOCKS
  let journaled = false
  while (done < len) {
    const s = pos + done
    const b0 = Math.floor(s / bs)
    const lastB = Math.floor((pos + len - 1) / bs)
    // Chunks end on 2 MiB boundaries where they can, so huge runs are not split.
    let nb = Math.min(chunk, lastB - b0 + 1)
    if (nb > H) nb = Math.max(H, nb - ((b0 + nb) % H))
    const e = Math.min(pos + len, (b0 + nb) * bs)
    try {
      journaled = writeChunk(st, node, buf.subarray(s - pos, e - pos), s, path)
      done = e - pos
      chunk = ALLOC_CHUNK_BLOCKS
    } catch (err) {
      if (isPmemuError(err, 'ENOSPC') && !st.dead) {
        if (nb > 1) { chunk = Math.ceil(nb / 2); continue }
        if (done > 0) break
      }
      throw err
    }
  }
  // A last chunk that was journaled wrote the inode with this write's mtime
  // and ctime (and any earlier unwritten times): nothing is left for close.
  if (!journaled) {
    node.timesDirty = true
    const inode = st.inodes[node.ino]!
    inode.mtime = inode.ctime = Date.now()
  }
  return done
}

/** Zero bytes [from, to) inside the block holding `from` (if allocated), persisted: keeps bytes past EOF zero. */
export function zeroTail(st: FsState, node: FsNode, from: number, to: number): void {
  const bs = st.blockSize
  if (from % bs === 0 || to <= from) return
  const end = Math.min(to, (Math.floor(from / bs) + 1) * bs)
  const p = mapBlock(st.inodes[node.ino]!.extents, Math.floor(from / bs))
  if (p === null) return
  const off = p * bs + (from % bs)
  dataWrite(st, off, end - from, { ino: node.ino, fileOffset: from })
  st.device.persist(off, end - from)
}

/** Write one chunk; true when it went through a transaction (allocation or a size change), which wrote the inode. */
export function writeChunk(st: FsState, node: FsNode, data: Uint8Array, s: number, path: string): boolean {
  const bs = st.blockSize
  const ino = node.ino
  const inode = st.inodes[ino]!
  const e = s + data.length
  const oldSize = inode.size
  const l0 = Math.floor(s / bs)
  const l1 = Math.ceil(e / bs)
  const holes: Array<[number, number]> = []
  forEachRun(inode.extents, l0, l1, (l, n, p) => { if (p === null) holes.push([l, n]) })
  const extending = e > oldSize
  if (holes.length === 0 && !extending) {
    storeMapped(st, node, inode.extents, data, s, false)
    return false
  }
  const tx = new Tx('write')
  const m = mut(st, tx, ino)
  const huge = Math.max(e, oldSize) > HUGE_BYTES
  const newRuns: Extent[] = []
  try {
    for (const [l, n] of holes) newRuns.push(...allocFile(st, tx, m, l, n, huge, 'write'))
  } catch (err) { abort(st, tx); throw err }
  if (extending) m.size = e
  m.mtime = m.ctime = Date.now()
  const rb = prepare(st, tx)
  try {
    // New blocks: data plus zeros, persisted before the commit makes them reachable.
    for (const r of newRuns) {
      const rs = r.l * bs
      const cs = Math.max(s, rs)
      const ce = Math.min(e, rs + r.n * bs)
      if (cs === rs && ce === rs + r.n * bs) {
        dataWrite(st, r.p * bs, data.subarray(cs - s, ce - s), { ino, fileOffset: rs }) // the data covers the run: no staging copy
      } else {
        const blk = new Uint8Array(r.n * bs)
        blk.set(data.subarray(cs - s, ce - s), cs - rs)
        dataWrite(st, r.p * bs, blk, { ino, fileOffset: rs })
      }
      st.device.persist(r.p * bs, r.n * bs)
    }
    if (s > oldSize) zeroTail(st, node, oldSize, s)
    // Already-allocated parts: plain stores; persisted now when the size changes with them.
    storeMapped(st, node, inode.extents, data, s, extending)
  } catch (err) { abort(st, tx); throw err }
  journalAndInstall(st, tx, rb)
  return true
}

/** Store `data` at file offset s into blocks already mapped in `extents` (holes skipped). */
export function storeMapped(st: FsState, node: FsNode, extents: Extent[], data: Uint8Array, s: number, persist: boolean): void {
  const bs = st.blockSize
  const e = s + data.length
  forEachRun(extents, Math.floor(s / bs), Math.ceil(e / bs), (l, n, p) => {
    if (p === null) return
    const cs = Math.max(s, l * bs)
    const ce = Math.min(e, (l + n) * bs)
    const off = p * bs + (cs - l * bs)
    dataWrite(st, off, data.subarray(cs - s, ce - s), { ino: node.ino, fileOffset: cs })
    if (persist) st.device.persist(off, ce - cs)
    else node.addDirty(off, ce - cs)
  })
}

/** @internal */
export function fallocate(st: FsState, node: FsNode, off: number, len: number, path: string): void {
  st.writable('fallocate', path)
  if (node.isDirectory) throw pmemError('EISDIR', 'fallocate', 'is a directory', { path })
  const end = off + len
  if (end > st.maxFileSize) throw pmemError('EFBIG', 'fallocate', `file size limit ${st.maxFileSize}`, { path, offset: off })
  const bs = st.blockSize
  const ino = node.ino
  const l0 = Math.floor(off / bs)
  const l1 = Math.ceil(end / bs)
  let need = 0
  forEachRun(st.inodes[ino]!.extents, l0, l1, (_l, n, p) => { if (p === null) need += n })
  if (need > st.bitmap.free) throw pmemError('ENOSPC', 'fallocate', `needs ${need} blocks, ${st.bitmap.free} free`, { path })
  const oldSize = st.inodes[ino]!.size
  if (end > oldSize) zeroTail(st, node, oldSize, end)
  const huge = Math.max(end, oldSize) > HUGE_BYTES
  for (let c = l0; c < l1; c += ALLOC_CHUNK_BLOCKS) {
    const ce = Math.min(l1, c + ALLOC_CHUNK_BLOCKS)
    const holes: Array<[number, number]> = []
    forEachRun(st.inodes[ino]!.extents, c, ce, (l, n, p) => { if (p === null) holes.push([l, n]) })
    const tx = new Tx('fallocate')
    const m = mut(st, tx, ino)
    const runs: Extent[] = []
    try {
      for (const [l, n] of holes) runs.push(...allocFile(st, tx, m, l, n, huge, 'fallocate'))
    } catch (err) { abort(st, tx); throw err }
    const chunkEnd = Math.min(end, ce * bs)
    if (chunkEnd > m.size) m.size = chunkEnd
    m.ctime = m.mtime = Date.now()
    const rb = prepare(st, tx)
    try {
      for (const r of runs) {
        dataWrite(st, r.p * bs, r.n * bs, { ino, fileOffset: r.l * bs })
        st.device.persist(r.p * bs, r.n * bs)
      }
    } catch (err) { abort(st, tx); throw err }
    journalAndInstall(st, tx, rb)
  }
}
