/** Read-only file-system summary for `pmemu info` (does not mount, writes nothing). */
import type { FsDevice } from './device.js'
import { checkDevice, formatUuid, isMounted } from './fs.js'
import { readInodeHigh } from './inodehigh.js'
import { Journal } from './journal.js'
import { decodeSuperblock, INODE_SIZE, isAllZero, SB_SIZE, STATE_CLEAN } from './layout.js'

export interface FsSummary {
  /** false when the device holds no (valid) pmemu file system; `error` says why. */
  present: boolean
  error?: string
  label?: string
  uuid?: string
  version?: number
  blockSize?: number
  blocks?: number
  freeBlocks?: number
  inodes?: number
  usedInodes?: number
  journalBlocks?: number
  dataStart?: number
  /** 'clean' (unmounted cleanly), 'mounted' (mounted now, or not unmounted cleanly), 'needs-recovery' (committed journal transaction pending). */
  state?: 'clean' | 'mounted' | 'needs-recovery'
  mountedHere?: boolean
  mountCount?: number
  createdMs?: number
}

export function fsInfo(dev: FsDevice): FsSummary {
  checkDevice(dev, 'info')
  const raw = new Uint8Array(SB_SIZE)
  dev.read(0, raw)
  const sb = decodeSuperblock(raw, dev)
  if (typeof sb === 'string') return { present: false, error: sb }
  const bs = sb.blockSize
  const bm = new Uint8Array(sb.bitmapBlocks * bs)
  dev.read(sb.bitmapStart * bs, bm)
  let used = 0
  for (let b = 0; b < sb.blockCount; b++) if (bm[b >> 3]! & (1 << (b & 7))) used++
  let usedInodes = 0
  const chunk = 4096
  const buf = new Uint8Array(chunk * INODE_SIZE)
  const high = readInodeHigh(dev, sb).high ?? sb.inodeCount // slots from the high-water mark on are free
  for (let first = 0; first < high; first += chunk) {
    const n = Math.min(chunk, high - first)
    const v = buf.subarray(0, n * INODE_SIZE)
    dev.read(sb.inodeTableStart * bs + first * INODE_SIZE, v)
    for (let k = 0; k < n; k++) if (first + k > 0 && !isAllZero(v, k * INODE_SIZE, (k + 1) * INODE_SIZE)) usedInodes++
  }
  const j = new Journal(dev, sb).inspect()
  const state = j.state === 'committed' ? 'needs-recovery' : sb.state === STATE_CLEAN && !isMounted(dev) ? 'clean' : 'mounted'
  return {
    present: true, label: sb.label, uuid: formatUuid(sb.uuid), version: sb.version, blockSize: bs, blocks: sb.blockCount,
    freeBlocks: sb.blockCount - used, inodes: sb.inodeCount - 1, usedInodes, journalBlocks: sb.journalBlocks, dataStart: sb.dataStart,
    state, mountedHere: isMounted(dev), mountCount: sb.mountCount, createdMs: sb.createdMs,
  }
}
