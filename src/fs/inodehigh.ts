/**
 * The inode high-water mark (docs/format.md §Inode high-water mark): every
 * inode slot from it on is free and never read, so mount and fsck cost what
 * is used, not the size of the inode table.
 */
import type { FsDevice } from './device.js'
import { decodeInodeHigh, encodeInodeHigh, FEATURE_INODE_HIGH, HWM_OFF, HWM_SIZE, INODE_SIZE, type Superblock } from './layout.js'

/** Byte offsets of the two copies of the record (after the primary and the backup superblock). */
function recordOffsets(sb: Superblock): [number, number] {
  return [HWM_OFF, sb.backupBlock * sb.blockSize + HWM_OFF]
}

/**
 * The mark of the file system `sb` describes: the higher of the two valid
 * copies (the copies are raised one after the other); `problems` says which
 * copy is damaged. Without the feature (an older image) the whole table:
 * `high` = inodeCount. `high` is undefined when both copies are damaged.
 */
export function readInodeHigh(dev: FsDevice, sb: Superblock): { high: number | undefined; problems: string[] } {
  if ((sb.features & FEATURE_INODE_HIGH) === 0) return { high: sb.inodeCount, problems: [] }
  let high: number | undefined
  const problems: string[] = []
  const rec = new Uint8Array(HWM_SIZE)
  for (const [i, off] of recordOffsets(sb).entries()) {
    dev.read(off, rec)
    const h = decodeInodeHigh(rec, sb.inodeCount)
    if (typeof h === 'string') problems.push(`${i === 0 ? 'primary' : 'backup'} ${h}`)
    else high = Math.max(high ?? 0, h)
  }
  return { high, problems }
}

/** Store the mark in both copies, each durable before the next. */
export function writeInodeHigh(dev: FsDevice, sb: Superblock, high: number): void {
  const rec = encodeInodeHigh(high)
  for (const off of recordOffsets(sb)) {
    dev.write(off, rec)
    dev.persist(off, HWM_SIZE)
  }
}

/**
 * Raise the mark from `from` to `to`: zero the slots [from, to) first (past
 * the durable mark nothing reads them), durable, then the mark. Called before
 * the commit of the transaction that writes an inode in [from, to): a crash
 * anywhere leaves every slot below the mark free or valid.
 */
export function raiseInodeHigh(dev: FsDevice, sb: Superblock, from: number, to: number): void {
  const off = sb.inodeTableStart * sb.blockSize + from * INODE_SIZE
  dev.zero(off, (to - from) * INODE_SIZE)
  dev.persist(off, (to - from) * INODE_SIZE)
  writeInodeHigh(dev, sb, to)
}

/** The mark a transaction needing slot `need - 1` raises to: the next inode-table block past an eighth more, so it moves once per many creates. */
export function nextInodeHigh(sb: Superblock, need: number): number {
  const perBlock = sb.blockSize / INODE_SIZE
  return Math.min(sb.inodeCount, Math.ceil((need + (need >> 3)) / perBlock) * perBlock)
}
