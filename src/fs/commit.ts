/** Transaction commit: overflow extent blocks, journal records, then install in memory. */
import { pmemError } from '../errors.js'
import { allocRun } from './alloc.js'
import { equalBytes } from './check.js'
import { mapBlock } from './extents.js'
import { nextInodeHigh, raiseInodeHigh } from './inodehigh.js'
import { RecordBuilder } from './journal.js'
import { crc32c, crc32cZeros } from '../util/crc32c.js'
import { DIR_HEADER, dv, encodeDirBlock, encodeInode, encodeOverflow, encodeSuperblock, extentsPerOverflow, INLINE_EXTENTS, INODE_SIZE, overflowBlocksFor, STATE_CLEAN } from './layout.js'
import type { FsState } from './state.js'
import type { DirBlockMem } from './types.js'
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
    let cur: Uint8Array | undefined
    for (const [ino, inode] of tx.inodes) {
      const rec = rb.writeSpace(itOff + ino * INODE_SIZE, INODE_SIZE) // zeros: a freed slot
      if (!inode) continue
      encodeInode(inode, rec.buf, rec.at)
      if (inode.overflow.length > 0) cur ??= new Uint8Array(bs)
      for (let i = 0; i < inode.overflow.length; i++) {
        const slice = inode.extents.slice(INLINE_EXTENTS + i * per, INLINE_EXTENTS + (i + 1) * per)
        const blk = encodeOverflow(bs, ino, i, inode.overflow[i + 1] ?? 0, slice)
        const off = inode.overflow[i]! * bs
        st.device.read(off, cur!)
        if (!equalBytes(cur!, blk)) rb.write(off, blk)
      }
    }
    for (const [dino, ov] of tx.dirs) {
      const dinode = txInode(st, tx, dino)
      if (!dinode) continue // directory removed in st transaction
      for (const [idx, blk] of ov.blocks) {
        const p = mapBlock(dinode.extents, idx)
        if (p === null) throw new Error(`pmemu internal: directory ${dino} block ${idx} unmapped`)
        // crc: the entries, then zeros to the crc (the tail is kept zero), without reading the zeros
        const end = DIR_HEADER + blk.used
        dv(blk.bytes).setUint32(bs - 4, crc32cZeros(crc32c(blk.bytes, 0, end), bs - 4 - end), true)
        if (!blk.base || blk.base.rewrite) { rb.write(p * bs, blk.bytes); continue }
        // Only what changed: the header (count, used), the entries touched, the crc.
        if (blk.lo - DIR_HEADER <= 64) rb.write(p * bs, blk.bytes.subarray(0, Math.max(blk.hi, DIR_HEADER)))
        else {
          rb.write(p * bs, blk.bytes.subarray(0, DIR_HEADER))
          if (blk.lo < blk.hi) rb.write(p * bs + blk.lo, blk.bytes.subarray(blk.lo, blk.hi))
        }
        rb.write(p * bs + bs - 4, blk.bytes.subarray(bs - 4))
      }
    }
    planInodeHigh(st, tx)
    if (tx.sb) {
      rb.write(0, encodeSuperblock(tx.sb))
      // A new feature flag goes to the backup too, so a superblock restored from it still admits the feature.
      if (tx.sb.features !== st.sb.features) rb.write(st.sb.backupBlock * bs, encodeSuperblock({ ...tx.sb, state: STATE_CLEAN }))
    }
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
    // The transaction wrote the inode whole, in-memory times included: none are left to flush.
    const node = st.nodes.get(ino)
    if (node) node.timesDirty = false
  }
  for (const ino of tx.newInos) st.reservedInos.delete(ino)
  for (const [p, n] of tx.freed) st.bitmap.clearRange(p, n)
  for (const [dino, ov] of tx.dirs) {
    const d = st.dirs.get(dino)
    if (!d || !st.inodes[dino]) continue
    for (const [idx, ch] of ov.blocks) {
      const blk: DirBlockMem = ch.base ?? { entries: new Map(), used: 0, bytes: ch.bytes, rewrite: false }
      for (const name of ch.removed) blk.entries.delete(name)
      for (const [name, e] of ch.added) blk.entries.set(name, e)
      blk.used = ch.used
      if (blk.bytes !== ch.bytes) blk.spare = blk.bytes
      blk.bytes = ch.bytes
      blk.rewrite = false
      d.blocks[idx] = blk
    }
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
