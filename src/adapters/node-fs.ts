/**
 * `toNodeFs(fs)`: a `node:fs/promises`-shaped object over a pmemu file
 * system, so tooling written against `fs.promises` runs unchanged on an
 * emulated pmem device — with crash, poison and DMA races injectable under it.
 *
 * Paths: pmemu paths are absolute ('/a/b'). The adapter also accepts relative
 * paths (resolved against '/', the adapter has no working directory), Buffers
 * and `file:` URLs; '//' is collapsed, '.' and '..' are resolved by the file
 * system against the directory reached (after symlinks), as Linux does.
 * Errors carry the `code`, negative `errno`, `syscall`, `path` (as the caller
 * passed it) and `dest` that `node:fs` would report. See
 * docs/testing-with-pmemu.md for the list of known divergences.
 */
import { Buffer } from 'node:buffer'
import nodeFsModule, { constants as fsConstants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Readable, Writable } from 'node:stream'
import { isPmemuError } from '../errors.js'
import type { PmemFile, PmemFs, PmemStats } from '../fs/index.js'
import { argError, closedHandleError, nodeError, rmIsDirError, toNodeError, type NodeSystemError } from './errors.js'

export type { NodeSystemError } from './errors.js'

/** A path as `node:fs` accepts it. */
export type PathLike = string | Buffer | URL
/** Open flags as `node:fs` accepts them ('r', 'w+', 'ax', or O_* numbers). */
export type OpenMode = string | number
/** An encoding name, or 'buffer' for Buffers. */
export type Encoding = BufferEncoding | 'buffer'

/** Data `writeFile`/`appendFile` accept. */
export type WriteData = string | NodeJS.ArrayBufferView | Iterable<string | NodeJS.ArrayBufferView> | AsyncIterable<string | NodeJS.ArrayBufferView>

export interface ReadFileOptions { encoding?: Encoding | null; flag?: OpenMode; signal?: AbortSignal }
export interface WriteFileOptions { encoding?: BufferEncoding | null; mode?: number; flag?: OpenMode; signal?: AbortSignal; flush?: boolean }
export interface StatOptions { bigint?: boolean }
export interface MkdirOptions { recursive?: boolean; mode?: number | string }
export interface RmOptions { recursive?: boolean; force?: boolean; maxRetries?: number; retryDelay?: number }
export interface ReaddirOptions { encoding?: Encoding | null; withFileTypes?: boolean; recursive?: boolean }

// ------------------------------------------------------------------ stats

/** A `fs.Stats`-like object: the same own fields as Node's, and the is*() methods. */
export class PmemNodeStats {
  dev: number; ino: number; mode: number; nlink: number; uid: number; gid: number; rdev: number
  size: number; blksize: number; blocks: number
  atimeMs: number; mtimeMs: number; ctimeMs: number; birthtimeMs: number
  atime: Date; mtime: Date; ctime: Date; birthtime: Date
  /** @internal */
  constructor(s: PmemStats) {
    this.dev = s.dev; this.mode = s.mode; this.nlink = s.nlink; this.uid = s.uid; this.gid = s.gid; this.rdev = s.rdev
    this.blksize = s.blksize; this.ino = s.ino; this.size = s.size; this.blocks = s.blocks
    this.atimeMs = s.atimeMs; this.mtimeMs = s.mtimeMs; this.ctimeMs = s.ctimeMs; this.birthtimeMs = s.birthtimeMs
    this.atime = new Date(s.atimeMs); this.mtime = new Date(s.mtimeMs); this.ctime = new Date(s.ctimeMs); this.birthtime = new Date(s.birthtimeMs)
  }
  isFile(): boolean { return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFREG }
  isDirectory(): boolean { return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFDIR }
  isSymbolicLink(): boolean { return (this.mode & fsConstants.S_IFMT) === fsConstants.S_IFLNK }
  isBlockDevice(): boolean { return false }
  isCharacterDevice(): boolean { return false }
  isFIFO(): boolean { return false }
  isSocket(): boolean { return false }
}

/** A `fs.BigIntStats`-like object (`stat(path, { bigint: true })`). */
export class PmemNodeBigIntStats {
  dev: bigint; ino: bigint; mode: bigint; nlink: bigint; uid: bigint; gid: bigint; rdev: bigint
  size: bigint; blksize: bigint; blocks: bigint
  atimeMs: bigint; mtimeMs: bigint; ctimeMs: bigint; birthtimeMs: bigint
  atimeNs: bigint; mtimeNs: bigint; ctimeNs: bigint; birthtimeNs: bigint
  atime: Date; mtime: Date; ctime: Date; birthtime: Date
  /** @internal */
  constructor(s: PmemStats) {
    const B = (n: number): bigint => BigInt(Math.trunc(n))
    this.dev = B(s.dev); this.mode = B(s.mode); this.nlink = B(s.nlink); this.uid = B(s.uid); this.gid = B(s.gid); this.rdev = B(s.rdev)
    this.blksize = B(s.blksize); this.ino = B(s.ino); this.size = B(s.size); this.blocks = B(s.blocks)
    this.atimeMs = B(s.atimeMs); this.mtimeMs = B(s.mtimeMs); this.ctimeMs = B(s.ctimeMs); this.birthtimeMs = B(s.birthtimeMs)
    // Times are kept to the microsecond (utimes is cut to microseconds, as libuv does).
    const ns = (ms: number): bigint => BigInt(Math.round(ms * 1000)) * 1000n
    this.atimeNs = ns(s.atimeMs); this.mtimeNs = ns(s.mtimeMs); this.ctimeNs = ns(s.ctimeMs); this.birthtimeNs = ns(s.birthtimeMs)
    this.atimeMs = this.atimeNs / 1_000_000n; this.mtimeMs = this.mtimeNs / 1_000_000n
    this.ctimeMs = this.ctimeNs / 1_000_000n; this.birthtimeMs = this.birthtimeNs / 1_000_000n
    this.atime = new Date(s.atimeMs); this.mtime = new Date(s.mtimeMs); this.ctime = new Date(s.ctimeMs); this.birthtime = new Date(s.birthtimeMs)
  }
  isFile(): boolean { return (Number(this.mode) & fsConstants.S_IFMT) === fsConstants.S_IFREG }
  isDirectory(): boolean { return (Number(this.mode) & fsConstants.S_IFMT) === fsConstants.S_IFDIR }
  isSymbolicLink(): boolean { return (Number(this.mode) & fsConstants.S_IFMT) === fsConstants.S_IFLNK }
  isBlockDevice(): boolean { return false }
  isCharacterDevice(): boolean { return false }
  isFIFO(): boolean { return false }
  isSocket(): boolean { return false }
}

function toStats(s: PmemStats, opts?: StatOptions): PmemNodeStats | PmemNodeBigIntStats {
  return opts?.bigint ? new PmemNodeBigIntStats(s) : new PmemNodeStats(s)
}

/** A `fs.Dirent`-like entry (`readdir(..., { withFileTypes: true })`, `Dir.read()`). */
export class PmemDirent {
  /** @internal */
  constructor(readonly name: string, readonly parentPath: string, private readonly type: 'file' | 'directory' | 'symlink') {}
  /** Alias of parentPath (as Node 20). */
  get path(): string { return this.parentPath }
  isFile(): boolean { return this.type === 'file' }
  isDirectory(): boolean { return this.type === 'directory' }
  isSymbolicLink(): boolean { return this.type === 'symlink' }
  isBlockDevice(): boolean { return false }
  isCharacterDevice(): boolean { return false }
  isFIFO(): boolean { return false }
  isSocket(): boolean { return false }
}

// ------------------------------------------------------------------ paths

/** The caller's path as a string (for error messages), and the pmemu path it names. */
function pathArg(p: unknown, name = 'path'): { user: string; fs: string } {
  let s: string
  if (typeof p === 'string') s = p
  else if (Buffer.isBuffer(p)) s = p.toString('utf8')
  else if (p instanceof URL) {
    if (p.protocol !== 'file:') throw argError('ERR_INVALID_URL_SCHEME', 'The URL must be of scheme file')
    s = fileURLToPath(p)
  } else {
    throw argError('ERR_INVALID_ARG_TYPE', `The "${name}" argument must be of type string or an instance of Buffer or URL. Received ${describe(p)}`)
  }
  if (s.includes('\0')) {
    throw argError('ERR_INVALID_ARG_VALUE', `The argument '${name}' must be a string, Uint8Array, or URL without null bytes. Received ${JSON.stringify(s)}`)
  }
  return { user: s, fs: rawFsPath(s) }
}

/** The caller's path for the pmemu fs: relative against '/', '//' collapsed; '.', '..' and a trailing '/' kept (the fs resolves them). */
function rawFsPath(p: string): string {
  return `/${p}`.replace(/\/{2,}/g, '/')
}

/** A path after {@link walk}: the caller's form, the pmemu form, and whether its last component was '.' or '..'. */
interface Walked { user: string; fs: string; last: '.' | '..' | undefined; slash: boolean }

/**
 * The path for the fs, plus what the callers need about its last component:
 * a final '.'/'..' is reported (after checking that the path resolves to a
 * directory, with the errors of the walk) so callers can refuse it as Linux
 * does (rmdir('/d/.') is EINVAL, not a removal of '/d').
 */
async function walk(fs: PmemFs, path: unknown, syscall: string, name = 'path'): Promise<Walked> {
  return walkSync(fs, path, syscall, name)
}

/** The parent directory of a walked path must exist and be a directory (errors as the path walk gives them). */
async function parentDir(fs: PmemFs, p: Walked, syscall: string): Promise<void> {
  // A final '.'/'..' was resolved by walk: its directory exists.
  if (p.last !== undefined) return
  const dir = posix.dirname(p.fs.endsWith('/') ? p.fs.slice(0, -1) : p.fs)
  let st: PmemStats
  try { st = await fs.stat(dir) } catch (e) { throw toNodeError(e, syscall, p.user) }
  if (!st.isDirectory()) throw nodeError('ENOTDIR', syscall, p.user)
}

const O_DIRECTORY = fsConstants.O_DIRECTORY ?? 0o200000
const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0o400000

/** What the adapter itself needs to know about open flags (the fs parses the rest). */
function flagInfo(flags: OpenMode): { pass: OpenMode; creates: boolean; excl: boolean; directory: boolean; nofollow: boolean } {
  if (typeof flags === 'number') {
    const creates = (flags & fsConstants.O_CREAT) !== 0
    return { pass: flags & ~O_DIRECTORY, creates, excl: creates && (flags & fsConstants.O_EXCL) !== 0, directory: (flags & O_DIRECTORY) !== 0, nofollow: (flags & O_NOFOLLOW) !== 0 }
  }
  const creates = typeof flags === 'string' && /[wa]/.test(flags)
  return { pass: flags, creates, excl: creates && flags.includes('x'), directory: false, nofollow: false }
}

/**
 * open(2) as Linux: O_CREAT on a path ending in '/', '.' or '..' is EISDIR
 * (once the parent resolves), O_DIRECTORY on a non-directory ENOTDIR,
 * O_DIRECTORY|O_CREAT EINVAL; O_NOFOLLOW on a symlink is ELOOP (the fs checks it;
 * with O_DIRECTORY too the link is not a directory: ENOTDIR first, as Linux).
 */
async function openAt(fs: PmemFs, path: unknown, flags: OpenMode, mode: number, syscall = 'open', name = 'path'): Promise<PmemFile> {
  const p = await walk(fs, path, syscall, name)
  const fi = flagInfo(flags ?? 'r')
  if (fi.directory && fi.creates) throw nodeError('EINVAL', syscall, p.user)
  if (fi.creates && (p.slash || p.last !== undefined)) {
    await parentDir(fs, p, syscall)
    // A final '.'/'..' names an existing directory: O_EXCL says EEXIST first (do_open in fs/namei.c).
    throw nodeError(p.last !== undefined && fi.excl ? 'EEXIST' : 'EISDIR', syscall, p.user)
  }
  if (fi.directory) {
    let st: PmemStats
    try { st = fi.nofollow ? await fs.lstat(p.fs) : await fs.stat(p.fs) } catch (e) { throw toNodeError(e, syscall, p.user) }
    if (!st.isDirectory()) throw nodeError('ENOTDIR', syscall, p.user)
  }
  return await wrap(syscall, p.user, () => fs.open(p.fs, fi.pass, mode))
}

/** Resolve a user path to the pmemu absolute form: relative paths against '/', '//' collapsed, a trailing '/' kept. */
export function toFsPath(p: string): string {
  const r = posix.resolve('/', p)
  return r !== '/' && p.endsWith('/') ? `${r}/` : r
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  if (typeof v === 'function') return 'function'
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'Object'}`
  return `type ${typeof v} (${String(v)})`
}

function bytesOf(v: NodeJS.ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

function encodingOf(opts: unknown, dflt: Encoding | null): Encoding | null {
  if (typeof opts === 'string') return opts as Encoding
  if (opts && typeof opts === 'object' && 'encoding' in opts) {
    const e = (opts as { encoding?: Encoding | null }).encoding
    return e === undefined ? dflt : e
  }
  return dflt
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string }
    err.name = 'AbortError'
    err.code = 'ABORT_ERR'
    throw err
  }
}

async function wrap<T>(syscall: string, path: string | undefined, fn: () => T | Promise<T>, dest?: string): Promise<T> {
  try { return await fn() } catch (e) { throw toNodeError(e, syscall, path, dest) }
}

function wrapSync<T>(syscall: string, path: string | undefined, fn: () => T, dest?: string): T {
  try { return fn() } catch (e) { throw toNodeError(e, syscall, path, dest) }
}

const CHUNK = 1 << 20
let nextFd = 1 << 16

// ------------------------------------------------------------------ FileHandle

/** What `FileHandle.read` resolves to. */
export interface ReadResult<T> { bytesRead: number; buffer: T }
/** What `FileHandle.write` resolves to. */
export interface WriteResult<T> { bytesWritten: number; buffer: T }
export interface ReadOptions<T extends NodeJS.ArrayBufferView = Buffer> { buffer?: T; offset?: number; length?: number; position?: number | bigint | null }

/**
 * A `FileHandle`-like object over a PmemFile: read/write with Node's
 * overloads, readv/writev, truncate, stat, sync/datasync, readFile,
 * writeFile, appendFile, close. `handle.file` is the PmemFile underneath
 * (for mmap, fallocate, punchHole).
 */
export class PmemFileHandle {
  /** A made-up descriptor number; -1 once closed (as Node). */
  fd: number
  private closed = false

  /** @internal */
  constructor(readonly file: PmemFile) { this.fd = nextFd++ }

  private live(syscall: string): PmemFile {
    if (this.closed) throw closedHandleError(syscall)
    return this.file
  }

  read<T extends NodeJS.ArrayBufferView = Buffer>(buffer: T, offset?: number | null, length?: number | null, position?: number | bigint | null): Promise<ReadResult<T>>
  read<T extends NodeJS.ArrayBufferView = Buffer>(buffer: T, options?: ReadOptions<T>): Promise<ReadResult<T>>
  read<T extends NodeJS.ArrayBufferView = Buffer>(options?: ReadOptions<T>): Promise<ReadResult<T>>
  async read(a?: unknown, b?: unknown, c?: unknown, d?: unknown): Promise<ReadResult<NodeJS.ArrayBufferView>> {
    return this.readSync(a, b, c, d)
  }

  /** The synchronous read behind `read` and `fs.readSync` (pmemu reads never wait). */
  readSync(a?: unknown, b?: unknown, c?: unknown, d?: unknown): ReadResult<NodeJS.ArrayBufferView> {
    let buffer: NodeJS.ArrayBufferView
    let offset: unknown, length: unknown, position: unknown
    if (a === undefined || a === null || (typeof a === 'object' && !ArrayBuffer.isView(a))) {
      const o = (a ?? {}) as ReadOptions<NodeJS.ArrayBufferView>
      buffer = o.buffer ?? Buffer.alloc(16384)
      offset = o.offset; length = o.length; position = o.position
    } else if (ArrayBuffer.isView(a)) {
      buffer = a as NodeJS.ArrayBufferView
      if (b !== null && typeof b === 'object') {
        const o = b as ReadOptions<NodeJS.ArrayBufferView>
        offset = o.offset; length = o.length; position = o.position
      } else { offset = b; length = c; position = d }
    } else {
      throw argError('ERR_INVALID_ARG_TYPE', `The "buffer" argument must be an instance of Buffer, TypedArray, or DataView. Received ${describe(a)}`)
    }
    const bytes = bytesOf(buffer)
    const off = offset === undefined || offset === null ? 0 : rangeInt(offset, 'offset', 0, bytes.length)
    const len = length === undefined || length === null ? bytes.length - off : rangeInt(length, 'length', 0, bytes.length - off)
    const pos = positionArg(position)
    const f = this.live('read')
    if (len === 0) return { bytesRead: 0, buffer }
    const n = wrapSync('read', undefined, () => f.read(bytes.subarray(off, off + len), pos))
    return { bytesRead: n, buffer }
  }

  async readv<T extends NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesRead: number; buffers: T }> {
    const f = this.live('readv')
    let pos = positionArg(position)
    let total = 0
    for (const v of buffers) {
      const bytes = bytesOf(v)
      if (bytes.length === 0) continue
      const n = wrapSync('read', undefined, () => f.read(bytes, pos))
      total += n
      if (pos !== null) pos += n
      if (n < bytes.length) break
    }
    return { bytesRead: total, buffers }
  }

  write<T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number | null, length?: number | null, position?: number | null): Promise<WriteResult<T>>
  write<T extends NodeJS.ArrayBufferView>(buffer: T, options?: { offset?: number; length?: number; position?: number | null }): Promise<WriteResult<T>>
  write(data: string, position?: number | null, encoding?: BufferEncoding | null): Promise<WriteResult<string>>
  async write(a: unknown, b?: unknown, c?: unknown, d?: unknown): Promise<WriteResult<unknown>> {
    return this.writeSync(a, b, c, d)
  }

  /** The synchronous write behind `write` and `fs.writeSync` (pmemu writes never wait). */
  writeSync(a: unknown, b?: unknown, c?: unknown, d?: unknown): WriteResult<unknown> {
    let bytes: Uint8Array
    let position: unknown
    if (typeof a === 'string') {
      bytes = Buffer.from(a, (typeof c === 'string' ? c : 'utf8') as BufferEncoding)
      position = b
    } else if (ArrayBuffer.isView(a)) {
      const all = bytesOf(a as NodeJS.ArrayBufferView)
      let offset: unknown, length: unknown
      if (b !== null && typeof b === 'object') {
        const o = b as { offset?: number; length?: number; position?: number | null }
        offset = o.offset; length = o.length; position = o.position
      } else { offset = b; length = c; position = d }
      const off = offset === undefined || offset === null ? 0 : rangeInt(offset, 'offset', 0, all.length)
      const len = length === undefined || length === null ? all.length - off : rangeInt(length, 'length', 0, all.length - off)
      bytes = all.subarray(off, off + len)
    } else {
      throw argError('ERR_INVALID_ARG_TYPE', `The "buffer" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(a)}`)
    }
    const f = this.live('write')
    const pos = positionArg(position)
    // Node returns 0 for an empty write without a system call (so no EBADF on an 'r' handle, no position change).
    if (bytes.length === 0) return { bytesWritten: 0, buffer: a }
    const n = pwrite(f, bytes, pos)
    return { bytesWritten: n, buffer: a }
  }

  async writev<T extends NodeJS.ArrayBufferView[]>(buffers: T, position?: number | null): Promise<{ bytesWritten: number; buffers: T }> {
    const f = this.live('writev')
    let pos = positionArg(position)
    let total = 0
    for (const v of buffers) {
      const bytes = bytesOf(v)
      if (bytes.length === 0) continue
      const n = pwrite(f, bytes, pos)
      total += n
      if (pos !== null) pos += n
    }
    return { bytesWritten: total, buffers }
  }

  /** Reads from the current position to EOF (as Node's `filehandle.readFile`). */
  readFile(options?: { encoding?: null; signal?: AbortSignal } | null): Promise<Buffer>
  readFile(options: { encoding: BufferEncoding; signal?: AbortSignal } | BufferEncoding): Promise<string>
  async readFile(options?: unknown): Promise<string | Buffer> {
    const f = this.live('readFile')
    checkAborted((options as { signal?: AbortSignal } | undefined)?.signal)
    const buf = readRest(f, undefined)
    const enc = encodingOf(options, null)
    return enc && enc !== 'buffer' ? buf.toString(enc) : buf
  }

  /** Writes from the current position (as Node's `filehandle.writeFile`; it does not truncate). */
  async writeFile(data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
    const f = this.live('writeFile')
    checkAborted((options as WriteFileOptions | undefined)?.signal)
    await writeAll(f, data, encodingOf(options, 'utf8') as BufferEncoding | null, undefined)
  }

  async appendFile(data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
    const f = this.live('appendFile')
    await writeAll(f, data, encodingOf(options, 'utf8') as BufferEncoding | null, undefined)
  }

  async truncate(len = 0): Promise<void> {
    const f = this.live('ftruncate')
    const n = truncLen(len)
    await wrap('ftruncate', undefined, () => f.truncate(n))
  }

  stat(opts: StatOptions & { bigint: true }): Promise<PmemNodeBigIntStats>
  stat(opts?: StatOptions): Promise<PmemNodeStats>
  async stat(opts?: StatOptions): Promise<PmemNodeStats | PmemNodeBigIntStats> {
    const f = this.live('fstat')
    return toStats(wrapSync('fstat', undefined, () => f.stat()), opts)
  }

  async sync(): Promise<void> {
    const f = this.live('fsync')
    await wrap('fsync', undefined, () => f.fsync())
  }

  async datasync(): Promise<void> {
    const f = this.live('fdatasync')
    await wrap('fdatasync', undefined, () => f.datasync())
  }

  /** close without a promise (behind `fs.closeSync`). */
  closeSync(): void {
    if (this.closed) return
    this.closed = true
    this.fd = -1
    if (this.file.isClosed) return
    wrapSync('close', undefined, () => this.file.closeSync())
  }

  /** Closing twice resolves, as Node. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.fd = -1
    if (this.file.isClosed) return
    await wrap('close', undefined, () => this.file.close())
  }

  /** A Readable over this handle, as Node's: `start`, `end` (inclusive), `highWaterMark` (64 KiB), `encoding`, `autoClose` (true). */
  createReadStream(options: StreamOptions = {}): Readable {
    return readStream(async () => this, options)
  }

  /** A Writable over this handle, as Node's: `start` (else the file position), `highWaterMark`, `autoClose` (true). */
  createWriteStream(options: StreamOptions = {}): Writable {
    return writeStream(async () => this, options)
  }

  /** fchmod: the permission bits are stored and reported; pmemu enforces no permissions. */
  async chmod(mode: number | string): Promise<void> {
    const m = parseMode(mode)
    const f = this.live('fchmod')
    await wrap('fchmod', undefined, () => f.chmod(m))
  }
  async chown(_uid: number, _gid: number): Promise<void> { this.live('fchown'); throw unsupported('fchown') }
  /** futimes: seconds, numeric strings or Dates, kept to the microsecond as libuv does. */
  async utimes(atime: unknown, mtime: unknown): Promise<void> {
    const a = timeMs(atime, 'atime')
    const m = timeMs(mtime, 'mtime')
    const f = this.live('futime')
    await wrap('futime', undefined, () => f.utimes(a, m))
  }
}

/**
 * write(2)/pwrite(2): with a position the file position does not move, also
 * on an O_APPEND handle (Linux appends there but leaves the position alone).
 */
function pwrite(f: PmemFile, bytes: Uint8Array, pos: number | null): number {
  const saved = f.position
  const n = wrapSync('write', undefined, () => f.write(bytes, pos))
  if (pos !== null) f.position = saved
  return n
}

/** The options Node's `createReadStream` / `createWriteStream` take. */
export interface StreamOptions {
  flags?: OpenMode; encoding?: BufferEncoding | null; mode?: number; start?: number; end?: number
  highWaterMark?: number; autoClose?: boolean; emitClose?: boolean; fd?: PmemFileHandle | number; signal?: AbortSignal
}

/** Node's fs.ReadStream behaviour over a handle that `open()` gives (lazily, as Node opens in the background). */
export function readStream(open: () => Promise<PmemFileHandle>, o: StreamOptions): Readable {
  const start = o.start === undefined ? undefined : rangeInt(o.start, 'start', 0, Number.MAX_SAFE_INTEGER)
  const end = o.end === undefined || o.end === Infinity ? Infinity : rangeInt(o.end, 'end', 0, Number.MAX_SAFE_INTEGER)
  if (start !== undefined && start > end) throw argError('ERR_OUT_OF_RANGE', `The value of "start" is out of range. It must be <= "end" (here: ${end}). Received ${start}`, RangeError)
  const hwm = o.highWaterMark ?? 64 * 1024
  let h: PmemFileHandle | undefined
  let pos = start
  return new Readable({
    highWaterMark: hwm, encoding: o.encoding ?? undefined, emitClose: o.emitClose ?? true, signal: o.signal,
    construct(cb) { open().then(x => { h = x; cb() }, cb) },
    read(size) {
      const want = Math.min(size || hwm, end === Infinity ? Infinity : end - (pos ?? 0) + 1)
      if (want <= 0) { this.push(null); return }
      const buf = Buffer.allocUnsafe(Math.min(want, hwm))
      h!.read(buf, 0, buf.length, pos ?? null).then(r => {
        if (pos !== undefined) pos += r.bytesRead
        this.push(r.bytesRead === 0 ? null : buf.subarray(0, r.bytesRead))
      }, e => this.destroy(e as Error))
    },
    destroy(err, cb) {
      if (h && o.autoClose !== false) h.close().then(() => cb(err), e => cb(err ?? e as Error))
      else cb(err)
    },
  })
}

/** Node's fs.WriteStream behaviour over a handle that `open()` gives. */
export function writeStream(open: () => Promise<PmemFileHandle>, o: StreamOptions): Writable {
  let pos = o.start === undefined ? undefined : rangeInt(o.start, 'start', 0, Number.MAX_SAFE_INTEGER)
  let h: PmemFileHandle | undefined
  return new Writable({
    highWaterMark: o.highWaterMark ?? 16 * 1024, emitClose: o.emitClose ?? true, signal: o.signal, decodeStrings: true, defaultEncoding: o.encoding ?? 'utf8',
    construct(cb) { open().then(x => { h = x; cb() }, cb) },
    write(chunk: Buffer, _enc, cb) {
      h!.write(chunk, 0, chunk.length, pos ?? null).then(r => { if (pos !== undefined) pos += r.bytesWritten; cb() }, cb)
    },
    destroy(err, cb) {
      if (h && o.autoClose !== false) h.close().then(() => cb(err), e => cb(err ?? e as Error))
      else cb(err)
    },
    final(cb) { cb() },
  })
}

/** A time argument as Node's toUnixTimestamp takes it (seconds, numeric string, Date; negative means now), in ms at libuv's microsecond resolution. */
function timeMs(time: unknown, name: string): number {
  let sec: number
  if (typeof time === 'string' && +time == (time as unknown as number)) sec = +time
  else if (typeof time === 'number' && Number.isFinite(time)) sec = time < 0 ? Date.now() / 1000 : time
  else if (time instanceof Date) sec = time.getTime() / 1000
  else {
    const got = typeof time === 'number' ? `type number (${String(time)})` : time === null ? 'null' : `type ${typeof time}`
    throw argError('ERR_INVALID_ARG_TYPE', `The "${name}" argument must be of type number or an instance of Date. Received ${got}`)
  }
  // uv__fs_to_timespec: whole seconds, then nanoseconds cut to microseconds.
  let s = Math.trunc(sec)
  let ns = Math.trunc((sec - s) * 1e9)
  ns -= ns % 1000
  if (ns < 0) { ns += 1e9; s -= 1 }
  return s * 1e3 + ns / 1e6
}

/** A file mode as Node's parseFileMode takes it: an integer, or an octal string. */
function parseMode(mode: unknown): number {
  if (typeof mode === 'string') {
    if (!/^[0-7]+$/.test(mode)) throw argError('ERR_INVALID_ARG_VALUE', `The argument 'mode' must be a 32-bit unsigned integer or an octal string. Received ${JSON.stringify(mode)}`)
    return parseInt(mode, 8)
  }
  if (typeof mode !== 'number') throw argError('ERR_INVALID_ARG_TYPE', `The "mode" argument must be of type number. Received ${mode === null ? 'null' : `type ${typeof mode}`}`)
  if (!Number.isInteger(mode) || mode < 0 || mode > 0xffffffff) {
    throw argError('ERR_OUT_OF_RANGE', `The value of "mode" is out of range. It must be >= 0 && <= 4294967295. Received ${String(mode)}`, RangeError)
  }
  return mode
}

function unsupported(syscall: string, path?: string): NodeSystemError {
  return nodeError('ENOSYS', syscall, path)
}

function rangeInt(v: unknown, name: string, min: number, max: number): number {
  const n = typeof v === 'bigint' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n)) {
    throw argError('ERR_INVALID_ARG_TYPE', `The "${name}" argument must be of type number. Received ${describe(v)}`)
  }
  if (n < min || n > max) {
    throw argError('ERR_OUT_OF_RANGE', `The value of "${name}" is out of range. It must be >= ${min} && <= ${max}. Received ${n}`, RangeError)
  }
  return n
}

/** Node clamps a negative truncate length to 0. */
function truncLen(len: unknown): number {
  const n = len === undefined || len === null ? 0 : rangeInt(len, 'len', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  return Math.max(0, n)
}

/** null / undefined / -1 = the file position. */
function positionArg(p: unknown): number | null {
  if (p === undefined || p === null || p === -1 || p === -1n) return null
  return rangeInt(p, 'position', 0, Number.MAX_SAFE_INTEGER)
}

/** Read from `pos` (or the file position) to EOF. */
/** Node's readFile limit (kIoMaxLength): a bigger file is refused before anything is read. */
const READ_FILE_MAX = 2 ** 31 - 1

/** rename's errors name both paths, as Node's do: wraps a Node-shaped error, passes anything else through. */
function renameErrorNamer(au: string, bu: string): (e: unknown) => unknown {
  return (e: unknown): unknown => {
    const n = e as NodeSystemError
    return n && typeof n === 'object' && typeof n.code === 'string' && n.syscall ? nodeError(n.code, 'rename', au, bu, n) : e
  }
}

function readRest(f: PmemFile, pos: number | undefined): Buffer {
  const left = f.size - (pos ?? f.position)
  // A 4 TiB sparse file (or a corrupted size) would otherwise be read into
  // memory chunk by chunk until the process is killed.
  if (left > READ_FILE_MAX) throw argError('ERR_FS_FILE_TOO_LARGE', `File size (${f.size}) is greater than 2 GiB`, RangeError)
  const chunks: Buffer[] = []
  let total = 0
  let p: number | null = pos ?? null
  for (;;) {
    const want = Math.max(1, Math.min(CHUNK, f.size - (p ?? f.position)))
    const b = Buffer.allocUnsafe(want)
    const n = wrapSync('read', undefined, () => f.read(b, p))
    if (n === 0) break
    chunks.push(n === b.length ? b : b.subarray(0, n))
    total += n
    if (p !== null) p += n
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total)
}

async function writeAll(f: PmemFile, data: WriteData, encoding: BufferEncoding | null, signal: AbortSignal | undefined): Promise<void> {
  const put = (chunk: unknown): void => {
    checkAborted(signal)
    let bytes: Uint8Array
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, encoding ?? 'utf8')
    else if (ArrayBuffer.isView(chunk)) bytes = bytesOf(chunk as NodeJS.ArrayBufferView)
    else throw argError('ERR_INVALID_ARG_TYPE', `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(chunk)}`)
    let done = 0
    while (done < bytes.length) {
      const part = bytes.subarray(done, Math.min(bytes.length, done + CHUNK))
      done += wrapSync('write', undefined, () => f.write(part, null))
    }
  }
  if (typeof data === 'string' || ArrayBuffer.isView(data)) { put(data); return }
  if (data !== null && typeof data === 'object' && (Symbol.asyncIterator in data || Symbol.iterator in data)) {
    for await (const chunk of data as AsyncIterable<unknown>) put(chunk)
    return
  }
  throw argError('ERR_INVALID_ARG_TYPE', `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(data)}`)
}

// ------------------------------------------------------------------ Dir

/** A `fs.Dir`-like directory stream (`opendir`): a snapshot of the entries taken at open. */
export class PmemDir {
  private closed = false
  private i = 0
  /** @internal */
  constructor(readonly path: string, private readonly entries: PmemDirent[]) {}

  private live(): void {
    if (this.closed) throw argError('ERR_DIR_CLOSED', 'Directory handle was closed', Error)
  }

  /** The next entry, or null at the end. */
  async read(): Promise<PmemDirent | null> {
    this.live()
    return this.entries[this.i++] ?? null
  }

  async close(): Promise<void> {
    this.closeSync()
  }

  /** The next entry, or null at the end (`dir.readSync()`, as Node's). */
  readSync(): PmemDirent | null {
    this.live()
    return this.entries[this.i++] ?? null
  }

  closeSync(): void {
    this.live()
    this.closed = true
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<PmemDirent> {
    try {
      for (;;) {
        const e = await this.read()
        if (e === null) return
        yield e
      }
    } finally {
      if (!this.closed) this.closed = true
    }
  }
}

// ------------------------------------------------------------------ the fs

/**
 * The `node:fs/promises` shape of `toNodeFs(fs).promises` (the same methods
 * `toNodeFs(fs)` has, promise-only), typed method by method.
 */
export interface PmemNodeFsPromises {
  /** `node:fs` constants (F_OK, O_*, COPYFILE_EXCL, S_IF*). */
  readonly constants: typeof fsConstants
  open(path: PathLike, flags?: OpenMode, mode?: number): Promise<PmemFileHandle>
  readFile(path: PathLike | PmemFileHandle, options?: { encoding?: null; flag?: OpenMode; signal?: AbortSignal } | null): Promise<Buffer>
  readFile(path: PathLike | PmemFileHandle, options: { encoding: BufferEncoding; flag?: OpenMode; signal?: AbortSignal } | BufferEncoding): Promise<string>
  readFile(path: PathLike | PmemFileHandle, options?: ReadFileOptions | Encoding | null): Promise<string | Buffer>
  writeFile(path: PathLike | PmemFileHandle, data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void>
  appendFile(path: PathLike | PmemFileHandle, data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void>
  stat(path: PathLike, opts: StatOptions & { bigint: true }): Promise<PmemNodeBigIntStats>
  stat(path: PathLike, opts?: StatOptions): Promise<PmemNodeStats>
  lstat(path: PathLike, opts: StatOptions & { bigint: true }): Promise<PmemNodeBigIntStats>
  lstat(path: PathLike, opts?: StatOptions): Promise<PmemNodeStats>
  readdir(path: PathLike, options: ReaddirOptions & { withFileTypes: true }): Promise<PmemDirent[]>
  readdir(path: PathLike, options: { encoding: 'buffer'; withFileTypes?: false; recursive?: boolean } | 'buffer'): Promise<Buffer[]>
  readdir(path: PathLike, options?: { encoding?: BufferEncoding | null; withFileTypes?: false; recursive?: boolean } | BufferEncoding | null): Promise<string[]>
  opendir(path: PathLike, options?: { encoding?: BufferEncoding | null; bufferSize?: number; recursive?: boolean }): Promise<PmemDir>
  mkdir(path: PathLike, options: MkdirOptions & { recursive: true }): Promise<string | undefined>
  mkdir(path: PathLike, options?: MkdirOptions | number | string | null): Promise<string | undefined>
  mkdtemp(prefix: string, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string>
  rm(path: PathLike, options?: RmOptions): Promise<void>
  rmdir(path: PathLike, options?: { recursive?: boolean; maxRetries?: number; retryDelay?: number }): Promise<void>
  unlink(path: PathLike): Promise<void>
  rename(oldPath: PathLike, newPath: PathLike): Promise<void>
  truncate(path: PathLike, len?: number): Promise<void>
  access(path: PathLike, mode?: number): Promise<void>
  copyFile(src: PathLike, dest: PathLike, mode?: number): Promise<void>
  realpath(path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string>
  readlink(path: PathLike): Promise<string>
  statfs(path: PathLike): Promise<{ type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }>
  chmod(path: PathLike, mode: number | string): Promise<void>
  chown(path: PathLike, uid: number, gid: number): Promise<void>
  lchown(path: PathLike, uid: number, gid: number): Promise<void>
  utimes(path: PathLike, atime: unknown, mtime: unknown): Promise<void>
  lutimes(path: PathLike, atime: unknown, mtime: unknown): Promise<void>
  link(existingPath: PathLike, newPath: PathLike): Promise<void>
  symlink(target: PathLike, path: PathLike, type?: string | null): Promise<void>
}

/** What `toNodeFs` returns: the whole `node:fs` module shape. */
export interface PmemNodeFs extends PmemNodeFsPromises {
  /** The pmemu file system underneath. */
  readonly pmem: PmemFs
  /**
   * The `node:fs/promises` shape (these same methods, promise-only). Typed
   * apart from this interface: an `Omit` of a type with an index signature
   * keeps only the index signature, and every method read as `unknown`.
   */
  readonly promises: PmemNodeFsPromises & { readonly [name: string]: unknown }
  /**
   * The rest of the `node:fs` module: each async method above also takes a
   * trailing callback (open then gives an fd number), the fd forms (`read`,
   * `write`, `close`, `fstat`, `fsync`, `ftruncate`, ...) take those numbers,
   * and every other name `node:fs` has exists and fails with ENOSYS.
   */
  readonly [name: string]: unknown
}

/**
 * Wrap a mounted pmemu file system as a `node:fs/promises`-shaped object.
 *
 * ```ts
 * const dev = await openDevice(undefined, { size: '64MiB', crashShadow: true })
 * const fs = toNodeFs(await mkfs(dev))
 * await fs.mkdir('/logs', { recursive: true })
 * await fs.writeFile('/logs/a.txt', 'hello')
 * ```
 *
 * Errors are shaped as Node's (`code`, negative `errno`, `syscall`, `path`,
 * `dest`, message `ENOENT: no such file or directory, open '/x'`); the
 * PmemuError they come from is `cause`. Relative paths resolve against '/'.
 *
 * @param fs a mounted PmemFs (from `mkfs` or `mount`). After `dev.crash()`,
 *   mount again and wrap the new PmemFs: the old one fails with ENXIO.
 */
export function toNodeFs(fs: PmemFs): PmemNodeFs {
  const api = {
    constants: fsConstants,
    pmem: fs,

    async open(path: PathLike, flags: OpenMode = 'r', mode?: number): Promise<PmemFileHandle> {
      return new PmemFileHandle(await openAt(fs, path, flags ?? 'r', mode ?? 0o666))
    },

    async readFile(path: PathLike | PmemFileHandle, options?: ReadFileOptions | Encoding | null): Promise<string | Buffer> {
      const o = typeof options === 'object' && options !== null ? options : {}
      checkAborted(o.signal)
      const enc = encodingOf(options, null)
      let buf: Buffer
      if (path instanceof PmemFileHandle) {
        buf = await path.readFile()
      } else {
        const f = await openAt(fs, path, o.flag ?? 'r', 0o666)
        try {
          buf = readRest(f, 0)
        } finally {
          await f.close().catch(() => undefined)
        }
      }
      return enc && enc !== 'buffer' ? buf.toString(enc) : buf
    },

    async writeFile(path: PathLike | PmemFileHandle, data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
      await writeFileImpl(fs, path, data, options, 'w')
    },

    async appendFile(path: PathLike | PmemFileHandle, data: WriteData, options?: WriteFileOptions | BufferEncoding | null): Promise<void> {
      await writeFileImpl(fs, path, data, options, 'a')
    },

    async stat(path: PathLike, opts?: StatOptions): Promise<PmemNodeStats | PmemNodeBigIntStats> {
      const p = await walk(fs, path, 'stat')
      return toStats(await wrap('stat', p.user, () => fs.stat(p.fs)), opts)
    },

    async lstat(path: PathLike, opts?: StatOptions): Promise<PmemNodeStats | PmemNodeBigIntStats> {
      const p = await walk(fs, path, 'lstat')
      return toStats(await wrap('lstat', p.user, () => fs.lstat(p.fs)), opts)
    },

    async readdir(path: PathLike, options?: ReaddirOptions | Encoding | null): Promise<unknown[]> {
      const p = await walk(fs, path, 'scandir')
      const o = typeof options === 'object' && options !== null ? options : {}
      const enc = encodingOf(options, 'utf8')
      const ents = await listDir(fs, p, o.recursive === true, 'scandir')
      if (o.withFileTypes) return ents
      return ents.map(e => {
        const rel = e.parentPath === p.user ? e.name : posix.join(posix.relative(toFsPath(p.user), toFsPath(e.parentPath)), e.name)
        return enc === 'buffer' ? Buffer.from(rel) : enc && enc !== 'utf8' && enc !== 'utf-8' ? Buffer.from(rel).toString(enc) : rel
      })
    },

    async opendir(path: PathLike, options?: { encoding?: BufferEncoding | null; bufferSize?: number; recursive?: boolean }): Promise<PmemDir> {
      const p = await walk(fs, path, 'opendir')
      return new PmemDir(p.user, await listDir(fs, p, options?.recursive === true, 'opendir'))
    },

    async mkdir(path: PathLike, options?: MkdirOptions | number | string | null): Promise<string | undefined> {
      const o = typeof options === 'object' && options !== null ? options : { mode: options ?? undefined }
      const mode = typeof o.mode === 'string' ? parseInt(o.mode, 8) : o.mode ?? 0o777
      if (!o.recursive) {
        const p = await walk(fs, path, 'mkdir')
        // mkdir(2) of a final '.'/'..' is EEXIST (the directory it names exists: walk checked).
        if (p.last !== undefined) throw nodeError('EEXIST', 'mkdir', p.user)
        await wrap('mkdir', p.user, () => fs.mkdir(p.fs, mode))
        return undefined
      }
      return mkdirp(fs, pathArg(path).user, mode)
    },

    async mkdtemp(prefix: string, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string> {
      void options
      const p = pathArg(prefix, 'prefix')
      for (;;) {
        const name = `${p.user}${randomBytes(6).toString('base64url').slice(0, 6)}`
        try {
          await fs.mkdir(toFsPath(name), 0o700)
          return name
        } catch (e) {
          if (!isPmemuError(e, 'EEXIST')) throw toNodeError(e, 'mkdtemp', `${p.user}XXXXXX`)
        }
      }
    },

    async rm(path: PathLike, options?: RmOptions): Promise<void> {
      let p: Walked
      try { p = await walk(fs, path, 'lstat') } catch (e) {
        if (options?.force && (e as NodeSystemError).code === 'ENOENT') return
        throw e
      }
      let st: PmemStats
      try {
        st = await fs.lstat(p.fs)
      } catch (e) {
        if (options?.force && isPmemuError(e, 'ENOENT')) return
        throw toNodeError(e, 'lstat', p.user)
      }
      if (st.isDirectory() && !options?.recursive) throw rmIsDirError(p.user)
      await rimraf(fs, p.user)
    },

    async rmdir(path: PathLike, options?: { recursive?: boolean }): Promise<void> {
      const p = await walk(fs, path, options?.recursive ? 'stat' : 'rmdir')
      if (options?.recursive) {
        const st = await wrap('stat', p.user, () => fs.stat(p.fs))
        if (!st.isDirectory()) throw nodeError('ENOTDIR', 'rmdir', p.user)
        await rimraf(fs, p.user)
        return
      }
      await rmdir1(fs, path)
    },

    async unlink(path: PathLike): Promise<void> {
      await unlink1(fs, path)
    },

    async rename(oldPath: PathLike, newPath: PathLike): Promise<void> {
      // rename(2) looks both parents up first, and every error names both paths.
      const au = pathArg(oldPath, 'oldPath').user
      const bu = pathArg(newPath, 'newPath').user
      const both = renameErrorNamer(au, bu)
      let a: Walked
      let b: Walked
      try {
        a = await walk(fs, oldPath, 'rename', 'oldPath')
        await parentDir(fs, a, 'rename')
        b = await walk(fs, newPath, 'rename', 'newPath')
        await parentDir(fs, b, 'rename')
      } catch (e) { throw both(e) }
      if (a.last !== undefined || b.last !== undefined) throw nodeError('EBUSY', 'rename', a.user, b.user)
      // A target that holds the source (rename('/d/x', '/d')) is ENOTEMPTY from the fs, after the source is found.
      await wrap('rename', a.user, () => fs.rename(a.fs, b.fs), b.user)
    },

    async truncate(path: PathLike, len = 0): Promise<void> {
      const n = truncLen(len)
      const f = await openAt(fs, path, 'r+', 0o666)
      try {
        await wrap('ftruncate', undefined, () => f.truncate(n))
      } finally {
        await f.close().catch(() => undefined)
      }
    },

    async access(path: PathLike, mode: number = fsConstants.F_OK): Promise<void> {
      const p = await walk(fs, path, 'access')
      const st = await wrap('access', p.user, () => fs.stat(p.fs))
      if ((mode & fsConstants.X_OK) && st.isFile() && (st.mode & 0o111) === 0) throw nodeError('EACCES', 'access', p.user)
      if ((mode & fsConstants.W_OK) && fs.device.readOnly) throw nodeError('EROFS', 'access', p.user)
    },

    async copyFile(src: PathLike, dest: PathLike, mode = 0): Promise<void> {
      await copyFileImpl(fs, src, dest, mode, false)
    },

    async realpath(path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string> {
      const p = await walk(fs, path, 'realpath')
      return encodePath(await wrap('realpath', p.user, () => fs.realpath(p.fs)), options) as string
    },

    async readlink(path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): Promise<string> {
      const p = await walk(fs, path, 'readlink')
      return encodePath(await wrap('readlink', p.user, () => fs.readlink(p.fs)), options) as string
    },

    async statfs(path: PathLike): Promise<{ type: number; bsize: number; blocks: number; bfree: number; bavail: number; files: number; ffree: number }> {
      const p = pathArg(path)
      await wrap('statfs', p.user, () => fs.stat(p.fs))
      const s = wrapSync('statfs', p.user, () => fs.statfs())
      return { type: s.type, bsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree }
    },

    async chmod(path: PathLike, mode: number | string): Promise<void> {
      const m = parseMode(mode)
      const p = await walk(fs, path, 'chmod')
      await wrap('chmod', p.user, () => fs.chmod(p.fs, m))
    },
    async chown(path: PathLike): Promise<void> { const p = pathArg(path); await wrap('chown', p.user, () => fs.stat(p.fs)); throw unsupported('chown', p.user) },
    async lchown(path: PathLike): Promise<void> { const p = pathArg(path); await wrap('lchown', p.user, () => fs.lstat(p.fs)); throw unsupported('lchown', p.user) },
    async utimes(path: PathLike, atime: unknown, mtime: unknown): Promise<void> {
      const a = timeMs(atime, 'atime')
      const m = timeMs(mtime, 'mtime')
      const p = await walk(fs, path, 'utime')
      await wrap('utime', p.user, () => fs.utimes(p.fs, a, m))
    },
    /** lutimes: a symlink at the end of the path gets the times itself. */
    async lutimes(path: PathLike, atime: unknown, mtime: unknown): Promise<void> {
      const a = timeMs(atime, 'atime')
      const m = timeMs(mtime, 'mtime')
      const p = await walk(fs, path, 'lutime')
      await wrap('lutime', p.user, () => fs.lutimes(p.fs, a, m))
    },
    async link(existingPath: PathLike, newPath: PathLike): Promise<void> {
      const au = pathArg(existingPath, 'existingPath').user
      const bu = pathArg(newPath, 'newPath').user
      const both = (e: unknown): unknown => {
        const n = e as NodeSystemError
        return n && typeof n === 'object' && typeof n.code === 'string' && n.syscall ? nodeError(n.code, 'link', au, bu, n) : toNodeError(e, 'link', au, bu)
      }
      try {
        // linkat(2)'s order: the old path resolves, then the new one (a final '.'/'..' exists: EEXIST).
        const a = await walk(fs, existingPath, 'link', 'existingPath')
        // link(2) does not follow a symlink: the link itself gets the new name.
        await fs.lstat(a.fs)
        const b = await walk(fs, newPath, 'link', 'newPath')
        if (b.last !== undefined) throw nodeError('EEXIST', 'link', au, bu)
        await fs.link(a.fs, b.fs)
      } catch (e) { throw both(e) }
    },
    /** symlink(2): the target is stored as given (relative targets resolve against the link's directory); `type` is ignored, as on Linux. */
    async symlink(target: PathLike, path: PathLike, type?: string | null): Promise<void> {
      symlinkImpl(fs, target, path, type)
    },
  }
  return moduleShape(api as unknown as Record<string, unknown>) as PmemNodeFs
}

/** Every name of the real `node:fs` module and of `node:fs/promises` (so that none can fall through to the host). */
const NODE_FS_NAMES = Object.keys(nodeFsModule)
const NODE_FSP_NAMES = Object.keys(nodeFsModule.promises)

/**
 * Give the promise-shaped adapter the shape of the whole `node:fs` module:
 * its async methods become dual (a trailing callback is called, else a
 * promise is returned, as fs-extra), `.promises` is the promise shape, and
 * every other name `node:fs` has exists and fails with ENOSYS — a library
 * handed this object never reaches the host file system through a gap.
 */
function moduleShape(api: Record<string, unknown>): Record<string, unknown> {
  const promises: Record<string, unknown> = { ...api }
  for (const name of NODE_FSP_NAMES) {
    if (!(name in promises)) promises[name] = async (): Promise<never> => { throw nodeError('ENOSYS', name) }
  }
  const mod: Record<string, unknown> = { constants: fsConstants, F_OK: fsConstants.F_OK, R_OK: fsConstants.R_OK, W_OK: fsConstants.W_OK, X_OK: fsConstants.X_OK, promises, pmem: api.pmem }
  const fds = new Map<number, PmemFileHandle>()
  const handle = (fd: unknown, syscall: string): PmemFileHandle => {
    const h = typeof fd === 'number' ? fds.get(fd) : undefined
    if (!h) throw nodeError('EBADF', syscall)
    return h
  }
  const dual = (fn: (...a: unknown[]) => Promise<unknown>, spread?: (v: unknown) => unknown[]) => (...args: unknown[]): unknown => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() as (...r: unknown[]) => void : undefined
    const pr = (async () => fn(...args))()
    if (!cb) return pr
    pr.then(v => { cb(null, ...(spread ? spread(v) : [v])) }, e => { cb(e) })
    return undefined
  }
  for (const [name, fn] of Object.entries(api)) {
    if (typeof fn !== 'function' || name === 'open') continue
    mod[name] = dual(fn as (...a: unknown[]) => Promise<unknown>)
  }
  // open: a FileHandle as a promise (what callers of the promise shape get), an fd number to a callback.
  const open = api.open as (...a: unknown[]) => Promise<PmemFileHandle>
  mod.open = (...args: unknown[]): unknown => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() as (e: unknown, fd?: number) => void : undefined
    const pr = open(...args).then(h => { fds.set(h.fd, h); return h })
    if (!cb) return pr
    pr.then(h => { cb(null, h.fd) }, e => { cb(e) })
    return undefined
  }
  // fs.realpath (callback) is Node's JS walk, as realpathSync; fs.realpath.native and fs.promises.realpath are realpath(3).
  const realpathNative = mod.realpath
  // Without a callback it is the promise form (toNodeFs(fs) doubles as fs.promises).
  const realpathJs = dual(async (path: unknown, options?: unknown) => encodePath(jsRealpath(api.pmem as PmemFs, path), options))
  mod.realpath = Object.assign((...a: unknown[]): unknown => (typeof a[a.length - 1] === 'function' ? realpathJs : realpathNative as (...x: unknown[]) => unknown)(...a), { native: realpathNative })
  mod.exists = (path: unknown, cb?: (ok: boolean) => void): unknown => {
    const pr = (api.access as (p: unknown) => Promise<void>)(path).then(() => true, () => false)
    if (typeof cb === 'function') { void pr.then(cb); return undefined }
    return pr
  }
  const fdOps: Record<string, [string, (h: PmemFileHandle, ...a: unknown[]) => Promise<unknown>, ((v: unknown) => unknown[])?]> = {
    close: ['close', async h => { fds.delete(h.fd); await h.close() }],
    read: ['read', (h, ...a) => (h.read as (...x: unknown[]) => Promise<unknown>)(...a), v => [(v as ReadResult<unknown>).bytesRead, (v as ReadResult<unknown>).buffer]],
    write: ['write', async (h, ...a) => {
      // fs.write makes the system call even for 0 bytes (FileHandle.write does not): EBADF on a read-only fd.
      if (!h.file.flags.write && !h.file.isClosed) throw nodeError('EBADF', 'write')
      return (h.write as (...x: unknown[]) => Promise<unknown>)(...a)
    }, v => [(v as WriteResult<unknown>).bytesWritten, (v as WriteResult<unknown>).buffer]],
    readv: ['readv', (h, ...a) => (h.readv as (...x: unknown[]) => Promise<unknown>)(...a), v => [(v as { bytesRead: number }).bytesRead, (v as { buffers: unknown }).buffers]],
    writev: ['writev', (h, ...a) => (h.writev as (...x: unknown[]) => Promise<unknown>)(...a), v => [(v as { bytesWritten: number }).bytesWritten, (v as { buffers: unknown }).buffers]],
    fstat: ['fstat', (h, o) => h.stat(o as StatOptions)],
    fsync: ['fsync', h => h.sync()],
    fdatasync: ['fdatasync', h => h.datasync()],
    ftruncate: ['ftruncate', (h, len) => h.truncate(len as number | undefined)],
  }
  for (const [name, [syscall, op, spread]] of Object.entries(fdOps)) {
    mod[name] = dual(async (fd: unknown, ...a: unknown[]) => op(handle(fd, syscall), ...a), spread)
  }
  const streamHandle = (path: unknown, o: StreamOptions, dflt: OpenMode) => async (): Promise<PmemFileHandle> => {
    if (o.fd instanceof PmemFileHandle) return o.fd
    if (o.fd !== undefined) return handle(o.fd, 'open')
    return open(path, o.flags ?? dflt, o.mode ?? 0o666)
  }
  const streamOpts = (x: unknown): StreamOptions => (typeof x === 'string' ? { encoding: x as BufferEncoding } : (x ?? {}) as StreamOptions)
  mod.createReadStream = (path: unknown, options?: unknown): Readable => { const o = streamOpts(options); return readStream(streamHandle(path, o, 'r'), o) }
  mod.createWriteStream = (path: unknown, options?: unknown): Writable => { const o = streamOpts(options); return writeStream(streamHandle(path, o, 'w'), o) }
  Object.assign(mod, syncForms(api.pmem as PmemFs, fds, handle))
  // cp runs cpSync's walk (nothing on its path waits): the callback form, and fs.promises.cp.
  const cpAsync = mod[CP_ASYNC] as (...a: unknown[]) => void
  delete mod[CP_ASYNC]
  promises.cp = async (...a: unknown[]): Promise<void> => { cpAsync(...a) }
  mod.cp = dual(promises.cp as (...a: unknown[]) => Promise<unknown>)
  const classes: Record<string, unknown> = { Stats: PmemNodeStats, Dirent: PmemDirent, Dir: PmemDir }
  for (const name of NODE_FS_NAMES) {
    if (name in mod) continue
    if (name in classes) { mod[name] = classes[name]; continue }
    if (/^[A-Z]/.test(name)) {
      mod[name] = class { constructor() { throw nodeError('ENOSYS', name) } }
      continue
    }
    // Sync forms, watchers, streams, cp ...: present, and failing loudly rather than touching the host.
    mod[name] = name.endsWith('Sync') || name.startsWith('watch') || name.startsWith('create') || name === 'unwatchFile'
      ? (): never => { throw nodeError('ENOSYS', name.replace(/Sync$/, '')) }
      : dual(async () => { throw nodeError('ENOSYS', name) })
  }
  return mod
}

async function writeFileImpl(fs: PmemFs, path: PathLike | PmemFileHandle, data: WriteData, options: WriteFileOptions | BufferEncoding | null | undefined, dflt: 'w' | 'a'): Promise<void> {
  const o = typeof options === 'object' && options !== null ? options : {}
  checkAborted(o.signal)
  const enc = encodingOf(options, 'utf8') as BufferEncoding | null
  if (path instanceof PmemFileHandle) {
    await (dflt === 'a' ? path.appendFile(data, options) : path.writeFile(data, options))
    return
  }
  const f = await openAt(fs, path, o.flag ?? dflt, o.mode ?? 0o666, 'open', 'file')
  try {
    await writeAll(f, data, enc, o.signal)
    if (o.flush) await wrap('fsync', undefined, () => f.fsync())
  } finally {
    await f.close().catch(() => undefined)
  }
}

// ------------------------------------------------------------------ *Sync forms

/** {@link walk} without a promise (pmemu's path lookups never wait). */
function walkSync(fs: PmemFs, path: unknown, syscall: string, name = 'path'): Walked {
  const p = pathArg(path, name)
  const slash = p.user.length > 1 && p.user.endsWith('/')
  const tail = p.user.split('/').filter(c => c !== '').pop()
  const last = tail === '.' || tail === '..' ? tail : undefined
  if (last !== undefined) {
    const st = wrapSync(syscall, p.user, () => fs.statSync(p.fs))
    if (!st.isDirectory()) throw nodeError('ENOTDIR', syscall, p.user)
  }
  return { user: p.user, fs: p.fs, last, slash }
}

function parentDirSync(fs: PmemFs, p: Walked, syscall: string): void {
  if (p.last !== undefined) return
  const st = wrapSync(syscall, p.user, () => fs.statSync(posix.dirname(p.fs.endsWith('/') ? p.fs.slice(0, -1) : p.fs)))
  if (!st.isDirectory()) throw nodeError('ENOTDIR', syscall, p.user)
}

/** {@link openAt} without a promise; truncating a non-empty file is EAGAIN (it may wait for pins). */
function openAtSync(fs: PmemFs, path: unknown, flags: OpenMode, mode: number, syscall = 'open', name = 'path'): PmemFile {
  const p = walkSync(fs, path, syscall, name)
  const fi = flagInfo(flags ?? 'r')
  if (fi.directory && fi.creates) throw nodeError('EINVAL', syscall, p.user)
  if (fi.creates && (p.slash || p.last !== undefined)) {
    parentDirSync(fs, p, syscall)
    throw nodeError(p.last !== undefined && fi.excl ? 'EEXIST' : 'EISDIR', syscall, p.user)
  }
  if (fi.directory) {
    const st = wrapSync(syscall, p.user, () => (fi.nofollow ? fs.lstatSync(p.fs) : fs.statSync(p.fs)))
    if (!st.isDirectory()) throw nodeError('ENOTDIR', syscall, p.user)
  }
  return wrapSync(syscall, p.user, () => fs.openSync(p.fs, fi.pass, mode))
}

function mkdirpSync(fs: PmemFs, user: string, mode: number): string | undefined {
  const fail = (code: string): NodeSystemError => nodeError(code, 'mkdir', user)
  const one = (path: string): void => {
    const p = walkSync(fs, path, 'mkdir')
    if (p.last !== undefined) throw nodeError('EEXIST', 'mkdir', p.user)
    wrapSync('mkdir', p.user, () => fs.mkdirSync(p.fs, mode))
  }
  const paths = [user]
  let first: string | undefined
  while (paths.length > 0) {
    const next = paths.pop()!
    let err: unknown
    try { one(next) } catch (e) { err = e }
    if (err === undefined) { first ??= next; continue }
    const code = codeOf(err)
    if (code === undefined) throw err
    if (code === 'EACCES' || code === 'ENOSPC' || code === 'ENOTDIR' || code === 'EPERM') throw fail(code)
    if (code === 'ENOENT') {
      const cut = next.lastIndexOf('/')
      const dirname = cut < 0 ? next : next.slice(0, cut)
      if (dirname !== next) paths.push(next, dirname)
      else if (paths.length === 0) throw fail('EEXIST')
      continue
    }
    let st: PmemStats
    try { st = fs.statSync(walkSync(fs, next, 'mkdir').fs) } catch (e) { throw fail(codeOf(e) ?? 'EIO') }
    if (!st.isDirectory()) throw fail(code === 'EEXIST' && paths.length > 0 ? 'ENOTDIR' : 'EEXIST')
  }
  return first
}

function rmdir1Sync(fs: PmemFs, path: unknown): void {
  const p = walkSync(fs, path, 'rmdir')
  if (p.last !== undefined) throw nodeError(p.last === '.' ? 'EINVAL' : 'ENOTEMPTY', 'rmdir', p.user)
  wrapSync('rmdir', p.user, () => fs.rmdirSync(p.fs))
}

function unlink1Sync(fs: PmemFs, path: unknown): void {
  const p = walkSync(fs, path, 'unlink')
  if (p.last !== undefined) throw nodeError('EISDIR', 'unlink', p.user)
  wrapSync('unlink', p.user, () => fs.unlinkSync(p.fs))
}

/**
 * Node 20's rimrafSync (lib/internal/fs/rimraf.js), which differs from the async
 * one: an lstat error other than ENOENT falls through to unlink, and children are
 * joined onto the path as strings (not normalised).
 */
function rimrafSync(fs: PmemFs, path: string): void {
  let dir = false
  try {
    const p = walkSync(fs, path, 'lstat')
    dir = wrapSync('lstat', p.user, () => fs.lstatSync(p.fs)).isDirectory()
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return
  }
  try {
    if (dir) rmdirTreeSync(fs, path, null)
    else unlink1Sync(fs, path)
  } catch (e) {
    const code = codeOf(e)
    if (code === 'ENOENT') return
    if (code === 'EPERM') { rmdirTreeSync(fs, path, e); return }
    if (code !== 'EISDIR') throw e
    rmdirTreeSync(fs, path, e)
  }
}

function rmdirTreeSync(fs: PmemFs, path: string, originalErr: unknown): void {
  try {
    rmdir1Sync(fs, path)
  } catch (e) {
    const code = codeOf(e)
    if (code === 'ENOENT') return
    if (code === 'ENOTDIR') throw originalErr ?? e
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw originalErr ?? e
    const p = walkSync(fs, path, 'scandir')
    for (const name of wrapSync('scandir', p.user, () => fs.readdirSync(p.fs))) rimrafSync(fs, `${path}/${name}`)
    try { rmdir1Sync(fs, path) } catch (e2) { if (codeOf(e2) !== 'ENOENT') throw e2 }
  }
}

function writeAllSync(f: PmemFile, data: unknown, encoding: BufferEncoding | null): void {
  const put = (chunk: unknown): void => {
    let bytes: Uint8Array
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, encoding ?? 'utf8')
    else if (ArrayBuffer.isView(chunk)) bytes = bytesOf(chunk as NodeJS.ArrayBufferView)
    else throw argError('ERR_INVALID_ARG_TYPE', `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(chunk)}`)
    let done = 0
    while (done < bytes.length) {
      const part = bytes.subarray(done, Math.min(bytes.length, done + CHUNK))
      done += wrapSync('write', undefined, () => f.write(part, null))
    }
  }
  put(data)
}

/**
 * The `*Sync` forms of `node:fs` that pmemu can serve without waiting: every
 * metadata call, descriptors (open, read, write, fstat, fsync, close) and
 * whole-file reads and writes. Shrinking a file may have to wait for DAX
 * mappings and DMA pins, so `truncateSync`/`ftruncateSync` to a smaller size,
 * `openSync(p, 'w')` of a non-empty file and a `writeFileSync` shorter than
 * the file it replaces fail with EAGAIN (nothing changed): use the async form.
 */
function syncForms(fs: PmemFs, fds: Map<number, PmemFileHandle>, handle: (fd: unknown, syscall: string) => PmemFileHandle): Record<string, unknown> {
  const statOf = (syscall: 'stat' | 'lstat') => (path: PathLike, opts?: StatOptions & { throwIfNoEntry?: boolean }): unknown => {
    try {
      const p = walkSync(fs, path, syscall)
      return toStats(wrapSync(syscall, p.user, () => (syscall === 'lstat' ? fs.lstatSync(p.fs) : fs.statSync(p.fs))), opts)
    } catch (e) {
      if (opts?.throwIfNoEntry === false && codeOf(e) === 'ENOENT') return undefined
      throw e
    }
  }
  const accessSync = (path: PathLike, mode: number = fsConstants.F_OK): void => {
    const p = walkSync(fs, path, 'access')
    const st = wrapSync('access', p.user, () => fs.statSync(p.fs))
    if ((mode & fsConstants.X_OK) && st.isFile() && (st.mode & 0o111) === 0) throw nodeError('EACCES', 'access', p.user)
    if ((mode & fsConstants.W_OK) && fs.device.readOnly) throw nodeError('EROFS', 'access', p.user)
  }
  const readdirSync = (path: PathLike, options?: ReaddirOptions | Encoding | null): unknown[] => {
    const p = walkSync(fs, path, 'scandir')
    const o = typeof options === 'object' && options !== null ? options : {}
    const enc = encodingOf(options, 'utf8')
    const out = listDirSync(fs, p, o.recursive === true, 'scandir')
    if (o.withFileTypes) return out
    return out.map(e => {
      const rel = e.parentPath === p.user ? e.name : posix.join(posix.relative(toFsPath(p.user), toFsPath(e.parentPath)), e.name)
      return enc === 'buffer' ? Buffer.from(rel) : enc && enc !== 'utf8' && enc !== 'utf-8' ? Buffer.from(rel).toString(enc) : rel
    })
  }
  const realpathSync = (path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): string | Buffer =>
    encodePath(jsRealpath(fs, path), options)
  // realpath(3) itself: errors say 'realpath', a trailing '/' on a file is ENOTDIR.
  realpathSync.native = (path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): string | Buffer => {
    const p = walkSync(fs, path, 'realpath')
    return encodePath(wrapSync('realpath', p.user, () => fs.realpathSync(p.fs)), options)
  }
  const writeFileSync = (dflt: 'w' | 'a') => (path: PathLike | number, data: unknown, options?: WriteFileOptions | BufferEncoding | null): void => {
    const o = typeof options === 'object' && options !== null ? options : {}
    const enc = encodingOf(options, 'utf8') as BufferEncoding | null
    if (typeof path === 'number') { writeAllSync(handle(path, 'write').file, data, enc); return }
    const flag = o.flag ?? dflt
    const fi = flagInfo(flag)
    const truncating = typeof flag === 'string' ? flag.includes('w') : (flag & fsConstants.O_TRUNC) !== 0
    if (!truncating) {
      const f = openAtSync(fs, path, flag, o.mode ?? 0o666, 'open', 'file')
      try { writeAllSync(f, data, enc); if (o.flush) wrapSync('fsync', undefined, () => f.fsyncSync()) } finally { f.closeSync() }
      return
    }
    // Replace without truncating first: the new bytes cover the old ones, so only a shorter replacement must shrink the file.
    const bytes = typeof data === 'string' ? Buffer.from(data, enc ?? 'utf8') : ArrayBuffer.isView(data) ? bytesOf(data as NodeJS.ArrayBufferView) : null
    if (bytes === null) throw argError('ERR_INVALID_ARG_TYPE', `The "data" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ${describe(data)}`)
    // First open without creating or truncating; a missing file (or an error case) goes through the flag as given.
    const keep: OpenMode = typeof flag === 'string' ? 'r+' : flag & ~(fsConstants.O_TRUNC | fsConstants.O_CREAT)
    const user = pathArg(path, 'file').user
    let f: PmemFile
    if (fi.excl || user.endsWith('/') || /(^|\/)\.\.?$/.test(user)) {
      f = openAtSync(fs, path, flag, o.mode ?? 0o666, 'open', 'file')
    } else {
      try {
        f = openAtSync(fs, path, keep, o.mode ?? 0o666, 'open', 'file')
      } catch (e) {
        if (codeOf(e) !== 'ENOENT') throw e
        f = openAtSync(fs, path, flag, o.mode ?? 0o666, 'open', 'file')
      }
    }
    try {
      if (f.size > bytes.length) {
        throw nodeError('EAGAIN', 'open', typeof path === 'string' ? path : undefined, undefined, undefined,
          'replacing a file with fewer bytes shrinks it, which may wait for mappings and pins: use the async writeFile')
      }
      let done = 0
      while (done < bytes.length) done += wrapSync('write', undefined, () => f.write(bytes.subarray(done, Math.min(bytes.length, done + CHUNK)), done))
      if (o.flush) wrapSync('fsync', undefined, () => f.fsyncSync())
    } finally { f.closeSync() }
  }
  const timesSync = (syscall: 'utime' | 'lutime') => (path: PathLike, atime: unknown, mtime: unknown): void => {
    const a = timeMs(atime, 'atime')
    const m = timeMs(mtime, 'mtime')
    const p = walkSync(fs, path, syscall)
    wrapSync(syscall, p.user, () => (syscall === 'lutime' ? fs.lutimesSync(p.fs, a, m) : fs.utimesSync(p.fs, a, m)))
  }
  const out: Record<string, unknown> = {
    statSync: statOf('stat'),
    lstatSync: statOf('lstat'),
    existsSync: (path: unknown): boolean => { try { accessSync(path as PathLike); return true } catch { return false } },
    accessSync,
    readdirSync,
    realpathSync,
    readlinkSync: (path: PathLike, options?: { encoding?: BufferEncoding | null } | BufferEncoding | null): string | Buffer => {
      const p = walkSync(fs, path, 'readlink')
      return encodePath(wrapSync('readlink', p.user, () => fs.readlinkSync(p.fs)), options)
    },
    symlinkSync: (target: PathLike, path: PathLike, type?: string | null): void => symlinkImpl(fs, target, path, type),
    mkdirSync: (path: PathLike, options?: MkdirOptions | number | string | null): string | undefined => {
      const o = typeof options === 'object' && options !== null ? options : { mode: options ?? undefined }
      const mode = typeof o.mode === 'string' ? parseInt(o.mode, 8) : o.mode ?? 0o777
      if (o.recursive) return mkdirpSync(fs, pathArg(path).user, mode)
      const p = walkSync(fs, path, 'mkdir')
      if (p.last !== undefined) throw nodeError('EEXIST', 'mkdir', p.user)
      wrapSync('mkdir', p.user, () => fs.mkdirSync(p.fs, mode))
      return undefined
    },
    rmdirSync: (path: PathLike, options?: { recursive?: boolean }): void => {
      if (options?.recursive) {
        const p = walkSync(fs, path, 'stat')
        if (!wrapSync('stat', p.user, () => fs.statSync(p.fs)).isDirectory()) throw nodeError('ENOTDIR', 'rmdir', p.user)
        rimrafSync(fs, p.user)
        return
      }
      rmdir1Sync(fs, path)
    },
    rmSync: (path: PathLike, options?: RmOptions): void => {
      // Node checks first only without { force, recursive }.
      if (options?.force && options.recursive) { rimrafSync(fs, pathArg(path).user); return }
      let p: Walked
      let st: PmemStats
      try {
        p = walkSync(fs, path, 'lstat')
        st = wrapSync('lstat', p.user, () => fs.lstatSync(p.fs))
      } catch (e) {
        if (options?.force && codeOf(e) === 'ENOENT') return
        throw e
      }
      if (st.isDirectory() && !options?.recursive) throw rmIsDirError(p.user)
      rimrafSync(fs, p.user)
    },
    unlinkSync: (path: PathLike): void => unlink1Sync(fs, path),
    renameSync: (oldPath: PathLike, newPath: PathLike): void => {
      const au = pathArg(oldPath, 'oldPath').user
      const bu = pathArg(newPath, 'newPath').user
      const both = renameErrorNamer(au, bu)
      let a: Walked
      let b: Walked
      try {
        a = walkSync(fs, oldPath, 'rename', 'oldPath')
        parentDirSync(fs, a, 'rename')
        b = walkSync(fs, newPath, 'rename', 'newPath')
        parentDirSync(fs, b, 'rename')
      } catch (e) { throw both(e) }
      if (a.last !== undefined || b.last !== undefined) throw nodeError('EBUSY', 'rename', au, bu)
      wrapSync('rename', au, () => fs.renameSync(a.fs, b.fs), bu)
    },
    utimesSync: timesSync('utime'),
    lutimesSync: timesSync('lutime'),
    futimesSync: (fd: number, atime: unknown, mtime: unknown): void => {
      const a = timeMs(atime, 'atime')
      const m = timeMs(mtime, 'mtime')
      const f = handle(fd, 'futime').file
      wrapSync('futime', undefined, () => { if (f.isClosed) throw nodeError('EBADF', 'futime'); f.utimesSync(a, m) })
    },
    chmodSync: (path: PathLike, mode: number | string): void => {
      const m = parseMode(mode)
      const p = walkSync(fs, path, 'chmod')
      wrapSync('chmod', p.user, () => fs.chmodSync(p.fs, m))
    },
    fchmodSync: (fd: number, mode: number | string): void => {
      const m = parseMode(mode)
      const f = handle(fd, 'fchmod').file
      wrapSync('fchmod', undefined, () => f.chmodSync(m))
    },
    linkSync: (existingPath: PathLike, newPath: PathLike): void => {
      const au = pathArg(existingPath, 'existingPath').user
      const bu = pathArg(newPath, 'newPath').user
      try {
        const a = walkSync(fs, existingPath, 'link', 'existingPath')
        fs.lstatSync(a.fs)
        const b = walkSync(fs, newPath, 'link', 'newPath')
        if (b.last !== undefined) throw nodeError('EEXIST', 'link', au, bu)
        fs.linkSync(a.fs, b.fs)
      } catch (e) {
        const n = e as NodeSystemError
        throw n && typeof n === 'object' && typeof n.code === 'string' && n.syscall ? nodeError(n.code, 'link', au, bu, n) : toNodeError(e, 'link', au, bu)
      }
    },
    openSync: (path: PathLike, flags: OpenMode = 'r', mode?: number): number => {
      const h = new PmemFileHandle(openAtSync(fs, path, flags ?? 'r', mode ?? 0o666))
      fds.set(h.fd, h)
      return h.fd
    },
    closeSync: (fd: number): void => { const h = handle(fd, 'close'); fds.delete(h.fd); h.closeSync() },
    readSync: (fd: number, ...a: unknown[]): number => handle(fd, 'read').readSync(...a).bytesRead,
    writeSync: (fd: number, ...a: unknown[]): number => {
      const h = handle(fd, 'write')
      // fs.writeSync makes the system call even for 0 bytes (FileHandle.write does not): EBADF on a read-only fd.
      if (!h.file.flags.write && !h.file.isClosed) throw nodeError('EBADF', 'write')
      return h.writeSync(a[0], a[1], a[2], a[3]).bytesWritten
    },
    fstatSync: (fd: number, opts?: StatOptions): unknown => { const f = handle(fd, 'fstat').file; return toStats(wrapSync('fstat', undefined, () => f.stat()), opts) },
    fsyncSync: (fd: number): void => { const f = handle(fd, 'fsync').file; wrapSync('fsync', undefined, () => f.fsyncSync()) },
    fdatasyncSync: (fd: number): void => { const f = handle(fd, 'fdatasync').file; wrapSync('fdatasync', undefined, () => f.fsyncSync()) },
    ftruncateSync: (fd: number, len = 0): void => { const f = handle(fd, 'ftruncate').file; const n = truncLen(len); wrapSync('ftruncate', undefined, () => f.truncateSync(n)) },
    truncateSync: (path: PathLike, len = 0): void => {
      const n = truncLen(len)
      const f = openAtSync(fs, path, 'r+', 0o666)
      try { wrapSync('ftruncate', undefined, () => f.truncateSync(n)) } finally { f.closeSync() }
    },
    readFileSync: (path: PathLike | number, options?: ReadFileOptions | Encoding | null): string | Buffer => {
      const o = typeof options === 'object' && options !== null ? options : {}
      const enc = encodingOf(options, null)
      let buf: Buffer
      if (typeof path === 'number') {
        buf = readRest(handle(path, 'read').file, undefined)
      } else {
        const f = openAtSync(fs, path, o.flag ?? 'r', 0o666)
        try { buf = readRest(f, 0) } finally { f.closeSync() }
      }
      return enc && enc !== 'buffer' ? buf.toString(enc) : buf
    },
    writeFileSync: writeFileSync('w'),
    appendFileSync: writeFileSync('a'),
    copyFileSync: (src: PathLike, dest: PathLike, mode?: number): void => { copyFileImpl(fs, src, dest, mode, true) },
    opendirSync: (path: PathLike, options?: { encoding?: BufferEncoding | null; bufferSize?: number; recursive?: boolean }): PmemDir => {
      const p = pathArg(path)
      try {
        const w = walkSync(fs, path, 'opendir')
        return new PmemDir(w.user, listDirSync(fs, w, options?.recursive === true, 'opendir'))
      } catch (e) {
        // Node 20's opendirSync reports no path (its error context has none); opendir does.
        const c = codeOf(e)
        throw c && c.startsWith('E') && !c.startsWith('ERR_') ? nodeError(c, 'opendir', undefined, undefined, e) : toNodeError(e, 'opendir', p.user)
      }
    },
  }
  out.cpSync = (src: PathLike, dest: PathLike, options?: CpOptions): void => cpSyncFn(out as unknown as CpOps, src, dest, options)
  out[CP_ASYNC] = (src: PathLike, dest: PathLike, options?: CpOptions): void => cpSyncFn(out as unknown as CpOps, src, dest, options, true)
  return out
}

/** The options `fs.cp` / `fs.cpSync` take (Node 20). */
export interface CpOptions {
  dereference?: boolean; errorOnExist?: boolean; force?: boolean; preserveTimestamps?: boolean; recursive?: boolean
  verbatimSymlinks?: boolean; mode?: number; filter?: (src: string, dest: string) => boolean
}

/** Where syncForms hands moduleShape the async cp's walk (not a module name). */
const CP_ASYNC = '\u0000cpAsync'

type Fn = (...a: never[]) => unknown
/** The *Sync forms cpSync is written over. */
interface CpOps {
  chmodSync: Fn; copyFileSync: Fn; existsSync: Fn; lstatSync: Fn; mkdirSync: Fn; opendirSync: Fn
  readlinkSync: Fn; statSync: Fn; symlinkSync: Fn; unlinkSync: Fn; utimesSync: Fn
}

/** A Node `ERR_FS_CP_*` / `ERR_FS_EISDIR` SystemError (code, the info's errno as a positive number, syscall 'cp', path). */
function cpError(code: string, prefix: string, errCode: string, errno: number, message: string, path: string): NodeSystemError {
  const err = new Error(`${prefix}: cp returned ${errCode} (${message}) ${path}`) as NodeSystemError
  err.name = 'SystemError'
  err.code = code
  err.errno = errno
  err.syscall = 'cp'
  err.path = path
  Object.defineProperty(err, 'info', { value: { message, path, syscall: 'cp', errno, code: errCode }, enumerable: false })
  return err
}

const EINVAL_N = 22, EISDIR_N = 21, ENOTDIR_N = 20, EEXIST_N = 17

/**
 * `fs.cpSync` as Node 20's lib/internal/fs/cp/cp-sync.js (itself fs-extra's
 * copySync), over this adapter's own *Sync forms, so every error is the one
 * those give. The async `cp` runs the same walk (pmemu's calls never wait on
 * this path: an overwrite unlinks the destination first, so no copy shrinks).
 */
function cpSyncFn(m: CpOps, srcArg: unknown, destArg: unknown, options: CpOptions | undefined, asyncForm = false): void {
  const o = cpOptions(options)
  const src = pathArg(srcArg, 'src').user
  const dest = pathArg(destArg, 'dest').user
  const call = <T>(name: keyof CpOps, ...a: unknown[]): T => (m[name] as (...x: unknown[]) => T)(...a)
  type St = PmemNodeStats | PmemNodeBigIntStats
  const resolve = (p: string): string => posix.resolve('/', p)
  const toArr = (p: string): string[] => resolve(p).split('/').filter(Boolean)
  const isSrcSubdir = (s: string, d: string): boolean => { const sa = toArr(s); const da = toArr(d); return sa.every((c, i) => da[i] === c) }
  const identical = (a: St, b: St): boolean => String(a.ino) === String(b.ino)
  const statFn = o.dereference ? 'statSync' : 'lstatSync'
  const checkPaths = (s: string, d: string): { srcStat?: St; destStat?: St; skipped: boolean } => {
    if (o.filter) {
      const keep = o.filter(s, d) as unknown
      if (keep instanceof Promise || (keep !== null && typeof keep === 'object' && typeof (keep as { then?: unknown }).then === 'function')) {
        throw argError('ERR_INVALID_RETURN_VALUE', 'Expected a boolean to be returned from the "filter" function, but got an instance of Promise.')
      }
      if (!keep) return { skipped: true }
    }
    const srcStat = call<St>(statFn, s, { bigint: true, throwIfNoEntry: true })
    const destStat = call<St | undefined>(statFn, d, { bigint: true, throwIfNoEntry: false })
    if (destStat) {
      if (identical(srcStat, destStat)) throw cpError('ERR_FS_CP_EINVAL', 'Invalid src or dest', 'EINVAL', EINVAL_N, 'src and dest cannot be the same', d)
      if (srcStat.isDirectory() && !destStat.isDirectory()) {
        throw cpError('ERR_FS_CP_DIR_TO_NON_DIR', 'Cannot overwrite non-directory with directory', 'EISDIR', EISDIR_N, `cannot overwrite non-directory ${d} with directory ${s}`, d)
      }
      if (!srcStat.isDirectory() && destStat.isDirectory()) {
        throw cpError('ERR_FS_CP_NON_DIR_TO_DIR', 'Cannot overwrite directory with non-directory', 'ENOTDIR', ENOTDIR_N, `cannot overwrite directory ${d} with non-directory ${s}`, d)
      }
    }
    if (srcStat.isDirectory() && isSrcSubdir(s, d)) {
      throw cpError('ERR_FS_CP_EINVAL', 'Invalid src or dest', 'EINVAL', EINVAL_N, `cannot copy ${s} to a subdirectory of self ${d}`, d)
    }
    return { srcStat, destStat, skipped: false }
  }
  const checkParentPaths = (s: string, srcStat: St, d: string): void => {
    const srcParent = resolve(posix.dirname(s))
    const destParent = resolve(posix.dirname(d))
    if (destParent === srcParent || destParent === '/') return
    const st = call<St | undefined>('statSync', destParent, { bigint: true, throwIfNoEntry: false })
    if (st === undefined) return
    if (identical(srcStat, st)) throw cpError('ERR_FS_CP_EINVAL', 'Invalid src or dest', 'EINVAL', EINVAL_N, `cannot copy ${s} to a subdirectory of self ${d}`, d)
    checkParentPaths(s, srcStat, destParent)
  }
  const getStats = (destStat: St | undefined, s: string, d: string): void => {
    const srcStat = call<PmemNodeStats>(statFn, s)
    if (srcStat.isDirectory() && o.recursive) {
      if (!destStat) {
        call('mkdirSync', d)
        copyDir(s, d)
        call('chmodSync', d, srcStat.mode)
      } else copyDir(s, d)
    } else if (srcStat.isDirectory()) {
      // Node's cp-sync.js gives this one errno EINVAL, cp.js EISDIR.
      throw cpError('ERR_FS_EISDIR', 'Path is a directory', 'EISDIR', asyncForm ? EISDIR_N : EINVAL_N, `${s} is a directory (not copied)`, s)
    } else if (srcStat.isFile()) {
      if (destStat) {
        if (o.force) call('unlinkSync', d)
        else if (o.errorOnExist) throw cpError('ERR_FS_CP_EEXIST', 'Target already exists', 'EEXIST', EEXIST_N, `${d} already exists`, d)
        else return
      }
      call('copyFileSync', s, d, o.mode)
      if (o.preserveTimestamps) {
        if ((srcStat.mode & 0o200) === 0) call('chmodSync', d, srcStat.mode | 0o200)
        const now = call<PmemNodeStats>('statSync', s)
        call('utimesSync', d, now.atime, now.mtime)
      }
      call('chmodSync', d, srcStat.mode)
    } else if (srcStat.isSymbolicLink()) {
      onLink(destStat, s, d)
    }
  }
  const copyDir = (s: string, d: string): void => {
    const dir = call<PmemDir>('opendirSync', s)
    try {
      for (let e = dir.readSync(); e !== null; e = dir.readSync()) {
        const si = posix.join(s, e.name)
        const di = posix.join(d, e.name)
        const r = checkPaths(si, di)
        if (!r.skipped) getStats(r.destStat, si, di)
      }
    } finally { dir.closeSync() }
  }
  const onLink = (destStat: St | undefined, s: string, d: string): void => {
    let resolvedSrc = call<string>('readlinkSync', s)
    if (!o.verbatimSymlinks && !posix.isAbsolute(resolvedSrc)) resolvedSrc = posix.resolve('/', posix.dirname(s), resolvedSrc)
    if (!destStat) { call('symlinkSync', resolvedSrc, d); return }
    let resolvedDest: string
    try {
      resolvedDest = call<string>('readlinkSync', d)
    } catch (e) {
      if (codeOf(e) === 'EINVAL') { call('symlinkSync', resolvedSrc, d); return }
      throw e
    }
    if (!posix.isAbsolute(resolvedDest)) resolvedDest = posix.resolve('/', posix.dirname(d), resolvedDest)
    if (isSrcSubdir(resolvedSrc, resolvedDest)) {
      throw cpError('ERR_FS_CP_EINVAL', 'Invalid src or dest', 'EINVAL', EINVAL_N, `cannot copy ${resolvedSrc} to a subdirectory of self ${resolvedDest}`, d)
    }
    if (call<PmemNodeStats>('statSync', d).isDirectory() && isSrcSubdir(resolvedDest, resolvedSrc)) {
      throw cpError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', 'Cannot overwrite symlink in subdirectory of self', 'EINVAL', EINVAL_N, `cannot overwrite ${resolvedDest} with ${resolvedSrc}`, d)
    }
    call('unlinkSync', d)
    call('symlinkSync', resolvedSrc, d)
  }
  const first = checkPaths(src, dest)
  if (first.skipped) return
  checkParentPaths(src, first.srcStat!, dest)
  const destParent = posix.dirname(dest)
  if (!call<boolean>('existsSync', destParent)) call('mkdirSync', destParent, { recursive: true })
  getStats(first.destStat, src, dest)
}

/** Node 20's validateCpOptions: the defaults, booleans checked, mode 0..7, dereference with verbatimSymlinks refused. */
function cpOptions(options: unknown): Required<Omit<CpOptions, 'filter'>> & { filter?: CpOptions['filter'] } {
  const dflt = { dereference: false, errorOnExist: false, filter: undefined, force: true, preserveTimestamps: false, recursive: false, verbatimSymlinks: false, mode: 0 }
  if (options === undefined) return dflt
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw argError('ERR_INVALID_ARG_TYPE', `The "options" argument must be of type object. Received ${describe(options)}`)
  }
  const o = { ...dflt, ...(options as CpOptions) }
  for (const k of ['dereference', 'errorOnExist', 'force', 'preserveTimestamps', 'recursive', 'verbatimSymlinks'] as const) {
    if (typeof o[k] !== 'boolean') {
      const v = o[k] as unknown
      throw argError('ERR_INVALID_ARG_TYPE', `The "options.${k}" property must be of type boolean. Received ${typeof v === 'string' ? `type string ('${v}')` : describe(v)}`)
    }
  }
  o.mode = o.mode === undefined || o.mode === null ? 0 : rangeInt(o.mode, 'mode', 0, 7)
  if (o.dereference && o.verbatimSymlinks) {
    throw argError('ERR_INCOMPATIBLE_OPTION_PAIR', 'Option "dereference" cannot be used in combination with option "verbatimSymlinks"')
  }
  if (o.filter !== undefined && typeof o.filter !== 'function') {
    throw argError('ERR_INVALID_ARG_TYPE', `The "options.filter" property must be of type function. Received ${describe(o.filter)}`)
  }
  return o
}

/**
 * Node 20's JavaScript realpath (lib/fs.js realpathSync, also behind the
 * callback fs.realpath): the path is first normalised lexically ('..' before
 * symlinks, a trailing '/' dropped), then each prefix is lstat'ed and each
 * link read and spliced in. Errors are those of that walk: a missing
 * component is ENOENT from 'lstat' naming the prefix, a dangling or looping
 * link ENOENT/ELOOP from 'stat' naming the link.
 */
function jsRealpath(fs: PmemFs, path: unknown): string {
  let p = posix.resolve('/', pathArg(path).user)
  const knownHard = new Set<string>()
  const seenLinks = new Map<number, string>()
  let pos = 1
  let current = '/'
  while (pos < p.length) {
    const slash = p.indexOf('/', pos)
    const previous = current
    let base: string
    if (slash === -1) {
      base = previous + p.slice(pos)
      current = base
      pos = p.length
    } else {
      base = previous + p.slice(pos, slash)
      current = `${base}/`
      pos = slash + 1
    }
    if (knownHard.has(base)) continue
    const st = wrapSync('lstat', base, () => fs.lstatSync(base))
    if (!st.isSymbolicLink()) { knownHard.add(base); continue }
    let target = seenLinks.get(st.ino)
    if (target === undefined) {
      wrapSync('stat', base, () => fs.statSync(base))
      target = wrapSync('readlink', base, () => fs.readlinkSync(base))
      seenLinks.set(st.ino, target)
    }
    p = posix.resolve(posix.resolve(previous, target), p.slice(pos))
    pos = 1
    current = '/'
  }
  return p
}

/**
 * copyFile / copyFileSync in libuv's order: open the source, open (create) the
 * destination (COPYFILE_EXCL: O_EXCL, so an existing one is EEXIST), stop if
 * both are the same file, truncate it, copy; on any failure after that the
 * destination is removed. A longer destination is overwritten in place and
 * then shrunk (the same bytes as truncate-then-copy), and a shrink may wait for
 * pins: the async form awaits it (the returned promise), the sync form says
 * EAGAIN before anything changed, as writeFileSync.
 */
function copyFileImpl(fs: PmemFs, src: unknown, dest: unknown, mode: unknown, sync: boolean): Promise<void> | undefined {
  const a = pathArg(src, 'src')
  const b = pathArg(dest, 'dest')
  const m = copyMode(mode)
  const fail = (e: unknown): unknown => toNodeError(e, 'copyfile', a.user, b.user)
  if (m & fsConstants.COPYFILE_FICLONE_FORCE) throw nodeError('ENOSYS', 'copyfile', a.user, b.user)
  const twoPath = (e: unknown): unknown => {
    const n = e as NodeSystemError
    return n && typeof n === 'object' && typeof n.code === 'string' && n.syscall ? nodeError(n.code, 'copyfile', a.user, b.user, n) : fail(e)
  }
  let from: PmemFile
  try { from = openAtSync(fs, src, 'r', 0, 'copyfile', 'src') } catch (e) { throw twoPath(e) }
  let to: PmemFile | undefined
  const close = (): void => {
    try { to?.closeSync() } catch { /* reported by the copy */ }
    try { from.closeSync() } catch { /* nothing to report */ }
  }
  const failed = (e: unknown): unknown => {
    close()
    try { fs.unlinkSync(b.fs) } catch { /* already gone */ }
    return fail(e)
  }
  let size: number
  let isDir: boolean
  try {
    const srcStat = from.stat()
    isDir = srcStat.isDirectory()
    // A directory source fails after the destination was truncated (sendfile says EISDIR).
    size = isDir ? 0 : from.size
    const excl = (m & fsConstants.COPYFILE_EXCL) !== 0
    try {
      to = openAtSync(fs, dest, fsConstants.O_WRONLY | fsConstants.O_CREAT | (excl ? fsConstants.O_EXCL : 0), srcStat.mode & 0o7777, 'copyfile', 'dest')
    } catch (e) { throw twoPath(e) }
    if (!excl && to.ino === from.ino) { close(); return undefined }
    // libuv gives the destination the source's mode, also when it existed.
    to.chmodSync(srcStat.mode & 0o7777)
    if (sync && to.size > size) {
      throw nodeError('EAGAIN', 'copyfile', a.user, b.user, undefined,
        'copying onto a longer file shrinks it, which may wait for mappings and pins: use the async copyFile')
    }
  } catch (e) { close(); throw e }
  const out = to
  if (isDir) {
    const eisdir = nodeError('EISDIR', 'copyfile', a.user, b.user)
    if (out.size === 0) throw failed(eisdir)
    return out.truncate(0).then(() => { throw failed(eisdir) }, e => { throw failed(e) })
  }
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, size)))
    for (let pos = 0; ;) {
      const n = from.read(buf, pos)
      if (n === 0) break
      out.write(buf.subarray(0, n), pos)
      pos += n
    }
  } catch (e) { throw failed(e) }
  if (out.size <= size) { close(); return undefined }
  return out.truncate(size).then(close, e => { throw failed(e) })
}

/** copyFile's mode as Node's getValidMode checks it (its own messages). */
function copyMode(mode: unknown): number {
  if (mode === undefined || mode === null) return 0
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < -(2 ** 31) || mode >= 2 ** 31) {
    throw argError('ERR_INVALID_ARG_TYPE', 'mode must be int32 or null/undefined')
  }
  if (mode < 0 || mode > 7) throw argError('ERR_OUT_OF_RANGE', 'mode is out of range: >= 0 && <= 7', RangeError)
  return mode
}

/** A path result in the caller's encoding ('buffer' gives a Buffer), as Node's realpath/readlink. */
function encodePath(s: string, options: unknown): string | Buffer {
  const enc = encodingOf(options, 'utf8')
  if (enc === 'buffer') return Buffer.from(s)
  return enc && enc !== 'utf8' && enc !== 'utf-8' ? Buffer.from(s).toString(enc) : s
}

/**
 * symlink(2) for both forms: the target as given (a Buffer or file: URL as its
 * string); errors name the target as `path` and the new name as `dest`, as Node's.
 */
function symlinkImpl(fs: PmemFs, target: unknown, path: unknown, type: unknown): void {
  if (type !== undefined && type !== null && type !== 'file' && type !== 'dir' && type !== 'junction') {
    throw argError('ERR_INVALID_ARG_VALUE', `The argument 'type' must be one of: 'dir', 'file', 'junction', null, undefined. Received ${describe(type)}`, TypeError)
  }
  const a = pathArg(target, 'target')
  const b = pathArg(path)
  try {
    fs.symlinkSync(a.user, b.fs)
  } catch (e) { throw toNodeError(e, 'symlink', a.user, b.user) }
}

/** Entries of a directory (recursively: breadth-first, as Node), as Dirents whose parentPath is in the caller's form. */
async function listDir(fs: PmemFs, p: { user: string; fs: string }, recursive: boolean, syscall: string): Promise<PmemDirent[]> {
  return listDirSync(fs, p, recursive, syscall)
}

/** {@link listDir} without a promise. Linked directories are not descended into. */
function listDirSync(fs: PmemFs, p: { user: string; fs: string }, recursive: boolean, syscall: string): PmemDirent[] {
  const out: PmemDirent[] = []
  const queue: Array<{ user: string; fs: string }> = [p]
  for (let q = queue.shift(); q !== undefined; q = queue.shift()) {
    const dir = q
    for (const e of wrapSync(syscall, dir.user, () => fs.readdirSync(dir.fs, { withFileTypes: true }))) {
      out.push(new PmemDirent(e.name, dir.user, e.type))
      if (recursive && e.isDirectory()) queue.push({ user: posix.join(dir.user, e.name), fs: `${dir.fs.replace(/\/$/, '')}/${e.name}` })
    }
  }
  return out
}

/** rmdir(2) of one path: a final '.' is EINVAL and '..' ENOTEMPTY; never the lexical parent. */
async function rmdir1(fs: PmemFs, path: unknown): Promise<void> {
  const p = await walk(fs, path, 'rmdir')
  if (p.last !== undefined) throw nodeError(p.last === '.' ? 'EINVAL' : 'ENOTEMPTY', 'rmdir', p.user)
  await wrap('rmdir', p.user, () => fs.rmdir(p.fs))
}

/** unlink(2) of one path. */
async function unlink1(fs: PmemFs, path: unknown): Promise<void> {
  const p = await walk(fs, path, 'unlink')
  if (p.last !== undefined) throw nodeError('EISDIR', 'unlink', p.user)
  await wrap('unlink', p.user, () => fs.unlink(p.fs))
}

/** mkdir(2) of one path: a final '.'/'..' names an existing directory (EEXIST). */
async function mkdir1(fs: PmemFs, path: string, mode: number): Promise<void> {
  const p = await walk(fs, path, 'mkdir')
  if (p.last !== undefined) throw nodeError('EEXIST', 'mkdir', p.user)
  await wrap('mkdir', p.user, () => fs.mkdir(p.fs, mode))
}

const codeOf = (e: unknown): string | undefined => (e && typeof e === 'object' ? (e as { code?: unknown }).code as string | undefined : undefined)

/**
 * `mkdir(path, { recursive: true })` as Node 20's MKDirp (src/node_file.cc) on the
 * path string as given: mkdir it; on ENOENT retry after its string dirname; on any
 * other error it must be a directory already. Returns the first directory created,
 * in the caller's form; errors name the whole path with syscall 'mkdir'.
 */
async function mkdirp(fs: PmemFs, user: string, mode: number): Promise<string | undefined> {
  const fail = (code: string): NodeSystemError => nodeError(code, 'mkdir', user)
  const paths = [user]
  let first: string | undefined
  while (paths.length > 0) {
    const next = paths.pop()!
    let err: unknown
    try { await mkdir1(fs, next, mode) } catch (e) { err = e }
    if (err === undefined) { first ??= next; continue }
    const code = codeOf(err)
    if (code === undefined) throw err
    if (code === 'EACCES' || code === 'ENOSPC' || code === 'ENOTDIR' || code === 'EPERM') throw fail(code)
    if (code === 'ENOENT') {
      const cut = next.lastIndexOf('/')
      const dirname = cut < 0 ? next : next.slice(0, cut)
      if (dirname !== next) { paths.push(next, dirname) } else if (paths.length === 0) throw fail('EEXIST')
      continue
    }
    // MKDirpAsync's stat callback: with paths still pending an EEXIST that is no directory (a dangling
    // symlink too) is ENOTDIR naming that path; else the stat's error, or EEXIST.
    let st: PmemStats | undefined
    let statErr: unknown
    try {
      const p = await walk(fs, next, 'mkdir')
      st = await fs.stat(p.fs)
    } catch (e) { statErr = e }
    if (st?.isDirectory()) continue
    if (code === 'EEXIST' && paths.length > 0) throw nodeError('ENOTDIR', 'mkdir', next)
    if (statErr !== undefined) throw fail(codeOf(statErr) ?? 'EIO')
    throw fail('EEXIST')
  }
  return first
}

/**
 * Recursive removal as Node 20's rimraf (lib/internal/fs/rimraf.js) on the path
 * string: lstat; a directory is rmdir'd, and only if that says ENOTEMPTY its
 * entries (joined lexically onto the path) are removed and the rmdir retried;
 * ENOENT anywhere means already gone.
 */
async function rimraf(fs: PmemFs, path: string): Promise<void> {
  let dir: boolean
  try {
    const p = await walk(fs, path, 'lstat')
    dir = (await wrap('lstat', p.user, () => fs.lstat(p.fs))).isDirectory()
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return
    throw e
  }
  try {
    if (!dir) { await unlink1(fs, path); return }
    try {
      await rmdir1(fs, path)
    } catch (e) {
      const code = codeOf(e)
      // ENOTDIR: lstat said directory, rmdir says not (a symlink to one, named with a trailing '/'):
      // Node's _rmdir answers with the lstat's error, which is none — a silent no-op.
      if (code === 'ENOENT' || code === 'ENOTDIR') return
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw e
      const p = await walk(fs, path, 'scandir')
      const names = await wrap('scandir', p.user, () => fs.readdir(p.fs))
      // Joined as strings (Buffer.concat in Node's _rmchildren), not normalised: '/l/..' + name stays physical.
      for (const name of names) await rimraf(fs, `${path}/${name}`)
      await rmdir1(fs, path)
    }
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return
    throw e
  }
}
