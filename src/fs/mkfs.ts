/** mkfs: zero the metadata, write the bitmap, the root and quarantine inodes, then the superblocks. */
import { durabilityProfile } from './durability.js'
import { randomBytes } from 'node:crypto'
import { pmemError } from '../errors.js'
import { Bitmap } from './bitmap.js'
import { breakScopeOf, checkDevice, checkHookOpts } from './check.js'
import type { FsDevice } from './device.js'
import { computeGeometry, encodeInode, encodeSuperblock, encodeUtf8, FS_VERSION, IFLAG_QUARANTINE, type Inode, INODE_SIZE, NAME_MAX, QUARANTINE_INO, ROOT_INO, S_IFDIR, S_IFREG, SB_SIZE, STATE_CLEAN, type Superblock } from './layout.js'
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
  const total = g.dataStart + 1
  let done = 0
  const step = Math.max(1, Math.floor(total / 100))
  // Zero every metadata block (superblock, journal, bitmap, inode table) and the backup block.
  const CH = 256
  for (let b = 0; b < g.dataStart; b += CH) {
    const n = Math.min(CH, g.dataStart - b)
    dev.zero(b * bs, n * bs)
    dev.persist(b * bs, n * bs)
    const before = done
    done += n
    if (progress && Math.floor(done / step) !== Math.floor(before / step)) progress({ phase: 'zero', done, total })
  }
  dev.zero(g.backupBlock * bs, bs)
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
    version: FS_VERSION, features: 0, blockSize: bs, blockCount: g.blockCount, uuid: randomBytes(16), label,
    journalStart: g.journalStart, journalBlocks: g.journalBlocks, bitmapStart: g.bitmapStart, bitmapBlocks: g.bitmapBlocks,
    inodeTableStart: g.inodeTableStart, inodeTableBlocks: g.inodeTableBlocks, inodeCount: g.inodeCount, inodeSize: INODE_SIZE,
    dataStart: g.dataStart, backupBlock: g.backupBlock, rootIno: ROOT_INO, quarantineIno: QUARANTINE_INO,
    state: STATE_CLEAN, nameMax: NAME_MAX, createdMs: now, mountCount: 0,
  }
  const sbBytes = encodeSuperblock(sb)
  dev.persist(g.bitmapStart * bs, g.bitmapBlocks * bs)
  dev.persist(it, 3 * INODE_SIZE)
  dev.write(g.backupBlock * bs, sbBytes)
  dev.persist(g.backupBlock * bs, bs)
  // The primary superblock goes last: until it is durable the device has no file system.
  dev.write(0, sbBytes)
  dev.persist(0, SB_SIZE)
  progress?.({ phase: 'done', done: total, total })
}
