/** mkfs: zero the blocks a reader looks at, write the bitmap, the root and quarantine inodes, then the superblocks. */
import { durabilityProfile } from './durability.js'
import { randomBytes } from 'node:crypto'
import { pmemError } from '../errors.js'
import { Bitmap } from './bitmap.js'
import { breakScopeOf, checkDevice, checkHookOpts } from './check.js'
import type { FsDevice } from './device.js'
import { computeGeometry, encodeInode, encodeSuperblock, encodeUtf8, FEATURE_INODE_HIGH, FIRST_FREE_INO, FS_VERSION, IFLAG_QUARANTINE, type Inode, INODE_SIZE, NAME_MAX, QUARANTINE_INO, ROOT_INO, S_IFDIR, S_IFREG, SB_SIZE, STATE_CLEAN, type Superblock } from './layout.js'
import { writeInodeHigh } from './inodehigh.js'
import { mountedOn } from './state.js'
import type { MkfsOptions } from './types.js'

/** Write a new, empty file system on `dev` (not mounted). */
export function formatDevice(dev: FsDevice, opts: MkfsOptions = {}): void {
  checkDevice(dev, 'mkfs')
  checkHookOpts(opts, 'mkfs')
  durabilityProfile(opts.durability, 'mkfs')
  breakScopeOf(opts.breakScope, 'mkfs')
  if (dev.readOnly) throw pmemError('EROFS', 'mkfs', 'read-only device')
  if (mountedOn.has(dev)) throw pmemError('EBUSY', 'mkfs', 'the device has a mounted file system')
  const label = opts.label ?? ''
  if (typeof label !== 'string' || encodeUtf8(label).length > 63 || label.includes('\0')) {
    throw pmemError('EINVAL', 'mkfs', 'label must be a string of at most 63 UTF-8 bytes without NUL')
  }
  for (const k of ['inodes', 'journalBlocks'] as const) {
    const v = opts[k]
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)) throw pmemError('EINVAL', 'mkfs', `${k} must be a positive integer`)
  }
  const bs = dev.pageSize
  const g = computeGeometry(bs, dev.pageCount, { inodes: opts.inodes, journalBlocks: opts.journalBlocks })
  if (typeof g === 'string') throw pmemError('ENOSPC', 'mkfs', g)
  const progress = opts.progress
  // Zero only what a reader looks at: the superblock block, the journal's
  // first block (its commit record says "no transaction") and the first
  // inode-table block (slots below the inode high-water mark must be free or
  // valid). The rest of the journal is read only under a commit record's crc,
  // the inode table from the high-water mark on is never read (slots are
  // zeroed as the mark rises), and the data area is zeroed as it is allocated:
  // a fresh sparse device stays sparse, and mkfs costs the same at 64 GiB as at 64 MiB.
  const zeroed: Array<[number, number]> = [[0, 1], [g.journalStart, 1], [g.inodeTableStart, 1], [g.backupBlock, 1]]
  const total = zeroed.length + 1
  let done = 0
  for (const [b, n] of zeroed) {
    dev.zero(b * bs, n * bs)
    dev.persist(b * bs, n * bs)
    progress?.({ phase: 'zero', done: ++done, total })
  }
  // Bitmap: metadata and the backup superblock are allocated.
  const bm = new Bitmap(g.blockCount)
  bm.setRange(0, g.dataStart)
  bm.setRange(g.backupBlock, 1)
  dev.write(g.bitmapStart * bs, bm.bytes)
  // Quarantine inode (1) and root (2).
  const now = Date.now()
  const base = { size: 0, atime: now, mtime: now, ctime: now, birthtime: now, generation: 0, extents: [], overflow: [] }
  const q: Inode = { ...base, ino: QUARANTINE_INO, mode: S_IFREG, nlink: 1, parent: 0, flags: IFLAG_QUARANTINE }
  const root: Inode = { ...base, ino: ROOT_INO, mode: S_IFDIR | 0o755, nlink: 2, parent: ROOT_INO, flags: 0 }
  const it = g.inodeTableStart * bs
  dev.write(it + QUARANTINE_INO * INODE_SIZE, encodeInode(q))
  dev.write(it + ROOT_INO * INODE_SIZE, encodeInode(root))
  const sb: Superblock = {
    version: FS_VERSION, features: FEATURE_INODE_HIGH, blockSize: bs, blockCount: g.blockCount, uuid: randomBytes(16), label,
    journalStart: g.journalStart, journalBlocks: g.journalBlocks, bitmapStart: g.bitmapStart, bitmapBlocks: g.bitmapBlocks,
    inodeTableStart: g.inodeTableStart, inodeTableBlocks: g.inodeTableBlocks, inodeCount: g.inodeCount, inodeSize: INODE_SIZE,
    dataStart: g.dataStart, backupBlock: g.backupBlock, rootIno: ROOT_INO, quarantineIno: QUARANTINE_INO,
    state: STATE_CLEAN, nameMax: NAME_MAX, createdMs: now, mountCount: 0,
  }
  const sbBytes = encodeSuperblock(sb)
  dev.persist(g.bitmapStart * bs, g.bitmapBlocks * bs)
  dev.persist(it, 3 * INODE_SIZE)
  writeInodeHigh(dev, sb, FIRST_FREE_INO)
  dev.write(g.backupBlock * bs, sbBytes)
  dev.persist(g.backupBlock * bs, SB_SIZE)
  // The primary superblock goes last: until it is durable the device has no file system.
  dev.write(0, sbBytes)
  dev.persist(0, SB_SIZE)
  progress?.({ phase: 'done', done: total, total })
}
