/**
 * forEachCrash: run a user's workload under many seeded power losses and
 * check it with the user's verify (SPEC §2, §7; docs/crash-testing.md).
 *
 * Each run: a fresh in-memory device with a crash shadow, mkfs, the workload
 * with a crash armed at one moment, `dev.crash({ seed, keep })`, mount
 * (journal replay), verify, and (by default) unmount + fsck. Moments are
 *   - `crash-point:<k>`: the k-th journal crash point the workload passes
 *     (every step of every transaction: intent/commit/apply/checkpoint,
 *     written and persisted), counted from 0 over the whole workload;
 *   - `persist:<n>`: just before the n-th `dev.persist` call (0-based; the
 *     n-th persist does not happen), chosen from the seed;
 *   - `end`: after the workload returned.
 * At the armed moment a private sentinel is thrown and the device is frozen
 * (further stores and persists throw it too: the power is off), and the fs
 * is shut down. The workload's errors after that (the sentinel, EIO, ENXIO)
 * are expected; any other error, or one before the crash, is a failure.
 *
 * Everything is a function of (workload, seed, point, keep, options): a
 * failure reproduces with replayCrash(workload, verify, failure). The
 * workload must be deterministic (same calls in the same order every run).
 */
import { describeValue, isPmemuError, pmemError } from '../errors.js'
import { mkfs as fsMkfs, mount as fsMount } from '../dax/index.js'
import { fsck as runFsck, type PmemFs, type CrashPoint } from '../fs/index.js'
import { openDevice, prng, type Device } from '../region/index.js'
import type { ModelName } from '../region/types.js'
import type { Size } from '../util/size.js'
import { attachFaults } from './poison.js'
import { cloneMirror, materialize, recordingFs, scanFs, type Mirror, type Recording } from './trace.js'
import { constraints, closed, hexToMask, maskToHex, planAt, stateKey, stateOf, story, subsets } from './explore.js'
import { durabilityProfile, type DurabilityName, type DurabilityProfile } from '../fs/index.js'

export type Keep = 'none' | 'all' | 'random'

/** Where a run crashed, decoded. */
export type CrashAt =
  | { kind: 'crash-point'; index: number; name: CrashPoint; op: string; seq: number }
  | { kind: 'persist'; index: number }
  | { kind: 'end' }
  /**
   * An explored crash state (weak durability profiles): after traced operation
   * `index` of `of`. `trace`: the recorded operations the state is made of
   * (call, call site, persistence units), so replayCrash can tell a workload
   * that no longer makes them.
   */
  | { kind: 'ops'; index: number; of: number; durability: DurabilityName; persisted: string[]; lost: string[]; rules: string[]; story: string; trace: TracedCall[] }

/** One operation of a recorded trace, as a failure carries it. */
export interface TracedCall { call: string; site: string; units: number }

export interface WorkloadContext {
  dev: Device
  fs: PmemFs
  /** Fresh per run, shared with verify: record what the workload saw acknowledged (e.g. after an fsync returned). */
  state: Record<string, unknown>
}

export interface VerifyContext extends WorkloadContext {
  seed: number
  /** 'crash-point:<k>' | 'persist:<n>' | 'end' */
  point: string
  keep: Keep
  at: CrashAt
}

export type Workload = (ctx: WorkloadContext) => void | Promise<void>
export type Verify = (ctx: VerifyContext) => void | Promise<void>

export interface ForEachCrashOptions {
  /** Runs at seeded random moments (per keep mode). Default 20. */
  seeds?: number
  /** Which unpersisted cache lines survive: one mode or several (runs multiply). Default 'random'. */
  keep?: Keep | Keep[]
  /** Device size. Default '16MiB'. */
  size?: Size
  model?: ModelName
  pageSize?: number
  /** Crash at every journal crash point the workload reaches. Default true. */
  crashPoints?: boolean
  /** Crash at `seeds` seeded random moments (persist calls). Default true. */
  randomMoments?: boolean
  /** At most this many crash points, spread evenly over those reached. Default: all. */
  maxCrashPoints?: number
  /** Base seed: the run seeds derive from it. Default 1. */
  seed?: number
  /** Unmount and run fsck after verify; anything it finds is a failure. Default true. */
  fsck?: boolean
  /** Stop after this many failures. Default: run everything. */
  maxFailures?: number
  /** Weak profiles: enumerate every state of a persistence point up to this many, else sample (`seeds` per point). Default 256. */
  maxStatesPerPoint?: number
  /** Format (and mount) the device once; the image it leaves (unmounted) is the start of every run. Default: src/dax mkfs. */
  mkfs?: (dev: Device) => Promise<PmemFs>
  /** Mount the fs the workload gets, and again after the crash. Default: src/dax mount + attachFaults. */
  mount?: (dev: Device) => Promise<PmemFs>
  /**
   * The file system whose durability the crash states model (docs/crash-testing.md,
   * "Durability profiles"): 'strict' (default: pmemu's own journal, crashed at
   * journal crash points and persist calls), or 'posix', 'ext4-ordered', 'xfs'
   * (the crash-state explorer: every state the profile allows after each
   * traced operation). Anything else is EINVAL.
   */
  durability?: DurabilityName
  /**
   * Which of the workload's errors after the power cut are expected. Default:
   * the power loss, EIO or ENXIO (also as a `cause`), or any error whose
   * message carries the power-loss message (a library that re-wraps the
   * error without `cause`). Errors before the cut are always failures.
   */
  expectedError?: (error: unknown) => boolean
}

export interface CrashFailure {
  seed: number
  point: string
  keep: Keep
  /** Where it went wrong: the workload (an unexpected error), mount after the crash, verify, or fsck. */
  phase: 'workload' | 'mount' | 'verify' | 'fsck'
  error: unknown
  at: CrashAt
  /** One line: what, where, and how to replay it. */
  message: string
}

export interface ForEachCrashResult {
  /** Runs (strict) or distinct crash states verified (weak profiles). */
  runs: number
  /** Weak profiles: traced operations of the workload. */
  operations?: number
  /** Journal crash points the workload passes (dry run). */
  crashPoints: number
  /** dev.persist calls the workload makes (dry run). */
  persists: number
  failures: CrashFailure[]
  firstFailure: CrashFailure | undefined
  ok: boolean
}

export interface ReplayOptions extends Omit<ForEachCrashOptions, 'seeds' | 'keep' | 'crashPoints' | 'randomMoments' | 'maxCrashPoints' | 'maxFailures'> {
  seed: number
  /** From the failure; omitted: the random moment the seed picks. */
  point?: string
  keep?: Keep
}

/** Thrown at the armed moment; never escapes forEachCrash. */
class PowerLoss extends Error {
  constructor(readonly point: string) {
    super(`power loss at ${point} (forEachCrash)`)
    this.name = 'PowerLoss'
  }
}

function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d) >>> 0
  h ^= h >>> 15
  return h >>> 0
}

interface Arm { kind: 'crash-point' | 'persist' | 'end' | 'none'; index: number }

function parsePoint(point: string): Arm {
  if (point === 'end') return { kind: 'end', index: 0 }
  const m = typeof point === 'string' ? /^(crash-point|persist):(\d+)$/.exec(point) : null
  if (!m) throw pmemError('EINVAL', 'replayCrash', `bad point ${describeValue(point)} (want 'crash-point:<k>', 'persist:<n>' or 'end')`, { point: describeValue(point) })
  return { kind: m[1] as 'crash-point' | 'persist', index: Number(m[2]) }
}

/** The random moment a seed picks among `persists` persist calls (persists itself = the end). */
function momentFor(seed: number, persists: number): string {
  const n = Math.floor(prng(seed)() * (persists + 1))
  return n >= persists ? 'end' : `persist:${n}`
}

interface Resolved {
  size: Size; model: ModelName | undefined; pageSize: number | undefined; fsck: boolean
  mkfs: (dev: Device) => Promise<PmemFs>; mount: (dev: Device) => Promise<PmemFs>
  expectedError: ((e: unknown) => boolean) | undefined
  durability: DurabilityProfile
}

function resolve(o: ForEachCrashOptions): Resolved {
  return {
    size: o.size ?? '16MiB', model: o.model, pageSize: o.pageSize, fsck: o.fsck !== false,
    mkfs: o.mkfs ?? (dev => fsMkfs(dev)),
    mount: o.mount ?? (async dev => { const fs = await fsMount(dev); attachFaults(fs); return fs }),
    expectedError: typeof o.expectedError === 'function' ? o.expectedError : undefined,
    durability: durabilityProfile(o.durability, 'forEachCrash'),
  }
}

interface RunOutcome {
  failure?: CrashFailure
  crashPoints: number
  persists: number
}

/** The power loss, EIO or ENXIO — also wrapped as a `cause` (toNodeFs throws Node-style errors whose cause is the PmemuError). */
const expectedAfterCrash = (e: unknown): boolean => {
  for (let x = e, depth = 0; x !== null && typeof x === 'object' && depth < 8; x = (x as { cause?: unknown }).cause, depth++) {
    if (x instanceof PowerLoss || isPmemuError(x, 'EIO') || isPmemuError(x, 'ENXIO')) return true
    // Re-wrapped without cause (e.g. hypercore's WRITE_FAILED(message)): the power-loss text survives in the message.
    let msg: unknown
    try { msg = (x as { message?: unknown }).message } catch { msg = undefined }
    if (typeof msg === 'string' && (msg.includes('(forEachCrash)') || msg.includes('the device crashed (power loss)'))) return true
  }
  return false
}

/** Format anything thrown (a Symbol, an object whose toString throws) without throwing. */
export function errorText(e: unknown): string {
  try {
    if (e instanceof Error) return e.message
    if (typeof e === 'symbol') return `(a thrown ${e.toString()})`
    if (typeof e === 'string') return e
    if (e === null || e === undefined || typeof e !== 'object') return `(a thrown ${String(e)})`
    return `(a thrown ${Object.prototype.toString.call(e)}: ${JSON.stringify(e)?.slice(0, 200) ?? ''})`
  } catch { return '(a thrown value that cannot be printed)' }
}

function describe(at: CrashAt): string {
  if (at.kind === 'crash-point') return `journal crash point ${at.index} (${at.name} of '${at.op}', transaction ${at.seq})`
  if (at.kind === 'persist') return `before persist call ${at.index}`
  if (at.kind === 'ops') return `after operation ${at.index} of ${at.of} under '${at.durability}' (${at.story})`
  return 'after the workload returned'
}

/**
 * The device runs happen on. Opening a device with a crash shadow costs tens
 * of milliseconds, so one device is reused: between runs it is crashed with
 * keep 'all' (every layer of the previous run is dead, the side table idle),
 * its badblocks are cleared and the freshly formatted image is written back
 * and persisted. A run that unbinds or closes the device gets a new one.
 */
class Lab {
  private dev: Device | undefined
  private image: Uint8Array | undefined
  /** light: no crash shadow (the explorer builds crash states itself); between runs the image is written back only. */
  constructor(private readonly r: Resolved, private readonly light = false) {}

  private async open(): Promise<Device> {
    const r = this.r
    return openDevice(undefined, {
      size: r.size, crashShadow: !this.light, ...(r.model ? { model: r.model } : {}), ...(r.pageSize ? { pageSize: r.pageSize } : {}),
    })
  }

  /** A device holding the freshly formatted, unmounted image. */
  async fresh(): Promise<Device> {
    if (!this.image) {
      const dev = await this.open()
      const fs = await this.r.mkfs(dev)
      if (!fs.isUnmounted) await fs.unmount()
      this.image = new Uint8Array(dev.capacity)
      dev.read(0, this.image)
      this.dev = dev
      return dev
    }
    let dev = this.dev
    if (this.light && dev && dev.status === 'open' && dev.badblocks().length === 0) {
      dev.write(0, this.image)
      return dev
    }
    if (dev && dev.status === 'open') {
      try {
        await dev.crash({ keep: 'all', seed: 0 })
        if (dev.badblocks().length > 0) dev.clearPoison(0, dev.capacity)
      } catch {
        await dev.close().catch(() => undefined)
        dev = undefined
      }
    } else dev = undefined
    if (!dev) {
      await this.dev?.close().catch(() => undefined)
      dev = await this.open()
      this.dev = dev
    }
    dev.write(0, this.image)
    dev.persist(0, this.image.length)
    return dev
  }

  async close(): Promise<void> {
    await this.dev?.close().catch(() => undefined)
    this.dev = undefined
  }

  /** Drop the device (a run left it unusable); the next fresh() opens a new one. */
  async discard(): Promise<void> { await this.close() }
}

/**
 * One run. `point === ''` is the dry run: no crash, counts the crash points
 * and persists (the workload must succeed; verify is not called).
 */
async function runOne(lab: Lab, workload: Workload, verify: Verify | undefined, r: Resolved, seed: number, point: string, keep: Keep): Promise<RunOutcome> {
  const arm: Arm = point === '' ? { kind: 'none', index: 0 } : parsePoint(point)
  const dev = await lab.fresh()
  let cp = 0
  let persists = 0
  let at: CrashAt = { kind: 'end' }
  let tripped = false
  const fail = (phase: CrashFailure['phase'], error: unknown): RunOutcome => {
    const msg = errorText(error)
    return {
      crashPoints: cp, persists,
      failure: {
        seed, point, keep, phase, error, at,
        message: `${phase} failed after a crash ${describe(at)} (seed ${seed}, point '${point}', keep '${keep}'): ${msg}`,
      },
    }
  }
  const d = dev as unknown as Record<string, unknown>
  const unfreeze = (): void => { for (const k of ['write', 'zero', 'persist']) delete d[k] }
  try {
    const fs0 = await r.mount(dev)
    const state: Record<string, unknown> = {}
    const proto = Object.getPrototypeOf(dev) as Device
    // At the armed moment the power goes: stores and persists throw from then on, the fs shuts down.
    const trip = (): never => {
      if (!tripped) {
        tripped = true
        const dead = (): never => { throw new PowerLoss(point) }
        d.write = dead
        d.zero = dead
        d.persist = dead
        fs0.shutdown(`power loss at ${point} (forEachCrash)`)
      }
      throw new PowerLoss(point)
    }
    d.persist = (offset: number, length: number): void => {
      if (arm.kind === 'persist' && persists === arm.index) { at = { kind: 'persist', index: persists }; trip() }
      persists++
      proto.persist.call(dev, offset, length)
    }
    fs0.onCrashPoint = (name, info) => {
      if (arm.kind === 'crash-point' && cp === arm.index) { at = { kind: 'crash-point', index: cp, name, op: info.op, seq: info.seq }; cp++; trip() }
      cp++
    }
    try {
      await workload({ dev, fs: fs0, state })
    } catch (e) {
      if (!tripped || !(r.expectedError ?? expectedAfterCrash)(e)) {
        if (arm.kind === 'none') throw e
        return fail('workload', e)
      }
    } finally {
      fs0.onCrashPoint = undefined
      unfreeze()
    }
    if (arm.kind === 'none') return { crashPoints: cp, persists }
    if (!tripped && arm.kind !== 'end') {
      return fail('workload', new Error(`the workload never reached ${point} (${arm.kind === 'crash-point' ? cp : persists} were reached): is it deterministic?`))
    }
    try { await dev.crash({ seed, keep }) } catch (e) { return fail('workload', e) }
    let fs1: PmemFs
    try { fs1 = await r.mount(dev) } catch (e) { return fail('mount', e) }
    try {
      if (verify) await verify({ dev, fs: fs1, state, seed, point, keep, at })
    } catch (e) {
      return fail('verify', e)
    }
    if (r.fsck) {
      try {
        if (!fs1.isUnmounted && !fs1.isDead) await fs1.unmount()
        if (dev.status === 'open') {
          const rep = await runFsck(dev)
          if (!rep.clean) return fail('fsck', new Error(`fsck exit ${rep.exitCode}: ${rep.problems.join('; ')}`))
        }
      } catch (e) { return fail('fsck', e) }
    }
    return { crashPoints: cp, persists }
  } finally {
    unfreeze()
  }
}

/**
 * Run `workload` under seeded crashes: at every journal crash point it
 * reaches and at `seeds` random moments, for each keep mode; after each
 * crash, remount and call `verify`. Resolves with every failure (never
 * rejects for a failing run; rejects if the workload fails without a crash).
 */
export async function forEachCrash(workload: Workload, verify: Verify, opts: ForEachCrashOptions = {}): Promise<ForEachCrashResult> {
  if (typeof workload !== 'function' || typeof verify !== 'function') throw pmemError('EINVAL', 'forEachCrash', 'forEachCrash(workload, verify, options): both must be functions')
  const r = resolve(opts)
  const seeds = opts.seeds ?? 20
  const keeps: Keep[] = Array.isArray(opts.keep) ? opts.keep : [opts.keep ?? 'random']
  for (const k of keeps) if (k !== 'none' && k !== 'all' && k !== 'random') throw pmemError('EINVAL', 'forEachCrash', `bad keep ${describeValue(k)} (want 'none', 'all' or 'random')`)
  const base = (opts.seed ?? 1) >>> 0
  const maxFailures = opts.maxFailures ?? Infinity
  if (r.durability.name !== 'strict') return explore(workload, verify, r, opts, seeds, base, maxFailures)
  const lab = new Lab(r)
  try {
    const dry = await runOne(lab, workload, undefined, r, 0, '', 'none')
    const failures: CrashFailure[] = []
    let runs = 0
    const plan: Array<{ seed: number; point: string; keep: Keep }> = []
    for (const keep of keeps) {
      if (opts.crashPoints !== false && dry.crashPoints > 0) {
        const max = Math.min(dry.crashPoints, opts.maxCrashPoints ?? Infinity)
        const picked = new Set<number>()
        for (let i = 0; i < max; i++) picked.add(Math.floor((i * dry.crashPoints) / max))
        for (const k of picked) plan.push({ seed: mix(base, k), point: `crash-point:${k}`, keep })
      }
      if (opts.randomMoments !== false) {
        for (let i = 0; i < seeds; i++) {
          const seed = mix(base ^ 0x5bd1e995, i)
          plan.push({ seed, point: momentFor(seed, dry.persists), keep })
        }
      }
    }
    for (const p of plan) {
      if (failures.length >= maxFailures) break
      const out = await runOne(lab, workload, verify, r, p.seed, p.point, p.keep)
      runs++
      if (out.failure) failures.push(out.failure)
    }
    return { runs, crashPoints: dry.crashPoints, persists: dry.persists, failures, firstFailure: failures[0], ok: failures.length === 0 }
  } finally {
    await lab.close()
  }
}

/**
 * Re-run one crash of forEachCrash: `replayCrash(workload, verify, failure)`.
 * Resolves with the failure again (undefined if it passed this time).
 */
export async function replayCrash(workload: Workload, verify: Verify, opts: ReplayOptions): Promise<CrashFailure | undefined> {
  if (typeof workload !== 'function' || typeof verify !== 'function') throw pmemError('EINVAL', 'replayCrash', 'replayCrash(workload, verify, failure): both must be functions')
  if (!opts || typeof opts.seed !== 'number') throw pmemError('EINVAL', 'replayCrash', 'options.seed is required (pass the failure forEachCrash reported)')
  // A failure of the explorer carries its profile in `at`.
  const fromAt = (opts as { at?: CrashAt }).at
  const r = resolve({ ...opts, durability: opts.durability ?? (fromAt?.kind === 'ops' ? fromAt.durability : undefined) })
  if (r.durability.name !== 'strict' || (typeof opts.point === 'string' && opts.point.startsWith('ops:'))) return replayState(workload, verify, r, opts)
  const lab = new Lab(r)
  try {
    let point = opts.point
    if (point === undefined) {
      const dry = await runOne(lab, workload, undefined, r, 0, '', 'none')
      point = momentFor(opts.seed, dry.persists)
    }
    parsePoint(point)
    const out = await runOne(lab, workload, verify, r, opts.seed, point, opts.keep ?? 'random')
    return out.failure
  } finally {
    await lab.close()
  }
}

// ------------------------------------------------------------------ weak profiles: the explorer

interface Traced { rec: Recording; base: Mirror; end: Record<string, unknown> }

/** Run the workload once on a recording view of a fresh fs. */
async function record(lab: Lab, workload: Workload, r: Resolved): Promise<Traced> {
  const dev = await lab.fresh()
  const fs = await r.mount(dev)
  const base = await scanFs(fs)
  const rec: Recording = { ops: [], mirror: cloneMirror(base) }
  const state: Record<string, unknown> = {}
  await workload({ dev, fs: recordingFs(fs, rec, state, fs.statfs().bsize), state })
  let end: Record<string, unknown>
  try { end = structuredClone(state) } catch { end = { ...state } }
  if (!fs.isUnmounted && !fs.isDead) await fs.unmount()
  return { rec, base, end }
}

/** The first operation two recordings of the workload disagree on, or undefined. */
function diverges(a: Recording, b: Recording): string | undefined {
  const n = Math.max(a.ops.length, b.ops.length)
  for (let i = 0; i < n; i++) {
    const x = a.ops[i], y = b.ops[i]
    if (x?.call === y?.call && x?.units.length === y?.units.length) continue
    const d = (o: typeof x): string => (o ? `${o.call}${o.site ? ` at ${o.site}` : ''}` : '(no operation)')
    return `the workload is not deterministic: operation ${i} was ${d(x)} in one run and ${d(y)} in another`
  }
  return undefined
}

async function verifyState(lab: Lab, verify: Verify, r: Resolved, t: Traced, k: number, mask: boolean[], plan: ReturnType<typeof planAt>, point: string, seed: number): Promise<CrashFailure | undefined> {
  const ops = t.rec.ops
  const st = story(r.durability, ops, plan, mask)
  const at: CrashAt = {
    kind: 'ops', index: k, of: ops.length, durability: r.durability.name, persisted: st.persisted, lost: st.lost, rules: st.rules, story: st.text,
    trace: ops.map(o => ({ call: o.call, site: o.site, units: o.units.length })),
  }
  const keep: Keep = 'none'
  const fail = (phase: CrashFailure['phase'], error: unknown): CrashFailure => ({
    seed, point, keep, phase, error, at,
    message: `${phase} failed after a crash ${describe(at)} (point '${point}'): ${errorText(error)}`,
  })
  const dev = await lab.fresh()
  let fs: PmemFs | undefined
  try {
    try {
      fs = await r.mount(dev)
      await materialize(fs, t.base, stateOf(t.base, ops, plan, mask))
    } catch (e) { return fail('mount', e) }
    const snap = k < ops.length ? ops[k]!.state : t.end
    let state: Record<string, unknown>
    try { state = structuredClone(snap) } catch { state = { ...snap } }
    try {
      await verify({ dev, fs, state, seed, point, keep, at })
    } catch (e) { return fail('verify', e) }
    return undefined
  } finally {
    // The next state starts from the image again: this fs must be gone (or the device is replaced).
    if (fs && !fs.isUnmounted && !fs.isDead) await fs.unmount().catch(() => lab.discard())
  }
}

async function explore(workload: Workload, verify: Verify, r: Resolved, opts: ForEachCrashOptions, seeds: number, base: number, maxFailures: number): Promise<ForEachCrashResult> {
  const lab = new Lab(r, true)
  try {
    const t = await record(lab, workload, r)
    const failures: CrashFailure[] = []
    const done = (runs: number): ForEachCrashResult => ({ runs, operations: t.rec.ops.length, crashPoints: t.rec.ops.length + 1, persists: 0, failures, firstFailure: failures[0], ok: failures.length === 0 })
    const again = await record(lab, workload, r)
    const why = diverges(t.rec, again.rec)
    if (why) {
      failures.push({ seed: base, point: 'ops:0:0', keep: 'none', phase: 'workload', error: new Error(why), at: { kind: 'end' }, message: `workload failed: ${why}` })
      return done(0)
    }
    const c = constraints(t.rec.ops, r.durability)
    const seen = new Set<string>()
    let runs = 0
    for (let k = 0; k <= t.rec.ops.length && failures.length < maxFailures; k++) {
      const plan = planAt(t.rec.ops, k, c)
      const snap = k < t.rec.ops.length ? t.rec.ops[k]!.state : t.end
      let sj: string
      try { sj = JSON.stringify(snap) } catch { sj = String(k) }
      for (const mask of subsets(plan, opts.maxStatesPerPoint ?? 256, seeds, mix(base, k))) {
        if (failures.length >= maxFailures) break
        const key = `${sj}#${stateKey(stateOf(t.base, t.rec.ops, plan, mask))}`
        if (seen.has(key)) continue
        seen.add(key)
        const f = await verifyState(lab, verify, r, t, k, mask, plan, `ops:${k}:${maskToHex(mask)}`, base)
        runs++
        if (f) failures.push(f)
      }
    }
    return done(runs)
  } finally {
    await lab.close()
  }
}

/** A recorded call as a message names it. */
const callName = (c: { call: string; site: string } | undefined): string => (c ? `${c.call}${c.site ? ` at ${c.site}` : ''}` : '(no operation)')

/**
 * Where the replayed workload's trace leaves the recorded one, among the
 * operations the state is made of (the first `k`): call, call site aside
 * (a fixed copy of the workload may live elsewhere), and persistence units.
 */
function divergence(recorded: TracedCall[], replayed: Recording['ops'], k: number): { index: number; text: string } | undefined {
  for (let i = 0; i < k; i++) {
    const x = recorded[i], y = replayed[i]
    if (x && y && x.call === y.call && x.units === y.units.length) continue
    const units = x && y && x.call === y.call ? ` (${x.units} persistence units recorded, ${y.units.length} replayed)` : ''
    return { index: i, text: `operation ${i} was ${callName(x)} when the state was recorded and is ${callName(y)} now${units}` }
  }
  return undefined
}

async function replayState(workload: Workload, verify: Verify, r: Resolved, opts: ReplayOptions): Promise<CrashFailure | undefined> {
  const m = /^ops:(\d+):([0-9a-f]+)$/.exec(typeof opts.point === 'string' ? opts.point : '')
  if (!m) throw pmemError('EINVAL', 'replayCrash', `a '${r.durability.name}' state needs its point 'ops:<k>:<mask>' (from the failure), not ${describeValue(opts.point)}`)
  const point = opts.point!
  const fromAt = (opts as { at?: CrashAt }).at
  const recorded = fromAt?.kind === 'ops' && Array.isArray(fromAt.trace) ? fromAt.trace : undefined
  const lab = new Lab(r, true)
  try {
    const t = await record(lab, workload, r)
    const k = Number(m[1])
    // A state names units of its own trace: on a workload that makes other calls it is no state at all.
    const diverged = (why: string, index: number): never => {
      throw pmemError('EINVAL', 'replayCrash', `crash state '${point}' does not belong to this workload: ${why}; ` +
        'a workload that changed (a fix adding an fsync) needs forEachCrash again, one that did not is not deterministic', {
        point, operation: index, recorded: callName(recorded?.[index]), replayed: callName(t.rec.ops[index]),
      })
    }
    const d = recorded ? divergence(recorded, t.rec.ops, k) : undefined
    if (d) diverged(d.text, d.index)
    if (k > t.rec.ops.length) diverged(`it made ${t.rec.ops.length} operations, the state is after operation ${k}`, t.rec.ops.length)
    const plan = planAt(t.rec.ops, k, constraints(t.rec.ops, r.durability))
    const mask = hexToMask(m[2]!, plan.optional.length)
    if (!mask || !closed(plan, mask)) diverged(`its mask is not a state '${r.durability.name}' allows for the ${plan.optional.length} operations it leaves open`, k)
    return await verifyState(lab, verify, r, t, k, mask!, plan, point, opts.seed)
  } finally {
    await lab.close()
  }
}
