/**
 * The pmemu extent file system (SPEC §4): mkfs, mount (journal replay),
 * unmount and the file/directory operations. The on-region format is in
 * layout.ts and docs/format.md; fsck is in fsck.ts.
 *
 * Concurrency model: JavaScript runs one call at a time, and every metadata
 * operation runs synchronously to completion (its transaction is durable when
 * the call returns). The only operations that wait are truncate, punchHole and
 * an O_TRUNC open, which await the layout-break hook the DAX layer installs;
 * they are serialised per inode by a lock, other files are not held up.
 *
 * Seams for the layers above (documented on the methods):
 *   DAX:    fs.setMmapFactory, fs.setLayoutBreaker, fs.setOnFree,
 *           file.node / FsNode.pfnAt / extentAt / allocateForFault / hold / release
 *   faults: fs.setIoHooks (every data read/write passes one place), fs.shutdown,
 *           fs.blockOwner, quarantine (fs.quarantined / releaseQuarantine)
 *   crash:  onCrashPoint option / fs.onCrashPoint, dev.onCrash -> ENXIO
 */
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { isPmemuError, pmemError, PmemuAbortError, PmemuError, type ErrorCode } from '../errors.js'
import { rootLogger, subsystemLogger, type Logger } from '../util/log.js'
import { Bitmap } from './bitmap.js'
import type { FsDevice } from './device.js'
import { blockCount, findExtent, forEachRun, insertExtent, lastEnd, mapBlock, removeRange } from './extents.js'
import { CRASH_POINTS, Journal, RecordBuilder, type CrashPoint, type CrashPointHook } from './journal.js'
import {
  checkExtents, computeGeometry, decodeDirBlock, decodeInode, decodeOverflow, decodeSuperblock, dirCapacity, DT_DIR, DT_REG,
  encodeDirBlock, encodeInode, encodeOverflow, encodeSuperblock, encodeUtf8, entrySize, extentsPerOverflow, FS_VERSION,
  HUGE_BYTES, IFLAG_QUARANTINE, INLINE_EXTENTS, INODE_SIZE, isDir, isReg, MAX_LOGICAL_BLOCKS, NAME_MAX, overflowBlocksFor,
  QUARANTINE_INO, ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, SB_SIZE, STATE_CLEAN, STATE_MOUNTED, FIRST_FREE_INO,
  type DirEntry, type Extent, type Inode, type Superblock,
} from './layout.js'
import { parseFlags, parsePath, type OpenFlags } from './path.js'

export { CRASH_POINTS }
export type { CrashPoint, CrashPointHook }

/** Progress of a long operation (mkfs zeroing, fsck passes): CLI progress bars hang off this. */
export interface Progress { phase: string; done: number; total: number }
export type ProgressFn = (p: Progress) => void

export interface MountOptions {
  logger?: Logger
  /** Called at every journal crash point; throwing there simulates power loss (the fs shuts down). */
  onCrashPoint?: CrashPointHook
}

export interface MkfsOptions extends MountOptions {
  /** Volume label, at most 63 UTF-8 bytes. */
  label?: string
  progress?: ProgressFn
  /** Number of inodes (default: one per 16 KiB, at least 64). */
  inodes?: number
  /** Journal size in blocks (default: 1/32 of the device, 16..8192). */
  journalBlocks?: number
}

export interface StatFs {
  type: number
  bsize: number
  frsize: number
  /** Total blocks of the device. */
  blocks: number
  /** Free blocks. */
  free: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  namemax: number
  /** Blocks held in quarantine (allocated, owned by nobody, never reused). */
  quarantined: number
}

export interface TruncateOptions { signal?: AbortSignal; timeoutMs?: number }

/** What the layout-break hook receives besides the file and page range. */
export interface LayoutBreakOptions { signal?: AbortSignal; timeoutMs?: number; reason: 'truncate' | 'punch-hole' | 'open-truncate' }
/**
 * Installed by the DAX layer: unmap pages [firstPage, endPage) of the file
 * from every mapping and wait (per the refcount model) until they may be
 * freed. Rejecting (ETIMEDOUT, AbortError…) cancels the operation with
 * nothing changed.
 */
export type LayoutBreaker = (file: PmemFile, firstPage: number, endPage: number, opts: LayoutBreakOptions) => Promise<void>
/**
 * Called for each data block of a regular file about to be freed. Return
 * false to quarantine it instead (it stays allocated, owned by the quarantine
 * inode, and is never handed out again until releaseQuarantine).
 */
export type OnFree = (pfn: number, info: { ino: number; index: number }) => boolean | void
/** Installed by the DAX layer: builds the mapping object file.mmap returns. */
/**
 * What `file.mmap()` returns. Empty here: the DAX layer (src/dax) widens it by
 * interface merging to its DaxMapping shape, so the fs does not import dax.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface MmapResult {}
export type MmapFactory = (file: PmemFile, offset: number, length: number, opts: MmapOptions) => MmapResult
export interface MmapOptions { write: boolean; sync: boolean; [k: string]: unknown }

/** Context passed to I/O hooks. */
export interface IoContext { ino: number; fileOffset: number }
/**
 * Every data read and write goes through these (poison checks, recovery
 * writes). beforeMetaRead guards metadata reads: if it throws, the fs shuts
 * down (EIO), as XFS does on a metadata memory failure.
 */
export interface IoHooks {
  beforeDataRead?: (devOffset: number, length: number, ctx: IoContext) => void
  beforeDataWrite?: (devOffset: number, length: number, ctx: IoContext) => void
  afterDataWrite?: (devOffset: number, length: number, ctx: IoContext) => void
  beforeMetaRead?: (devOffset: number, length: number, what: string) => void
}

export type BlockOwner =
  | { kind: 'superblock' | 'backup-superblock' | 'journal' | 'bitmap' | 'inode-table' | 'free' | 'unowned' }
  | { kind: 'data' | 'directory' | 'extent-block' | 'quarantine'; ino: number; index: number }

const mountedOn = new WeakMap<FsDevice, PmemFs>()

/** True when a PmemFs is mounted on this device object in this process. */
export function isMounted(dev: FsDevice): boolean { return mountedOn.has(dev) }

// ------------------------------------------------------------------ transactions

interface DirBlockMem { entries: Map<string, DirEntry>; used: number }
interface DirMem { blocks: DirBlockMem[]; index: Map<string, number> }
interface DirOverlay { blocks: Map<number, DirBlockMem>; index: Map<string, number>; removed: Set<string>; added: number }

class Tx {
  inodes = new Map<number, Inode | null>()
  allocated: Array<[number, number]> = []
  freed: Array<[number, number]> = []
  newInos: number[] = []
  dirs = new Map<number, DirOverlay>()
  sb: Superblock | undefined
  constructor(readonly op: string) {}
}

function cloneInode(i: Inode): Inode {
  return { ...i, extents: i.extents.map(e => ({ ...e })), overflow: i.overflow.slice() }
}

function validateInt(v: unknown, what: string, syscall: string, path?: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw pmemError('EINVAL', syscall, `${what} must be an integer >= ${min}, got ${String(v)}`, { path })
  }
  return v
}

function validateOpts(opts: TruncateOptions | undefined, syscall: string, path: string): TruncateOptions {
  if (opts === undefined || opts === null) return {}
  if (typeof opts !== 'object') throw pmemError('EINVAL', syscall, 'options must be an object', { path })
  if (opts.timeoutMs !== undefined && (typeof opts.timeoutMs !== 'number' || !(opts.timeoutMs >= 0))) {
    throw pmemError('EINVAL', syscall, `timeoutMs must be a number >= 0, got ${String(opts.timeoutMs)}`, { path })
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw pmemError('EINVAL', syscall, 'signal must be an AbortSignal', { path })
  }
  return opts
}

/** Largest number of extents removed by one transaction of a chunked free. */
const FREE_CHUNK_EXTENTS = 256
/** Largest number of blocks a write or fallocate allocates per transaction. */
const ALLOC_CHUNK_BLOCKS = 1024

// ----------------------------------------------------------------------- stats

export class PmemStats {
  dev = 0
  uid = 0
  gid = 0
  rdev = 0
  constructor(
    readonly ino: number, readonly mode: number, readonly nlink: number, readonly size: number,
    readonly blksize: number, readonly allocatedBlocks: number,
    readonly atimeMs: number, readonly mtimeMs: number, readonly ctimeMs: number, readonly birthtimeMs: number,
  ) {}
  /** 512-byte units, as stat(2) st_blocks. */
  get blocks(): number { return (this.allocatedBlocks * this.blksize) / 512 }
  get atime(): Date { return new Date(this.atimeMs) }
  get mtime(): Date { return new Date(this.mtimeMs) }
  get ctime(): Date { return new Date(this.ctimeMs) }
  get birthtime(): Date { return new Date(this.birthtimeMs) }
  isFile(): boolean { return isReg(this.mode) }
  isDirectory(): boolean { return isDir(this.mode) }
  isSymbolicLink(): boolean { return false }
  isBlockDevice(): boolean { return false }
  isCharacterDevice(): boolean { return false }
  isFIFO(): boolean { return false }
  isSocket(): boolean { return false }
}

// ------------------------------------------------------------------------ nodes

/**
 * The live, in-memory side of an inode: shared by every open PmemFile of it
 * and by DAX mappings. While a node is open or held its blocks stay
 * allocated, even after the last link is unlinked (POSIX unlink-while-open).
 */
export class FsNode {
  openCount = 0
  holds = 0
  /** Ranges of data stores not yet persisted ([devOffset, length]). */
  dirty: Array<[number, number]> = []
  timesDirty = false
  private lockTail: Promise<unknown> = Promise.resolve()

  constructor(readonly fs: PmemFs, readonly ino: number) {}

  /** Current size in bytes. */
  get size(): number { return this.fs._inode(this.ino)?.size ?? 0 }
  get isDirectory(): boolean { return isDir(this.fs._inode(this.ino)?.mode ?? 0) }
  get nlink(): number { return this.fs._inode(this.ino)?.nlink ?? 0 }

  /** The pfn backing file page `index`, or null for a hole. */
  pfnAt(index: number): number | null {
    this.fs._live('pfnAt')
    const ino = this.fs._inode(this.ino)
    return ino ? mapBlock(ino.extents, index) : null
  }

  /** The allocated run containing page `index`: { index, pfn, count } (count pages from index on), or null for a hole. */
  extentAt(index: number): { index: number; pfn: number; count: number } | null {
    this.fs._live('extentAt')
    const ino = this.fs._inode(this.ino)
    if (!ino) return null
    const i = findExtent(ino.extents, index)
    if (i < 0) return null
    const e = ino.extents[i]!
    return { index, pfn: e.p + (index - e.l), count: e.n - (index - e.l) }
  }

  /** Snapshot of the extent list (logical block l -> physical p, n blocks). */
  extents(): Extent[] {
    return (this.fs._inode(this.ino)?.extents ?? []).map(e => ({ ...e }))
  }

  /**
   * Journaled allocation for a DAX write fault at page `index` (must be below
   * EOF, else SIGBUS). Returns the run now backing `index`: with `huge`, when
   * the whole 2 MiB-aligned run around `index` is a hole inside EOF, tries an
   * aligned 2 MiB extent (index and pfn congruent mod 512) and returns it
   * whole; else one page. New blocks are zeroed and persisted before they
   * become reachable. Already-allocated pages are returned as they are.
   */
  allocateForFault(index: number, opts: { huge?: boolean } = {}): { index: number; pfn: number; count: number } {
    return this.fs._allocateForFault(this, index, opts.huge === true)
  }

  /** Pin the inode: its blocks stay allocated until release(), even if unlinked and closed. */
  hold(): void {
    this.fs._live('hold')
    this.holds++
  }

  release(): void {
    if (this.holds <= 0) throw pmemError('EINVAL', 'release', `inode ${this.ino} is not held`)
    this.holds--
    this.fs._maybeDrop(this)
  }

  /** Serialise async work on this inode (truncate, punch-hole). */
  lock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockTail.then(fn, fn)
    this.lockTail = run.catch(() => undefined)
    return run
  }

  addDirty(off: number, len: number): void {
    const last = this.dirty[this.dirty.length - 1]
    if (last && last[0] + last[1] === off) { last[1] += len; return }
    this.dirty.push([off, len])
    if (this.dirty.length > 256) {
      this.dirty.sort((a, b) => a[0] - b[0])
      const merged: Array<[number, number]> = []
      for (const [o, l] of this.dirty) {
        const m = merged[merged.length - 1]
        if (m && o <= m[0] + m[1] + 4096) m[1] = Math.max(m[1], o + l - m[0])
        else merged.push([o, l])
      }
      this.dirty = merged.length > 64 ? [[merged[0]![0], merged[merged.length - 1]![0] + merged[merged.length - 1]![1] - merged[0]![0]]] : merged
    }
  }
}

// ------------------------------------------------------------------------ files

export class PmemFile {
  private closed = false
  /** The file position used when read/write get no position. */
  position = 0

  constructor(readonly fs: PmemFs, readonly node: FsNode, readonly flags: Readonly<OpenFlags>, readonly path: string) {}

  get ino(): number { return this.node.ino }
  /** Current file size in bytes. */
  get size(): number { return this.node.size }
  get isClosed(): boolean { return this.closed }

  /** A small summary: JSON.stringify(file) must not walk the fs and its device. */
  toJSON(): Record<string, unknown> {
    return { type: 'PmemFile', path: this.path, ino: this.ino, size: this.size, position: this.position, flags: { ...this.flags }, closed: this.closed }
  }

  [inspect.custom](): string {
    return `PmemFile ${inspect(this.toJSON())}`
  }

  private check(syscall: string): void {
    if (this.closed) throw pmemError('EBADF', syscall, 'file is closed', { path: this.path })
    this.fs._live(syscall, this.path)
  }

  /** Read into buf at `position` (or the file position); returns bytes read (0 at EOF). */
  read(buf: Uint8Array, position?: number | null): number {
    this.check('read')
    if (!(buf instanceof Uint8Array)) throw pmemError('EINVAL', 'read', 'buffer must be a Uint8Array', { path: this.path })
    if (!this.flags.read) throw pmemError('EBADF', 'read', 'file not open for reading', { path: this.path })
    if (this.node.isDirectory) throw pmemError('EISDIR', 'read', 'is a directory', { path: this.path })
    const usePos = position === undefined || position === null
    const pos = usePos ? this.position : validateInt(position, 'position', 'read', this.path)
    const n = this.fs._readAt(this.node, buf, pos, this.path)
    if (usePos) this.position += n
    return n
  }

  /** Write buf at `position` (or the file position; always at EOF in append mode); returns bytes written. */
  write(buf: Uint8Array, position?: number | null): number {
    this.check('write')
    if (!(buf instanceof Uint8Array)) throw pmemError('EINVAL', 'write', 'buffer must be a Uint8Array', { path: this.path })
    if (!this.flags.write) throw pmemError('EBADF', 'write', 'file not open for writing', { path: this.path })
    const usePos = position === undefined || position === null
    let pos = usePos ? this.position : validateInt(position, 'position', 'write', this.path)
    if (this.flags.append) pos = this.node.size
    const n = this.fs._writeAt(this.node, buf, pos, this.path)
    if (usePos || this.flags.append) this.position = pos + n
    if (this.flags.sync) this.fs._fsync(this.node, this.path)
    return n
  }

  stat(): PmemStats {
    this.check('fstat')
    return this.fs._stat(this.node.ino)
  }

  /** futimes(2): set access and modification times (ms since the epoch); see {@link PmemFs.utimes}. */
  async utimes(atimeMs: number, mtimeMs: number): Promise<void> {
    this.check('futime')
    this.fs._setTimes(this.node.ino, atimeMs, mtimeMs, 'futime', this.path)
  }

  /** fchmod(2): set the permission bits; see {@link PmemFs.chmod}. */
  async chmod(mode: number): Promise<void> {
    this.check('fchmod')
    this.fs._setMode(this.node.ino, mode, 'fchmod', this.path)
  }

  /** Make the file's data (and times) durable. Metadata changes are durable as soon as each call returns. */
  async fsync(): Promise<void> {
    this.check('fsync')
    this.fs._fsync(this.node, this.path)
  }

  async datasync(): Promise<void> { return this.fsync() }

  /** fsync without a promise (it never waits). */
  fsyncSync(): void {
    this.check('fsync')
    this.fs._fsync(this.node, this.path)
  }

  /** close without a promise (it never waits). */
  closeSync(): void {
    if (this.closed) throw pmemError('EBADF', 'close', 'file is already closed', { path: this.path })
    this._forceClose()
  }

  /** Grow the file (a hole) without waiting; shrinking may wait for mappings and pins, so it is EAGAIN here: use {@link truncate}. */
  truncateSync(length = 0): void {
    this.check('ftruncate')
    const len = validateInt(length, 'length', 'ftruncate', this.path)
    if (!this.flags.write) throw pmemError('EINVAL', 'ftruncate', 'file not open for writing', { path: this.path })
    this.fs._growSync(this, len)
  }

  async close(): Promise<void> {
    if (this.closed) throw pmemError('EBADF', 'close', 'file is already closed', { path: this.path })
    this._forceClose()
  }

  /** @internal */
  _forceClose(): void {
    if (this.closed) return
    this.closed = true
    this.fs._closeFile(this)
  }

  /** Grow (holes) or shrink the file. Shrinking first calls the layout breaker for the pages it frees. */
  async truncate(length = 0, opts?: TruncateOptions): Promise<void> {
    this.check('ftruncate')
    const len = validateInt(length, 'length', 'ftruncate', this.path)
    const o = validateOpts(opts, 'ftruncate', this.path)
    if (!this.flags.write) throw pmemError('EINVAL', 'ftruncate', 'file not open for writing', { path: this.path })
    await this.fs._truncate(this, len, o, 'truncate')
  }

  /** Allocate (zeroed) blocks for [offset, offset+length), extending the size if needed (fallocate mode 0). */
  async fallocate(offset: number, length: number): Promise<void> {
    this.check('fallocate')
    const off = validateInt(offset, 'offset', 'fallocate', this.path)
    const len = validateInt(length, 'length', 'fallocate', this.path, 1)
    if (!this.flags.write) throw pmemError('EBADF', 'fallocate', 'file not open for writing', { path: this.path })
    this.fs._fallocate(this.node, off, len, this.path)
  }

  /** Deallocate [offset, offset+length) (it reads as zeros); the size does not change (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE). */
  async punchHole(offset: number, length: number, opts?: TruncateOptions): Promise<void> {
    this.check('fallocate')
    const off = validateInt(offset, 'offset', 'fallocate', this.path)
    const len = validateInt(length, 'length', 'fallocate', this.path, 1)
    const o = validateOpts(opts, 'fallocate', this.path)
    if (!this.flags.write) throw pmemError('EBADF', 'fallocate', 'file not open for writing', { path: this.path })
    await this.fs._punchHole(this, off, len, o)
  }

  /** DAX seam: pfn of file page `index` or null (hole). */
  pfnAt(index: number): number | null { this.check('pfnAt'); return this.node.pfnAt(index) }
  extentAt(index: number): { index: number; pfn: number; count: number } | null { this.check('extentAt'); return this.node.extentAt(index) }
  allocateForFault(index: number, opts?: { huge?: boolean }): { index: number; pfn: number; count: number } {
    this.check('allocateForFault')
    if (!this.flags.write) throw pmemError('EACCES', 'allocateForFault', 'file not open for writing', { path: this.path })
    return this.node.allocateForFault(index, opts)
  }
  hold(): void { this.check('hold'); this.node.hold() }
  release(): void { this.node.release() }

  /**
   * Map [offset, offset+length) of the file. Calls the factory installed with
   * fs.setMmapFactory (the DAX layer); without one, EOPNOTSUPP.
   */
  mmap(offset: number, length: number, opts: { write?: boolean; sync?: boolean; [k: string]: unknown } = {}): MmapResult {
    this.check('mmap')
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
      throw pmemError('EINVAL', 'mmap', `options must be an object ({ write, sync }), got ${opts === null ? 'null' : typeof opts}`, { path: this.path })
    }
    for (const k of ['write', 'sync'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') {
        throw pmemError('EINVAL', 'mmap', `${k} must be a boolean, got ${typeof opts[k] === 'string' ? `'${String(opts[k])}'` : String(opts[k])}`, { path: this.path })
      }
    }
    const off = validateInt(offset, 'offset', 'mmap', this.path)
    const len = validateInt(length, 'length', 'mmap', this.path, 1)
    if (off % this.fs.blockSize !== 0) throw pmemError('EINVAL', 'mmap', 'offset must be page-aligned', { path: this.path, offset: off })
    // A mapping keeps per-page state: one past what the fs could ever back would
    // allocate from the caller's number alone (2**53 bytes: a RangeError).
    const maxLen = this.fs.blockCount * this.fs.blockSize
    if (off + len > maxLen + this.fs.blockSize * 512) {
      throw pmemError('ENOMEM', 'mmap', `a mapping of [${off}, ${off}+${len}) reaches past anything this ${maxLen}-byte file system could back (the limit is its size plus 2 MiB)`, { path: this.path, offset: off, length: len })
    }
    if (this.node.isDirectory) throw pmemError('ENODEV', 'mmap', 'cannot map a directory', { path: this.path })
    if (!this.flags.read) throw pmemError('EACCES', 'mmap', 'file not open for reading', { path: this.path })
    if (opts.write && !this.flags.write) throw pmemError('EACCES', 'mmap', 'writable mapping of a file not open for writing', { path: this.path })
    const factory = this.fs._mmapFactory
    if (!factory) throw pmemError('EOPNOTSUPP', 'mmap', 'no DAX layer installed (fs.setMmapFactory)', { path: this.path })
    return factory(this, off, len, { ...opts, write: opts.write === true, sync: opts.sync === true })
  }
}

// -------------------------------------------------------------------------- fs

export class PmemFs {
  readonly device: FsDevice
  readonly blockSize: number
  readonly blockCount: number
  readonly maxFileSize: number
  /** Crash points a transaction passes, in order (same as CRASH_POINTS). */
  static readonly crashPoints: readonly CrashPoint[] = CRASH_POINTS
  readonly crashPoints: readonly CrashPoint[] = CRASH_POINTS

  private sb: Superblock
  private journal: Journal
  private bitmap!: Bitmap
  private inodes: Array<Inode | undefined> = []
  private reservedInos = new Set<number>()
  private inoCursor = FIRST_FREE_INO
  private freeInodeCount = 0
  private dirs = new Map<number, DirMem>()
  private nodes = new Map<number, FsNode>()
  private files = new Set<PmemFile>()
  private allocCursor: number
  private dead: { code: ErrorCode; reason: string } | undefined
  private unmounted = false
  private unsubscribeCrash: (() => void) | undefined
  private log: Logger
  private layoutBreaker: LayoutBreaker | undefined
  private onFree: OnFree | undefined
  private ioHooks: IoHooks = {}
  private beforeUnmount: (() => void) | undefined
  /** @internal */ _mmapFactory: MmapFactory | undefined

  private constructor(dev: FsDevice, sb: Superblock, opts: MountOptions) {
    this.device = dev
    this.sb = sb
    this.blockSize = sb.blockSize
    this.blockCount = sb.blockCount
    this.maxFileSize = MAX_LOGICAL_BLOCKS * sb.blockSize
    this.journal = new Journal(dev, sb)
    this.journal.hook = opts.onCrashPoint
    this.allocCursor = sb.dataStart
    this.log = subsystemLogger(rootLogger(opts.logger ?? (dev as { log?: Logger }).log), 'fs')
  }

  // ------------------------------------------------------------ public: hooks

  /** The crash-point hook (settable at any time; undefined = none). */
  get onCrashPoint(): CrashPointHook | undefined { return this.journal.hook }
  set onCrashPoint(fn: CrashPointHook | undefined) { this.journal.hook = fn }

  setLayoutBreaker(fn: LayoutBreaker | undefined): void { this.layoutBreaker = fn }
  setOnFree(fn: OnFree | undefined): void { this.onFree = fn }
  setMmapFactory(fn: MmapFactory | undefined): void { this._mmapFactory = fn }
  setIoHooks(hooks: IoHooks | undefined): void { this.ioHooks = hooks ?? {} }
  /**
   * Called at the start of unmount (and of fsck's repair unmount), before
   * files are closed and orphans released: the DAX layer unmaps everything
   * here so no mapping outlives the blocks it maps.
   */
  setBeforeUnmount(fn: (() => void) | undefined): void { this.beforeUnmount = fn }

  get label(): string { return this.sb.label }
  get uuid(): string { return formatUuid(this.sb.uuid) }
  get isDead(): boolean { return this.dead !== undefined }

  /** A small summary: JSON.stringify(fs) must not walk the device (that aborts Node on large devices). */
  toJSON(): Record<string, unknown> {
    const dev = this.device as { path?: string }
    return {
      type: 'PmemFs', device: dev.path ?? null, label: this.label, uuid: this.uuid, blockSize: this.blockSize,
      blockCount: this.blockCount, openFiles: this.files.size, dead: this.isDead, unmounted: this.unmounted,
    }
  }

  [inspect.custom](): string {
    return `PmemFs ${inspect(this.toJSON())}`
  }
  get isUnmounted(): boolean { return this.unmounted }
  /** Geometry, for `pmemu info`. */
  get geometry(): Readonly<Superblock> { return { ...this.sb, uuid: this.sb.uuid.slice() } }

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

  // --------------------------------------------------------------- mount

  /** @internal use mount() */
  static _mount(dev: FsDevice, opts: MountOptions = {}): PmemFs {
    checkDevice(dev, 'mount')
    checkHookOpts(opts, 'mount')
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
    const fs = new PmemFs(dev, sb0, opts)
    fs.loadAll()
    mountedOn.set(dev, fs)
    fs.unsubscribeCrash = dev.onCrash(() => fs.crashed())
    try {
      if (!dev.readOnly) {
        fs.recoverOrphans()
        const tx = new Tx('mount')
        tx.sb = { ...fs.sb, state: STATE_MOUNTED, mountCount: (fs.sb.mountCount + 1) >>> 0 }
        fs.commit(tx)
      }
    } catch (e) {
      fs.detach()
      throw e
    }
    fs.log.debug({ blocks: fs.blockCount, free: fs.bitmap.free }, 'mounted')
    return fs
  }

  private corrupt(msg: string, syscall = 'mount'): PmemuError {
    return pmemError('EFSCORRUPTED', syscall, msg)
  }

  private loadAll(): void {
    const dev = this.device
    const sb = this.sb
    const bs = this.blockSize
    // Journal recovery.
    const j = this.journal.inspect()
    if (j.state === 'committed') {
      if (dev.readOnly) throw pmemError('EROFS', 'mount', 'the journal needs recovery but the device is read-only')
      this.log.info({ seq: j.seq }, 'replaying journal')
      this.journal.replay(j.records)
      const again = new Uint8Array(SB_SIZE)
      dev.read(0, again)
      const sb2 = decodeSuperblock(again, dev)
      if (typeof sb2 === 'string') throw this.corrupt(`after journal replay: ${sb2}`)
      this.sb = sb2
    } else if (j.state === 'damaged') {
      if (!j.torn) throw this.corrupt(j.why)
      if (dev.readOnly) throw pmemError('EROFS', 'mount', `${j.why} and the device is read-only`)
      this.log.warn({ why: j.why }, 'discarding a torn journal commit record')
      this.journal.clear()
    }
    // Bitmap.
    const bm = new Uint8Array(sb.bitmapBlocks * bs)
    this.metaRead(sb.bitmapStart * bs, bm, 'bitmap')
    this.bitmap = new Bitmap(sb.blockCount, bm)
    for (let b = 0; b < sb.dataStart; b++) if (!this.bitmap.get(b)) throw this.corrupt(`bitmap: metadata block ${b} is marked free`)
    if (!this.bitmap.get(sb.backupBlock)) throw this.corrupt('bitmap: the backup superblock block is marked free')
    // Inodes.
    this.inodes = new Array(sb.inodeCount)
    const perRead = Math.max(1, Math.floor((1 << 20) / INODE_SIZE))
    const buf = new Uint8Array(perRead * INODE_SIZE)
    const ovf = new Uint8Array(bs)
    const dataEnd = sb.backupBlock
    let used = 0
    for (let first = 0; first < sb.inodeCount; first += perRead) {
      const count = Math.min(perRead, sb.inodeCount - first)
      const view = buf.subarray(0, count * INODE_SIZE)
      this.metaRead(sb.inodeTableStart * bs + first * INODE_SIZE, view, 'inode table')
      for (let k = 0; k < count; k++) {
        const ino = first + k
        if (ino === 0) continue
        const raw = decodeInode(view.subarray(k * INODE_SIZE, (k + 1) * INODE_SIZE), ino)
        if (raw === null) continue
        if (typeof raw === 'string') throw this.corrupt(`inode ${ino}: ${raw}`)
        const inode = raw.inode
        // Overflow chain.
        let remaining = raw.extentCount - inode.extents.length
        let next = raw.firstOverflow
        let index = 0
        const maxChain = overflowBlocksFor(raw.extentCount, bs)
        if (raw.extentCount > INLINE_EXTENTS && maxChain > dataEnd) throw this.corrupt(`inode ${ino}: extent count ${raw.extentCount} is impossible`)
        while (remaining > 0) {
          if (index >= maxChain || next < sb.dataStart || next >= dataEnd) throw this.corrupt(`inode ${ino}: overflow extent chain is broken at link ${index} (block ${next})`)
          this.metaRead(next * bs, ovf, 'extent block')
          const d = decodeOverflow(ovf, ino, index)
          if (typeof d === 'string') throw this.corrupt(`inode ${ino}: block ${next}: ${d}`)
          if (d.extents.length > remaining || (d.extents.length < extentsPerOverflow(bs) && d.extents.length !== remaining)) {
            throw this.corrupt(`inode ${ino}: overflow extent block ${next} holds ${d.extents.length} extents, ${remaining} expected`)
          }
          inode.overflow.push(next)
          inode.extents.push(...d.extents)
          remaining -= d.extents.length
          next = d.next
          index++
        }
        if (raw.extentCount <= INLINE_EXTENTS && raw.firstOverflow !== 0) throw this.corrupt(`inode ${ino}: overflow block set with only ${raw.extentCount} extents`)
        const bad = checkExtents(inode.extents, sb.dataStart, dataEnd)
        if (bad) throw this.corrupt(`inode ${ino}: ${bad}`)
        if (isDir(inode.mode) && (inode.parent < 1 || inode.parent >= sb.inodeCount)) throw this.corrupt(`inode ${ino}: directory has bad parent ${inode.parent}`)
        this.inodes[ino] = inode
        used++
      }
    }
    const q = this.inodes[QUARANTINE_INO]
    if (!q || !isReg(q.mode) || (q.flags & IFLAG_QUARANTINE) === 0) throw this.corrupt('inode 1 is not the quarantine inode')
    const root = this.inodes[ROOT_INO]
    if (!root || !isDir(root.mode)) throw this.corrupt('the root inode is missing or not a directory')
    this.freeInodeCount = sb.inodeCount - 1 - used
  }

  /** Release orphans (nlink 0: unlinked while open when the crash came) and trim blocks past EOF (interrupted truncates). */
  private recoverOrphans(): void {
    for (let ino = FIRST_FREE_INO; ino < this.inodes.length; ino++) {
      const inode = this.inodes[ino]
      if (!inode) continue
      if (inode.nlink === 0) {
        this.log.info({ ino }, 'releasing orphan inode')
        this.releaseInode(ino)
      } else if (isReg(inode.mode)) {
        const eofBlocks = Math.ceil(inode.size / this.blockSize)
        if (lastEnd(inode.extents) > eofBlocks) this.freeRange(ino, eofBlocks, MAX_LOGICAL_BLOCKS, 'mount')
      }
    }
  }

  // ------------------------------------------------------------- liveness

  /** @internal throws the right error when the fs can no longer be used. */
  _live(syscall: string, path?: string): void {
    if (this.dead) throw pmemError(this.dead.code, syscall, this.dead.reason, { path })
    if (this.unmounted) throw pmemError('EIO', syscall, 'file system is unmounted', { path })
  }

  private writable(syscall: string, path?: string): void {
    this._live(syscall, path)
    if (this.device.readOnly) throw pmemError('EROFS', syscall, 'read-only device', { path })
  }

  private crashed(): void {
    if (!this.dead) this.dead = { code: 'ENXIO', reason: 'the device crashed (power loss); mount it again' }
    this.detach()
  }

  private detach(): void {
    this.unsubscribeCrash?.()
    this.unsubscribeCrash = undefined
    if (mountedOn.get(this.device) === this) mountedOn.delete(this.device)
  }

  private metaRead(off: number, dst: Uint8Array, what: string): void {
    const hook = this.ioHooks.beforeMetaRead
    if (hook) {
      try { hook(off, dst.length, what) } catch (e) {
        this.shutdown(`metadata read failed (${what} at offset ${off}): ${(e as Error).message}`)
        throw pmemError('EIO', 'read', `metadata read failed (${what})`, { offset: off, cause: e })
      }
    }
    this.device.read(off, dst)
  }

  // ------------------------------------------------------------ data I/O

  /** The one place data is read: the fault layer's poison check hangs off beforeDataRead. */
  private dataRead(off: number, dst: Uint8Array, ctx: IoContext): void {
    const hook = this.ioHooks.beforeDataRead
    if (hook) {
      try { hook(off, dst.length, ctx) } catch (e) {
        // A hook refusing part of the range (poison) may say how many bytes at its start are readable:
        // they are copied, nothing past them is (see docs/faults.md).
        const clean = (e as { cleanBytes?: unknown } | null)?.cleanBytes
        if (typeof clean === 'number' && clean > 0 && clean < dst.length) this.device.read(off, dst.subarray(0, clean))
        throw e
      }
    }
    this.device.read(off, dst)
  }

  /** The one place data is stored (writes and zeroing). */
  private dataWrite(off: number, src: Uint8Array | number, ctx: IoContext): void {
    const len = typeof src === 'number' ? src : src.length
    this.ioHooks.beforeDataWrite?.(off, len, ctx)
    if (typeof src === 'number') this.device.zero(off, src)
    else this.device.write(off, src)
    this.ioHooks.afterDataWrite?.(off, len, ctx)
  }

  // ------------------------------------------------------------ inodes/tx

  /** @internal */
  _inode(ino: number): Inode | undefined { return this.inodes[ino] }

  private txInode(tx: Tx, ino: number): Inode | undefined {
    if (tx.inodes.has(ino)) return tx.inodes.get(ino) ?? undefined
    return this.inodes[ino]
  }

  private mut(tx: Tx, ino: number): Inode {
    const t = tx.inodes.get(ino)
    if (t) return t
    const cur = this.inodes[ino]
    if (!cur) throw new Error(`pmemu internal: inode ${ino} is not in use`)
    const c = cloneInode(cur)
    tx.inodes.set(ino, c)
    return c
  }

  private allocIno(tx: Tx, syscall: string, path: string): number {
    const n = this.sb.inodeCount
    for (let k = 0; k < n; k++) {
      const ino = ((this.inoCursor - FIRST_FREE_INO + k) % (n - FIRST_FREE_INO)) + FIRST_FREE_INO
      if (!this.inodes[ino] && !this.reservedInos.has(ino) && !tx.inodes.has(ino)) {
        this.reservedInos.add(ino)
        tx.newInos.push(ino)
        this.inoCursor = ino + 1
        return ino
      }
    }
    throw pmemError('ENOSPC', syscall, 'no free inodes', { path })
  }

  private newInode(tx: Tx, ino: number, mode: number, parent: number): Inode {
    const now = Date.now()
    const inode: Inode = {
      ino, mode, nlink: isDir(mode) ? 2 : 1, size: 0, atime: now, mtime: now, ctime: now, birthtime: now,
      parent: isDir(mode) ? parent : 0, flags: 0, generation: randomBytes(4).readUInt32LE(0), extents: [], overflow: [],
    }
    tx.inodes.set(ino, inode)
    return inode
  }

  private get dataEnd(): number { return this.sb.backupBlock }

  /** Allocate one run of up to `want` free blocks starting the search at `goal`. */
  private allocRun(tx: Tx, want: number, goal: number, syscall: string): [number, number] {
    const start0 = goal >= this.sb.dataStart && goal < this.dataEnd ? goal : this.allocCursor
    let s = this.bitmap.nextFree(start0, this.dataEnd)
    if (s < 0) s = this.bitmap.nextFree(this.sb.dataStart, this.dataEnd)
    if (s < 0) throw pmemError('ENOSPC', syscall, 'no space left on device')
    const n = this.bitmap.freeRunAt(s, want, this.dataEnd)
    this.takeRun(tx, s, n)
    return [s, n]
  }

  private takeRun(tx: Tx, p: number, n: number): void {
    this.bitmap.setRange(p, n)
    tx.allocated.push([p, n])
    this.allocCursor = p + n < this.dataEnd ? p + n : this.sb.dataStart
  }

  /** First free run of `want` blocks at pfn ≡ rem (mod H), or -1. */
  private findAligned(want: number, rem: number, H: number): number {
    const first = Math.ceil(this.sb.dataStart / H) * H
    for (let base = first; base + rem + want <= this.dataEnd; base += H) {
      const p = base + rem
      if (this.bitmap.freeRunAt(p, want, this.dataEnd) === want) return p
    }
    return -1
  }

  /**
   * Allocate blocks for logical [l, l+k) of `inode` (a hole) and insert the
   * extents. With `huge`, runs are placed congruent mod 2 MiB so aligned
   * 2 MiB file ranges land on aligned 2 MiB physical ranges (DAX folios).
   * Returns the new runs [l, p, n].
   */
  private allocFile(tx: Tx, inode: Inode, l: number, k: number, huge: boolean, syscall: string): Extent[] {
    const H = Math.max(1, HUGE_BYTES / this.blockSize)
    const runs: Extent[] = []
    while (k > 0) {
      let p = -1
      let n = 0
      const prevIdx = findExtent(inode.extents, l - 1)
      const prev = prevIdx >= 0 ? inode.extents[prevIdx]! : undefined
      const contig = prev ? prev.p + (l - prev.l) : -1
      if (huge && H > 1) {
        const rem = l % H
        const want = Math.min(k, H - rem)
        if (contig >= 0 && contig % H === rem && this.bitmap.freeRunAt(contig, want, this.dataEnd) === want) {
          p = contig; n = want
        } else {
          const a = this.findAligned(want, rem, H)
          if (a >= 0) { p = a; n = want }
        }
        if (p >= 0) this.takeRun(tx, p, n)
      }
      if (p < 0) [p, n] = this.allocRun(tx, k, contig, syscall)
      const run = { l, p, n }
      insertExtent(inode.extents, run)
      runs.push(run)
      l += n
      k -= n
    }
    return runs
  }

  /** Free a run of blocks in a transaction; data blocks of regular files go through the onFree hook. */
  private freeBlocks(tx: Tx, p: number, n: number, data: { ino: number; index: number } | null): void {
    const onFree = this.onFree
    if (n <= 0) return
    if (!data || !onFree) { tx.freed.push([p, n]); return }
    // The hook is per block (the DAX layer deletes one page-cache entry and
    // frees one page per call); everything around it is per run: the run is
    // split only where the hook's answer changes, and each piece is one
    // journal record (BITCLEAR) or one quarantine extent.
    const { ino, index } = data
    const end = p + n
    let runStart = p
    let runQ = onFree(p, { ino, index }) === false
    for (let b = p + 1; b < end; b++) {
      const q = onFree(b, { ino, index: index + (b - p) }) === false
      if (q !== runQ) { this.freedPiece(tx, runStart, b - runStart, runQ); runStart = b; runQ = q }
    }
    this.freedPiece(tx, runStart, end - runStart, runQ)
  }

  private freedPiece(tx: Tx, p: number, n: number, quarantine: boolean): void {
    if (quarantine) insertExtent(this.mut(tx, QUARANTINE_INO).extents, { l: p, p, n })
    else tx.freed.push([p, n])
  }

  private abort(tx: Tx): void {
    for (const [p, n] of tx.allocated) this.bitmap.clearRange(p, n)
    for (const ino of tx.newInos) this.reservedInos.delete(ino)
  }

  /**
   * Finish the in-memory part of a transaction: fix overflow chains and build
   * the journal records. Throws (after aborting) ENOSPC if the transaction
   * cannot be completed; nothing has been written then.
   */
  private prepare(tx: Tx): RecordBuilder {
    try {
      const bs = this.blockSize
      // Overflow extent blocks follow the extent counts.
      for (const [, inode] of tx.inodes) {
        if (!inode) continue
        const need = overflowBlocksFor(inode.extents.length, bs)
        while (inode.overflow.length > need) tx.freed.push([inode.overflow.pop()!, 1])
        while (inode.overflow.length < need) {
          const [p] = this.allocRun(tx, 1, this.sb.dataStart, tx.op)
          inode.overflow.push(p)
        }
      }
      const rb = new RecordBuilder()
      const itOff = this.sb.inodeTableStart * bs
      const per = extentsPerOverflow(bs)
      const cur = new Uint8Array(bs)
      for (const [ino, inode] of tx.inodes) {
        rb.write(itOff + ino * INODE_SIZE, inode ? encodeInode(inode) : new Uint8Array(INODE_SIZE))
        if (!inode) continue
        for (let i = 0; i < inode.overflow.length; i++) {
          const slice = inode.extents.slice(INLINE_EXTENTS + i * per, INLINE_EXTENTS + (i + 1) * per)
          const blk = encodeOverflow(bs, ino, i, inode.overflow[i + 1] ?? 0, slice)
          const off = inode.overflow[i]! * bs
          this.device.read(off, cur)
          if (!equalBytes(cur, blk)) rb.write(off, blk)
        }
      }
      for (const [dino, ov] of tx.dirs) {
        const dinode = this.txInode(tx, dino)
        if (!dinode) continue // directory removed in this transaction
        for (const [idx, blk] of ov.blocks) {
          const p = mapBlock(dinode.extents, idx)
          if (p === null) throw new Error(`pmemu internal: directory ${dino} block ${idx} unmapped`)
          rb.write(p * bs, encodeDirBlock(bs, dino, blk.entries))
        }
      }
      if (tx.sb) rb.write(0, encodeSuperblock(tx.sb))
      for (const [p, n] of tx.allocated) rb.bits(true, p, n)
      for (const [p, n] of tx.freed) rb.bits(false, p, n)
      if (rb.bytes > this.journal.capacity) {
        throw pmemError('ENOSPC', tx.op, `transaction needs ${rb.bytes} journal bytes, the journal holds ${this.journal.capacity}`)
      }
      return rb
    } catch (e) {
      this.abort(tx)
      throw e
    }
  }

  /** Journal the prepared records, then install the transaction in memory. */
  private journalAndInstall(tx: Tx, rb: RecordBuilder): void {
    try {
      this.journal.commit(rb, tx.op)
    } catch (e) {
      // A crash-point hook threw (simulated power loss) or the device failed mid-commit.
      this.shutdown(`transaction '${tx.op}' interrupted: ${(e as Error).message}`)
      throw e
    }
    for (const [ino, inode] of tx.inodes) {
      const was = this.inodes[ino]
      if (inode && !was) this.freeInodeCount--
      if (!inode && was) this.freeInodeCount++
      this.inodes[ino] = inode ?? undefined
      if (!inode) this.dirs.delete(ino)
    }
    for (const ino of tx.newInos) this.reservedInos.delete(ino)
    for (const [p, n] of tx.freed) this.bitmap.clearRange(p, n)
    for (const [dino, ov] of tx.dirs) {
      const d = this.dirs.get(dino)
      if (!d || !this.inodes[dino]) continue
      for (const [idx, blk] of ov.blocks) d.blocks[idx] = blk
      for (const name of ov.removed) d.index.delete(name)
      for (const [name, idx] of ov.index) d.index.set(name, idx)
    }
    if (tx.sb) this.sb = tx.sb
  }

  private commit(tx: Tx): void {
    const rb = this.prepare(tx)
    this.journalAndInstall(tx, rb)
  }

  // ---------------------------------------------------------- directories

  private getDir(ino: number, syscall: string, path?: string): DirMem {
    const have = this.dirs.get(ino)
    if (have) return have
    const inode = this.inodes[ino]
    if (!inode || !isDir(inode.mode)) throw new Error(`pmemu internal: ${ino} is not a directory`)
    const bs = this.blockSize
    const bad = (why: string): PmemuError => pmemError('EFSCORRUPTED', syscall, `directory inode ${ino}: ${why}`, { path })
    if (inode.size % bs !== 0) throw bad(`size ${inode.size} is not a whole number of blocks`)
    const nblocks = inode.size / bs
    if (blockCount(inode.extents) !== nblocks || lastEnd(inode.extents) !== nblocks) throw bad('extents do not cover the directory size')
    const dir: DirMem = { blocks: [], index: new Map() }
    const buf = new Uint8Array(bs)
    for (let i = 0; i < nblocks; i++) {
      const p = mapBlock(inode.extents, i)!
      this.metaRead(p * bs, buf, 'directory block')
      const d = decodeDirBlock(buf, ino)
      if (typeof d === 'string') throw bad(`block ${i}: ${d}`)
      const blk: DirBlockMem = { entries: new Map(), used: d.used }
      for (const e of d.entries) {
        if (dir.index.has(e.name) || blk.entries.has(e.name)) throw bad(`duplicate entry '${e.name}'`)
        const target = e.ino > 0 && e.ino < this.sb.inodeCount ? this.inodes[e.ino] : undefined
        if (!target || e.ino < ROOT_INO) throw bad(`entry '${e.name}' points to free or invalid inode ${e.ino}`)
        if ((e.type === DT_DIR) !== isDir(target.mode)) throw bad(`entry '${e.name}' has the wrong type`)
        blk.entries.set(e.name, { ino: e.ino, type: e.type })
        dir.index.set(e.name, i)
      }
      dir.blocks.push(blk)
    }
    this.dirs.set(ino, dir)
    return dir
  }

  private overlay(tx: Tx, dino: number): DirOverlay {
    let ov = tx.dirs.get(dino)
    if (!ov) { ov = { blocks: new Map(), index: new Map(), removed: new Set(), added: 0 }; tx.dirs.set(dino, ov) }
    return ov
  }

  private lookupTx(tx: Tx | undefined, dino: number, name: string, syscall: string, path?: string): DirEntry | undefined {
    const dir = this.getDir(dino, syscall, path)
    const ov = tx?.dirs.get(dino)
    if (ov) {
      const idx = ov.index.get(name)
      if (idx !== undefined) return ov.blocks.get(idx)?.entries.get(name)
      if (ov.removed.has(name)) return undefined
    }
    const idx = dir.index.get(name)
    return idx === undefined ? undefined : dir.blocks[idx]!.entries.get(name)
  }

  private blockFor(tx: Tx, dir: DirMem, ov: DirOverlay, idx: number): DirBlockMem {
    let b = ov.blocks.get(idx)
    if (!b) {
      const src = dir.blocks[idx]
      b = src ? { entries: new Map(src.entries), used: src.used } : { entries: new Map(), used: 0 }
      ov.blocks.set(idx, b)
    }
    return b
  }

  private addEntry(tx: Tx, dino: number, name: string, e: DirEntry, syscall: string, path: string): void {
    const dir = this.getDir(dino, syscall, path)
    const ov = this.overlay(tx, dino)
    const size = entrySize(encodeUtf8(name).length)
    const cap = dirCapacity(this.blockSize)
    const total = dir.blocks.length + ov.added
    const usedOf = (i: number): number => ov.blocks.get(i)?.used ?? dir.blocks[i]?.used ?? 0
    let target = -1
    if (total > 0 && usedOf(total - 1) + size <= cap) target = total - 1
    for (let i = 0; target < 0 && i < total; i++) if (usedOf(i) + size <= cap) target = i
    if (target < 0) {
      // Grow the directory by one block.
      const dinode = this.mut(tx, dino)
      this.allocFile(tx, dinode, total, 1, false, syscall)
      dinode.size = (total + 1) * this.blockSize
      ov.added++
      target = total
    }
    const blk = this.blockFor(tx, dir, ov, target)
    blk.entries.set(name, e)
    blk.used += size
    ov.index.set(name, target)
    ov.removed.delete(name)
  }

  private removeEntry(tx: Tx, dino: number, name: string, syscall: string, path: string): void {
    const dir = this.getDir(dino, syscall, path)
    const ov = this.overlay(tx, dino)
    const idx = ov.index.get(name) ?? dir.index.get(name)
    if (idx === undefined) throw new Error(`pmemu internal: no entry ${name}`)
    const blk = this.blockFor(tx, dir, ov, idx)
    if (!blk.entries.delete(name)) throw new Error(`pmemu internal: no entry ${name}`)
    blk.used -= entrySize(encodeUtf8(name).length)
    ov.index.delete(name)
    ov.removed.add(name)
  }

  private dirIsEmpty(dino: number, syscall: string, path: string): boolean {
    return this.getDir(dino, syscall, path).index.size === 0
  }

  private touchDir(tx: Tx, dino: number, now = Date.now()): Inode {
    const d = this.mut(tx, dino)
    d.mtime = d.ctime = now
    return d
  }

  // ------------------------------------------------------------- resolve

  private resolveParts(parts: string[], syscall: string, path: string): number {
    let cur = ROOT_INO
    for (const name of parts) {
      const inode = this.inodes[cur]!
      if (!isDir(inode.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path })
      const e = this.lookupTx(undefined, cur, name, syscall, path)
      if (!e) throw pmemError('ENOENT', syscall, 'no such file or directory', { path })
      cur = e.ino
    }
    return cur
  }

  /** Resolve a path to an inode (ENOENT / ENOTDIR as Linux). */
  private resolve(path: unknown, syscall: string): { ino: number; path: string } {
    const pp = parsePath(path, syscall)
    const p = path as string
    const ino = this.resolveParts(pp.parts, syscall, p)
    if (pp.trailingSlash && !isDir(this.inodes[ino]!.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path: p })
    return { ino, path: p }
  }

  /** Resolve the parent of a path: its directory inode and the last name. '/' has no parent (EBUSY/EEXIST by caller). */
  private resolveParent(path: unknown, syscall: string): { dir: number; name: string | undefined; path: string; trailingSlash: boolean } {
    const pp = parsePath(path, syscall)
    const p = path as string
    if (pp.parts.length === 0) return { dir: ROOT_INO, name: undefined, path: p, trailingSlash: pp.trailingSlash }
    const dir = this.resolveParts(pp.parts.slice(0, -1), syscall, p)
    if (!isDir(this.inodes[dir]!.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path: p })
    return { dir, name: pp.parts[pp.parts.length - 1]!, path: p, trailingSlash: pp.trailingSlash }
  }

  // ------------------------------------------------------------ nodes

  private nodeFor(ino: number): FsNode {
    let n = this.nodes.get(ino)
    if (!n) { n = new FsNode(this, ino); this.nodes.set(ino, n) }
    return n
  }

  /** @internal called when a node may have lost its last user. */
  _maybeDrop(node: FsNode): void {
    if (node.openCount > 0 || node.holds > 0) return
    const inode = this.inodes[node.ino]
    // A node with unpersisted stores stays cached, so a later fsync through a new handle still persists them.
    if (this.nodes.get(node.ino) === node && (!inode || inode.nlink === 0 || node.dirty.length === 0)) this.nodes.delete(node.ino)
    if (this.dead || this.unmounted || this.device.readOnly || !inode) return
    if (inode.nlink === 0) {
      node.dirty = []
      this.releaseInode(node.ino)
    } else if (node.timesDirty) {
      this.flushTimes(node)
    }
  }

  private flushTimes(node: FsNode): void {
    if (!node.timesDirty || !this.inodes[node.ino]) return
    const tx = new Tx('fsync')
    this.mut(tx, node.ino)
    this.commit(tx)
    node.timesDirty = false
  }

  private isBusy(ino: number): boolean {
    const n = this.nodes.get(ino)
    return n !== undefined && (n.openCount > 0 || n.holds > 0)
  }

  /**
   * Free an inode and all its blocks, in as many transactions as its extent
   * list needs (an interrupted release leaves an orphan that mount finishes).
   */
  private releaseInode(ino: number): void {
    const inode0 = this.inodes[ino]
    if (!inode0) return
    const data = isReg(inode0.mode)
    for (;;) {
      const inode = this.inodes[ino]!
      const tx = new Tx('release')
      const m = this.mut(tx, ino)
      if (m.nlink !== 0) m.nlink = 0
      if (inode.extents.length > FREE_CHUNK_EXTENTS) {
        const cut = inode.extents[inode.extents.length - FREE_CHUNK_EXTENTS]!.l
        for (const e of m.extents.filter(x => x.l >= cut)) this.freeBlocks(tx, e.p, e.n, data ? { ino, index: e.l } : null)
        removeRange(m.extents, cut, MAX_LOGICAL_BLOCKS)
        this.commit(tx)
        continue
      }
      for (const e of m.extents) this.freeBlocks(tx, e.p, e.n, data ? { ino, index: e.l } : null)
      for (const p of m.overflow) tx.freed.push([p, 1])
      tx.inodes.set(ino, null)
      this.commit(tx)
      this.dirs.delete(ino)
      const n = this.nodes.get(ino)
      if (n && n.openCount === 0 && n.holds === 0) this.nodes.delete(ino)
      return
    }
  }

  /** Free logical blocks [l0, l1) of a file, chunked; `size` (if given) is set in the first transaction. */
  private freeRange(ino: number, l0: number, l1: number, op: string, size?: number): void {
    let first = true
    for (;;) {
      const inode = this.inodes[ino]!
      const tx = new Tx(op)
      const m = this.mut(tx, ino)
      if (first && size !== undefined) { m.size = size; m.mtime = m.ctime = Date.now() }
      // Extents overlapping [l0, l1), last ones first, at most a chunk per transaction.
      const overlapping = inode.extents.filter(e => e.l < l1 && e.l + e.n > l0)
      let from = l0
      if (overlapping.length > FREE_CHUNK_EXTENTS) from = Math.max(l0, overlapping[overlapping.length - FREE_CHUNK_EXTENTS]!.l)
      for (const [p, n, l] of freedWithIndex(m.extents, from, l1)) this.freeBlocks(tx, p, n, { ino, index: l })
      removeRange(m.extents, from, l1)
      this.commit(tx)
      first = false
      if (from === l0) return
      l1 = from
    }
  }

  // ------------------------------------------------------------ public API

  async open(path: string, flags: string | number = 'r', mode = 0o666): Promise<PmemFile> {
    const { file, truncate } = this.openCore(path, flags, mode)
    if (truncate) {
      const node = file.node
      try {
        await this._truncate(file, 0, {}, 'open-truncate')
      } catch (e) {
        this.files.delete(file)
        node.openCount--
        this._maybeDrop(node)
        throw e
      }
    }
    return file
  }

  /**
   * open(2) without waiting. Truncating a non-empty file ('w', O_TRUNC) may have to
   * wait for DAX mappings and DMA pins to let go, so here it fails with EAGAIN
   * (nothing changed): use {@link open} for it.
   */
  openSync(path: string, flags: string | number = 'r', mode = 0o666): PmemFile {
    const { file, truncate } = this.openCore(path, flags, mode)
    if (truncate) {
      const node = file.node
      this.files.delete(file)
      node.openCount--
      this._maybeDrop(node)
      throw pmemError('EAGAIN', 'open', 'truncating a non-empty file may wait for mappings and pins; use the async open', { path: file.path })
    }
    return file
  }

  private openCore(path: string, flags: string | number, mode: number): { file: PmemFile; truncate: boolean } {
    this._live('open', typeof path === 'string' ? path : undefined)
    const f = parseFlags(flags, typeof path === 'string' ? path : '')
    const par = this.resolveParent(path, 'open')
    const p = par.path
    if (f.write || f.truncate || f.create) {
      // Linux checks EROFS only when the open would write; an existing file opened O_RDONLY is fine.
      if (this.device.readOnly && (f.write || f.truncate)) throw pmemError('EROFS', 'open', 'read-only device', { path: p })
    }
    let ino: number
    if (par.name === undefined) {
      ino = ROOT_INO
    } else {
      const e = this.lookupTx(undefined, par.dir, par.name, 'open', p)
      if (e) {
        if (f.create && f.exclusive) throw pmemError('EEXIST', 'open', 'file already exists', { path: p })
        ino = e.ino
      } else {
        if (!f.create) throw pmemError('ENOENT', 'open', 'no such file or directory', { path: p })
        if (par.trailingSlash) throw pmemError('EISDIR', 'open', 'cannot create a regular file with a trailing slash', { path: p })
        this.writable('open', p)
        const m = typeof mode === 'number' && Number.isInteger(mode) ? mode & 0o7777 : 0o666
        const tx = new Tx('create')
        ino = this.allocIno(tx, 'open', p)
        this.newInode(tx, ino, S_IFREG | m, par.dir)
        try {
          this.addEntry(tx, par.dir, par.name, { ino, type: DT_REG }, 'open', p)
          this.touchDir(tx, par.dir)
        } catch (err) { this.abort(tx); throw err }
        this.commit(tx)
      }
    }
    const inode = this.inodes[ino]!
    if (isDir(inode.mode) && (f.write || f.truncate)) throw pmemError('EISDIR', 'open', 'is a directory', { path: p })
    if (par.trailingSlash && !isDir(inode.mode)) throw pmemError('ENOTDIR', 'open', 'not a directory', { path: p })
    const node = this.nodeFor(ino)
    const file = new PmemFile(this, node, f, p)
    node.openCount++
    this.files.add(file)
    return { file, truncate: f.truncate && inode.size > 0 }
  }

  async mkdir(path: string, mode = 0o777): Promise<void> {
    this.mkdirSync(path, mode)
  }

  /** mkdir(2), synchronously (metadata calls never wait). */
  mkdirSync(path: string, mode = 0o777): void {
    this._live('mkdir', typeof path === 'string' ? path : undefined)
    const par = this.resolveParent(path, 'mkdir')
    if (par.name === undefined) throw pmemError('EEXIST', 'mkdir', 'file exists', { path: par.path })
    if (this.lookupTx(undefined, par.dir, par.name, 'mkdir', par.path)) throw pmemError('EEXIST', 'mkdir', 'file exists', { path: par.path })
    this.writable('mkdir', par.path)
    const tx = new Tx('mkdir')
    const ino = this.allocIno(tx, 'mkdir', par.path)
    this.newInode(tx, ino, S_IFDIR | ((typeof mode === 'number' ? mode : 0o777) & 0o7777), par.dir)
    try {
      this.addEntry(tx, par.dir, par.name, { ino, type: DT_DIR }, 'mkdir', par.path)
      this.touchDir(tx, par.dir).nlink++
    } catch (e) { this.abort(tx); throw e }
    this.commit(tx)
    this.dirs.set(ino, { blocks: [], index: new Map() })
  }

  async readdir(path: string): Promise<string[]>
  async readdir(path: string, opts: { withFileTypes: true }): Promise<Array<{ name: string; ino: number; type: 'file' | 'directory'; isFile(): boolean; isDirectory(): boolean }>>
  async readdir(path: string, opts?: { withFileTypes?: boolean }): Promise<unknown[]> {
    return this.readdirSync(path, opts as { withFileTypes: true })
  }

  readdirSync(path: string): string[]
  readdirSync(path: string, opts: { withFileTypes: true }): Array<{ name: string; ino: number; type: 'file' | 'directory'; isFile(): boolean; isDirectory(): boolean }>
  readdirSync(path: string, opts?: { withFileTypes?: boolean }): unknown[] {
    this._live('scandir', typeof path === 'string' ? path : undefined)
    const r = this.resolve(path, 'scandir')
    if (!isDir(this.inodes[r.ino]!.mode)) throw pmemError('ENOTDIR', 'scandir', 'not a directory', { path: r.path })
    const dir = this.getDir(r.ino, 'scandir', r.path)
    const out: Array<{ name: string; ino: number; type: number }> = []
    for (const b of dir.blocks) for (const [name, e] of b.entries) out.push({ name, ino: e.ino, type: e.type })
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    if (opts?.withFileTypes) {
      return out.map(e => {
        const d = e.type === DT_DIR
        return { name: e.name, ino: e.ino, type: d ? 'directory' : 'file', isFile: () => !d, isDirectory: () => d }
      })
    }
    return out.map(e => e.name)
  }

  async stat(path: string): Promise<PmemStats> { return this.statSync(path) }

  statSync(path: string): PmemStats {
    this._live('stat', typeof path === 'string' ? path : undefined)
    return this._stat(this.resolve(path, 'stat').ino)
  }

  async lstat(path: string): Promise<PmemStats> { return this.statSync(path) }
  lstatSync(path: string): PmemStats { return this.statSync(path) }

  async exists(path: string): Promise<boolean> {
    try { await this.stat(path); return true } catch (e) {
      if (isPmemuError(e, 'ENOENT') || isPmemuError(e, 'ENOTDIR')) return false
      throw e
    }
  }

  async unlink(path: string): Promise<void> { this.unlinkSync(path) }

  unlinkSync(path: string): void {
    this._live('unlink', typeof path === 'string' ? path : undefined)
    const par = this.resolveParent(path, 'unlink')
    if (par.name === undefined) throw pmemError('EISDIR', 'unlink', 'is a directory', { path: par.path })
    const e = this.lookupTx(undefined, par.dir, par.name, 'unlink', par.path)
    if (!e) throw pmemError('ENOENT', 'unlink', 'no such file or directory', { path: par.path })
    if (e.type === DT_DIR) throw pmemError('EISDIR', 'unlink', 'is a directory', { path: par.path })
    if (par.trailingSlash) throw pmemError('ENOTDIR', 'unlink', 'not a directory', { path: par.path })
    this.writable('unlink', par.path)
    const tx = new Tx('unlink')
    this.removeEntry(tx, par.dir, par.name, 'unlink', par.path)
    this.touchDir(tx, par.dir)
    const t = this.mut(tx, e.ino)
    t.nlink = Math.max(0, t.nlink - 1)
    t.ctime = Date.now()
    this.commit(tx)
    if (t.nlink === 0 && !this.isBusy(e.ino)) this.releaseInode(e.ino)
  }

  async rmdir(path: string): Promise<void> { this.rmdirSync(path) }

  rmdirSync(path: string): void {
    this._live('rmdir', typeof path === 'string' ? path : undefined)
    const par = this.resolveParent(path, 'rmdir')
    if (par.name === undefined) throw pmemError('EBUSY', 'rmdir', 'cannot remove the root directory', { path: par.path })
    const e = this.lookupTx(undefined, par.dir, par.name, 'rmdir', par.path)
    if (!e) throw pmemError('ENOENT', 'rmdir', 'no such file or directory', { path: par.path })
    if (e.type !== DT_DIR) throw pmemError('ENOTDIR', 'rmdir', 'not a directory', { path: par.path })
    if (!this.dirIsEmpty(e.ino, 'rmdir', par.path)) throw pmemError('ENOTEMPTY', 'rmdir', 'directory not empty', { path: par.path })
    this.writable('rmdir', par.path)
    const tx = new Tx('rmdir')
    this.removeEntry(tx, par.dir, par.name, 'rmdir', par.path)
    this.touchDir(tx, par.dir).nlink--
    const d = this.mut(tx, e.ino)
    d.nlink = 0
    if (this.isBusy(e.ino)) {
      this.commit(tx)
    } else {
      for (const x of d.extents) this.freeBlocks(tx, x.p, x.n, null)
      for (const p of d.overflow) tx.freed.push([p, 1])
      tx.inodes.set(e.ino, null)
      this.commit(tx)
    }
    this.dirs.delete(e.ino)
  }

  /** Atomic rename, replacing the target as rename(2) does. */
  async rename(oldPath: string, newPath: string): Promise<void> { this.renameSync(oldPath, newPath) }

  renameSync(oldPath: string, newPath: string): void {
    this._live('rename', typeof oldPath === 'string' ? oldPath : undefined)
    const a = this.resolveParent(oldPath, 'rename')
    const b = this.resolveParent(newPath, 'rename')
    if (a.name === undefined || b.name === undefined) throw pmemError('EBUSY', 'rename', 'cannot rename the root directory', { path: a.path })
    const src = this.lookupTx(undefined, a.dir, a.name, 'rename', a.path)
    if (!src) throw pmemError('ENOENT', 'rename', 'no such file or directory', { path: a.path })
    const srcDir = src.type === DT_DIR
    if (!srcDir && (a.trailingSlash || b.trailingSlash)) throw pmemError('ENOTDIR', 'rename', 'not a directory', { path: a.trailingSlash ? a.path : b.path })
    const dst = this.lookupTx(undefined, b.dir, b.name, 'rename', b.path)
    if (srcDir) {
      // The target's parent must not be inside the source.
      for (let d = b.dir, k = 0; k < this.sb.inodeCount; k++) {
        if (d === src.ino) throw pmemError('EINVAL', 'rename', 'cannot move a directory into itself', { path: b.path })
        if (d === ROOT_INO) break
        d = this.inodes[d]!.parent
      }
    }
    if (dst) {
      if (dst.ino === src.ino) return
      if (srcDir && dst.type !== DT_DIR) throw pmemError('ENOTDIR', 'rename', 'not a directory', { path: b.path })
      if (!srcDir && dst.type === DT_DIR) throw pmemError('EISDIR', 'rename', 'is a directory', { path: b.path })
      if (dst.type === DT_DIR && !this.dirIsEmpty(dst.ino, 'rename', b.path)) throw pmemError('ENOTEMPTY', 'rename', 'directory not empty', { path: b.path })
    }
    this.writable('rename', a.path)
    const tx = new Tx('rename')
    const now = Date.now()
    try {
      if (dst) this.removeEntry(tx, b.dir, b.name, 'rename', b.path)
      this.removeEntry(tx, a.dir, a.name, 'rename', a.path)
      this.addEntry(tx, b.dir, b.name, { ino: src.ino, type: src.type }, 'rename', b.path)
      this.touchDir(tx, a.dir, now)
      this.touchDir(tx, b.dir, now)
      this.mut(tx, src.ino).ctime = now
      if (srcDir && a.dir !== b.dir) {
        this.mut(tx, src.ino).parent = b.dir
        this.mut(tx, a.dir).nlink--
        this.mut(tx, b.dir).nlink++
      }
      if (dst) {
        const t = this.mut(tx, dst.ino)
        if (dst.type === DT_DIR) {
          t.nlink = 0
          this.mut(tx, b.dir).nlink--
        } else {
          t.nlink = Math.max(0, t.nlink - 1)
        }
        t.ctime = now
      }
    } catch (e) { this.abort(tx); throw e }
    this.commit(tx)
    if (dst && this.inodes[dst.ino]?.nlink === 0) {
      if (dst.type === DT_DIR) this.dirs.delete(dst.ino)
      if (!this.isBusy(dst.ino)) this.releaseInode(dst.ino)
    }
  }

  /**
   * utimes(2): set a file's access and modification times (milliseconds since the
   * epoch, fractional for sub-millisecond times); the change time becomes now.
   * Through the journal, durable when it returns.
   */
  async utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void> { this.utimesSync(path, atimeMs, mtimeMs) }

  utimesSync(path: string, atimeMs: number, mtimeMs: number): void {
    this._live('utime', typeof path === 'string' ? path : undefined)
    const r = this.resolve(path, 'utime')
    this._setTimes(r.ino, atimeMs, mtimeMs, 'utime', r.path)
  }

  /**
   * chmod(2): set the permission bits (mode & 0o7777; the file type is kept).
   * pmemu stores them and reports them in stat but enforces no permissions.
   */
  async chmod(path: string, mode: number): Promise<void> { this.chmodSync(path, mode) }

  chmodSync(path: string, mode: number): void {
    this._live('chmod', typeof path === 'string' ? path : undefined)
    const r = this.resolve(path, 'chmod')
    this._setMode(r.ino, mode, 'chmod', r.path)
  }

  /** link(2): a second name for an existing file (not a directory: EPERM); the link count goes up. */
  async link(existingPath: string, newPath: string): Promise<void> { this.linkSync(existingPath, newPath) }

  linkSync(existingPath: string, newPath: string): void {
    this._live('link', typeof existingPath === 'string' ? existingPath : undefined)
    // linkat(2)'s order: the old path, then the new one (EEXIST), then the directory check.
    const src = this.resolve(existingPath, 'link')
    const par = this.resolveParent(newPath, 'link')
    if (par.name === undefined) throw pmemError('EEXIST', 'link', 'file exists', { path: par.path })
    if (this.lookupTx(undefined, par.dir, par.name, 'link', par.path)) throw pmemError('EEXIST', 'link', 'file exists', { path: par.path })
    if (par.trailingSlash) throw pmemError('ENOENT', 'link', 'no such file or directory', { path: par.path })
    if (isDir(this.inodes[src.ino]!.mode)) throw pmemError('EPERM', 'link', 'hard links to directories are not allowed', { path: src.path })
    this.writable('link', par.path)
    const tx = new Tx('link')
    const now = Date.now()
    try {
      this.addEntry(tx, par.dir, par.name, { ino: src.ino, type: DT_REG }, 'link', par.path)
      this.touchDir(tx, par.dir, now)
      const t = this.mut(tx, src.ino)
      t.nlink++
      t.ctime = now
    } catch (e) { this.abort(tx); throw e }
    this.commit(tx)
  }

  /** @internal utimes/futimes on an inode. */
  _setTimes(ino: number, atimeMs: number, mtimeMs: number, syscall: string, path: string): void {
    for (const [name, v] of [['atime', atimeMs], ['mtime', mtimeMs]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw pmemError('EINVAL', syscall, `${name} must be a finite number of milliseconds, got ${typeof v === 'number' ? String(v) : typeof v}`, { path })
      }
    }
    this.writable(syscall, path)
    const tx = new Tx('utimes')
    const t = this.mut(tx, ino)
    t.atime = atimeMs
    t.mtime = mtimeMs
    t.ctime = Date.now()
    this.commit(tx)
    const node = this.nodes.get(ino)
    if (node) node.timesDirty = false
  }

  /** @internal chmod/fchmod on an inode. */
  _setMode(ino: number, mode: number, syscall: string, path: string): void {
    if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0) {
      throw pmemError('EINVAL', syscall, `mode must be a non-negative integer, got ${typeof mode === 'number' ? String(mode) : typeof mode}`, { path })
    }
    this.writable(syscall, path)
    const tx = new Tx('chmod')
    const t = this.mut(tx, ino)
    t.mode = (t.mode & S_IFMT) | (mode & 0o7777)
    t.ctime = Date.now()
    this.commit(tx)
  }

  statfs(): StatFs {
    this._live('statfs')
    const q = blockCount(this.inodes[QUARANTINE_INO]?.extents ?? [])
    return {
      type: 0x504d4653, bsize: this.blockSize, frsize: this.blockSize, blocks: this.blockCount,
      free: this.bitmap.free, bfree: this.bitmap.free, bavail: this.bitmap.free,
      files: this.sb.inodeCount - 1, ffree: this.freeInodeCount - this.reservedInos.size, namemax: NAME_MAX, quarantined: q,
    }
  }

  /** Close every file, release orphans, mark the superblock clean. On a crashed or shut-down fs it only detaches. */
  async unmount(): Promise<void> {
    this._unmountSync()
  }

  /** @internal */
  _unmountSync(): void {
    if (this.unmounted) throw pmemError('EINVAL', 'umount', 'file system is not mounted')
    this.beforeUnmount?.()
    const wasDead = this.dead
    for (const f of [...this.files]) {
      if (!f.isClosed) { try { f._forceClose() } catch { /* dead fs */ } }
    }
    try {
      if (!wasDead && !this.dead && !this.device.readOnly) {
        for (const node of [...this.nodes.values()]) {
          // Unmount syncs: stores not yet persisted become durable, as a writeback at umount.
          for (const [o, l] of node.dirty) this.device.persist(o, l)
          node.dirty = []
          if (this.inodes[node.ino]?.nlink === 0) this.releaseInode(node.ino)
        }
        const tx = new Tx('umount')
        tx.sb = { ...this.sb, state: STATE_CLEAN }
        this.commit(tx)
      }
    } finally {
      this.nodes.clear()
      this.dirs.clear()
      this.unmounted = true
      this.detach()
    }
  }

  /** @internal fsck repair: link unreachable inodes into /lost+found as '#<ino>'. Returns what failed. */
  _attachLost(inos: number[]): string[] {
    const failures: string[] = []
    let lf: number
    try {
      const e = this.lookupTx(undefined, ROOT_INO, 'lost+found', 'fsck', '/lost+found')
      if (e && e.type !== DT_DIR) return ['/lost+found exists and is not a directory']
      if (!e) this.mkdirSync('/lost+found', 0o700)
      lf = this.lookupTx(undefined, ROOT_INO, 'lost+found', 'fsck', '/lost+found')!.ino
    } catch (err) {
      return [`cannot create /lost+found: ${(err as Error).message}`]
    }
    for (const ino of inos) {
      const inode = this.inodes[ino]
      if (!inode) continue
      const name = `#${ino}`
      try {
        const tx = new Tx('fsck')
        const dir = isDir(inode.mode)
        try {
          this.addEntry(tx, lf, name, { ino, type: dir ? DT_DIR : DT_REG }, 'fsck', `/lost+found/${name}`)
          if (dir) { this.mut(tx, ino).parent = lf; this.mut(tx, lf).nlink++ }
        } catch (err) { this.abort(tx); throw err }
        this.commit(tx)
      } catch (err) {
        failures.push(`inode ${ino}: ${(err as Error).message}`)
      }
    }
    return failures
  }

  /** Who owns block `pfn` (reverse map, for the fault layer). O(extents). */
  blockOwner(pfn: number): BlockOwner {
    validateInt(pfn, 'pfn', 'blockOwner')
    const sb = this.sb
    if (pfn >= this.blockCount) throw pmemError('EINVAL', 'blockOwner', `pfn ${pfn} out of range`, { pfn })
    if (pfn === 0) return { kind: 'superblock' }
    if (pfn === sb.backupBlock) return { kind: 'backup-superblock' }
    if (pfn < sb.bitmapStart) return { kind: 'journal' }
    if (pfn < sb.inodeTableStart) return { kind: 'bitmap' }
    if (pfn < sb.dataStart) return { kind: 'inode-table' }
    if (!this.bitmap.get(pfn)) return { kind: 'free' }
    for (let ino = 1; ino < this.inodes.length; ino++) {
      const inode = this.inodes[ino]
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
  isMetadataBlock(pfn: number): boolean {
    const k = this.blockOwner(pfn).kind
    return k !== 'data' && k !== 'free' && k !== 'unowned' && k !== 'quarantine'
  }

  /** Quarantined blocks as runs [pfn, count]. */
  quarantined(): Array<[number, number]> {
    return (this.inodes[QUARANTINE_INO]?.extents ?? []).map(e => [e.p, e.n])
  }

  /** Return quarantined blocks [pfn, pfn+count) to the free list (journaled). */
  releaseQuarantine(pfn: number, count = 1): void {
    this.writable('releaseQuarantine')
    validateInt(pfn, 'pfn', 'releaseQuarantine')
    validateInt(count, 'count', 'releaseQuarantine', undefined, 1)
    const tx = new Tx('releaseQuarantine')
    const q = this.mut(tx, QUARANTINE_INO)
    const freed = removeRange(q.extents, pfn, pfn + count)
    if (freed.length === 0) throw pmemError('EINVAL', 'releaseQuarantine', `blocks ${pfn}..${pfn + count - 1} are not quarantined`, { pfn })
    for (const [p, n] of freed) tx.freed.push([p, n])
    this.commit(tx)
  }

  /** Summary for `pmemu info`. */
  info(): FsInfo {
    const s = this.statfs()
    return {
      label: this.sb.label, uuid: this.uuid, version: FS_VERSION, blockSize: this.blockSize, blocks: this.blockCount,
      freeBlocks: s.free, quarantinedBlocks: s.quarantined, inodes: s.files, freeInodes: s.ffree,
      journalBlocks: this.sb.journalBlocks, dataStart: this.sb.dataStart, state: 'mounted', mountCount: this.sb.mountCount,
      createdMs: this.sb.createdMs,
    }
  }

  // ------------------------------------------------------------- internals used by PmemFile

  /** @internal */
  _stat(ino: number): PmemStats {
    const i = this.inodes[ino]
    if (!i) throw pmemError('ENOENT', 'stat', `inode ${ino} is gone`)
    return new PmemStats(ino, i.mode, i.nlink, i.size, this.blockSize, blockCount(i.extents) + i.overflow.length,
      i.atime, i.mtime, i.ctime, i.birthtime)
  }

  /** @internal */
  _readAt(node: FsNode, buf: Uint8Array, pos: number, path: string): number {
    const inode = this.inodes[node.ino]!
    if (pos >= inode.size || buf.length === 0) return 0
    const n = Math.min(buf.length, inode.size - pos)
    const bs = this.blockSize
    const l0 = Math.floor(pos / bs)
    const l1 = Math.ceil((pos + n) / bs)
    let at = pos
    try {
      forEachRun(inode.extents, l0, l1, (l, k, p) => {
        const s = Math.max(pos, l * bs)
        const e = Math.min(pos + n, (l + k) * bs)
        at = s
        const dst = buf.subarray(s - pos, e - pos)
        if (p === null) dst.fill(0)
        else this.dataRead(p * bs + (s - l * bs), dst, { ino: node.ino, fileOffset: s })
      })
    } catch (e) {
      // A refused read (poison): tell the caller how many bytes at the start of buf are good.
      if (e instanceof PmemuError) {
        const clean = (e as { cleanBytes?: unknown }).cleanBytes
        ;(e as { bytesRead?: number }).bytesRead = at - pos + (typeof clean === 'number' ? clean : 0)
        delete (e as { cleanBytes?: unknown }).cleanBytes
        if (e.path === undefined) e.path = path
      }
      throw e
    }
    return n
  }

  /** @internal */
  _fsync(node: FsNode, path: string): void {
    this._live('fsync', path)
    for (const [o, l] of node.dirty) this.device.persist(o, l)
    node.dirty = []
    if (node.timesDirty && !this.device.readOnly) this.flushTimes(node)
  }

  /** @internal */
  _closeFile(file: PmemFile): void {
    this.files.delete(file)
    file.node.openCount--
    if (this.dead || this.unmounted) return
    this._maybeDrop(file.node)
  }

  /** @internal */
  _writeAt(node: FsNode, buf: Uint8Array, pos: number, path: string): number {
    this.writable('write', path)
    let len = buf.length
    if (len === 0) return 0
    if (pos >= this.maxFileSize) throw pmemError('EFBIG', 'write', `file size limit ${this.maxFileSize} reached`, { path, offset: pos })
    len = Math.min(len, this.maxFileSize - pos)
    const bs = this.blockSize
    const H = Math.max(1, HUGE_BYTES / bs)
    let done = 0
    let chunk = ALLOC_CHUNK_BLOCKS
    while (done < len) {
      const s = pos + done
      const b0 = Math.floor(s / bs)
      const lastB = Math.floor((pos + len - 1) / bs)
      // Chunks end on 2 MiB boundaries where they can, so huge runs are not split.
      let nb = Math.min(chunk, lastB - b0 + 1)
      if (nb > H) nb = Math.max(H, nb - ((b0 + nb) % H))
      const e = Math.min(pos + len, (b0 + nb) * bs)
      try {
        this.writeChunk(node, buf.subarray(s - pos, e - pos), s, path)
        done = e - pos
        chunk = ALLOC_CHUNK_BLOCKS
      } catch (err) {
        if (isPmemuError(err, 'ENOSPC') && !this.dead) {
          if (nb > 1) { chunk = Math.ceil(nb / 2); continue }
          if (done > 0) break
        }
        throw err
      }
    }
    node.timesDirty = true
    const inode = this.inodes[node.ino]!
    inode.mtime = inode.ctime = Date.now()
    return done
  }

  /** Zero bytes [from, to) inside the block holding `from` (if allocated), persisted: keeps bytes past EOF zero. */
  private zeroTail(node: FsNode, from: number, to: number): void {
    const bs = this.blockSize
    if (from % bs === 0 || to <= from) return
    const end = Math.min(to, (Math.floor(from / bs) + 1) * bs)
    const p = mapBlock(this.inodes[node.ino]!.extents, Math.floor(from / bs))
    if (p === null) return
    const off = p * bs + (from % bs)
    this.dataWrite(off, end - from, { ino: node.ino, fileOffset: from })
    this.device.persist(off, end - from)
  }

  private writeChunk(node: FsNode, data: Uint8Array, s: number, path: string): void {
    const bs = this.blockSize
    const ino = node.ino
    const inode = this.inodes[ino]!
    const e = s + data.length
    const oldSize = inode.size
    const l0 = Math.floor(s / bs)
    const l1 = Math.ceil(e / bs)
    const holes: Array<[number, number]> = []
    forEachRun(inode.extents, l0, l1, (l, n, p) => { if (p === null) holes.push([l, n]) })
    const extending = e > oldSize
    if (holes.length === 0 && !extending) {
      this.storeMapped(node, inode.extents, data, s, false)
      return
    }
    const tx = new Tx('write')
    const m = this.mut(tx, ino)
    const huge = Math.max(e, oldSize) > HUGE_BYTES
    const newRuns: Extent[] = []
    try {
      for (const [l, n] of holes) newRuns.push(...this.allocFile(tx, m, l, n, huge, 'write'))
    } catch (err) { this.abort(tx); throw err }
    if (extending) m.size = e
    m.mtime = m.ctime = Date.now()
    const rb = this.prepare(tx)
    try {
      // New blocks: data plus zeros, persisted before the commit makes them reachable.
      for (const r of newRuns) {
        const blk = new Uint8Array(r.n * bs)
        const rs = r.l * bs
        const cs = Math.max(s, rs)
        const ce = Math.min(e, rs + r.n * bs)
        blk.set(data.subarray(cs - s, ce - s), cs - rs)
        this.dataWrite(r.p * bs, blk, { ino, fileOffset: rs })
        this.device.persist(r.p * bs, blk.length)
      }
      if (s > oldSize) this.zeroTail(node, oldSize, s)
      // Already-allocated parts: plain stores; persisted now when the size changes with them.
      this.storeMapped(node, inode.extents, data, s, extending)
    } catch (err) { this.abort(tx); throw err }
    this.journalAndInstall(tx, rb)
  }

  /** Store `data` at file offset s into blocks already mapped in `extents` (holes skipped). */
  private storeMapped(node: FsNode, extents: Extent[], data: Uint8Array, s: number, persist: boolean): void {
    const bs = this.blockSize
    const e = s + data.length
    forEachRun(extents, Math.floor(s / bs), Math.ceil(e / bs), (l, n, p) => {
      if (p === null) return
      const cs = Math.max(s, l * bs)
      const ce = Math.min(e, (l + n) * bs)
      const off = p * bs + (cs - l * bs)
      this.dataWrite(off, data.subarray(cs - s, ce - s), { ino: node.ino, fileOffset: cs })
      if (persist) this.device.persist(off, ce - cs)
      else node.addDirty(off, ce - cs)
    })
  }

  /** @internal */
  _fallocate(node: FsNode, off: number, len: number, path: string): void {
    this.writable('fallocate', path)
    if (node.isDirectory) throw pmemError('EISDIR', 'fallocate', 'is a directory', { path })
    const end = off + len
    if (end > this.maxFileSize) throw pmemError('EFBIG', 'fallocate', `file size limit ${this.maxFileSize}`, { path, offset: off })
    const bs = this.blockSize
    const ino = node.ino
    const l0 = Math.floor(off / bs)
    const l1 = Math.ceil(end / bs)
    let need = 0
    forEachRun(this.inodes[ino]!.extents, l0, l1, (_l, n, p) => { if (p === null) need += n })
    if (need > this.bitmap.free) throw pmemError('ENOSPC', 'fallocate', `needs ${need} blocks, ${this.bitmap.free} free`, { path })
    const oldSize = this.inodes[ino]!.size
    if (end > oldSize) this.zeroTail(node, oldSize, end)
    const huge = Math.max(end, oldSize) > HUGE_BYTES
    for (let c = l0; c < l1; c += ALLOC_CHUNK_BLOCKS) {
      const ce = Math.min(l1, c + ALLOC_CHUNK_BLOCKS)
      const holes: Array<[number, number]> = []
      forEachRun(this.inodes[ino]!.extents, c, ce, (l, n, p) => { if (p === null) holes.push([l, n]) })
      const tx = new Tx('fallocate')
      const m = this.mut(tx, ino)
      const runs: Extent[] = []
      try {
        for (const [l, n] of holes) runs.push(...this.allocFile(tx, m, l, n, huge, 'fallocate'))
      } catch (err) { this.abort(tx); throw err }
      const chunkEnd = Math.min(end, ce * bs)
      if (chunkEnd > m.size) m.size = chunkEnd
      m.ctime = m.mtime = Date.now()
      const rb = this.prepare(tx)
      try {
        for (const r of runs) {
          this.dataWrite(r.p * bs, r.n * bs, { ino, fileOffset: r.l * bs })
          this.device.persist(r.p * bs, r.n * bs)
        }
      } catch (err) { this.abort(tx); throw err }
      this.journalAndInstall(tx, rb)
    }
  }

  private async breakLayout(file: PmemFile, first: number, end: number, opts: TruncateOptions, reason: LayoutBreakOptions['reason'], syscall: string): Promise<void> {
    if (opts.signal?.aborted) throw new PmemuAbortError(syscall, { path: file.path })
    const fn = this.layoutBreaker
    if (fn && end > first) {
      await fn(file, first, end, { signal: opts.signal, timeoutMs: opts.timeoutMs, reason })
      this._live(syscall, file.path)
    }
  }

  /** @internal Grow-only truncate: nothing to break or free, so it needs no lock wait. */
  _growSync(file: PmemFile, length: number): void {
    const path = file.path
    this.writable('ftruncate', path)
    if (length > this.maxFileSize) throw pmemError('EFBIG', 'ftruncate', `length ${length} exceeds the file size limit ${this.maxFileSize}`, { path })
    const node = file.node
    if (node.isDirectory) throw pmemError('EISDIR', 'ftruncate', 'is a directory', { path })
    const inode = this.inodes[node.ino]!
    if (length === inode.size) return
    const bs = this.blockSize
    if (length < inode.size || Math.max(Math.ceil(inode.size / bs), lastEnd(inode.extents)) > Math.ceil(length / bs) || node.holds > 0) {
      throw pmemError('EAGAIN', 'ftruncate', 'shrinking may wait for mappings and pins; use the async truncate', { path })
    }
    this.zeroTail(node, inode.size, length)
    const tx = new Tx('truncate')
    const m = this.mut(tx, node.ino)
    m.size = length
    m.mtime = m.ctime = Date.now()
    this.commit(tx)
  }

  /** @internal */
  async _truncate(file: PmemFile, length: number, opts: TruncateOptions, reason: 'truncate' | 'open-truncate'): Promise<void> {
    const path = file.path
    const syscall = reason === 'truncate' ? 'ftruncate' : 'open'
    this.writable(syscall, path)
    if (length > this.maxFileSize) throw pmemError('EFBIG', syscall, `length ${length} exceeds the file size limit ${this.maxFileSize}`, { path })
    const node = file.node
    if (node.isDirectory) throw pmemError('EISDIR', syscall, 'is a directory', { path })
    node.holds++
    try {
      await node.lock(async () => {
        this._live(syscall, path)
        const bs = this.blockSize
        const inode0 = this.inodes[node.ino]!
        const first = Math.ceil(length / bs)
        const end0 = Math.max(Math.ceil(inode0.size / bs), lastEnd(inode0.extents))
        if (length < inode0.size || end0 > first) {
          // the block holding the new EOF is zeroed past it in place: break it too
          await this.breakLayout(file, length < inode0.size ? Math.floor(length / bs) : first, end0, opts, reason, syscall)
          const inode = this.inodes[node.ino]
          if (!inode) return
          this.writable(syscall, path)
          if (length < inode.size) this.zeroTail(node, length, inode.size)
          this.freeRange(node.ino, first, MAX_LOGICAL_BLOCKS, 'truncate', length)
        } else if (length > inode0.size) {
          this.zeroTail(node, inode0.size, length)
          const tx = new Tx('truncate')
          const m = this.mut(tx, node.ino)
          m.size = length
          m.mtime = m.ctime = Date.now()
          this.commit(tx)
        }
      })
    } finally {
      node.holds--
      if (!this.dead && !this.unmounted) this._maybeDrop(node)
    }
  }

  /** @internal */
  async _punchHole(file: PmemFile, off: number, len: number, opts: TruncateOptions): Promise<void> {
    const path = file.path
    this.writable('fallocate', path)
    const node = file.node
    if (node.isDirectory) throw pmemError('EISDIR', 'fallocate', 'is a directory', { path })
    if (off + len > this.maxFileSize) throw pmemError('EFBIG', 'fallocate', `range exceeds the file size limit ${this.maxFileSize}`, { path })
    node.holds++
    try {
      await node.lock(async () => {
        this._live('fallocate', path)
        const bs = this.blockSize
        const size0 = this.inodes[node.ino]!.size
        if (off >= size0) return
        const toEof = off + len >= size0
        // blocks freed: the whole ones inside the range
        const first = Math.ceil(off / bs)
        const end = toEof ? Math.max(Math.ceil(size0 / bs), first) : Math.floor((off + len) / bs)
        // Layout broken over the page-rounded range, edge pages included: their
        // bytes are zeroed in place below, so a mapping or a DMA pin on them must
        // be gone first, as Linux breaks layouts over the rounded byte range.
        const breakFirst = Math.floor(off / bs)
        const breakEnd = Math.max(end, Math.ceil(Math.min(off + len, size0) / bs))
        await this.breakLayout(file, breakFirst, breakEnd, opts, 'punch-hole', 'fallocate')
        const inode = this.inodes[node.ino]
        if (!inode) return
        this.writable('fallocate', path)
        const stop = Math.min(off + len, inode.size)
        // Partial blocks at the edges are zeroed in place (persisted).
        const zero = (a: number, b: number): void => {
          forEachRun(inode.extents, Math.floor(a / bs), Math.ceil(b / bs), (l, n, p) => {
            if (p === null) return
            const cs = Math.max(a, l * bs)
            const ce = Math.min(b, (l + n) * bs)
            const o = p * bs + (cs - l * bs)
            this.dataWrite(o, ce - cs, { ino: node.ino, fileOffset: cs })
            this.device.persist(o, ce - cs)
          })
        }
        if (first * bs > off) zero(off, Math.min(first * bs, stop))
        if (end * bs < stop && end >= first) zero(Math.max(end * bs, off), stop)
        if (end > first) this.freeRange(node.ino, first, end, 'punch-hole')
        const tx = new Tx('punch-hole')
        const m = this.mut(tx, node.ino)
        m.mtime = m.ctime = Date.now()
        this.commit(tx)
      })
    } finally {
      node.holds--
      if (!this.dead && !this.unmounted) this._maybeDrop(node)
    }
  }

  /** @internal */
  _allocateForFault(node: FsNode, index: number, huge: boolean): { index: number; pfn: number; count: number } {
    this.writable('allocateForFault')
    validateInt(index, 'index', 'allocateForFault')
    const inode = this.inodes[node.ino]
    if (!inode || !isReg(inode.mode)) throw pmemError('EINVAL', 'allocateForFault', `inode ${node.ino} is not a regular file`)
    const bs = this.blockSize
    const eofPages = Math.ceil(inode.size / bs)
    if (index >= eofPages) throw pmemError('SIGBUS', 'allocateForFault', `page ${index} is past EOF (${eofPages} pages)`, { offset: index * bs })
    const have = node.extentAt(index)
    if (have) return have
    const H = Math.max(1, HUGE_BYTES / bs)
    const tx = new Tx('fault')
    const m = this.mut(tx, node.ino)
    let runs: Extent[] = []
    try {
      const base = index - (index % H)
      let allHole = huge && H > 1 && base + H <= eofPages
      if (allHole) forEachRun(m.extents, base, base + H, (_l, _n, p) => { if (p !== null) allHole = false })
      if (allHole) {
        const p = this.findAligned(H, 0, H)
        if (p >= 0) {
          this.takeRun(tx, p, H)
          insertExtent(m.extents, { l: base, p, n: H })
          runs = [{ l: base, p, n: H }]
        }
      }
      if (runs.length === 0) runs = this.allocFile(tx, m, index, 1, false, 'allocateForFault')
    } catch (e) { this.abort(tx); throw e }
    const rb = this.prepare(tx)
    try {
      for (const r of runs) {
        this.dataWrite(r.p * bs, r.n * bs, { ino: node.ino, fileOffset: r.l * bs })
        this.device.persist(r.p * bs, r.n * bs)
      }
    } catch (err) { this.abort(tx); throw err }
    this.journalAndInstall(tx, rb)
    const r = runs.find(x => index >= x.l && index < x.l + x.n)!
    return r.n === H && huge ? { index: r.l, pfn: r.p, count: r.n } : { index, pfn: r.p + (index - r.l), count: 1 }
  }

  // ------------------------------------------------------------ mkfs

  /** @internal use mkfs() */
  static _format(dev: FsDevice, opts: MkfsOptions = {}): void {
    checkDevice(dev, 'mkfs')
    checkHookOpts(opts, 'mkfs')
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
}

export interface FsInfo {
  label: string
  uuid: string
  version: number
  blockSize: number
  blocks: number
  freeBlocks: number
  quarantinedBlocks: number
  inodes: number
  freeInodes: number
  journalBlocks: number
  dataStart: number
  state: 'clean' | 'mounted' | 'not-clean'
  mountCount: number
  createdMs: number
}

function freedWithIndex(ext: Extent[], l0: number, l1: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = []
  forEachRun(ext, l0, Math.min(l1, Math.max(l0, lastEnd(ext))), (l, n, p) => { if (p !== null) out.push([p, n, l]) })
  return out
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function formatUuid(u: Uint8Array): string {
  const h = Buffer.from(u).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** Typed EINVAL for option objects whose callbacks are not functions. */
export function checkHookOpts(opts: unknown, syscall: string): void {
  if (opts === undefined) return
  if (opts === null || typeof opts !== 'object') throw pmemError('EINVAL', syscall, 'options must be an object')
  for (const k of ['onCrashPoint', 'progress'] as const) {
    const v = (opts as Record<string, unknown>)[k]
    if (v !== undefined && typeof v !== 'function') throw pmemError('EINVAL', syscall, `${k} must be a function`)
  }
}

/** Typed EINVAL for objects that do not look like an FsDevice. */
export function checkDevice(dev: unknown, syscall: string): asserts dev is FsDevice {
  const d = dev as FsDevice | null | undefined
  if (!d || typeof d !== 'object' || typeof d.read !== 'function' || typeof d.write !== 'function' ||
      typeof d.persist !== 'function' || typeof d.zero !== 'function' || typeof d.onCrash !== 'function') {
    throw pmemError('EINVAL', syscall, 'not a device (needs read, write, zero, persist, onCrash)')
  }
  const ps = d.pageSize
  if (typeof ps !== 'number' || !Number.isInteger(ps) || ps < 4096 || (ps & (ps - 1)) !== 0 || ps > 1 << 24) {
    throw pmemError('EINVAL', syscall, `page size ${String(ps)} is not a power of two in 4096..16 MiB`)
  }
  if (typeof d.pageCount !== 'number' || !Number.isSafeInteger(d.pageCount) || d.pageCount < 1) {
    throw pmemError('EINVAL', syscall, `bad page count ${String(d.pageCount)}`)
  }
}

// --------------------------------------------------------------------- entry points

/** Format the device and mount the new file system. */
export async function mkfs(dev: FsDevice, opts: MkfsOptions = {}): Promise<PmemFs> {
  PmemFs._format(dev, opts)
  return PmemFs._mount(dev, opts)
}

/** Mount the file system on the device, replaying the journal and releasing orphans. */
export async function mount(dev: FsDevice, opts: MountOptions = {}): Promise<PmemFs> {
  return PmemFs._mount(dev, opts)
}

