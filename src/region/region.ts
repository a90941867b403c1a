/**
 * The region: a byte range backed by a file mapped MAP_SHARED (native or
 * mmap-io backend) or by anonymous shared memory (memory backend), exposed as
 * windows of at most WINDOW_BYTES so no typed array passes Node 20's 4 GiB
 * limit. A page never straddles two windows (WINDOW_BYTES is a multiple of
 * every supported page size).
 */
import * as nodeFs from 'node:fs'
import { createRequire } from 'node:module'
import { isMainThread } from 'node:worker_threads'
import { resolve } from 'node:path'
import { constants } from 'node:os'
import { inspect } from 'node:util'
import type { Logger } from 'pino'
import { pmemError, wrapSystemError, PmemuError, safeString } from '../errors.js'
import { parseSize, formatBytes, type Size } from '../util/size.js'
import { nativeShim, nativeAvailable } from './native.js'
import { MODEL_BY_ID } from '../util/model-ids.js'
import { checkBoolean, checkOffset, describe } from '../util/check.js'
import {
  decodeInfo, encodeInfo, geometry, infoBytes, randomUuid, BADBLOCK_HEADER,
} from './info.js'
import type {
  Backend, BadBlock, Capabilities, CrashOptions, DeviceInfo, FlushKind, MapMode, ModelName, Persistence, Window,
} from './types.js'

/** Window size: 1 GiB, a multiple of every page size pmemu accepts and of 2 MiB folios. */
export const WINDOW_BYTES = 2 ** 30
/** mmap-io hands out one Buffer per mapping: Node caps those at 2 GiB here. */
export const MMAP_IO_MAX = 2 ** 31
/** The crash shadow is an in-memory copy of the usable bytes. */
export const SHADOW_MAX = 4 * 2 ** 30
export const MAX_PAGE_SIZE = 2 ** 30
export const CACHE_LINE = 64

const BACKENDS: readonly Backend[] = ['native', 'mmap-io', 'memory']

export interface RegionOptions {
  size?: Size
  create?: boolean
  readOnly?: boolean
  pageSize?: number
  model?: ModelName
  backend?: Backend
  map?: MapMode
  persistence?: Persistence
  crashShadow?: boolean
  /** Override the flush method persist() uses (default: the CPU's, else msync). */
  flush?: FlushKind
  logger?: Logger
  /**
   * With readOnly: open even while another process holds the device for
   * writing (no lock is taken then, and what is read may be mid-update), as
   * dumpe2fs reads a mounted ext4. `device.writerElsewhere` says whether that
   * happened. Default false: a read-only open waits for no one and fails with
   * EBUSY while a writer holds the device.
   */
  alongsideWriter?: boolean
}

interface Opened {
  fd?: number
  created: boolean
  info: DeviceInfo
  /** Opened read-only without the lock, a writer holding it elsewhere. */
  writerElsewhere?: boolean
}

/** pm_flush_kind of native-shims/src/pmem_core.h, by name (the number persist hands to C). */
export const FLUSH_CODES: Readonly<Record<FlushKind, number>> = { none: 0, msync: 1, clflushopt: 2, clwb: 3 }

function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string, dflt: T): T {
  if (v === undefined) return dflt
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T
  throw pmemError('EINVAL', 'open', `${what} must be one of ${allowed.join(', ')}, got ${describe(v)}`)
}

function checkPageSize(pageSize: unknown): number {
  if (typeof pageSize !== 'number' || !Number.isSafeInteger(pageSize) || pageSize < 4096 ||
      pageSize > MAX_PAGE_SIZE || (pageSize & (pageSize - 1)) !== 0) {
    throw pmemError('EINVAL', 'open', `page size must be a power of two from 4096 to 1 GiB, got ${safeString(pageSize)}`)
  }
  return pageSize
}

function checkSize(size: number, pageSize: number, map: MapMode): void {
  if (size % pageSize !== 0) {
    throw pmemError('EINVAL', 'open', `size ${size} is not a multiple of the page size ${pageSize}`)
  }
  if (geometry(size, pageSize, map).pageCount < 1) {
    throw pmemError('EINVAL', 'open',
      `size ${formatBytes(size)} leaves no room for a page after the ${formatBytes(infoBytes(pageSize))} info block`)
  }
}

/** Seeded PRNG (mulberry32): the same seed gives the same crash image. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Region {
  readonly path: string | undefined
  readonly backend: Backend
  readonly readOnly: boolean
  readonly capabilities: Capabilities
  readonly persistence: Persistence
  /** Opened read-only alongside a writer in another process (no lock held). */
  writerElsewhere = false
  /** The info block as last written (badblocks included). */
  info: DeviceInfo
  windows: Window[]
  private infoWindow: Uint8Array
  private infoSab: SharedArrayBuffer | undefined
  private fd: number | undefined
  private shadow: Buffer | undefined
  private closed = false
  private readonly log: Logger | undefined
  private mmapIo: MmapIo | undefined
  private mmapBuf: Buffer | undefined

  private constructor(init: {
    path: string | undefined; backend: Backend; readOnly: boolean; capabilities: Capabilities; info: DeviceInfo
    windows: Window[]; infoWindow: Uint8Array; infoSab?: SharedArrayBuffer; fd?: number; persistence: Persistence
    shadow: boolean; logger?: Logger; mmapIo?: MmapIo; mmapBuf?: Buffer
  }) {
    this.path = init.path
    this.backend = init.backend
    this.readOnly = init.readOnly
    this.capabilities = init.capabilities
    this.info = init.info
    this.windows = init.windows
    this.infoWindow = init.infoWindow
    this.infoSab = init.infoSab
    this.fd = init.fd
    this.persistence = init.persistence
    this.log = init.logger
    this.mmapIo = init.mmapIo
    this.mmapBuf = init.mmapBuf
    if (init.shadow) {
      // The durable image starts equal to what is on the device now.
      this.shadow = Buffer.allocUnsafe(init.info.capacity)
      this.read(0, this.shadow)
    }
  }

  get pageSize(): number { return this.info.pageSize }
  get capacity(): number { return this.info.capacity }
  get pageCount(): number { return this.info.capacity / this.info.pageSize }
  get size(): number { return this.info.size }
  get isClosed(): boolean { return this.closed }
  get hasShadow(): boolean { return this.shadow !== undefined }

  /** Open or create a region. Every bad input throws a PmemuError and leaves the file as it was. */
  static async open(path: string | undefined, opts: RegionOptions = {}): Promise<Region> {
    if (opts === null || typeof opts !== 'object') throw pmemError('EINVAL', 'open', 'options must be an object')
    const where = typeof path === 'string' ? { path } : {}
    if (typeof path === 'string' && path.includes('\0')) {
      throw pmemError('EINVAL', 'open', 'the device path contains a NUL byte', { path: JSON.stringify(path).slice(1, -1) })
    }
    for (const k of ['create', 'readOnly', 'crashShadow', 'alongsideWriter'] as const) checkBoolean(opts[k], 'open', k, where)
    if (opts.readOnly === true && opts.create === true) {
      throw pmemError('EINVAL', 'open', 'readOnly and create conflict: a read-only open cannot create the device', where)
    }
    const backend = oneOf(opts.backend, BACKENDS, 'backend', path === undefined ? 'memory' : 'native')
    const model = oneOf(opts.model, MODEL_BY_ID, 'model', 'upstream')
    const map = oneOf(opts.map, ['mem', 'dev'] as const, 'map', 'mem')
    const persistence = oneOf(opts.persistence, ['adr', 'eadr'] as const, 'persistence', 'adr')
    if (opts.flush !== undefined) oneOf(opts.flush, ['clwb', 'clflushopt', 'msync', 'none'] as const, 'flush', 'none')
    const pageSize = opts.pageSize === undefined ? undefined : checkPageSize(opts.pageSize)
    const size = opts.size === undefined ? undefined : parseSize(opts.size, 'size', 'open')
    const readOnly = opts.readOnly === true
    if (backend === 'memory') {
      if (path !== undefined) throw pmemError('EINVAL', 'open', "the memory backend takes no path", { path })
      return Region.openMemory(size, pageSize ?? 4096, model, map, persistence, opts)
    }
    if (typeof path !== 'string' || path === '') {
      throw pmemError('EINVAL', 'open', `backend '${backend}' needs a file path`)
    }
    const abs = resolve(path)
    if (backend === 'mmap-io') {
      if (!isMainThread) {
        throw pmemError('EOPNOTSUPP', 'open', 'the mmap-io backend works on the main thread only (its Buffers cannot be shared with workers); use the native backend in workers', { path: abs })
      }
      if (size !== undefined && size > MMAP_IO_MAX) {
        throw pmemError('EINVAL', 'open', `the mmap-io backend maps at most 2 GiB, asked for ${formatBytes(size)}; use the native backend`, { path: abs })
      }
    }
    const o = Region.openFile(abs, size, pageSize, model, map, persistence, readOnly, opts.create === true, opts.map !== undefined,
      readOnly && opts.alongsideWriter === true)
    try {
      const r = Region.mapFile(abs, backend, o, readOnly, persistence, opts)
      r.writerElsewhere = o.writerElsewhere === true
      return r
    } catch (e) {
      Region.abandon(abs, o)
      throw e
    }
  }

  private static openMemory(size: number | undefined, pageSize: number, model: ModelName, map: MapMode,
    persistence: Persistence, opts: RegionOptions): Region {
    if (size === undefined) throw pmemError('EINVAL', 'open', 'the memory backend needs a size')
    checkSize(size, pageSize, map)
    const g = geometry(size, pageSize, map)
    const info: DeviceInfo = {
      version: 1, size, pageSize, model, map, persistence, uuid: randomUuid(),
      dataOffset: g.dataOffset, capacity: g.pageCount * pageSize, badblocks: [],
    }
    Region.checkShadow(opts, info)
    const slices = Region.slices(info)
    let sabs: SharedArrayBuffer[]
    let flush: FlushKind = 'none'
    let memfd: number | undefined
    if (nativeAvailable()) {
      const shim = nativeShim()
      try {
        const r = shim.mapAnon(size, slices)
        sabs = r.sabs
        if (typeof r.fd === 'number' && r.fd >= 0) memfd = r.fd
      } catch (e) {
        throw wrapSystemError(e, 'open', { length: size })
      }
      flush = opts.flush ?? shim.cpuFlush()
    } else {
      sabs = []
      for (let i = 0; i < slices.length; i += 2) sabs.push(new SharedArrayBuffer(slices[i + 1]!))
    }
    const infoSab = sabs[0]!
    const infoWindow = new Uint8Array(infoSab)
    encodeInfo(info, infoWindow)
    return new Region({
      path: undefined, backend: 'memory', readOnly: false, info, persistence,
      capabilities: { mapSync: false, flush, mapSyncError: 'ENODEV', workers: true },
      windows: Region.windowsFrom(info, sabs.slice(1)), infoWindow, infoSab, shadow: opts.crashShadow === true,
      ...(memfd !== undefined ? { fd: memfd } : {}), ...(opts.logger ? { logger: opts.logger } : {}),
    })
  }

  private static checkShadow(opts: RegionOptions, info: DeviceInfo): void {
    if (opts.crashShadow && info.capacity > SHADOW_MAX) {
      throw pmemError('EINVAL', 'open', `crashShadow keeps a copy of the device in memory: at most ${formatBytes(SHADOW_MAX)}, this one is ${formatBytes(info.capacity)}`)
    }
  }

  /** [offset, length] pairs in file bytes: the info block, then the usable windows. */
  private static slices(info: DeviceInfo): number[] {
    const s = [0, infoBytes(info.pageSize)]
    for (let off = 0; off < info.capacity; off += WINDOW_BYTES) {
      s.push(info.dataOffset + off, Math.min(WINDOW_BYTES, info.capacity - off))
    }
    return s
  }

  private static windowsFrom(info: DeviceInfo, sabs: SharedArrayBuffer[]): Window[] {
    return sabs.map((sab, i) => ({ offset: i * WINDOW_BYTES, length: sab.byteLength, sab, bytes: new Uint8Array(sab) }))
  }

  /** Open the file, lock it, and read or write its info block. */
  private static openFile(path: string, size: number | undefined, pageSize: number | undefined, model: ModelName,
    map: MapMode, persistence: Persistence, readOnly: boolean, create: boolean, mapGiven = false, alongsideWriter = false): Opened {
    let st: nodeFs.Stats | undefined
    try {
      st = nodeFs.statSync(path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw wrapSystemError(e, 'open', { path })
    }
    if (st?.isDirectory()) throw pmemError('EISDIR', 'open', 'the device path is a directory', { path })
    if (!st && (!create || readOnly)) {
      throw pmemError('ENOENT', 'open', readOnly ? 'no such device file' : 'no such device file (pass create: true and a size to make one)', { path })
    }
    const fresh = !st || st.size === 0
    if (fresh) {
      if (!create) throw pmemError('EINVAL', 'open', 'the file is empty: not a pmemu device (pass create: true and a size to format it)', { path })
      if (size === undefined) throw pmemError('EINVAL', 'open', 'creating a device needs a size', { path })
      checkSize(size, pageSize ?? 4096, map)
    }
    let fd: number
    try {
      fd = nodeFs.openSync(path, readOnly ? 'r' : st ? 'r+' : 'wx+')
    } catch (e) {
      throw wrapSystemError(e, 'open', { path })
    }
    const created = !st
    try {
      const locked = Region.lock(fd, path, readOnly, alongsideWriter)
      if (fresh) {
        const ps = pageSize ?? 4096
        const g = geometry(size!, ps, map)
        const info: DeviceInfo = {
          version: 1, size: size!, pageSize: ps, model, map, persistence, uuid: randomUuid(),
          dataOffset: g.dataOffset, capacity: g.pageCount * ps, badblocks: [],
        }
        nodeFs.ftruncateSync(fd, size!)
        const buf = new Uint8Array(infoBytes(ps))
        encodeInfo(info, buf)
        nodeFs.writeSync(fd, buf, 0, buf.length, 0)
        nodeFs.fsyncSync(fd)
        return { fd, created, info }
      }
      const fileSize = nodeFs.fstatSync(fd).size
      const head = new Uint8Array(BADBLOCK_HEADER)
      nodeFs.readSync(fd, head, 0, head.length, 0)
      const ps = new DataView(head.buffer).getUint32(24, true)
      const whole = new Uint8Array(Math.min(fileSize, infoBytes(ps >= 4096 && ps <= MAX_PAGE_SIZE ? ps : 4096)))
      nodeFs.readSync(fd, whole, 0, whole.length, 0)
      const info = decodeInfo(whole, path, fileSize)
      if (size !== undefined && size !== info.size) {
        throw pmemError('EINVAL', 'open', `the device is ${info.size} bytes, not ${size} (sizes are fixed at creation)`, { path })
      }
      if (pageSize !== undefined && pageSize !== info.pageSize) {
        throw pmemError('EINVAL', 'open', `the device has ${info.pageSize}-byte pages, not ${pageSize}`, { path })
      }
      if (mapGiven && map !== info.map) {
        throw pmemError('EINVAL', 'open', `the device was created with map: '${info.map}', not '${map}' (the layout is fixed at creation)`, { path })
      }
      return { fd, created, info, ...(locked ? {} : { writerElsewhere: true }) }
    } catch (e) {
      Region.abandon(path, { fd, created })
      throw e instanceof PmemuError ? e : wrapSystemError(e, 'open', { path })
    }
  }

  /** Undo a failed open: unlock, close, and remove the file if this open created it. */
  private static abandon(path: string, o: { fd?: number; created: boolean }): void {
    if (o.fd !== undefined) {
      try { nodeFs.closeSync(o.fd) } catch { /* already closed */ }
    }
    if (o.created) {
      try { nodeFs.unlinkSync(path) } catch { /* gone */ }
    }
  }

  /** Take the device's flock; false when a read-only open alongside a writer went ahead without it. */
  private static lock(fd: number, path: string, readOnly: boolean, alongsideWriter = false): boolean {
    try {
      fsExt().flockSync(fd, readOnly ? 'shnb' : 'exnb')
      return true
    } catch (e) {
      const n = Math.abs(Number((e as { errno?: number }).errno))
      if (n === 11 || (e as { code?: string }).code === 'EAGAIN' || (e as { code?: string }).code === 'EWOULDBLOCK') {
        if (readOnly && alongsideWriter) return false
        throw pmemError('EBUSY', 'open', readOnly
          ? 'the device is open for writing elsewhere'
          : 'the device is already open (one writer at a time; flock held)', { path, cause: e })
      }
      throw wrapSystemError(e, 'flock', { path })
    }
  }

  private static mapFile(path: string, backend: Backend, o: Opened, readOnly: boolean, persistence: Persistence,
    opts: RegionOptions): Region {
    const info = o.info
    Region.checkShadow(opts, info)
    if (backend === 'mmap-io') {
      if (info.size > MMAP_IO_MAX) {
        throw pmemError('EINVAL', 'open', `the mmap-io backend maps at most 2 GiB; this device is ${formatBytes(info.size)}`, { path })
      }
      const require = createRequire(import.meta.url)
      let mm: MmapIo
      try {
        mm = require('mmap-io') as MmapIo
      } catch (e) {
        throw pmemError('EOPNOTSUPP', 'open', 'the mmap-io backend is not installed here: mmap-io is an optional dependency whose own build fails on Node 20 (it forces -std=c++11), so npm leaves it out; use the native backend, or see the README ("mmap-io is optional") to build it', { path, cause: e })
      }
      let buf: Buffer
      try {
        buf = mm.map(info.size, mm.PROT_READ | mm.PROT_WRITE, readOnly ? mm.MAP_PRIVATE : mm.MAP_SHARED, o.fd!, 0)
      } catch (e) {
        throw wrapSystemError(e, 'mmap', { path })
      }
      const usable = new Uint8Array(buf.buffer, buf.byteOffset + info.dataOffset, info.capacity)
      const windows: Window[] = []
      for (let off = 0; off < info.capacity; off += WINDOW_BYTES) {
        const len = Math.min(WINDOW_BYTES, info.capacity - off)
        windows.push({ offset: off, length: len, bytes: usable.subarray(off, off + len) })
      }
      return new Region({
        path, backend, readOnly, info, persistence, fd: o.fd!, windows,
        infoWindow: new Uint8Array(buf.buffer, buf.byteOffset, infoBytes(info.pageSize)),
        capabilities: { mapSync: false, flush: 'msync', mapSyncError: 'EOPNOTSUPP', workers: false },
        shadow: opts.crashShadow === true, mmapIo: mm, mmapBuf: buf, ...(opts.logger ? { logger: opts.logger } : {}),
      })
    }
    let shim
    try {
      shim = nativeShim()
    } catch (e) {
      throw pmemError('EOPNOTSUPP', 'open', 'the native backend is not built (npm install builds native-shims); try backend: \'mmap-io\'', { path, cause: e })
    }
    let r
    try {
      r = shim.mapFile(o.fd!, info.size, readOnly, !readOnly, Region.slices(info))
    } catch (e) {
      throw wrapSystemError(e, 'mmap', { path })
    }
    const cpu = shim.cpuFlush()
    const flush: FlushKind = opts.flush ?? (cpu !== 'none' ? cpu : 'msync')
    // ENOTSUP and EOPNOTSUPP are both 95 on Linux: name it as the kernel docs for MAP_SYNC do.
    const errName = r.mapSync ? undefined
      : r.syncErrno === osErrno().EOPNOTSUPP ? 'EOPNOTSUPP'
      : (Object.entries(osErrno()).find(([, v]) => v === r.syncErrno)?.[0] ?? String(r.syncErrno))
    return new Region({
      path, backend, readOnly, info, persistence, fd: o.fd!,
      capabilities: { mapSync: r.mapSync, flush, ...(errName ? { mapSyncError: errName } : {}), workers: true },
      windows: Region.windowsFrom(info, r.sabs.slice(1)), infoWindow: new Uint8Array(r.sabs[0]!), infoSab: r.sabs[0]!,
      shadow: opts.crashShadow === true, ...(opts.logger ? { logger: opts.logger } : {}),
    })
  }

  /**
   * Where the usable bytes can be mapped again (a DAX mapping's own address
   * range maps device pages from here): the descriptor, the file offset of
   * usable byte 0, and how to map (0 MAP_SHARED, 1 MAP_PRIVATE for a
   * read-only device, 2 MAP_SYNC when the region holds it). A string says
   * why not: mmap-io, a memory backend without memfd_create, or closed.
   */
  mapSource(): { fd: number; dataOffset: number; mode: 0 | 1 | 2 } | string {
    if (this.closed || this.fd === undefined) return this.closed ? 'the device is closed' : 'the memory backend has no memory file (no memfd_create or no native shim)'
    if (this.backend === 'mmap-io') return 'the mmap-io backend cannot map device pages into another range'
    return { fd: this.fd, dataOffset: this.info.dataOffset, mode: this.readOnly ? 1 : this.capabilities.mapSync ? 2 : 0 }
  }

  // ---- byte access (usable offsets) -------------------------------------------------------------

  private live(op: string): void {
    if (this.closed) throw pmemError('ENXIO', op, 'the device is closed', this.path ? { path: this.path } : {})
  }

  /** Throws EINVAL unless [offset, offset+length) lies inside the usable region. */
  checkRange(op: string, offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 ||
        offset + length > this.info.capacity) {
      // Say which argument is bad before talking about ranges ("[3, 3+16)" for offset '3' misleads).
      checkOffset(offset, op, 'offset')
      checkOffset(length, op, 'length', { offset })
      throw pmemError('EINVAL', op, `range [${offset}, ${offset}+${length}) is outside the device's ${this.info.capacity} usable bytes`, { offset, length })
    }
  }

  /** A Uint8Array on the region's usable bytes; the range must lie in one window (1 GiB). */
  view(offset: number, length: number): Uint8Array {
    this.live('view')
    this.checkRange('view', offset, length)
    const w = this.windows[Math.floor(offset / WINDOW_BYTES)]
    if (!w) return new Uint8Array(0)
    const rel = offset - w.offset
    if (rel + length > w.length) {
      throw pmemError('EINVAL', 'view', `a view cannot cross a ${formatBytes(WINDOW_BYTES)} window boundary (use read/write for larger ranges)`, { offset, length })
    }
    return w.bytes.subarray(rel, rel + length)
  }

  /** Visit the window pieces of a range: fn(windowBytes, relOffset, bufferOffset, length). */
  private each(offset: number, length: number, fn: (w: Window, rel: number, at: number, n: number) => void): void {
    let at = 0
    while (at < length) {
      const off = offset + at
      const w = this.windows[Math.floor(off / WINDOW_BYTES)]!
      const rel = off - w.offset
      const n = Math.min(length - at, w.length - rel)
      fn(w, rel, at, n)
      at += n
    }
  }

  read(offset: number, dst: Uint8Array): void {
    this.live('read')
    this.checkRange('read', offset, dst.length)
    this.each(offset, dst.length, (w, rel, at, n) => dst.set(w.bytes.subarray(rel, rel + n), at))
  }

  write(offset: number, src: Uint8Array): void {
    this.live('write')
    if (this.readOnly) throw pmemError('EROFS', 'write', 'the device is open read-only', this.path ? { path: this.path } : {})
    this.checkRange('write', offset, src.length)
    this.each(offset, src.length, (w, rel, at, n) => w.bytes.set(src.subarray(at, at + n), rel))
  }

  zero(offset: number, length: number): void {
    this.live('zero')
    if (this.readOnly) throw pmemError('EROFS', 'zero', 'the device is open read-only', this.path ? { path: this.path } : {})
    this.checkRange('zero', offset, length)
    this.each(offset, length, (w, rel, _at, n) => w.bytes.fill(0, rel, rel + n))
  }

  /** Flush and drain [offset, offset+length): durable afterwards (SPEC §2). */
  persist(offset: number, length: number): void {
    this.live('persist')
    this.checkRange('persist', offset, length)
    if (length === 0 || this.readOnly) return
    // eADR: the caches are in the persistence domain, a fence is all it takes.
    // The kind goes to C as pmem_core.h's integer (no string compare per call).
    const kind = this.persistence === 'eadr' ? FLUSH_CODES.none : FLUSH_CODES[this.capabilities.flush]
    const shim = nativeShim()
    this.each(offset, length, (w, rel, _at, n) => {
      if (w.sab) {
        try {
          shim.persist(w.sab, rel, n, kind)
        } catch (e) {
          throw wrapSystemError(e, 'persist', { offset, length })
        }
      } else if (this.mmapIo && this.mmapBuf) {
        const abs = this.info.dataOffset + w.offset + rel
        const page = this.mmapIo.PAGESIZE
        const start = abs - (abs % page)
        this.mmapIo.sync(this.mmapBuf, start, abs + n - start, true, false)
      }
    })
    if (this.shadow) {
      const s = offset - (offset % CACHE_LINE)
      const e = Math.min(this.info.capacity, Math.ceil((offset + length) / CACHE_LINE) * CACHE_LINE)
      this.read(s, this.shadow.subarray(s, e))
    }
  }

  // ---- info block ----------------------------------------------------------------------------

  /** Rewrite the info block (e.g. a new badblocks list) and make it durable at once. */
  writeInfo(next: Partial<Pick<DeviceInfo, 'badblocks'>>): void {
    this.live('badblocks')
    if (this.readOnly) throw pmemError('EROFS', 'badblocks', 'the device is open read-only', this.path ? { path: this.path } : {})
    const info = { ...this.info, ...next }
    const tmp = new Uint8Array(this.infoWindow.length)
    encodeInfo(info, tmp)
    this.infoWindow.set(tmp)
    this.info = info
    if (this.infoSab) {
      nativeShim().persist(this.infoSab, 0, tmp.length, this.backend === 'memory' ? 'none' : 'msync')
    } else if (this.mmapIo && this.mmapBuf) {
      this.mmapIo.sync(this.mmapBuf, 0, tmp.length, true, false)
    }
  }

  get badblocks(): BadBlock[] { return this.info.badblocks.map(b => ({ ...b })) }

  // ---- power loss ----------------------------------------------------------------------------

  /**
   * Build the post-crash image (SPEC §2, Vinter's model): the durable shadow
   * plus a subset of the 64-byte lines that differ between live and shadow —
   * all of them ('all'), none ('none') or a seeded random half ('random').
   * eADR keeps everything. The live bytes become that image.
   */
  crash(opts: CrashOptions = {}): { seed: number; keep: string; linesLost: number; linesKept: number } {
    this.live('crash')
    const keep = oneOf(opts.keep, ['none', 'all', 'random'] as const, 'keep', 'random')
    if (opts.seed !== undefined && (!Number.isSafeInteger(opts.seed))) {
      throw pmemError('EINVAL', 'crash', `seed must be an integer, got ${safeString(opts.seed)}`)
    }
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31)
    if (this.persistence === 'eadr' || !this.shadow) {
      if (!this.shadow && this.persistence !== 'eadr') {
        throw pmemError('EINVAL', 'crash', 'crash() needs a durable shadow: open with crashShadow: true (or persistence: \'eadr\')')
      }
      if (this.shadow) this.read(0, this.shadow)
      return { seed, keep, linesLost: 0, linesKept: 0 }
    }
    const rnd = prng(seed)
    const shadow = this.shadow
    let lost = 0
    let kept = 0
    const CHUNK = 4096
    for (const w of this.windows) {
      const live = w.bytes
      for (let c = 0; c < w.length; c += CHUNK) {
        const end = Math.min(w.length, c + CHUNK)
        const sOff = w.offset + c
        if (Buffer.compare(live.subarray(c, end), shadow.subarray(sOff, sOff + end - c)) === 0) continue
        for (let l = c; l < end; l += CACHE_LINE) {
          const le = Math.min(end, l + CACHE_LINE)
          const so = w.offset + l
          if (Buffer.compare(live.subarray(l, le), shadow.subarray(so, so + le - l)) === 0) continue
          const keepLine = keep === 'all' || (keep === 'random' && rnd() < 0.5)
          if (keepLine) { shadow.set(live.subarray(l, le), so); kept++ } else { live.set(shadow.subarray(so, so + le - l), l); lost++ }
        }
      }
    }
    this.log?.info({ seed, keep, lost, kept }, 'crash')
    return { seed, keep, linesLost: lost, linesKept: kept }
  }

  /** A small summary: JSON.stringify(region) must not walk the windows (that aborts Node on large devices). */
  toJSON(): Record<string, unknown> {
    return {
      type: 'Region', path: this.path ?? null, backend: this.backend, size: this.size, capacity: this.capacity,
      pageSize: this.pageSize, pageCount: this.pageCount, map: this.info.map, model: this.info.model,
      persistence: this.persistence, readOnly: this.readOnly, uuid: this.info.uuid, closed: this.closed,
      windows: this.windows.length, crashShadow: this.hasShadow,
    }
  }

  [inspect.custom](): string {
    return `Region ${inspect(this.toJSON())}`
  }

  /** What a worker needs to reach the same bytes (never remapped there). */
  transferable(): { windows: { offset: number; length: number; sab: SharedArrayBuffer }[]; pageSize: number; capacity: number } {
    if (!this.capabilities.workers) {
      throw pmemError('EOPNOTSUPP', 'transfer', 'the mmap-io backend cannot share its memory with workers')
    }
    return {
      windows: this.windows.map(w => ({ offset: w.offset, length: w.length, sab: w.sab! })),
      pageSize: this.info.pageSize, capacity: this.info.capacity,
    }
  }

  /** Unlock and close. The mapping goes when the last SharedArrayBuffer over it is collected, in any thread. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (this.fd !== undefined) {
      // The mapping holds the open file description until its last window is
      // collected, so closing the fd alone would keep the flock: drop it first.
      try { fsExt().flockSync(this.fd, 'un') } catch { /* not locked */ }
      try { nodeFs.closeSync(this.fd) } catch { /* already closed */ }
      this.fd = undefined
    }
    this.windows = []
    this.shadow = undefined
    this.mmapBuf = undefined
  }
}

interface MmapIo {
  map(size: number, prot: number, flags: number, fd: number, offset?: number): Buffer
  sync(buffer: Buffer, offset: number, size: number, blocking: boolean, invalidate: boolean): void
  PROT_READ: number; PROT_WRITE: number; MAP_SHARED: number; MAP_PRIVATE: number; PAGESIZE: number
}

function fsExt(): { flockSync(fd: number, how: string): void } {
  return createRequire(import.meta.url)('fs-ext') as { flockSync(fd: number, how: string): void }
}

function osErrno(): Record<string, number> {
  return constants.errno as Record<string, number>
}
