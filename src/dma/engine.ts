/**
 * The DMA engine (SPEC §6): a pool of worker_threads sharing the region's
 * SharedArrayBuffers and the side table, pinning the pages of a DAX mapping
 * with pin_user_pages semantics, copying, holding, unpinning. See docs/dma.md.
 */
import type { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { PmemuAbortError, PmemuError, isPmemuError, pmemError, safeString } from '../errors.js'
import { PTE_NONE, type DaxMappingLike, type MappingShare } from '../dax/index.js'
import type { Device } from '../region/index.js'
import { subsystemLogger } from '../util/log.js'
import { parseSize } from '../util/size.js'
import { spawnWorker } from '../util/worker.js'
import { checkOptions, checkSignal } from '../util/check.js'
import { inspect } from 'node:util'
import {
  CTL_ABORT, CTL_RELEASE, E_DEAD, E_GEN, E_POISON, ENGINE_WORDS, L_CTL, L_KIND, L_PAGES,
  ledgerBytes, ledgerPinned, nativeHelpers, releaseLedger, runJob,
  type CoreEnv, type Direction, type FailPoint, type JobSpec, type PinKind,
} from './core.js'
import type { FromWorker, ToWorker } from './worker.js'
import { deserializeError, serializeError } from './wire.js'

export type { Direction, PinKind, FailPoint }
export type DmaMode = 'workers' | 'main-thread'

export interface DmaEngineOptions {
  /** Worker threads in the pool (default 2; 0 runs transfers on the main thread). */
  workers?: number
  /** Device model: fixed latency added to every transfer, in ns (default 0). */
  latencyNs?: number
  /** Device model: bandwidth cap in bytes/s (a number or a size such as '2GiB'); default: memory speed. */
  bandwidth?: number | string
  /** Force the main-thread engine even where workers are possible. */
  mode?: 'auto' | DmaMode
  /** Logger for the engine (default: the device's); it logs as subsystem 'dma'. */
  logger?: Logger
}

export interface SubmitOptions {
  map: DaxMappingLike
  /** Byte offset in the mapping (not the file). */
  offset: number
  length: number
  /** 'to-device': the device reads the region into `buffer`; 'from-device': it writes `buffer` into the region. */
  direction: Direction
  /** Default: a new SharedArrayBuffer-backed Uint8Array of `length`. A non-shared buffer is staged. */
  buffer?: Uint8Array
  /** Keep the pins after the copy: ms, or until release(). */
  hold?: number | 'until-release'
  /** FOLL_PIN (default) or FOLL_GET. */
  pin?: PinKind
  /** FOLL_LONGTERM: refused on fsdax pages (EOPNOTSUPP). */
  longterm?: boolean
  /** Abort this transfer (AbortError; its pins are released). */
  signal?: AbortSignal
  /** Test-only failure injection. */
  fail?: FailPoint
}

export interface DmaResult {
  bytes: number
  /** Copy time in ns, device model included, hold excluded. */
  ns: number
  /** Time the copying thread spent pinning (gup: fast path, slow-path faults, poison check), ns. */
  pinNs: number
}

export interface DmaTransfer {
  readonly id: number
  /** Resolves once every page of the range is pinned (before the copy). */
  readonly pinned: Promise<void>
  /** Resolves after the copy, the hold and the unpin. */
  readonly done: Promise<DmaResult>
  /** The buffer the bytes go to / come from (the caller's, or the default one). */
  readonly buffer: Uint8Array
  /** End a hold now (no-op without one, or after done). */
  release(): void
  /** Abort: the transfer fails with an AbortError (or `reason`) and its pins are released. */
  abort(reason?: unknown): void
  readonly state: 'queued' | 'pinned' | 'done' | 'failed'
}

export interface DmaStats {
  mode: DmaMode
  workers: number
  submitted: number
  completed: number
  failed: number
  aborted: number
  inFlight: number
  bytes: number
  /** Slow-path fault requests served for workers (or run on the main thread). */
  faults: number
  /** gup-fast back-offs (a pte changed under a pin). */
  retries: number
  /** Workers that died with transfers in flight. */
  workerDeaths: number
  /** Pins released by the main thread on behalf of dead workers. */
  pinsReclaimed: number
}

interface Slot {
  index: number
  worker: Worker | undefined
  inflight: Set<number>
  deathError?: Error
}

interface Validated {
  share: MappingShare; offset: number; length: number; direction: Direction; buffer: Uint8Array | undefined
  hold: number; pin: PinKind; fail: FailPoint | undefined
}

/** The typed error of a transfer whose caller's buffer was detached (transferred away) before its bytes could be delivered. */
function detachedError(buffer: Uint8Array, bytes: number, cause?: unknown): Error {
  return pmemError('EFAULT', 'dma',
    `the transfer's buffer was detached (transferred to another thread or structuredClone'd away) while the transfer ran; ` +
    `its ${bytes} bytes were not delivered (the buffer now holds ${buffer.byteLength} bytes)`, cause === undefined ? {} : { cause })
}

class Transfer implements DmaTransfer {
  readonly id: number
  readonly pinned: Promise<void>
  readonly done: Promise<DmaResult>
  readonly buffer: Uint8Array
  state: DmaTransfer['state'] = 'queued'
  ledger: SharedArrayBuffer | undefined
  map: DaxMappingLike | undefined
  slot: Slot | undefined
  staging: Uint8Array | undefined
  toDevice = false
  abortError: Error | undefined
  unlisten: (() => void) | undefined
  #resolvePinned!: () => void
  #rejectPinned!: (e: unknown) => void
  #resolveDone!: (r: DmaResult) => void
  #rejectDone!: (e: unknown) => void

  constructor(id: number, buffer: Uint8Array) {
    this.id = id
    this.buffer = buffer
    this.pinned = new Promise<void>((res, rej) => { this.#resolvePinned = res; this.#rejectPinned = rej })
    this.done = new Promise<DmaResult>((res, rej) => { this.#resolveDone = res; this.#rejectDone = rej })
    // Handled here so that awaiting only one of the two never trips unhandled-rejection.
    this.pinned.catch(() => {})
    this.done.catch(() => {})
  }

  get settled(): boolean { return this.state === 'done' || this.state === 'failed' }

  markPinned(): void {
    if (this.state !== 'queued') return
    this.state = 'pinned'
    this.#resolvePinned()
  }

  succeed(r: DmaResult): void {
    if (this.settled) return
    if (this.staging && this.toDevice) {
      // The caller's buffer may have been detached (transferred away) while
      // the transfer ran: a set() on it throws, and thrown here it would
      // escape as an uncaught error and end the process. The pins are gone
      // already (the worker unpinned before it reported done).
      if (this.buffer.byteLength < r.bytes) { this.fail(detachedError(this.buffer, r.bytes)); return }
      try {
        this.buffer.set(this.staging.subarray(0, r.bytes))
      } catch (e) {
        this.fail(detachedError(this.buffer, r.bytes, e))
        return
      }
    }
    this.markPinned()
    this.state = 'done'
    this.unlisten?.()
    this.#resolveDone(r)
  }

  fail(e: unknown): void {
    if (this.settled) return
    let err = isPmemuError(e, 'ABORT_ERR') && this.abortError ? this.abortError : e
    // main-thread copies into a buffer detached mid-transfer throw a TypeError
    if (err instanceof TypeError && /detached/i.test(err.message)) err = detachedError(this.buffer, this.buffer.byteLength, err)
    this.state = 'failed'
    this.unlisten?.()
    this.#rejectPinned(err)
    this.#rejectDone(err)
  }

  release(): void {
    if (!this.ledger) return
    const ctl = new Int32Array(this.ledger)
    Atomics.or(ctl, L_CTL, CTL_RELEASE)
    Atomics.notify(ctl, L_CTL)
  }

  abort(reason?: unknown): void {
    if (this.settled) return
    this.abortError ??= reason instanceof Error ? reason : new PmemuAbortError('dma', { cause: reason })
    if (!this.ledger) { this.fail(this.abortError); return }
    const ctl = new Int32Array(this.ledger)
    Atomics.or(ctl, L_CTL, CTL_ABORT)
    Atomics.notify(ctl, L_CTL)
  }
}

const MAX_WORKERS = 64
const DEFAULT_WORKERS = 2

/**
 * `new DmaEngine(dev, { workers, latencyNs, bandwidth })`. Transfers are
 * `submit()`ted; `close()` waits for them (or aborts them with a signal).
 */
export class DmaEngine {
  readonly dev: Device
  readonly mode: DmaMode
  /** Why the engine runs on the main thread (undefined in 'workers' mode). */
  readonly modeReason: string | undefined
  readonly latencyNs: number
  /** bytes/s, 0 = memory speed */
  readonly bandwidth: number
  readonly log: Logger
  readonly #engineSab = new SharedArrayBuffer(ENGINE_WORDS * 4)
  readonly #engine = new Int32Array(this.#engineSab)
  readonly #slots: Slot[] = []
  readonly #inflight = new Map<number, Transfer>()
  readonly #detach: () => void
  #nextId = 1
  #rr = 0
  #closing: Promise<void> | undefined
  #deadReason: string | undefined
  #keepAlive: ReturnType<typeof setInterval> | undefined
  #mainEnv: CoreEnv | undefined
  /** Workers whose terminate() was called and that have not exited yet: kept ref'd. */
  readonly #terminating = new Set<Worker>()
  readonly #stats = { submitted: 0, completed: 0, failed: 0, aborted: 0, bytes: 0, faults: 0, retries: 0, workerDeaths: 0, pinsReclaimed: 0 }

  constructor(dev: Device, opts: DmaEngineOptions = {}) {
    if (!dev || typeof dev !== 'object' || typeof (dev as Partial<Device>).transferable !== 'function' || !(dev as Partial<Device>).table) {
      throw pmemError('EINVAL', 'DmaEngine', 'the first argument must be a device from openDevice()')
    }
    if (opts === null || typeof opts !== 'object') throw pmemError('EINVAL', 'DmaEngine', 'options must be an object')
    dev.assertLive('DmaEngine')
    const workers = opts.workers ?? DEFAULT_WORKERS
    if (!Number.isSafeInteger(workers) || workers < 0 || workers > MAX_WORKERS) {
      throw pmemError('EINVAL', 'DmaEngine', `workers must be a whole number in [0, ${MAX_WORKERS}], got ${safeString(workers)}`)
    }
    const latencyNs = opts.latencyNs ?? 0
    if (typeof latencyNs !== 'number' || !Number.isFinite(latencyNs) || latencyNs < 0) {
      throw pmemError('EINVAL', 'DmaEngine', `latencyNs must be a non-negative number, got ${safeString(latencyNs)}`)
    }
    let bandwidth = 0
    if (opts.bandwidth !== undefined) {
      bandwidth = typeof opts.bandwidth === 'string' ? parseSize(opts.bandwidth, 'bandwidth', 'DmaEngine') : opts.bandwidth
      if (typeof bandwidth !== 'number' || !Number.isFinite(bandwidth) || bandwidth <= 0) {
        throw pmemError('EINVAL', 'DmaEngine', `bandwidth must be a positive number of bytes/s, got ${safeString(opts.bandwidth)}`)
      }
    }
    const mode = opts.mode ?? 'auto'
    if (mode !== 'auto' && mode !== 'workers' && mode !== 'main-thread') {
      throw pmemError('EINVAL', 'DmaEngine', `mode must be 'auto', 'workers' or 'main-thread', got ${safeString(mode)}`)
    }
    this.dev = dev
    this.latencyNs = latencyNs
    this.bandwidth = bandwidth
    this.log = subsystemLogger(opts.logger ?? dev.log, 'dma')
    if (!dev.capabilities.workers) {
      if (mode === 'workers') throw pmemError('EOPNOTSUPP', 'DmaEngine', `the ${dev.backend} backend cannot share its memory with worker threads`)
      this.mode = 'main-thread'
      this.modeReason = `the ${dev.backend} backend cannot share its memory with worker threads (SharedArrayBuffers are impossible there): transfers run on the main thread`
    } else if (mode === 'main-thread' || workers === 0) {
      this.mode = 'main-thread'
      this.modeReason = mode === 'main-thread' ? 'mode: main-thread was asked for' : 'workers: 0 was asked for'
    } else {
      this.mode = 'workers'
      this.modeReason = undefined
    }
    Atomics.store(this.#engine, E_GEN, dev.generation)
    Atomics.store(this.#engine, E_POISON, dev.badblocks().length > 0 ? 1 : 0)
    this.#detach = dev.attach({
      poison: () => { Atomics.store(this.#engine, E_POISON, 1) },
      crash: () => this.#onCrash(),
      dead: reason => {
        if (reason === 'crashed') return
        this.#deadReason = reason
        Atomics.store(this.#engine, E_DEAD, 1)
        const err = pmemError('ENXIO', 'dma', reason === 'closed' ? 'the device was closed' : 'the device was unbound')
        for (const t of this.#inflight.values()) t.abort(err)
      },
    })
    if (this.mode === 'workers') {
      for (let i = 0; i < workers; i++) {
        const slot: Slot = { index: i, worker: undefined, inflight: new Set() }
        this.#slots.push(slot)
        this.#spawn(slot)
      }
    }
    this.log.debug({ mode: this.mode, workers: this.#slots.length, latencyNs, bandwidth }, 'dma engine started')
  }

  /** Transfers not yet settled. */
  get inFlight(): number { return this.#inflight.size }
  get workers(): number { return this.#slots.length }
  get closed(): boolean { return this.#closing !== undefined }

  stats(): DmaStats {
    return { mode: this.mode, workers: this.#slots.length, inFlight: this.#inflight.size, ...this.#stats }
  }

  /** A small summary (JSON.stringify would otherwise walk the device and its buffers). */
  toJSON(): Record<string, unknown> {
    return {
      type: 'DmaEngine', device: this.dev.path ?? null, mode: this.mode, workers: this.#slots.length,
      latencyNs: this.latencyNs, bandwidth: this.bandwidth, closed: this.closed, inFlight: this.#inflight.size,
    }
  }

  [inspect.custom](): string {
    return `DmaEngine ${inspect(this.toJSON())}`
  }

  // ---- submit ----------------------------------------------------------------------------------

  /**
   * Start a transfer. Never throws: every error (EINVAL for bad input,
   * EOPNOTSUPP for longterm, EFAULT for a dead mapping or a write through a
   * read-only one, ENXIO after crash/unbind, ENODEV after close, EHWPOISON,
   * AbortError…) rejects `pinned` and `done`, with nothing left pinned.
   */
  submit(opts: SubmitOptions): DmaTransfer {
    const id = this.#nextId++
    this.#stats.submitted++
    let buffer: Uint8Array = opts && opts.buffer instanceof Uint8Array ? opts.buffer : new Uint8Array(0)
    let t: Transfer
    let job: JobSpec
    try {
      const v = this.#validate(opts)
      buffer = v.buffer ?? new Uint8Array(new SharedArrayBuffer(v.length))
      t = new Transfer(id, buffer)
      job = this.#makeJob(t, v, buffer)
    } catch (e) {
      const failed = new Transfer(id, buffer)
      failed.fail(e)
      this.#stats.failed++
      return failed
    }
    this.#inflight.set(id, t)
    t.map = opts.map
    this.#track(t)
    if (opts.signal) {
      const s = opts.signal
      const onAbort = (): void => t.abort(new PmemuAbortError('dma', { cause: s.reason }))
      if (s.aborted) onAbort()
      else { s.addEventListener('abort', onAbort, { once: true }); t.unlisten = () => s.removeEventListener('abort', onAbort) }
    }
    if (t.settled) return t
    if (this.mode === 'workers') this.#dispatch(t, job)
    else setImmediate(() => this.#runMain(t, job))
    return t
  }

  #validate(o: SubmitOptions): Validated {
    if (this.#closing) throw pmemError('ENODEV', 'dma', 'the DMA engine is closed')
    if (this.#deadReason) throw pmemError('ENXIO', 'dma', `the device was ${this.#deadReason === 'closed' ? 'closed' : 'unbound'}`)
    this.dev.assertLive('dma')
    if (o === null || typeof o !== 'object') throw pmemError('EINVAL', 'dma', 'submit() takes an options object')
    const { map, offset, length, direction } = o
    if (!map || typeof map !== 'object' || typeof map.share !== 'function' || typeof map.fault !== 'function') {
      throw pmemError('EINVAL', 'dma', 'map must be a DAX mapping (file.mmap())')
    }
    if (direction !== 'to-device' && direction !== 'from-device') {
      throw pmemError('EINVAL', 'dma', `direction must be 'to-device' or 'from-device', got ${safeString(direction)}`)
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw pmemError('EINVAL', 'dma', `offset must be a non-negative whole number, got ${safeString(offset)}`)
    }
    if (!Number.isSafeInteger(length) || length < 0) {
      throw pmemError('EINVAL', 'dma', `length must be a non-negative whole number, got ${safeString(length)}`, { offset })
    }
    const pin = o.pin ?? 'pin'
    if (pin !== 'pin' && pin !== 'get') throw pmemError('EINVAL', 'dma', `pin must be 'pin' or 'get', got ${safeString(pin)}`)
    let hold = 0
    if (o.hold === 'until-release') hold = -1
    else if (o.hold !== undefined) {
      if (typeof o.hold !== 'number' || !Number.isFinite(o.hold) || o.hold < 0) {
        throw pmemError('EINVAL', 'dma', `hold must be a non-negative number of ms or 'until-release', got ${safeString(o.hold)}`)
      }
      hold = o.hold
    }
    if (o.longterm !== undefined && typeof o.longterm !== 'boolean') throw pmemError('EINVAL', 'dma', 'longterm must be a boolean')
    // Before anything is counted in flight or pinned: a bad signal must leave nothing behind.
    checkSignal(o.signal, 'dma', 'signal')
    let buffer: Uint8Array | undefined
    if (o.buffer !== undefined) {
      if (!(o.buffer instanceof Uint8Array)) throw pmemError('EINVAL', 'dma', 'buffer must be a Uint8Array')
      if (o.buffer.length < length) {
        throw pmemError('EINVAL', 'dma', `buffer too small: ${o.buffer.length} bytes for a ${length}-byte transfer`, { offset, length })
      }
      buffer = o.buffer
    }
    if (o.fail !== undefined && !['throw-after-pin', 'exit-after-pin', 'uncaught-after-pin', 'hang-after-pin'].includes(o.fail)) {
      throw pmemError('EINVAL', 'dma', `unknown fail point ${safeString(o.fail)}`)
    }
    let share: MappingShare
    try {
      share = map.share()
    } catch (e) {
      if (e instanceof PmemuError) throw e
      throw pmemError('EFAULT', 'dma', 'the mapping cannot be shared (unmapped?)', { cause: e })
    }
    if (offset + length > share.length) {
      throw pmemError('EINVAL', 'dma', `range [${offset}, ${offset + length}) is outside the ${share.length}-byte mapping`, { offset, length })
    }
    if (share.pageSize !== this.dev.pageSize) {
      throw pmemError('EINVAL', 'dma', `the mapping's page size ${share.pageSize} is not the device's ${this.dev.pageSize} (mapping of another device?)`)
    }
    // FOLL_LONGTERM is refused for fsdax before any page is touched (check_vma_flags / vma_is_fsdax).
    if (o.longterm === true) {
      throw pmemError('EOPNOTSUPP', 'dma', 'FOLL_LONGTERM pins of fsdax pages are not supported (truncate cannot wait for them)', { offset, length })
    }
    if (share.generation !== this.dev.generation) {
      throw pmemError('ENXIO', 'dma', 'the mapping belongs to a previous life of the device (it crashed since)', { offset })
    }
    if (Atomics.load(new Int32Array(share.state), 0) !== 0 || map.live === false) {
      throw pmemError('EFAULT', 'dma', `mapping ${share.id} is unmapped (dead mapping)`, { offset, length })
    }
    if (direction === 'from-device' && !share.writable) {
      throw pmemError('EFAULT', 'dma', 'from-device writes the region, but the mapping is read-only (FOLL_WRITE on a read-only vma)', { offset, length })
    }
    return { share, offset, length, direction, buffer, hold, pin, fail: o.fail }
  }

  #makeJob(t: Transfer, v: Validated, buffer: Uint8Array): JobSpec {
    const ps = v.share.pageSize
    const pages = v.length === 0 ? 0 : Math.floor((v.offset + v.length - 1) / ps) - Math.floor(v.offset / ps) + 1
    const ledger = new SharedArrayBuffer(ledgerBytes(pages))
    const l = new Int32Array(ledger)
    l[L_KIND] = v.pin === 'get' ? 1 : 0
    l[L_PAGES] = pages
    t.ledger = ledger
    t.toDevice = v.direction === 'to-device'
    let jobBuf: SharedArrayBuffer | ArrayBuffer = buffer.buffer
    let jobOff = buffer.byteOffset
    if (this.mode === 'workers' && !(buffer.buffer instanceof SharedArrayBuffer)) {
      // A caller's non-shared buffer cannot reach a worker: stage it through shared memory.
      const staging = new Uint8Array(new SharedArrayBuffer(v.length))
      if (!t.toDevice) staging.set(buffer.subarray(0, v.length))
      t.staging = staging
      jobBuf = staging.buffer as SharedArrayBuffer
      jobOff = 0
    }
    return {
      id: t.id, share: v.share, offset: v.offset, length: v.length, direction: v.direction,
      buffer: jobBuf, bufferOffset: jobOff, pin: v.pin, hold: v.hold, ledger,
      latencyNs: this.latencyNs, bandwidth: this.bandwidth, ...(v.fail ? { fail: v.fail } : {}),
    }
  }

  #track(t: Transfer): void {
    this.#refresh()
    void t.done.then(
      r => { this.#stats.completed++; this.#stats.bytes += r.bytes },
      (e: unknown) => { if (isPmemuError(e, 'ABORT_ERR')) this.#stats.aborted++; else this.#stats.failed++ },
    ).finally(() => {
      this.#inflight.delete(t.id)
      t.slot?.inflight.delete(t.id)
      // never leave a pin behind, whatever happened
      if (t.ledger && ledgerPinned(t.ledger) > 0 && (!t.slot || !t.slot.worker)) {
        this.#stats.pinsReclaimed += releaseLedger(t.ledger, this.dev.table)
      }
      this.#refresh()
    })
  }

  /** Workers keep the process alive only while transfers are in flight (and so does the main-thread engine). */
  #refresh(): void {
    const busy = this.#inflight.size > 0
    for (const s of this.#slots) {
      if (!s.worker) continue
      if (busy || this.#terminating.has(s.worker)) s.worker.ref()
      else s.worker.unref()
    }
    if (this.mode === 'main-thread') {
      if (busy && !this.#keepAlive) this.#keepAlive = setInterval(() => {}, 1 << 30)
      if (!busy && this.#keepAlive) { clearInterval(this.#keepAlive); this.#keepAlive = undefined }
    }
  }

  // ---- workers ---------------------------------------------------------------------------------

  #workerUrl(): URL {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
    return new URL(`./worker${ext}`, import.meta.url)
  }

  #spawn(slot: Slot): void {
    // The worker registers its own loader when it runs from source: the parent's --import hooks
    // (a test runner's instrumentation) would only slow every worker start down.
    const execArgv = process.execArgv.filter(a => !/^--(import|require|loader|experimental-loader)\b/.test(a) && !/@tapjs|tsx/.test(a))
    const w = spawnWorker(this.#workerUrl(), { name: `pmemu-dma-${slot.index}`, execArgv })
    slot.worker = w
    slot.deathError = undefined
    // Idle workers are unref'd (they never keep the process alive), and an unref'd worker's
    // terminate() settles on an 'exit' event an otherwise idle loop does not wait for: a
    // terminate() from outside (or our own at close) keeps this worker ref'd until it exits.
    const terminate = w.terminate.bind(w)
    w.terminate = () => { this.#terminating.add(w); w.ref(); return terminate() }
    w.once('exit', () => this.#terminating.delete(w))
    const init: ToWorker = {
      t: 'init', region: { windows: this.dev.transferable().region.windows }, table: this.dev.table.transferable(), engine: this.#engineSab,
    }
    w.postMessage(init)
    w.on('message', (m: FromWorker) => this.#onMessage(slot, m))
    w.on('error', e => { slot.deathError = e })
    w.on('exit', code => this.#onExit(slot, w, code))
    if (this.#inflight.size === 0) w.unref()
  }

  #onExit(slot: Slot, w: Worker, code: number): void {
    if (slot.worker !== w) return
    slot.worker = undefined
    const lost = [...slot.inflight]
    slot.inflight.clear()
    if (lost.length > 0) {
      this.#stats.workerDeaths++
      this.log.warn({ worker: slot.index, code, transfers: lost.length }, 'DMA worker died with transfers in flight; releasing their pins')
    }
    for (const id of lost) {
      const t = this.#inflight.get(id)
      if (!t) continue
      // The worker is gone: its finally will never run. Release what its ledger records.
      if (t.ledger) this.#stats.pinsReclaimed += releaseLedger(t.ledger, this.dev.table)
      t.fail(pmemError('EIO', 'dma', `DMA worker ${slot.index} died (exit code ${code}) during the transfer; its pins were released`, {
        cause: slot.deathError,
      }))
    }
    if (!this.#closing) this.#spawn(slot)
  }

  #pick(): Slot {
    let best: Slot | undefined
    const n = this.#slots.length
    for (let k = 0; k < n; k++) {
      const s = this.#slots[(this.#rr + k) % n]!
      if (!s.worker) continue
      if (!best || s.inflight.size < best.inflight.size) best = s
    }
    this.#rr = (this.#rr + 1) % n
    if (!best) {
      // every worker is being replaced: respawn one
      best = this.#slots[0]!
      this.#spawn(best)
    }
    return best
  }

  #dispatch(t: Transfer, job: JobSpec): void {
    const slot = this.#pick()
    t.slot = slot
    slot.inflight.add(t.id)
    const m: ToWorker = { t: 'job', spec: job }
    slot.worker!.postMessage(m)
    this.#refresh()
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'ready': return
      case 'pinned': this.#inflight.get(m.id)?.markPinned(); return
      case 'fault': {
        const t = this.#inflight.get(m.id)
        let error
        let zero = false
        try {
          if (!t?.map) throw pmemError('EFAULT', 'dma', 'fault for an unknown transfer')
          zero = this.#fault(t.map, m.offset, m.length, m.write)
        } catch (e) {
          error = serializeError(e)
        }
        const reply: ToWorker = error ? { t: 'fault-done', id: m.id, seq: m.seq, error } : { t: 'fault-done', id: m.id, seq: m.seq, zero }
        slot.worker?.postMessage(reply)
        return
      }
      case 'done': {
        const t = this.#inflight.get(m.id)
        this.#stats.faults += m.faults
        this.#stats.retries += m.retries
        t?.succeed({ bytes: m.bytes, ns: m.ns, pinNs: m.pinNs })
        return
      }
      case 'failed': this.#inflight.get(m.id)?.fail(deserializeError(m.error)); return
    }
  }

  /**
   * The slow path, on the owning thread: the mapping's fault runs the model's
   * insert path. True when it left the first page without a page (the zero
   * page of a read-only hole), read right after the fault, before anything
   * can zap it again: the copying side cannot tell that from a racing zap.
   */
  #fault(map: DaxMappingLike, offset: number, length: number, write: boolean): boolean {
    const len = Math.min(length, map.length - offset)
    try {
      map.fault(offset, len, write)
      const share = map.share()
      return new Int32Array(share.ptes)[Math.floor(offset / share.pageSize)] === PTE_NONE
    } catch (e) {
      // VM_FAULT_SIGBUS -> -EFAULT from gup, as Linux; poison and the rest keep their code
      if (isPmemuError(e, 'SIGBUS')) {
        throw pmemError('EFAULT', 'dma', `fault of [${offset}, ${offset + len}) in the mapping failed: ${e.message}`, { offset, length: len, cause: e })
      }
      throw e
    }
  }

  // ---- main-thread engine (mmap-io) --------------------------------------------------------------

  #env(): CoreEnv {
    if (this.#mainEnv) return this.#mainEnv
    this.#mainEnv = {
      ...nativeHelpers(),
      table: this.dev.table,
      windows: this.dev.region.windows.map(w => ({ offset: w.offset, length: w.length, bytes: w.bytes })),
      engine: this.#engine,
      fault: async (job, offset, length, write) => {
        const t = this.#inflight.get(job.id)
        if (!t?.map) throw pmemError('EFAULT', 'dma', 'fault for an unknown transfer')
        return this.#fault(t.map, offset, length, write)
      },
      pinned: job => this.#inflight.get(job.id)?.markPinned(),
    }
    return this.#mainEnv
  }

  #runMain(t: Transfer, job: JobSpec): void {
    if (t.settled) return
    let env: CoreEnv
    try { env = this.#env() } catch (e) { t.fail(e); return }
    runJob(env, job).then(
      r => { this.#stats.faults += r.faults; this.#stats.retries += r.retries; t.succeed({ bytes: r.bytes, ns: r.ns, pinNs: r.pinNs }) },
      (e: unknown) => t.fail(e),
    )
  }

  // ---- device events -------------------------------------------------------------------------------

  /** A crash: every transfer of the old life fails with ENXIO and drops its pins before the table is reset. */
  async #onCrash(): Promise<void> {
    Atomics.store(this.#engine, E_GEN, this.dev.generation)
    const all = [...this.#inflight.values()]
    for (const t of all) t.abort(pmemError('ENXIO', 'dma', 'the device crashed during the transfer'))
    await Promise.allSettled(all.map(t => t.done))
  }

  // ---- close -----------------------------------------------------------------------------------------

  /**
   * Wait for every in-flight transfer (a held one waits for its release or
   * its time), then stop the workers. With `signal`, aborting it (or an
   * already aborted one) aborts the in-flight transfers instead; either way
   * no pin is left. Later submits fail with ENODEV. Idempotent.
   */
  close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closing) return this.#closing
    try {
      checkOptions(opts, 'dma')
      checkSignal(opts?.signal, 'dma', 'signal')
    } catch (e) {
      return Promise.reject(e)
    }
    this.#closing = this.#close(opts?.signal)
    return this.#closing
  }

  async #close(signal: AbortSignal | undefined): Promise<void> {
    const abortAll = (): void => {
      for (const t of this.#inflight.values()) t.abort(new PmemuAbortError('dma', { cause: signal?.reason }))
    }
    if (signal?.aborted) abortAll()
    else signal?.addEventListener('abort', abortAll, { once: true })
    try {
      while (this.#inflight.size > 0) {
        await Promise.allSettled([...this.#inflight.values()].map(t => t.done))
        await new Promise(r => setImmediate(r)) // let the finally handlers of #track run
      }
    } finally {
      signal?.removeEventListener('abort', abortAll)
    }
    await Promise.all(this.#slots.map(async s => {
      const w = s.worker
      s.worker = undefined
      if (w) await w.terminate()
    }))
    if (this.#keepAlive) { clearInterval(this.#keepAlive); this.#keepAlive = undefined }
    this.#detach()
    this.log.debug(this.stats(), 'dma engine closed')
  }
}
