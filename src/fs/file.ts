/** An open file: argument checks, then the operations in io.ts / truncate.ts; mmap goes to the DAX layer. */
import { inspect } from 'node:util'
import { pmemError, safeString } from '../errors.js'
import { validateInt, validateOpts } from './check.js'
import type { PmemFs } from './fs.js'
import { closeFile, type FsNode, statIno } from './inodes.js'
import { fallocate, fsyncNode, readAt, writeAt } from './io.js'
import type { OpenFlags } from './path.js'
import type { FsState } from './state.js'
import type { PmemStats } from './stats.js'
import { setMode, setTimes } from './attrs.js'
import { growSync, punchHole, truncate } from './truncate.js'
import type { MmapResult, TruncateOptions } from './types.js'

export class PmemFile {
  private closed = false
  /** The file position used when read/write get no position. */
  position = 0

  readonly #s: FsState

  /** @internal */
  constructor(s: FsState, readonly node: FsNode, readonly flags: Readonly<OpenFlags>, readonly path: string) { this.#s = s }

  /** The file system the file is open on. */
  get fs(): PmemFs { return this.#s.fs }

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
    this.#s.live(syscall, this.path)
  }

  /** Read into buf at `position` (or the file position); returns bytes read (0 at EOF). */
  read(buf: Uint8Array, position?: number | null): number {
    this.check('read')
    if (!(buf instanceof Uint8Array)) throw pmemError('EINVAL', 'read', 'buffer must be a Uint8Array', { path: this.path })
    if (!this.flags.read) throw pmemError('EBADF', 'read', 'file not open for reading', { path: this.path })
    if (this.node.isDirectory) throw pmemError('EISDIR', 'read', 'is a directory', { path: this.path })
    const usePos = position === undefined || position === null
    const pos = usePos ? this.position : validateInt(position, 'position', 'read', this.path)
    const n = readAt(this.#s, this.node, buf, pos, this.path)
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
    const n = writeAt(this.#s, this.node, buf, pos, this.path)
    if (usePos || this.flags.append) this.position = pos + n
    if (this.flags.sync) fsyncNode(this.#s, this.node, this.path)
    return n
  }

  stat(): PmemStats {
    this.check('fstat')
    return statIno(this.#s, this.node.ino)
  }

  /** futimes(2): set access and modification times (ms since the epoch); see {@link PmemFs.utimes}. */
  async utimes(atimeMs: number, mtimeMs: number): Promise<void> {
    this.check('futime')
    setTimes(this.#s, this.node.ino, atimeMs, mtimeMs, 'futime', this.path)
  }

  /** fchmod(2): set the permission bits; see {@link PmemFs.chmod}. */
  async chmod(mode: number): Promise<void> {
    this.check('fchmod')
    setMode(this.#s, this.node.ino, mode, 'fchmod', this.path)
  }

  /** futimes(2) without a promise (it never waits). */
  utimesSync(atimeMs: number, mtimeMs: number): void {
    this.check('futime')
    setTimes(this.#s, this.node.ino, atimeMs, mtimeMs, 'futime', this.path)
  }

  /** fchmod(2) without a promise (it never waits). */
  chmodSync(mode: number): void {
    this.check('fchmod')
    setMode(this.#s, this.node.ino, mode, 'fchmod', this.path)
  }

  /** Make the file's data (and times) durable. Metadata changes are durable as soon as each call returns. */
  async fsync(): Promise<void> {
    this.check('fsync')
    fsyncNode(this.#s, this.node, this.path)
  }

  async datasync(): Promise<void> { return this.fsync() }

  /** fsync without a promise (it never waits). */
  fsyncSync(): void {
    this.check('fsync')
    fsyncNode(this.#s, this.node, this.path)
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
    growSync(this.#s, this, len)
  }

  async close(): Promise<void> {
    if (this.closed) throw pmemError('EBADF', 'close', 'file is already closed', { path: this.path })
    this._forceClose()
  }

  /** @internal */
  _forceClose(): void {
    if (this.closed) return
    this.closed = true
    closeFile(this.#s, this)
  }

  /** Grow (holes) or shrink the file. Shrinking first calls the layout breaker for the pages it frees. */
  async truncate(length = 0, opts?: TruncateOptions): Promise<void> {
    this.check('ftruncate')
    const len = validateInt(length, 'length', 'ftruncate', this.path)
    const o = validateOpts(opts, 'ftruncate', this.path)
    if (!this.flags.write) throw pmemError('EINVAL', 'ftruncate', 'file not open for writing', { path: this.path })
    await truncate(this.#s, this, len, o, 'truncate')
  }

  /** Allocate (zeroed) blocks for [offset, offset+length), extending the size if needed (fallocate mode 0). */
  async fallocate(offset: number, length: number): Promise<void> {
    this.check('fallocate')
    const off = validateInt(offset, 'offset', 'fallocate', this.path)
    const len = validateInt(length, 'length', 'fallocate', this.path, 1)
    if (!this.flags.write) throw pmemError('EBADF', 'fallocate', 'file not open for writing', { path: this.path })
    fallocate(this.#s, this.node, off, len, this.path)
  }

  /** Deallocate [offset, offset+length) (it reads as zeros); the size does not change (FALLOC_FL_PUNCH_HOLE|KEEP_SIZE). */
  async punchHole(offset: number, length: number, opts?: TruncateOptions): Promise<void> {
    this.check('fallocate')
    const off = validateInt(offset, 'offset', 'fallocate', this.path)
    const len = validateInt(length, 'length', 'fallocate', this.path, 1)
    const o = validateOpts(opts, 'fallocate', this.path)
    if (!this.flags.write) throw pmemError('EBADF', 'fallocate', 'file not open for writing', { path: this.path })
    await punchHole(this.#s, this, off, len, o)
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
   * Map [offset, offset+length) of the file. Built by the extension that
   * provides mmap (the DAX layer, through fs.attach); without one, EOPNOTSUPP.
   */
  mmap(offset: number, length: number, opts: { write?: boolean; sync?: boolean; [k: string]: unknown } = {}): MmapResult {
    this.check('mmap')
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) {
      throw pmemError('EINVAL', 'mmap', `options must be an object ({ write, sync }), got ${opts === null ? 'null' : typeof opts}`, { path: this.path })
    }
    for (const k of ['write', 'sync'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') {
        throw pmemError('EINVAL', 'mmap', `${k} must be a boolean, got ${typeof opts[k] === 'string' ? `'${safeString(opts[k])}'` : safeString(opts[k])}`, { path: this.path })
      }
    }
    const off = validateInt(offset, 'offset', 'mmap', this.path)
    const len = validateInt(length, 'length', 'mmap', this.path, 1)
    if (off % this.#s.blockSize !== 0) throw pmemError('EINVAL', 'mmap', 'offset must be page-aligned', { path: this.path, offset: off })
    // A mapping keeps per-page state: one past what the fs could ever back would
    // allocate from the caller's number alone (2**53 bytes: a RangeError).
    const maxLen = this.#s.blockCount * this.#s.blockSize
    if (off + len > maxLen + this.#s.blockSize * 512) {
      throw pmemError('ENOMEM', 'mmap', `a mapping of [${off}, ${off}+${len}) reaches past anything this ${maxLen}-byte file system could back (the limit is its size plus 2 MiB)`, { path: this.path, offset: off, length: len })
    }
    if (this.node.isDirectory) throw pmemError('ENODEV', 'mmap', 'cannot map a directory', { path: this.path })
    if (!this.flags.read) throw pmemError('EACCES', 'mmap', 'file not open for reading', { path: this.path })
    if (opts.write && !this.flags.write) throw pmemError('EACCES', 'mmap', 'writable mapping of a file not open for writing', { path: this.path })
    const provider = this.#s.hooks.mmap
    if (!provider) throw pmemError('EOPNOTSUPP', 'mmap', 'no DAX layer installed (no extension attached with fs.attach provides mmap)', { path: this.path })
    return provider.fn(this, off, len, { ...opts, write: opts.write === true, sync: opts.sync === true })
  }
}
