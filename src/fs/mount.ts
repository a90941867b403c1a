/** Mount (journal replay, metadata load, orphan release) and unmount. */
import { pmemError } from '../errors.js'
import { durabilityProfile } from './durability.js'
import { Bitmap } from './bitmap.js'
import { breakScopeOf, checkDevice, checkHookOpts } from './check.js'
import { commit } from './commit.js'
import { metaRead } from './dataio.js'
import type { FsDevice } from './device.js'
import { lastEnd } from './extents.js'
import { readInodeHigh } from './inodehigh.js'
import { freeRange, releaseInode } from './inodes.js'
import { checkExtents, decodeInode, decodeOverflow, decodeSuperblock, extentsPerOverflow, FIRST_FREE_INO, IFLAG_QUARANTINE, INLINE_EXTENTS, INODE_SIZE, isDir, isReg, MAX_LOGICAL_BLOCKS, overflowBlocksFor, QUARANTINE_INO, ROOT_INO, SB_SIZE, STATE_CLEAN, STATE_MOUNTED } from './layout.js'
import { FsState, mountedOn } from './state.js'
import { Tx } from './tx.js'
import type { MountOptions } from './types.js'

/** Mount: the state of a file system on `dev` (the façade wraps it; fsck's repair uses it bare). */
export function mountState(dev: FsDevice, opts: MountOptions = {}): FsState {
  checkDevice(dev, 'mount')
  checkHookOpts(opts, 'mount')
  durabilityProfile(opts.durability, 'mount')
  breakScopeOf(opts.breakScope, 'mount')
  if (mountedOn.has(dev)) throw pmemError('EBUSY', 'mount', 'the device already has a mounted file system')
  const sbBytes = new Uint8Array(SB_SIZE)
  dev.read(0, sbBytes)
  const sb0 = decodeSuperblock(sbBytes, dev)
  if (typeof sb0 === 'string') {
    let hint = ''
    if (dev.pageCount >= 2) {
      const bk = new Uint8Array(SB_SIZE)
      dev.read((dev.pageCount - 1) * dev.pageSize, bk)
      if (typeof decodeSuperblock(bk, dev) !== 'string') hint = '; the backup superblock is valid: run fsck with repair'
    }
    throw pmemError('EFSCORRUPTED', 'mount', `cannot mount: ${sb0}${hint}`)
  }
  const fs = new FsState(dev, sb0, opts)
  loadAll(fs)
  mountedOn.set(dev, fs)
  fs.unsubscribeCrash = dev.onCrash(() => fs.crashed())
  try {
    if (!dev.readOnly) {
      recoverOrphans(fs)
      const tx = new Tx('mount')
      tx.sb = { ...fs.sb, state: STATE_MOUNTED, mountCount: (fs.sb.mountCount + 1) >>> 0 }
      commit(fs, tx)
    }
  } catch (e) {
    fs.detach()
    throw e
  }
  fs.log.debug({ blocks: fs.blockCount, free: fs.bitmap.free }, 'mounted')
  return fs
}

export function loadAll(st: FsState): void {
  const dev = st.device
  const sb = st.sb
  const bs = st.blockSize
  // Journal recovery.
  const j = st.journal.inspect()
  if (j.state === 'committed') {
    if (dev.readOnly) throw pmemError('EROFS', 'mount', 'the journal needs recovery but the device is read-only')
    st.log.info({ seq: j.seq }, 'replaying journal')
    st.journal.replay(j.records)
    const again = new Uint8Array(SB_SIZE)
    dev.read(0, again)
    const sb2 = decodeSuperblock(again, dev)
    if (typeof sb2 === 'string') throw st.corrupt(`after journal replay: ${sb2}`)
    st.sb = sb2
  } else if (j.state === 'damaged') {
    if (!j.torn) throw st.corrupt(j.why)
    if (dev.readOnly) throw pmemError('EROFS', 'mount', `${j.why} and the device is read-only`)
    st.log.warn({ why: j.why }, 'discarding a torn journal commit record')
    st.journal.clear()
  }
  // Bitmap.
  const bm = new Uint8Array(sb.bitmapBlocks * bs)
  metaRead(st, sb.bitmapStart * bs, bm, 'bitmap')
  st.bitmap = new Bitmap(sb.blockCount, bm)
  for (let b = 0; b < sb.dataStart; b++) if (!st.bitmap.get(b)) throw st.corrupt(`bitmap: metadata block ${b} is marked free`)
  if (!st.bitmap.get(sb.backupBlock)) throw st.corrupt('bitmap: the backup superblock block is marked free')
  // Inodes: the slots below the high-water mark (all of them on an image without one).
  const mark = readInodeHigh(dev, st.sb)
  if (mark.high === undefined) throw st.corrupt(`${mark.problems.join('; ')}; run fsck with repair`)
  const high = mark.high
  st.inodes = new Array(high)
  st.inodeHigh = st.inoHigh = high
  const perRead = Math.max(1, Math.floor((1 << 20) / INODE_SIZE))
  const buf = new Uint8Array(perRead * INODE_SIZE)
  const ovf = new Uint8Array(bs)
  const dataEnd = sb.backupBlock
  let used = 0
  for (let first = 0; first < high; first += perRead) {
    const count = Math.min(perRead, high - first)
    const view = buf.subarray(0, count * INODE_SIZE)
    metaRead(st, sb.inodeTableStart * bs + first * INODE_SIZE, view, 'inode table')
    for (let k = 0; k < count; k++) {
      const ino = first + k
      if (ino === 0) continue
      const raw = decodeInode(view.subarray(k * INODE_SIZE, (k + 1) * INODE_SIZE), ino)
      if (raw === null) continue
      if (typeof raw === 'string') throw st.corrupt(`inode ${ino}: ${raw}`)
      const inode = raw.inode
      // Overflow chain.
      let remaining = raw.extentCount - inode.extents.length
      let next = raw.firstOverflow
      let index = 0
      const maxChain = overflowBlocksFor(raw.extentCount, bs)
      if (raw.extentCount > INLINE_EXTENTS && maxChain > dataEnd) throw st.corrupt(`inode ${ino}: extent count ${raw.extentCount} is impossible`)
      while (remaining > 0) {
        if (index >= maxChain || next < sb.dataStart || next >= dataEnd) throw st.corrupt(`inode ${ino}: overflow extent chain is broken at link ${index} (block ${next})`)
        metaRead(st, next * bs, ovf, 'extent block')
        const d = decodeOverflow(ovf, ino, index)
        if (typeof d === 'string') throw st.corrupt(`inode ${ino}: block ${next}: ${d}`)
        if (d.extents.length > remaining || (d.extents.length < extentsPerOverflow(bs) && d.extents.length !== remaining)) {
          throw st.corrupt(`inode ${ino}: overflow extent block ${next} holds ${d.extents.length} extents, ${remaining} expected`)
        }
        inode.overflow.push(next)
        inode.extents.push(...d.extents)
        remaining -= d.extents.length
        next = d.next
        index++
      }
      if (raw.extentCount <= INLINE_EXTENTS && raw.firstOverflow !== 0) throw st.corrupt(`inode ${ino}: overflow block set with only ${raw.extentCount} extents`)
      const bad = checkExtents(inode.extents, sb.dataStart, dataEnd)
      if (bad) throw st.corrupt(`inode ${ino}: ${bad}`)
      if (isDir(inode.mode) && (inode.parent < 1 || inode.parent >= sb.inodeCount)) throw st.corrupt(`inode ${ino}: directory has bad parent ${inode.parent}`)
      st.inodes[ino] = inode
      used++
    }
  }
  const q = st.inodes[QUARANTINE_INO]
  if (!q || !isReg(q.mode) || (q.flags & IFLAG_QUARANTINE) === 0) throw st.corrupt('inode 1 is not the quarantine inode')
  const root = st.inodes[ROOT_INO]
  if (!root || !isDir(root.mode)) throw st.corrupt('the root inode is missing or not a directory')
  st.freeInodeCount = sb.inodeCount - 1 - used
}

/** Release orphans (nlink 0: unlinked while open when the crash came) and trim blocks past EOF (interrupted truncates). */
export function recoverOrphans(st: FsState): void {
  for (let ino = FIRST_FREE_INO; ino < st.inodes.length; ino++) {
    const inode = st.inodes[ino]
    if (!inode) continue
    if (inode.nlink === 0) {
      st.log.info({ ino }, 'releasing orphan inode')
      releaseInode(st, ino)
    } else if (isReg(inode.mode)) {
      const eofBlocks = Math.ceil(inode.size / st.blockSize)
      if (lastEnd(inode.extents) > eofBlocks) freeRange(st, ino, eofBlocks, MAX_LOGICAL_BLOCKS, 'mount')
    }
  }
}

/** @internal */
export function unmountSync(st: FsState): void {
  if (st.unmounted) throw pmemError('EINVAL', 'umount', 'file system is not mounted')
  for (const fn of st.hooks.beforeUnmount) fn()
  const wasDead = st.dead
  for (const f of [...st.files]) {
    if (!f.isClosed) { try { f._forceClose() } catch { /* dead fs */ } }
  }
  try {
    if (!wasDead && !st.dead && !st.device.readOnly) {
      for (const node of [...st.nodes.values()]) {
        // Unmount syncs: stores not yet persisted become durable, as a writeback at umount.
        for (const [o, l] of node.dirty) st.device.persist(o, l)
        node.dirty = []
        if (st.inodes[node.ino]?.nlink === 0) releaseInode(st, node.ino)
      }
      const tx = new Tx('umount')
      tx.sb = { ...st.sb, state: STATE_CLEAN }
      commit(st, tx)
    }
  } finally {
    st.nodes.clear()
    st.dirs.clear()
    st.unmounted = true
    st.detach()
  }
}
