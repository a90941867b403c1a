/**
 * The internal state of one mounted file system. PmemFs (fs.ts) is a thin
 * façade over it; the operations live in files by concern and take the
 * state as their first argument:
 *   tx.ts / alloc.ts / commit.ts   transactions, block and inode allocation, journal commit
 *   dataio.ts                      the one place data and metadata bytes are read and written
 *   dir.ts / namei.ts              directory blocks, path resolution
 *   inodes.ts                      live nodes (FsNode), release of inodes and block ranges
 *   io.ts / truncate.ts / fault.ts read/write/fallocate, truncate/punch-hole, DAX fault allocation
 *   ops.ts                         path operations (open, mkdir, unlink, rename, ...)
 *   owner.ts                       statfs, reverse map, quarantine
 *   mount.ts / mkfs.ts             mount (journal replay, orphans), unmount, format
 * Nothing here is part of the published API.
 */
import { durabilityProfile, type DurabilityName } from './durability.js'
import { pmemError, type ErrorCode, type PmemuError } from '../errors.js'
import { rootLogger, subsystemLogger, type Logger } from '../util/log.js'
import type { Bitmap } from './bitmap.js'
import type { FsDevice } from './device.js'
import { Journal } from './journal.js'
import { FIRST_FREE_INO, MAX_LOGICAL_BLOCKS, type Inode, type Superblock } from './layout.js'
import type { FsNode } from './inodes.js'
import type { PmemFile } from './file.js'
import type { PmemFs } from './fs.js'
import { emptyHooks, type Hooks } from './extension.js'
import type { BreakScope, DirMem, FsExtension, MountOptions } from './types.js'
import { breakScopeOf } from './check.js'

/** The state mounted on each device object in this process. */
export const mountedOn = new WeakMap<FsDevice, FsState>()

/** True when a PmemFs is mounted on this device object in this process. */
export function isMounted(dev: FsDevice): boolean { return mountedOn.has(dev) }

export class FsState {
  readonly device: FsDevice
  readonly blockSize: number
  readonly blockCount: number
  readonly maxFileSize: number
  /** The façade handed to users (set by PmemFs; fsck's repair mount has none). */
  fs!: PmemFs
  sb: Superblock
  journal: Journal
  bitmap!: Bitmap
  inodes: Array<Inode | undefined> = []
  reservedInos = new Set<number>()
  inoCursor = FIRST_FREE_INO
  /** The durable inode high-water mark (inodehigh.ts; inodeCount on an image without one); set by mount. */
  inodeHigh: number
  /** Where allocation hands out new inode numbers from: inodeHigh or above (commit raises inodeHigh to cover them). */
  inoHigh: number
  freeInodeCount = 0
  dirs = new Map<number, DirMem>()
  nodes = new Map<number, FsNode>()
  files = new Set<PmemFile>()
  allocCursor: number
  dead: { code: ErrorCode; reason: string } | undefined
  unmounted = false
  unsubscribeCrash: (() => void) | undefined
  log: Logger
  /** Attached extensions (fs.attach), in attach order, and their hooks per kind. */
  extensions: FsExtension[] = []
  hooks: Hooks = emptyHooks()

  readonly durability: DurabilityName
  /** What truncate / punch-hole break (MountOptions.breakScope). */
  readonly breakScope: BreakScope

  constructor(dev: FsDevice, sb: Superblock, opts: MountOptions) {
    this.durability = durabilityProfile(opts.durability, 'mount').name
    this.breakScope = breakScopeOf(opts.breakScope, 'mount')
    this.device = dev
    this.sb = sb
    this.blockSize = sb.blockSize
    this.blockCount = sb.blockCount
    this.maxFileSize = MAX_LOGICAL_BLOCKS * sb.blockSize
    this.journal = new Journal(dev, sb)
    this.journal.hook = opts.onCrashPoint
    this.allocCursor = sb.dataStart
    this.inodeHigh = this.inoHigh = sb.inodeCount
    this.log = subsystemLogger(rootLogger(opts.logger ?? (dev as { log?: Logger }).log), 'fs')
  }

  get dataEnd(): number { return this.sb.backupBlock }

  /** Throws the right error when the fs can no longer be used. */
  live(syscall: string, path?: string): void {
    if (this.dead) throw pmemError(this.dead.code, syscall, this.dead.reason, { path })
    if (this.unmounted) throw pmemError('EIO', syscall, 'file system is unmounted', { path })
  }

  writable(syscall: string, path?: string): void {
    this.live(syscall, path)
    if (this.device.readOnly) throw pmemError('EROFS', syscall, 'read-only device', { path })
  }

  corrupt(msg: string, syscall = 'mount'): PmemuError {
    return pmemError('EFSCORRUPTED', syscall, msg)
  }

  /**
   * Shut the fs down (XFS-style forced shutdown): every later call fails with
   * EIO. Used by the fault layer when metadata is poisoned. Nothing is written.
   * With code 'ENXIO' (the fault layer, when the device is unbound or closed)
   * every later call fails with ENXIO instead, and the device is free to be
   * mounted again (as after a crash).
   */
  shutdown(reason: string, code: 'EIO' | 'ENXIO' = 'EIO'): void {
    if (code === 'ENXIO') {
      // The device is gone (unbound, closed, crashed): ENXIO wins over an earlier EIO shutdown.
      if (this.dead?.code !== 'ENXIO') {
        this.log.warn({ reason }, 'device gone')
        this.dead = { code: 'ENXIO', reason }
      }
      this.detach()
      return
    }
    if (this.dead) return
    this.log.error({ reason }, 'file system shut down')
    this.dead = { code: 'EIO', reason: `file system shut down: ${reason}` }
  }

  crashed(): void {
    if (!this.dead) this.dead = { code: 'ENXIO', reason: 'the device crashed (power loss); mount it again' }
    this.detach()
  }

  detach(): void {
    this.unsubscribeCrash?.()
    this.unsubscribeCrash = undefined
    if (mountedOn.get(this.device) === this) mountedOn.delete(this.device)
  }
}
