/** Space accounting (statfs, info), the reverse map (blockOwner) and quarantine. */
import { pmemError } from '../errors.js'
import { formatUuid, validateInt } from './check.js'
import { commit } from './commit.js'
import { blockCount, removeRange } from './extents.js'
import { FS_VERSION, isDir, NAME_MAX, QUARANTINE_INO } from './layout.js'
import type { FsState } from './state.js'
import { mut, Tx } from './tx.js'
import type { BlockOwner, FsInfo, StatFs } from './types.js'

export function statfs(st: FsState): StatFs {
  st.live('statfs')
  const q = blockCount(st.inodes[QUARANTINE_INO]?.extents ?? [])
  return {
    type: 0x504d4653, bsize: st.blockSize, frsize: st.blockSize, blocks: st.blockCount,
    free: st.bitmap.free, bfree: st.bitmap.free, bavail: st.bitmap.free,
    files: st.sb.inodeCount - 1, ffree: st.freeInodeCount - st.reservedInos.size, namemax: NAME_MAX, quarantined: q,
  }
}

/** Who owns block `pfn` (reverse map, for the fault layer). O(extents). */
export function blockOwner(st: FsState, pfn: number): BlockOwner {
  validateInt(pfn, 'pfn', 'blockOwner')
  const sb = st.sb
  if (pfn >= st.blockCount) throw pmemError('EINVAL', 'blockOwner', `pfn ${pfn} out of range`, { pfn })
  if (pfn === 0) return { kind: 'superblock' }
  if (pfn === sb.backupBlock) return { kind: 'backup-superblock' }
  if (pfn < sb.bitmapStart) return { kind: 'journal' }
  if (pfn < sb.inodeTableStart) return { kind: 'bitmap' }
  if (pfn < sb.dataStart) return { kind: 'inode-table' }
  if (!st.bitmap.get(pfn)) return { kind: 'free' }
  for (let ino = 1; ino < st.inodes.length; ino++) {
    const inode = st.inodes[ino]
    if (!inode) continue
    const k = inode.overflow.indexOf(pfn)
    if (k >= 0) return { kind: 'extent-block', ino, index: k }
    for (const e of inode.extents) {
      if (pfn >= e.p && pfn < e.p + e.n) {
        const index = e.l + (pfn - e.p)
        if (ino === QUARANTINE_INO) return { kind: 'quarantine', ino, index }
        return { kind: isDir(inode.mode) ? 'directory' : 'data', ino, index }
      }
    }
  }
  return { kind: 'unowned' }
}

/** True when a block holds file-system metadata (superblocks, journal, bitmap, inodes, directories, extent blocks). */
export function isMetadataBlock(st: FsState, pfn: number): boolean {
  const k = blockOwner(st, pfn).kind
  return k !== 'data' && k !== 'free' && k !== 'unowned' && k !== 'quarantine'
}

/** Quarantined blocks as runs [pfn, count]. */
export function quarantined(st: FsState): Array<[number, number]> {
  return (st.inodes[QUARANTINE_INO]?.extents ?? []).map(e => [e.p, e.n])
}

/** Return quarantined blocks [pfn, pfn+count) to the free list (journaled). */
export function releaseQuarantine(st: FsState, pfn: number, count = 1): void {
  st.writable('releaseQuarantine')
  validateInt(pfn, 'pfn', 'releaseQuarantine')
  validateInt(count, 'count', 'releaseQuarantine', undefined, 1)
  const tx = new Tx('releaseQuarantine')
  const q = mut(st, tx, QUARANTINE_INO)
  const freed = removeRange(q.extents, pfn, pfn + count)
  if (freed.length === 0) throw pmemError('EINVAL', 'releaseQuarantine', `blocks ${pfn}..${pfn + count - 1} are not quarantined`, { pfn })
  for (const [p, n] of freed) tx.freed.push([p, n])
  commit(st, tx)
}

/** Summary for `pmemu info`. */
export function fsInfoOf(st: FsState): FsInfo {
  const s = statfs(st)
  return {
    label: st.sb.label, uuid: formatUuid(st.sb.uuid), version: FS_VERSION, blockSize: st.blockSize, blocks: st.blockCount,
    freeBlocks: s.free, quarantinedBlocks: s.quarantined, inodes: s.files, freeInodes: s.ffree,
    journalBlocks: st.sb.journalBlocks, dataStart: st.sb.dataStart, state: 'mounted', mountCount: st.sb.mountCount,
    createdMs: st.sb.createdMs,
  }
}
