/** Transaction commit: overflow extent blocks, journal records, then install in memory. */
import { pmemError } from '../errors.js'
import { allocRun } from './alloc.js'
import { equalBytes } from './check.js'
import { mapBlock } from './extents.js'
import { nextInodeHigh, raiseInodeHigh } from './inodehigh.js'
import { RecordBuilder } from './journal.js'
import { encodeDirBlock, encodeInode, encodeOverflow, encodeSuperblock, extentsPerOverflow, INLINE_EXTENTS, INODE_SIZE, overflowBlocksFor, } from './layout.js'
import type { FsState } from './state.js'
import { abort, type Tx, txInode } from './tx.js'

/**
 * Finish the in-memory part of a transaction: fix overflow chains and build
 * the journal records. Throws (after aborting) ENOSPC if the transaction
 * cannot be completed; nothing has been written then.
 */
export function prepare(st: FsState, tx: Tx): RecordBuilder {
  try {
    const bs = st.blockSize
    // Overflow extent blocks follow the extent counts.
    for (const [, inode] of tx.inodes) {
      if (!inode) continue
      const need = overflowBlocksFor(inode.extents.length, bs)
      while (inode.overflow.length > need) tx.freed.push([inode.overflow.pop()!, 1])
      while (inode.overflow.length < need) {
        const [p] = allocRun(st, tx, 1, st.sb.dataStart, tx.op)
        inode.overflow.push(p)
      }
    }
    const rb = new RecordBuilder()
    const itOff = st.sb.inodeTableStart * bs
    const per = extentsPerOverflow(bs)
    const cur = new Uint8Array(bs)
    for (const [ino, inode] of tx.inodes) {
      rb.write(itOff + ino * INODE_SIZE, inode ? encodeInode(inode) : new Uint8Array(INODE_SIZE))
      if (!inode) continue
      for (let i = 0; i < inode.overflow.length; i++) {
        const slice = inode.extents.slice(INLINE_EXTENTS + i * per, INLINE_EXTENTS + (i + 1) * per)
        const blk = encodeOverflow(bs, ino, i, inode.overflow[i + 1] ?? 0, slice)
        const off = inode.overflow[i]! * bs
        st.device.read(off, cur)
        if (!equalBytes(cur, blk)) rb.write(off, blk)
      }
    }
    for (const [dino, ov] of tx.dirs) {
      const dinode = txInode(st, tx, dino)
      if (!dinode) continue // directory removed in st transaction
      for (const [idx, blk] of ov.blocks) {
        const p = mapBlock(dinode.extents, idx)
        if (p === null) throw new Error(`pmemu internal: directory ${dino} block ${idx} unmapped`)
        rb.write(p * bs, encodeDirBlock(bs, dino, blk.entries))
      }
    }
    planInodeHigh(st, tx)
    if (tx.sb) rb.write(0, encodeSuperblock(tx.sb))
    for (const [p, n] of tx.allocated) rb.bits(true, p, n)
    for (const [p, n] of tx.freed) rb.bits(false, p, n)
    if (rb.bytes > st.journal.capacity) {
      throw pmemError('ENOSPC', tx.op, `transaction needs ${rb.bytes} journal bytes, the journal holds ${st.journal.capacity}`)
    }
    return rb
  } catch (e) {
    abort(st, tx)
    throw e
  }
}

/** Journal the prepared records, then install the transaction in memory. */
export function journalAndInstall(st: FsState, tx: Tx, rb: RecordBuilder): void {
  try {
    if (tx.zeroInodes) {
      raiseInodeHigh(st.device, st.sb, ...tx.zeroInodes)
      st.inodeHigh = tx.zeroInodes[1]
    }
    st.journal.commit(rb, tx.op)
  } catch (e) {
    // A crash-point hook threw (simulated power loss) or the device failed mid-commit.
    st.shutdown(`transaction '${tx.op}' interrupted: ${(e as Error).message}`)
    throw e
  }
  for (const [ino, inode] of tx.inodes) {
    const was = st.inodes[ino]
    if (inode && !was) st.freeInodeCount--
    if (!inode && was) st.freeInodeCount++
    st.inodes[ino] = inode ?? undefined
    if (!inode) st.dirs.delete(ino)
  }
  for (const ino of tx.newInos) st.reservedInos.delete(ino)
  for (const [p, n] of tx.freed) st.bitmap.clearRange(p, n)
  for (const [dino, ov] of tx.dirs) {
    const d = st.dirs.get(dino)
    if (!d || !st.inodes[dino]) continue
    for (const [idx, blk] of ov.blocks) d.blocks[idx] = blk
    for (const name of ov.removed) d.index.delete(name)
    for (const [name, idx] of ov.index) d.index.set(name, idx)
  }
  if (tx.sb) st.sb = tx.sb
}

/** An inode at or past the durable high-water mark: the commit raises the mark to cover it (zeroInodes). */
function planInodeHigh(st: FsState, tx: Tx): void {
  let need = st.inodeHigh
  for (const [ino, inode] of tx.inodes) if (inode && ino >= need) need = ino + 1
  tx.zeroInodes = need > st.inodeHigh ? [st.inodeHigh, nextInodeHigh(st.sb, need)] : undefined
}

export function commit(st: FsState, tx: Tx): void {
  const rb = prepare(st, tx)
  journalAndInstall(st, tx, rb)
}
