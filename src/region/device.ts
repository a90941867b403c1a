/**
 * The device: a Region (bytes) plus the page side table (src/page) and the
 * device-wide state the upper layers hang on it — poison, crash and unbind.
 * This is what `openDevice` returns.
 */
import { EventEmitter } from 'node:events'
import { inspect } from 'node:util'
import type { Logger } from 'pino'
import { pmemError, PmemuError } from '../errors.js'
import { PageTable, type PageSnapshot, type Violation } from '../page/index.js'
import { rootLogger, subsystemLogger } from '../util/log.js'
import { parseSize } from '../util/size.js'
import { checkBoolean, checkBytes, checkOptions, checkWaitOptions, describe } from '../util/check.js'
import { Region, type RegionOptions } from './region.js'
import type { Backend, BadBlock, Capabilities, CrashOptions, MapMode, ModelName, Persistence } from './types.js'

export const SECTOR = 512

export interface OpenDeviceOptions extends RegionOptions {
  /** Throw at the operation that breaks a page-table invariant (SPEC §3). */
  strict?: boolean
}

/** The low-level refcount paths (`dev.pages`), for benchmarks and tests. */
export interface PagePaths {
  get(pfn: number): void
  put(pfn: number): void
  pin(pfn: number, opts?: { longterm?: boolean }): void
  unpin(pfn: number): void
  pinRange(pfn: number, count: number): void
  unpinRange(pfn: number, count: number): void
  maybeDmaPinned(pfn: number): boolean
}

export type DeviceState = 'open' | 'unbinding' | 'unbound' | 'closed'

/** What a layer above registers to be told of device-wide events. */
export interface DeviceListener {
  /** The device crashed; the bytes are the post-crash image. Old mounts, maps and transfers are dead. */
  crash?(info: { seed: number; keep: string; linesLost: number }): void | Promise<void>
  /** A range was poisoned (byte offsets, 512-byte sectors). */
  poison?(range: BadBlock): void
  /** The device is being unbound: unmap everything you hold. Called before the wait. */
  unbind?(): void | Promise<void>
  /** The device was unbound or closed: every later call must fail with ENXIO. */
  dead?(reason: 'unbound' | 'closed' | 'crashed'): void
}

export class Device extends EventEmitter {
  readonly region: Region
  readonly table: PageTable
  readonly pages: PagePaths
  readonly log: Logger
  private state: DeviceState = 'open'
  private readonly layers = new Set<DeviceListener>()
  /** Bumped at every crash: handles from an older life compare and fail with ENXIO. */
  generation = 0

  private constructor(region: Region, table: PageTable, log: Logger) {
    super()
    this.region = region
    this.table = table
    this.log = log
    // The table itself: one call from the user to wasm, no wrapper on the hot path.
    this.pages = table
  }

  static async open(path?: string, opts: OpenDeviceOptions = {}): Promise<Device> {
    const where = typeof path === 'string' ? { path } : {}
    checkOptions(opts, 'open', where)
    opts ??= {}
    checkBoolean(opts.strict, 'open', 'strict', where)
    checkLogger(opts.logger, where)
    const log = rootLogger(opts.logger)
    const region = await Region.open(path, { ...opts, logger: subsystemLogger(log, 'region') })
    try {
      const table = await PageTable.create({
        pageCount: region.pageCount, pageSize: region.pageSize,
        model: opts.model ?? region.info.model, strict: opts.strict === true,
        logger: log,
      })
      const dev = new Device(region, table, log)
      // Poison recorded in the info block survives close/reopen: mark its pages.
      for (const b of region.info.badblocks) dev.markPoisoned(b.offset, b.length)
      log.debug({ path, size: region.size, pages: region.pageCount, model: table.model.name }, 'device open')
      return dev
    } catch (e) {
      region.close()
      throw e
    }
  }

  // ---- identity --------------------------------------------------------------------------------
  get path(): string | undefined { return this.region.path }
  /** Device size in bytes (the whole backing file). */
  get size(): number { return this.region.size }
  /** Usable bytes: pageCount * pageSize. */
  get capacity(): number { return this.region.capacity }
  get pageSize(): number { return this.region.pageSize }
  get pageCount(): number { return this.region.pageCount }
  get model(): ModelName { return this.table.model.name }
  get backend(): Backend { return this.region.backend }
  get map(): MapMode { return this.region.info.map }
  get persistence(): Persistence { return this.region.persistence }
  get readOnly(): boolean { return this.region.readOnly }
  /** Opened read-only (`alongsideWriter: true`) while another process held the device for writing: reads may be mid-update. */
  get writerElsewhere(): boolean { return this.region.writerElsewhere }
  get uuid(): string { return this.region.info.uuid }
  get capabilities(): Capabilities { return { ...this.region.capabilities } }
  get status(): DeviceState { return this.state }

  /** Throws ENXIO unless the device is open (not unbound, not closed). */
  assertLive(op: string): void {
    if (this.state === 'open' || this.state === 'unbinding') return
    throw pmemError('ENXIO', op, this.state === 'closed' ? 'the device is closed' : 'the device was unbound',
      this.path ? { path: this.path } : {})
  }

  // ---- listeners for the layers above ------------------------------------------------------------
  attach(l: DeviceListener): () => void {
    this.layers.add(l)
    return () => { this.layers.delete(l) }
  }

  /** FsDevice's crash hook. */
  onCrash(fn: () => void): () => void {
    return this.attach({ crash: () => fn() })
  }

  // ---- bytes --------------------------------------------------------------------------------------
  view(offset: number, length: number): Uint8Array {
    this.assertLive('view')
    return this.region.view(offset, length)
  }
  read(offset: number, dst: Uint8Array): void {
    this.assertLive('read')
    this.region.read(offset, checkBytes(dst, 'read', 'dst (the buffer to read into)'))
  }
  write(offset: number, src: Uint8Array): void {
    this.assertLive('write')
    this.region.write(offset, checkBytes(src, 'write', 'src (the bytes to write)'))
  }
  zero(offset: number, length: number): void { this.assertLive('zero'); this.region.zero(offset, length) }
  persist(offset: number, length: number): void { this.assertLive('persist'); this.region.persist(offset, length) }

  // ---- pages --------------------------------------------------------------------------------------
  page(pfn: number): PageSnapshot { this.assertLive('page'); return this.table.snapshot(pfn) }
  pgmapRefs(): number { return this.table.pgmapRefs() }
  check(): Violation[] { return this.table.check() }
  stats(): Record<string, number> { return this.table.stats() }

  // ---- poison (SPEC §7) -------------------------------------------------------------------------
  /** Bad ranges, merged, in 512-byte sectors, as Linux badblocks. */
  badblocks(): BadBlock[] { this.assertLive('badblocks'); return this.region.badblocks }

  /** Sectors of [offset, offset+length) that are poisoned, as ranges clipped to it. */
  poisonedIn(offset: number, length: number): BadBlock[] {
    const out: BadBlock[] = []
    for (const b of this.region.info.badblocks) {
      const s = Math.max(b.offset, offset)
      const e = Math.min(b.offset + b.length, offset + length)
      if (s < e) out.push({ offset: s, length: e - s })
    }
    return out
  }

  poison(offset: number | string, length: number | string): BadBlock {
    this.assertLive('poison')
    const off = parseSize(offset, 'offset', 'poison')
    const len = parseSize(length, 'length', 'poison')
    if (len === 0) throw pmemError('EINVAL', 'poison', 'length must be at least one byte', { offset: off })
    this.region.checkRange('poison', off, len)
    const s = Math.floor(off / SECTOR) * SECTOR
    const e = Math.ceil((off + len) / SECTOR) * SECTOR
    this.region.writeInfo({ badblocks: mergeRanges([...this.region.info.badblocks, { offset: s, length: e - s }]) })
    this.markPoisoned(s, e - s)
    const range = { offset: s, length: e - s }
    for (const l of this.layers) l.poison?.(range)
    this.emit('poison', range)
    return range
  }

  /** Clear whole poisoned sectors in [offset, offset+length) (a recovery write covered them). */
  clearPoison(offset: number, length: number): void {
    this.assertLive('clearPoison')
    // checked as poison() checks: a Symbol or BigInt must not reach the arithmetic below
    offset = parseSize(offset, 'offset', 'clearPoison')
    length = parseSize(length, 'length', 'clearPoison')
    this.region.checkRange('clearPoison', offset, length)
    const s = Math.ceil(offset / SECTOR) * SECTOR
    const e = Math.floor((offset + length) / SECTOR) * SECTOR
    if (s >= e) return
    const next: BadBlock[] = []
    for (const b of this.region.info.badblocks) {
      if (b.offset + b.length <= s || b.offset >= e) { next.push(b); continue }
      if (b.offset < s) next.push({ offset: b.offset, length: s - b.offset })
      if (b.offset + b.length > e) next.push({ offset: e, length: b.offset + b.length - e })
    }
    this.region.writeInfo({ badblocks: next })
    const ps = this.pageSize
    for (let p = Math.floor(s / ps); p * ps < e; p++) {
      if (this.poisonedIn(p * ps, ps).length === 0) this.table.clearFlag(p, 'poisoned')
    }
  }

  private markPoisoned(offset: number, length: number): void {
    const ps = this.pageSize
    for (let p = Math.floor(offset / ps); p * ps < offset + length && p < this.pageCount; p++) this.table.setFlag(p, 'poisoned')
  }

  // ---- power loss (SPEC §2) ------------------------------------------------------------------------
  /**
   * Power loss: the bytes become the post-crash image, the side table goes back
   * to idle (as at a fresh probe), and every mount, mapping and transfer of the
   * old life is dead (ENXIO). The device stays open.
   */
  async crash(opts: CrashOptions = {}): Promise<{ seed: number; keep: string; linesLost: number }> {
    this.assertLive('crash')
    checkOptions(opts, 'crash')
    const r = this.region.crash(opts ?? {})
    this.generation++
    for (const l of [...this.layers]) {
      if (l.crash) await l.crash(r)
      l.dead?.('crashed')
    }
    this.table.reset()
    for (const b of this.region.info.badblocks) this.markPoisoned(b.offset, b.length)
    this.emit('crash', r)
    this.log.info(r, 'crash')
    return r
  }

  // ---- unbind (SPEC §7) -------------------------------------------------------------------------------
  /**
   * Tear down with live mappings and pins: every layer unmaps, then the
   * model's unbind wait, then ENXIO for every later call. On abort or timeout
   * the device keeps working.
   */
  async unbind(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    this.assertLive('unbind')
    // Checked before anything changes: a bad signal or timeout leaves the device as it was.
    checkWaitOptions(opts, 'unbind', this.path ? { path: this.path } : {})
    opts ??= {}
    if (this.state === 'unbinding') throw pmemError('EBUSY', 'unbind', 'an unbind is already in progress')
    this.state = 'unbinding'
    try {
      for (const l of [...this.layers]) await l.unbind?.()
      await this.table.waitAllIdle(opts)
    } catch (e) {
      this.state = 'open'
      throw e
    }
    const hazards = this.table.unbind()
    // memunmap_pages waits for pgmap refs only: what is still pinned or got is left behind
    if (hazards.length > 0) this.log.warn({ pages: hazards.length, first: hazards[0]!.pfn, model: this.model }, 'unbind: pages still referenced (use-after-unbind hazards)')
    this.state = 'unbound'
    for (const l of [...this.layers]) l.dead?.('unbound')
    this.emit('unbind')
  }

  /** Close (idempotent). Later calls get ENXIO. The mapping goes with its last holder (workers too). */
  async close(): Promise<void> {
    if (this.state === 'closed') return
    const wasOpen = this.state !== 'unbound'
    this.state = 'closed'
    if (wasOpen) for (const l of [...this.layers]) l.dead?.('closed')
    // The table's own bound state: every path of every thread's table (dev.pages kept by a caller,
    // the DAX layer's, a DMA worker's) fails with ENXIO from here, in the wasm counting paths themselves.
    this.table.close()
    this.layers.clear()
    this.region.close()
    this.emit('close')
  }

  /** A small summary: JSON.stringify(dev) must not walk the region's buffers. */
  toJSON(): Record<string, unknown> {
    const live = this.state !== 'closed'
    return {
      type: 'Device', path: this.path ?? null, backend: this.backend, size: this.size, capacity: this.capacity,
      pageSize: this.pageSize, pageCount: this.pageCount, model: this.model, map: this.map,
      persistence: this.persistence, readOnly: this.readOnly, uuid: this.uuid, status: this.state,
      generation: this.generation, badblocks: live ? this.region.info.badblocks.length : undefined,
    }
  }

  [inspect.custom](): string {
    return `Device ${inspect(this.toJSON())}`
  }

  /** What a worker needs to reach the same bytes and the same side table. */
  transferable(): { region: ReturnType<Region['transferable']>; table: ReturnType<PageTable['transferable']> } {
    return { region: this.region.transferable(), table: this.table.transferable() }
  }
}

/** An injected logger must be pino-shaped (child, info, debug), or every layer fails later with a TypeError. */
function checkLogger(logger: unknown, where: { path?: string }): void {
  if (logger === undefined) return
  const l = logger as Record<string, unknown> | null
  if (l === null || typeof l !== 'object' || typeof l.child !== 'function' || typeof l.info !== 'function' || typeof l.debug !== 'function') {
    throw pmemError('EINVAL', 'open', `logger must be a pino logger (with child, info and debug), got ${describe(logger)}`, where)
  }
}

/** Sort and merge overlapping/adjacent ranges. */
export function mergeRanges(list: BadBlock[]): BadBlock[] {
  const s = [...list].sort((a, b) => a.offset - b.offset)
  const out: BadBlock[] = []
  for (const b of s) {
    const last = out[out.length - 1]
    if (last && b.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, b.offset + b.length - last.offset)
    } else out.push({ ...b })
  }
  return out
}

/** Open (or create) a pmem device: see docs/api-contract.md. No path gives the in-memory backend. */
export async function openDevice(path?: string, opts: OpenDeviceOptions = {}): Promise<Device> {
  if (path !== undefined && typeof path !== 'string') {
    throw pmemError('EINVAL', 'open', `path must be a string, got ${typeof path}`)
  }
  return Device.open(path, opts)
}

export { PmemuError }
