/**
 * The pmemu extent file system (SPEC §4): mkfs, mount (journal replay),
 * unmount and the file/directory operations. The on-region format is in
 * layout.ts and docs/format.md; fsck is in fsck.ts.
 *
 * PmemFs is a thin façade over the internal state (state.ts); the operations
 * live in files by concern (listed in state.ts) and take that state first.
 *
 * Concurrency model: JavaScript runs one call at a time, and every metadata
 * operation runs synchronously to completion (its transaction is durable when
 * the call returns). The only operations that wait are truncate, punchHole and
 * an O_TRUNC open, which await the layout-break hook the DAX layer installs;
 * they are serialised per inode by a lock, other files are not held up.
 *
 * Seams for the layers above:
 *   fs.attach(ext: FsExtension): Detach — the one way upper layers extend the
 *           fs (DAX: mmap, breakLayout, onFree, beforeUnmount; faults:
 *           checkDataRead/checkDataWrite/afterDataWrite/checkMetaRead); see types.ts
 *   DAX:    file.node / FsNode.pfnAt / extentAt / allocateForFault / hold / release
 *   faults: fs.shutdown, fs.blockOwner, quarantine (fs.quarantined / releaseQuarantine)
 *   crash:  onCrashPoint option / fs.onCrashPoint, dev.onCrash -> ENXIO
 */
import type { DurabilityName } from './durability.js'
import { inspect } from 'node:util'
import { isPmemuError } from '../errors.js'
import { formatUuid } from './check.js'
import type { FsDevice } from './device.js'
import type { PmemFile } from './file.js'
import { CRASH_POINTS, type CrashPoint, type CrashPointHook } from './journal.js'
import type { Superblock } from './layout.js'
import { formatDevice } from './mkfs.js'
import { mountState, unmountSync } from './mount.js'
import * as attrs from './attrs.js'
import * as ops from './ops.js'
import * as owner from './owner.js'
import type { FsState } from './state.js'
import type { PmemStats } from './stats.js'
import { attachExtension } from './extension.js'
import type { BlockOwner, BreakScope, Detach, FsExtension, FsInfo, MkfsOptions, MountOptions, StatFs } from './types.js'

export { CRASH_POINTS }
export type { CrashPoint, CrashPointHook }
export type {
  Progress, ProgressFn, MountOptions, BreakScope, MkfsOptions, StatFs, TruncateOptions, LayoutBreakOptions, LayoutBreaker, OnFree,
  MmapResult, MmapFactory, MmapOptions, IoContext, BlockOwner, FsInfo, FsExtension, ReadRefusal, Detach,
} from './types.js'
export { isMounted } from './state.js'
export { PmemStats } from './stats.js'
export { FsNode } from './inodes.js'
export { PmemFile } from './file.js'
export { formatUuid, checkHookOpts, checkDevice } from './check.js'
export { BREAK_SCOPES } from './types.js'

export class PmemFs {
  /** Crash points a transaction passes, in order (same as CRASH_POINTS). */
  static readonly crashPoints: readonly CrashPoint[] = CRASH_POINTS
  readonly crashPoints: readonly CrashPoint[] = CRASH_POINTS
  readonly #s: FsState

  /** @internal use mount() or mkfs() */
  constructor(s: FsState) {
    this.#s = s
    s.fs = this
  }

  get device(): FsDevice { return this.#s.device }
  get blockSize(): number { return this.#s.blockSize }
  get blockCount(): number { return this.#s.blockCount }
  get maxFileSize(): number { return this.#s.maxFileSize }
  /** The durability profile this mount models (MountOptions.durability; default 'strict'). */
  get durability(): DurabilityName { return this.#s.durability }
  /** What truncate and punch-hole break (MountOptions.breakScope; default 'file'). */
  get breakScope(): BreakScope { return this.#s.breakScope }

  // ------------------------------------------------------------ public: hooks

  /** The crash-point hook (settable at any time; undefined = none). */
  get onCrashPoint(): CrashPointHook | undefined { return this.#s.journal.hook }
  set onCrashPoint(fn: CrashPointHook | undefined) { this.#s.journal.hook = fn }

  /**
   * Plug an upper layer into this fs (the DAX layer, fault injection): its
   * hooks run on the paths documented on FsExtension; several extensions
   * compose. Returns the function that detaches it again.
   */
  attach(ext: FsExtension): Detach { return attachExtension(this.#s, ext) }

  /** Throws the error every call fails with once the fs is shut down, gone with its device, or unmounted. */
  assertLive(syscall: string, path?: string): void { this.#s.live(syscall, path) }

  get label(): string { return this.#s.sb.label }
  get uuid(): string { return formatUuid(this.#s.sb.uuid) }
  get isDead(): boolean { return this.#s.dead !== undefined }

  /** A small summary: JSON.stringify(fs) must not walk the device (that aborts Node on large devices). */
  toJSON(): Record<string, unknown> {
    const dev = this.device as { path?: string }
    return {
      type: 'PmemFs', device: dev.path ?? null, label: this.label, uuid: this.uuid, blockSize: this.blockSize,
      blockCount: this.blockCount, durability: this.durability, breakScope: this.breakScope,
      openFiles: this.#s.files.size, dead: this.isDead, unmounted: this.#s.unmounted,
    }
  }

  [inspect.custom](): string {
    return `PmemFs ${inspect(this.toJSON())}`
  }
  get isUnmounted(): boolean { return this.#s.unmounted }
  /** Geometry, for `pmemu info`. */
  get geometry(): Readonly<Superblock> { return { ...this.#s.sb, uuid: this.#s.sb.uuid.slice() } }

  /**
   * Shut the fs down (XFS-style forced shutdown): every later call fails with
   * EIO. Used by the fault layer when metadata is poisoned. Nothing is written.
   * With code 'ENXIO' (the fault layer, when the device is unbound or closed)
   * every later call fails with ENXIO instead, and the device is free to be
   * mounted again (as after a crash).
   */
  shutdown(reason: string, code: 'EIO' | 'ENXIO' = 'EIO'): void { this.#s.shutdown(reason, code) }

  // ------------------------------------------------------------ public API

  open(path: string, flags: string | number = 'r', mode = 0o666): Promise<PmemFile> { return ops.openFile(this.#s, path, flags, mode) }

  /**
   * open(2) without waiting. Truncating a non-empty file ('w', O_TRUNC) may have to
   * wait for DAX mappings and DMA pins to let go, so here it fails with EAGAIN
   * (nothing changed): use {@link open} for it.
   */
  openSync(path: string, flags: string | number = 'r', mode = 0o666): PmemFile { return ops.openSync(this.#s, path, flags, mode) }

  async mkdir(path: string, mode = 0o777): Promise<void> { ops.mkdirSync(this.#s, path, mode) }
  /** mkdir(2), synchronously (metadata calls never wait). */
  mkdirSync(path: string, mode = 0o777): void { ops.mkdirSync(this.#s, path, mode) }

  async readdir(path: string): Promise<string[]>
  async readdir(path: string, opts: { withFileTypes: true }): Promise<Array<{ name: string; ino: number; type: 'file' | 'directory'; isFile(): boolean; isDirectory(): boolean }>>
  async readdir(path: string, opts?: { withFileTypes?: boolean }): Promise<unknown[]> {
    return ops.readdirPath(this.#s, path, opts as { withFileTypes: true })
  }

  readdirSync(path: string): string[]
  readdirSync(path: string, opts: { withFileTypes: true }): Array<{ name: string; ino: number; type: 'file' | 'directory'; isFile(): boolean; isDirectory(): boolean }>
  readdirSync(path: string, opts?: { withFileTypes?: boolean }): unknown[] {
    return ops.readdirPath(this.#s, path, opts as { withFileTypes: true })
  }

  async stat(path: string): Promise<PmemStats> { return ops.statPath(this.#s, path) }
  statSync(path: string): PmemStats { return ops.statPath(this.#s, path) }

  async lstat(path: string): Promise<PmemStats> { return ops.statPath(this.#s, path) }
  lstatSync(path: string): PmemStats { return ops.statPath(this.#s, path) }

  async exists(path: string): Promise<boolean> {
    try { await this.stat(path); return true } catch (e) {
      if (isPmemuError(e, 'ENOENT') || isPmemuError(e, 'ENOTDIR')) return false
      throw e
    }
  }

  async unlink(path: string): Promise<void> { ops.unlinkPath(this.#s, path) }
  unlinkSync(path: string): void { ops.unlinkPath(this.#s, path) }
  async rmdir(path: string): Promise<void> { ops.rmdirPath(this.#s, path) }
  rmdirSync(path: string): void { ops.rmdirPath(this.#s, path) }
  /** Atomic rename, replacing the target as rename(2) does. */
  async rename(oldPath: string, newPath: string): Promise<void> { ops.renamePath(this.#s, oldPath, newPath) }
  renameSync(oldPath: string, newPath: string): void { ops.renamePath(this.#s, oldPath, newPath) }

  /**
   * utimes(2): set a file's access and modification times (milliseconds since the
   * epoch, fractional for sub-millisecond times); the change time becomes now.
   * Through the journal, durable when it returns.
   */
  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> { attrs.utimesPath(this.#s, path, atimeMs, mtimeMs) }
  utimesSync(path: string, atimeMs: number, mtimeMs: number): void { attrs.utimesPath(this.#s, path, atimeMs, mtimeMs) }

  /**
   * chmod(2): set the permission bits (mode & 0o7777; the file type is kept).
   * pmemu stores them and reports them in stat but enforces no permissions.
   */
  async chmod(path: string, mode: number): Promise<void> { attrs.chmodPath(this.#s, path, mode) }
  chmodSync(path: string, mode: number): void { attrs.chmodPath(this.#s, path, mode) }

  /** link(2): a second name for an existing file (not a directory: EPERM); the link count goes up. */
  async link(existingPath: string, newPath: string): Promise<void> { ops.linkPath(this.#s, existingPath, newPath) }
  linkSync(existingPath: string, newPath: string): void { ops.linkPath(this.#s, existingPath, newPath) }

  statfs(): StatFs { return owner.statfs(this.#s) }

  /** Close every file, release orphans, mark the superblock clean. On a crashed or shut-down fs it only detaches. */
  async unmount(): Promise<void> { unmountSync(this.#s) }

  /** Who owns block `pfn` (reverse map, for the fault layer). O(extents). */
  blockOwner(pfn: number): BlockOwner { return owner.blockOwner(this.#s, pfn) }
  /** True when a block holds file-system metadata (superblocks, journal, bitmap, inodes, directories, extent blocks). */
  isMetadataBlock(pfn: number): boolean { return owner.isMetadataBlock(this.#s, pfn) }
  /** Quarantined blocks as runs [pfn, count]. */
  quarantined(): Array<[number, number]> { return owner.quarantined(this.#s) }
  /** Return quarantined blocks [pfn, pfn+count) to the free list (journaled). */
  releaseQuarantine(pfn: number, count = 1): void { owner.releaseQuarantine(this.#s, pfn, count) }
  /** Summary for `pmemu info`. */
  info(): FsInfo { return owner.fsInfoOf(this.#s) }
}

// --------------------------------------------------------------------- entry points

/** Format the device and mount the new file system. */
export async function mkfs(dev: FsDevice, opts: MkfsOptions = {}): Promise<PmemFs> {
  formatDevice(dev, opts)
  return new PmemFs(mountState(dev, opts))
}

/** Mount the file system on the device, replaying the journal and releasing orphans. */
export async function mount(dev: FsDevice, opts: MountOptions = {}): Promise<PmemFs> {
  return new PmemFs(mountState(dev, opts))
}
