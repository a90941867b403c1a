/**
 * `RandomAccessPmem`: a random-access-storage (v3) instance over a file on a
 * pmemu file system, modelled on random-access-file 4 (the storage hypercore
 * uses), so hypercore-style storage can run on an emulated pmem device.
 */
import { Buffer } from 'node:buffer'
import { constants } from 'node:fs'
import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { posix } from 'node:path'
import { isPmemuError, pmemError } from '../errors.js'
import type { PmemFile, PmemFs } from '../fs/index.js'
import { prng } from '../region/index.js'
import { nodeError, toNodeError } from './errors.js'
import { PmemNodeStats, toFsPath } from './node-fs.js'

/** The request random-access-storage hands to `_open`/`_read`/`_write`/... . */
export interface RasRequest {
  /** Byte offset (read/write/del/truncate). */
  offset: number
  /** Byte count (read/del; Infinity for a truncate routed through del). */
  size: number
  /** The buffer to write. */
  data: Buffer | Uint8Array | null
  /** Finish the request: (err) or (null, value). */
  callback(err: Error | null, value?: unknown): void
}

/** Callback style of random-access-storage. */
export type RasCallback<T = void> = (err: Error | null, value?: T) => void

/** The public surface of a random-access-storage 3 instance (the installed package ships no types). */
export interface RandomAccessStorageLike extends EventEmitter {
  readonly readable: boolean
  readonly writable: boolean
  readonly deletable: boolean
  readonly truncatable: boolean
  readonly statable: boolean
  opened: boolean
  suspended: boolean
  closed: boolean
  unlinked: boolean
  writing: boolean
  open(cb?: RasCallback): void
  read(offset: number, size: number, cb: RasCallback<Buffer>): void
  write(offset: number, data: Buffer | Uint8Array, cb?: RasCallback): void
  del(offset: number, size: number, cb?: RasCallback): void
  truncate(offset: number, cb?: RasCallback): void
  stat(cb: RasCallback<{ size: number }>): void
  suspend(cb?: RasCallback): void
  close(cb?: RasCallback): void
  unlink(cb?: RasCallback): void
  /** Implementation hooks the base class calls (override them in a subclass). */
  _open(req: RasRequest): void
  _read(req: RasRequest): void
  _write(req: RasRequest): void
  _del(req: RasRequest): void
  _truncate(req: RasRequest): void
  _stat(req: RasRequest): void
  _suspend(req: RasRequest): void
  _close(req: RasRequest): void
  _unlink(req: RasRequest): void
}

interface RandomAccessStorageCtor {
  new (opts?: object): RandomAccessStorageLike
}

const { O_RDWR, O_RDONLY, O_WRONLY, O_CREAT } = constants

const require = createRequire(import.meta.url)
/**
 * The random-access-storage base class, loaded from the installed package. It is
 * a peer dependency, so this is the consumer's own copy and `instanceof` against
 * it holds.
 */
const RandomAccessStorage = require('random-access-storage') as RandomAccessStorageCtor

export interface RandomAccessPmemOptions {
  /** Root directory `path` is resolved inside (as random-access-file's `directory`). */
  directory?: string
  /** Truncate the file to 0 at open. */
  truncate?: boolean
  /** Truncate (or extend) the file to this size at open; implies creating it. */
  size?: number
  /** Open for reading (default true). */
  readable?: boolean
  /** Open for writing (default true). */
  writable?: boolean
  /** On unlink, also remove the now-empty parent directories up to `directory`. */
  rmdir?: boolean
  /** Take an exclusive lock (shared when read-only) on the file, within this process and fs: a second locker gets ELOCKED. */
  lock?: boolean
  /** Accepted for compatibility; pmemu files are always sparse. */
  sparse?: boolean
  /** Buffer allocator for reads (default Buffer.allocUnsafe). */
  alloc?: (size: number) => Buffer
  /** fsync after every write (default false: writes are durable only after `sync()`, `close()` or an fsync, as with a page cache). */
  fsync?: boolean
  /**
   * A pool from `RandomAccessPmem.createPool(n)` (or random-access-file's): at most
   * `n` storages of the pool keep their file open; opening one more suspends
   * (closes) another, which reopens transparently on its next operation.
   */
  pool?: RandomAccessPool | null
  /**
   * How queued independent operations (read, write, del, truncate, stat issued
   * without waiting for each other) complete. `'in-order'` (default): each runs
   * when issued, so they complete in issue order. `{ reorder: seed }`: the
   * operations in flight together run and complete in an order drawn from the
   * seed, as random-access-file's do on a real disk (the thread pool runs them
   * concurrently); the same seed gives the same order. Use it to find code that
   * assumes issue order without waiting for callbacks.
   */
  completion?: 'in-order' | { reorder: number }
}

/** The pool interface random-access-file 4 uses (`_onactive` at open, `_oninactive` at close). */
export interface RandomAccessPool {
  readonly maxSize: number
  _onactive(file: RandomAccessStorageLike): void
  _oninactive(file: RandomAccessStorageLike): void
}

/**
 * random-access-file's pool: at most `maxSize` of its storages have their file
 * open. When one more opens, a victim among the open ones is suspended; the
 * victim is drawn from `seed` (random-access-file draws it with Math.random),
 * so a run is reproducible.
 */
export class RandomAccessPmemPool implements RandomAccessPool {
  readonly maxSize: number
  /** The storages whose file is open now. */
  readonly active: RandomAccessStorageLike[] = []
  private readonly rnd: () => number

  constructor(maxSize: number, opts: { seed?: number } = {}) {
    if (typeof maxSize !== 'number' || !Number.isInteger(maxSize) || maxSize < 1) {
      throw pmemError('EINVAL', 'createPool', `maxSize must be an integer >= 1, got ${describe(maxSize)}`)
    }
    const seed = opts?.seed ?? 1
    if (typeof seed !== 'number' || !Number.isFinite(seed)) {
      throw pmemError('EINVAL', 'createPool', `seed must be a finite number, got ${describe(seed)}`)
    }
    this.maxSize = maxSize
    this.rnd = prng(seed)
  }

  _onactive(file: RandomAccessStorageLike): void {
    if (this.active.includes(file)) return
    if (this.active.length >= this.maxSize) {
      const victim = this.active[Math.floor(this.rnd() * this.active.length)]!
      victim.suspend()
    }
    this.active.push(file)
  }

  _oninactive(file: RandomAccessStorageLike): void {
    const i = this.active.indexOf(file)
    if (i >= 0) this.active.splice(i, 1)
  }
}

/** A value for an error message that never throws (BigInt, Symbol, objects without toString). */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined || v === null) return String(v)
  return typeof v
}

function checkCompletion(c: unknown): (() => number) | null {
  if (c === undefined || c === 'in-order') return null
  if (c !== null && typeof c === 'object' && typeof (c as { reorder?: unknown }).reorder === 'number' &&
      Number.isFinite((c as { reorder: number }).reorder)) {
    return prng((c as { reorder: number }).reorder)
  }
  throw pmemError('EINVAL', 'RandomAccessPmem',
    `completion must be 'in-order' or { reorder: <seed number> }, got ${c !== null && typeof c === 'object' ? `{ reorder: ${describe((c as { reorder?: unknown }).reorder)} }` : describe(c)}`)
}

/** In-process lock table: fs -> path -> holders ('x' or a shared count). */
const locks = new WeakMap<PmemFs, Map<string, { exclusive: boolean; count: number }>>()

function lockError(path: string): Error {
  const err = new Error('ELOCKED: File is locked') as Error & { code: string; path: string }
  err.code = 'ELOCKED'
  err.path = path
  return err
}

function readError(path: string, offset: number, size: number): Error {
  const err = new Error('EPARTIALREAD: Could not satisfy length') as Error & { code: string; path: string; offset: number; size: number }
  err.code = 'EPARTIALREAD'
  err.path = path
  err.offset = offset
  err.size = size
  return err
}

/**
 * A random-access-storage instance on a pmemu file: `new RandomAccessPmem(fs, '/core/data')`.
 *
 * Behaves as random-access-file 4: the file (and its parent directories) is
 * created on the first write, or at open with `size`/`truncate`; a read-only
 * use of a missing file fails with ENOENT; reads that cannot be satisfied fail
 * with `EPARTIALREAD`; `del` punches a hole (the range reads as zeros, the
 * size is kept) and `del(offset, Infinity)` / `truncate` cut the file.
 * Errors from the file system have Node's fs shape (code, negative errno,
 * syscall, path).
 *
 * Durability: pmemu stores are durable only once persisted. `close()` fsyncs
 * (as a clean shutdown would), `sync(cb)` fsyncs on demand, and
 * `{ fsync: true }` fsyncs after every write; without those a `dev.crash()`
 * may drop recent writes, as a real power loss would.
 */
export class RandomAccessPmem extends RandomAccessStorage {
  /** The pmemu file system. */
  readonly fs: PmemFs
  /** The pmemu path of the file. */
  readonly filename: string
  readonly directory: string | null
  /** The open file, or null before open / after close. */
  file: PmemFile | null = null
  private readonly mode: { read: boolean; write: boolean }
  private readonly initialSize: number
  private readonly rmdirOnUnlink: boolean
  private readonly lockMode: boolean
  private readonly alloc: (size: number) => Buffer
  private readonly fsyncEach: boolean
  private readonly pool: RandomAccessPool | null
  /** Seeded order for `completion: { reorder }`, else null (in order). */
  private readonly reorder: (() => number) | null
  /** Operations issued together and not yet run (reorder mode). */
  private inflight: Array<() => void> = []
  private sized = false
  private locked = false

  /** random-access-file's `createPool(maxSize)`; `seed` picks the suspended victims reproducibly. */
  static createPool(maxSize: number, opts?: { seed?: number }): RandomAccessPmemPool {
    return new RandomAccessPmemPool(maxSize, opts)
  }

  constructor(fs: PmemFs, path: string, opts: RandomAccessPmemOptions = {}) {
    if (fs === null || typeof fs !== 'object' || typeof (fs as Partial<PmemFs>).open !== 'function') {
      throw pmemError('EINVAL', 'RandomAccessPmem', `the first argument must be a pmemu file system (mount()), got ${fs === null ? 'null' : typeof fs}`)
    }
    if (typeof path !== 'string') throw pmemError('EINVAL', 'RandomAccessPmem', `path must be a string, got ${typeof path}`)
    if (opts === null || typeof opts !== 'object') throw pmemError('EINVAL', 'RandomAccessPmem', 'options must be an object', { path })
    const reorder = checkCompletion(opts.completion)
    const pool = opts.pool ?? null
    if (pool !== null && (typeof pool !== 'object' || typeof pool._onactive !== 'function' || typeof pool._oninactive !== 'function')) {
      throw pmemError('EINVAL', 'RandomAccessPmem', `pool must come from RandomAccessPmem.createPool(), got ${describe(pool)}`, { path })
    }
    super()
    this.reorder = reorder
    this.pool = pool
    const size = opts.size || (opts.truncate ? 0 : -1)
    this.fs = fs
    this.directory = opts.directory !== undefined ? toFsPath(opts.directory) : null
    this.filename = this.directory !== null ? posix.join(this.directory, posix.resolve('/', path)) : toFsPath(path)
    const { readable = true, writable = true } = opts
    this.mode = { read: readable, write: writable }
    this.initialSize = size
    this.rmdirOnUnlink = opts.rmdir === true
    this.lockMode = opts.lock === true
    this.alloc = opts.alloc ?? ((n: number) => Buffer.allocUnsafe(n))
    this.fsyncEach = opts.fsync === true
  }

  /** fsync the file (durable against `dev.crash()`); not part of random-access-storage. */
  sync(cb: RasCallback = () => undefined): void {
    const f = this.file
    if (!f) { queueMicrotask(() => cb(null)); return }
    f.fsync().then(() => cb(null), (e: unknown) => cb(toNodeError(e, 'fsync') as Error))
  }

  override _open(req: RasRequest): void {
    const create = this.initialSize >= 0 || this.writing
    void this.doOpen(create).then(() => req.callback(null), (e: Error) => req.callback(e))
  }

  private async doOpen(create: boolean): Promise<void> {
    const fs = this.fs
    const path = this.filename
    if (create) await mkdirp(fs, posix.dirname(path))
    const { read, write } = this.mode
    const flags = (read && write ? O_RDWR : write ? O_WRONLY : O_RDONLY) | (create ? O_CREAT : 0)
    let f: PmemFile
    try {
      f = await fs.open(path, flags)
    } catch (e) { throw toNodeError(e, 'open', path) as Error }
    try {
      if (this.lockMode) this.takeLock()
      // Only the first open sizes the file: a reopen after a pool suspension must not cut it again.
      if (this.initialSize >= 0 && !this.sized) {
        try { await f.truncate(this.initialSize) } catch (e) { throw toNodeError(e, 'ftruncate', path) as Error }
      }
    } catch (e) {
      this.dropLock()
      await f.close().catch(() => undefined)
      throw e
    }
    this.file = f
    this.sized = true
    if (this.pool !== null) this.pool._onactive(this)
  }

  private takeLock(): void {
    let m = locks.get(this.fs)
    if (!m) { m = new Map(); locks.set(this.fs, m) }
    const shared = !this.mode.write
    const cur = m.get(this.filename)
    if (cur && (cur.exclusive || !shared)) throw lockError(this.filename)
    if (cur) cur.count++
    else m.set(this.filename, { exclusive: !shared, count: 1 })
    this.locked = true
  }

  private dropLock(): void {
    if (!this.locked) return
    this.locked = false
    const m = locks.get(this.fs)
    const cur = m?.get(this.filename)
    if (!m || !cur) return
    if (--cur.count <= 0) m.delete(this.filename)
  }

  /** Run an independent operation now (in order) or with the others issued together, in seeded order. */
  private issue(run: () => void): void {
    const rnd = this.reorder
    if (rnd === null) { run(); return }
    this.inflight.push(run)
    if (this.inflight.length > 1) return
    // Everything issued before the event loop turns is in flight together, as in libuv's thread pool.
    setImmediate(() => {
      const batch = this.inflight
      this.inflight = []
      for (let i = batch.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1))
        const x = batch[i]!
        batch[i] = batch[j]!
        batch[j] = x
      }
      for (const op of batch) op()
    })
  }

  override _read(req: RasRequest): void { this.issue(() => this.doRead(req)) }
  override _write(req: RasRequest): void { this.issue(() => this.doWrite(req)) }
  override _del(req: RasRequest): void { this.issue(() => this.doDel(req)) }
  override _truncate(req: RasRequest): void { this.issue(() => this.doTruncate(req)) }
  override _stat(req: RasRequest): void { this.issue(() => this.doStat(req)) }

  private doRead(req: RasRequest): void {
    const f = this.file!
    const data = (req.data as Buffer | null) ?? this.alloc(req.size)
    if (req.size === 0) { req.callback(null, data); return }
    let n: number
    try {
      n = f.read(data.subarray(0, req.size), req.offset)
    } catch (e) { req.callback(toNodeError(e, 'read') as Error); return }
    if (n < req.size) { req.callback(readError(this.filename, req.offset, req.size)); return }
    req.callback(null, data)
  }

  /** random-access-storage's write, with the data checked first: a non-Uint8Array fails with EINVAL (not a TypeError). */
  override write(offset: number, data: Buffer | Uint8Array, cb?: RasCallback): void {
    if (!(data instanceof Uint8Array)) {
      const err = nodeError('EINVAL', 'write', this.filename, undefined, undefined,
        `data must be a Buffer or Uint8Array, got ${data === null ? 'null' : typeof data}`)
      if (cb) queueMicrotask(() => cb(err))
      else this.emit('error', err)
      return
    }
    super.write(offset, data, cb)
  }

  private doWrite(req: RasRequest): void {
    const f = this.file!
    const data = req.data!
    try {
      let done = 0
      const bytes = data.subarray(0, req.size)
      while (done < bytes.length) done += f.write(bytes.subarray(done), req.offset + done)
    } catch (e) { req.callback(toNodeError(e, 'write') as Error); return }
    if (!this.fsyncEach) { req.callback(null); return }
    f.fsync().then(() => req.callback(null), (e: unknown) => req.callback(toNodeError(e, 'fsync') as Error))
  }

  private doDel(req: RasRequest): void {
    if (req.size === Infinity) { this.doTruncate(req); return }
    const f = this.file!
    const size = f.size
    if (req.offset >= size || req.size <= 0) { req.callback(null); return }
    f.punchHole(req.offset, Math.min(req.size, size - req.offset))
      .then(() => req.callback(null), (e: unknown) => req.callback(toNodeError(e, 'fallocate') as Error))
  }

  private doTruncate(req: RasRequest): void {
    this.file!.truncate(req.offset)
      .then(() => req.callback(null), (e: unknown) => req.callback(toNodeError(e, 'ftruncate') as Error))
  }

  private doStat(req: RasRequest): void {
    try {
      req.callback(null, new PmemNodeStats(this.file!.stat()))
    } catch (e) { req.callback(toNodeError(e, 'fstat') as Error) }
  }

  override _close(req: RasRequest): void {
    const f = this.file
    this.file = null
    this.dropLock()
    if (this.pool !== null) this.pool._oninactive(this)
    if (!f || f.isClosed) { req.callback(null); return }
    const done = (err: unknown): void => {
      f.close().then(() => req.callback(err === null ? null : err as Error), (e: unknown) => req.callback(
        err !== null ? err as Error : isPmemuError(e, 'ENXIO') || isPmemuError(e, 'EIO') ? null : toNodeError(e, 'close') as Error))
    }
    if (!this.mode.write || this.fs.isDead || this.fs.isUnmounted) { done(null); return }
    f.fsync().then(() => done(null), (e: unknown) => done(toNodeError(e, 'fsync')))
  }

  override _unlink(req: RasRequest): void {
    void this.doUnlink().then(() => req.callback(null), (e: Error) => req.callback(e))
  }

  private async doUnlink(): Promise<void> {
    const fs = this.fs
    try {
      await fs.unlink(this.filename)
    } catch (e) {
      if (!isPmemuError(e, 'ENOENT')) throw toNodeError(e, 'unlink', this.filename) as Error
    }
    const root = this.directory
    if (!this.rmdirOnUnlink || root === null) return
    for (let dir = posix.dirname(this.filename); dir !== root && dir !== '/' && dir.startsWith(root); dir = posix.dirname(dir)) {
      try { await fs.rmdir(dir) } catch { return }
    }
  }
}

async function mkdirp(fs: PmemFs, dir: string): Promise<void> {
  const parts = dir.split('/').filter(Boolean)
  let cur = ''
  for (const p of parts) {
    cur += `/${p}`
    try {
      await fs.mkdir(cur)
    } catch (e) {
      if (!isPmemuError(e, 'EEXIST')) throw toNodeError(e, 'mkdir', cur) as Error
    }
  }
}

/** Factory in the style of random-access-file's `(name) => storage`, for hypercore's storage argument. */
export function pmemStorage(fs: PmemFs, opts: RandomAccessPmemOptions = {}): (name: string) => RandomAccessPmem {
  return (name: string) => new RandomAccessPmem(fs, name, opts)
}
