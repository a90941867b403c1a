/**
 * Timing helpers. A figure compared with C is timed PAIRED: the JS block and
 * the C call run in alternating order, round after round, and the result is
 * the median of the per-round ratios with its spread — a disturbance of the
 * shared machine lands on both sides of one pair instead of on one side of
 * the comparison (timing the sides in separate windows let one disturbed
 * window swing a ratio from 0.6 to 2.3). mitata (timeJs) remains for JS-only
 * figures; the arithmetic every result shares (ratios, targets) is here too.
 */
import { measure } from 'mitata'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { Budget, BenchResult, Spread, Unit } from './types.js'
import { higherIsBetter } from './types.js'

export const QUICK_BUDGET: Budget = {
  minCpuNs: 25e6, block: 1024, cIters: 200_000, cReps: 5, pairs: 21, sweepPages: 262_144,
  copyBytes: 16 * 2 ** 20, contentionMs: 40, openBytes: 64 * 2 ** 30,
  daxBytes: 32 * 2 ** 20, truncateBytes: 128 * 2 ** 20, rounds: 5, samples: 200,
}
export const FULL_BUDGET: Budget = {
  minCpuNs: 300e6, block: 1024, cIters: 2_000_000, cReps: 9, pairs: 61, sweepPages: 262_144,
  copyBytes: 64 * 2 ** 20, contentionMs: 400, openBytes: 64 * 2 ** 30,
  daxBytes: 64 * 2 ** 20, truncateBytes: 2 ** 30, rounds: 9, samples: 1000,
}
/** The smallest budget, for tests: figures are noisy, shapes are right. */
export const TINY_BUDGET: Budget = {
  minCpuNs: 2e6, block: 256, cIters: 20_000, cReps: 3, pairs: 5, sweepPages: 4096,
  copyBytes: 2 ** 20, contentionMs: 10, openBytes: 256 * 2 ** 20,
  daxBytes: 4 * 2 ** 20, truncateBytes: 8 * 2 ** 20, rounds: 2, samples: 8,
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Quantile q (0..1) of xs, linear between order statistics. */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const i = Math.min(s.length - 1, Math.max(0, q * (s.length - 1)))
  const lo = Math.floor(i)
  const hi = Math.ceil(i)
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo)
}

/** min, p10, p90, max of a sample (3 significant digits) and its size n, as the Benchmark JSON has them. */
export function spreadOf(xs: number[]): Spread {
  return { min: sig(quantile(xs, 0)), p10: sig(quantile(xs, 0.1)), p90: sig(quantile(xs, 0.9)), max: sig(quantile(xs, 1)), n: xs.length }
}

/** One side of a paired measurement: runs one block, returns ns per operation. */
export type Side = () => number

const now = (): number => Number(process.hrtime.bigint())

/**
 * A JS side: `fn` performs `opsPerCall` operations; one block calls it `reps`
 * times (calibrate with calibrateReps so a block lasts about as long as the
 * C side's).
 */
export function jsSide(fn: () => void, opsPerCall: number, reps: number): Side {
  return () => {
    const t0 = now()
    for (let r = 0; r < reps; r++) fn()
    return (now() - t0) / (reps * opsPerCall)
  }
}

/** A C side: `call` runs `ops` operations in C and returns its own elapsed ns. */
export function cSide(call: () => number, ops: number): Side {
  return () => call() / ops
}

/** Calls of `fn` that take about `targetNs` (at least 1), after a warm-up that lets the JIT settle. */
export function calibrateReps(fn: () => void, targetNs: number): number {
  let reps = 1
  for (;;) {
    const t0 = now()
    for (let r = 0; r < reps; r++) fn()
    const dt = now() - t0
    if (dt >= targetNs / 4 || reps >= 1 << 24) return Math.max(1, Math.round(reps * targetNs / Math.max(dt, 1)))
    reps *= 2
  }
}

/**
 * Run the sides in alternating order (the order rotates each round, so no
 * side always runs right after another's cache or frequency effects), one
 * warm-up round first. Returns samples[side][round], ns per operation.
 */
export function interleave(sides: Side[], rounds: number): number[][] {
  for (const s of sides) s()
  const out = sides.map(() => [] as number[])
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (r + k) % sides.length
      out[i]!.push(sides[i]!())
    }
  }
  return out
}

/** What a paired measurement gives result(): per-side samples of the same rounds. */
export interface Paired {
  /** ns/op of the JS side per round. */
  js: number[]
  /** ns/op of the C side per round (same rounds). */
  c: number[]
  /** ns/op of the JS floor per round (same rounds), if measured. */
  floor?: number[]
}

/**
 * The usual comparison: the JS loop `fn` (opsPerCall operations per call),
 * the C call (ops operations, returns its own ns) and optionally a floor loop,
 * interleaved for budget.pairs rounds; JS blocks are sized to last as long as
 * one C call.
 */
export function timePaired(
  fn: () => void, opsPerCall: number, c: () => number, cOps: number, budget: Budget,
  floor?: { fn: () => void; opsPerCall: number },
): Paired {
  c() // warm the cache lines and the branch predictor
  const t0 = now(); c(); const cNs = Math.max(now() - t0, 1000)
  const sides: Side[] = [jsSide(fn, opsPerCall, calibrateReps(fn, cNs)), cSide(c, cOps)]
  if (floor) sides.push(jsSide(floor.fn, floor.opsPerCall, calibrateReps(floor.fn, cNs)))
  const [js, cs, fl] = interleave(sides, budget.pairs)
  return { js: js!, c: cs!, ...(fl ? { floor: fl } : {}) }
}

/**
 * ns per operation of `fn`, which performs `opsPerCall` operations per call.
 * The median of mitata's samples, divided by opsPerCall.
 */
export async function timeJs(fn: () => void, opsPerCall: number, budget: Budget): Promise<number> {
  const stats = await measure(fn, {
    min_cpu_time: budget.minCpuNs,
    min_samples: 8,
    batch_samples: 16,
    warmup_samples: 4,
  })
  return stats.p50 / opsPerCall
}

/**
 * ns per operation of a C baseline call that returns its own elapsed ns for
 * `ops` operations: the fastest of budget.cReps calls (a C loop has no JIT
 * or GC: its spread is interference from other processes, so the minimum is
 * its undisturbed cost; the JS side, with the median, is judged conservatively).
 */
export function timeC(call: () => number, ops: number, budget: Budget): number {
  call() // warm the cache lines and the branch predictor
  let best = Infinity
  for (let i = 0; i < budget.cReps; i++) best = Math.min(best, call() / ops)
  return best
}

let siteSerial = 0

/**
 * A private copy of a timed-loop factory, so that the loop's call sites have
 * feedback of their own. `make` must be closed (it sees only its arguments).
 *
 * Why: the loop closures of a benchmark's run() are created at the same
 * source position for every model, so V8 gives them ONE feedback vector. A
 * `pages.get(pfn)` in that loop sees the legacy table's function first, then
 * dax-gup's, then upstream's (each table compiles its own hot paths,
 * src/page/hot.ts): from the second model on the call is no longer inlined
 * and the figure depends on the order the models ran in, not on the model.
 * Recompiling the factory per run gives each model what a program with one
 * device sees. (A call site that really does alternate between tables pays
 * a non-inlined call: see docs/benchmarks.md.)
 */
export function ownSite<F extends (...a: any[]) => () => void>(make: F): F {
  try {
    // `__name`: tsx/esbuild (keepNames) may wrap named functions in it; identity here.
    return new Function('__name', `// bench call site #${++siteSerial}\n'use strict'\nreturn (${make.toString()})`)((f: unknown) => f) as F
  } catch {
    return make // code generation from strings disabled: shared feedback, still correct
  }
}

/** Wall-clock ms of an async action (performance.now). */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

/** ratio = js / c for times, c / js for GB/s: > 1 means slower than C. */
export function ratioOf(unit: Unit, js: number, c: number): number {
  return higherIsBetter(unit) ? c / js : js / c
}

/** Round to 3 significant digits (JSON stays readable; the noise is far above that). */
export function sig(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x
  const p = Math.pow(10, digits - 1 - Math.floor(Math.log10(Math.abs(x))))
  return Math.round(x * p) / p
}

export interface ResultInput {
  path: string
  model: BenchResult['model']
  unit: Unit
  js: number
  c?: number
  floor?: number
  workers?: number
  /** Upper bound on ratio (e.g. 2.0 for "≤ 2.0× C"). */
  maxRatio?: number
  /** Upper bound on the JS value itself (ms, ns/page, B/page). */
  maxValue?: number
  /** Lower bound on the JS value itself (GB/s). */
  minValue?: number
  /** Lower bound as a fraction of C for bandwidth (0.8 for "≥ 80 % of memcpy"): checked on ratio ≤ 1 / fraction. */
  minOfC?: number
  /**
   * Paired samples (timePaired): js, c and floor become the medians of their
   * rounds, ratio the median of the per-round ratios, with its spread.
   */
  paired?: Paired
  /** Repeated samples of the JS figure (rounds of a latency or bandwidth measurement): its spread is reported. */
  jsSamples?: number[]
  note?: string
}

/** Build a result: ratios, floor ratio, target and whether it was met. */
export function result(i: ResultInput): BenchResult {
  if (i.paired) {
    const p = i.paired
    i = { ...i, js: median(p.js), c: median(p.c), ...(p.floor ? { floor: median(p.floor) } : {}) }
  }
  const r: BenchResult = { path: i.path, model: i.model, unit: i.unit, js: sig(i.js) }
  if (i.workers !== undefined) r.workers = i.workers
  if (i.c !== undefined && Number.isFinite(i.c) && i.c > 0) {
    r.c = sig(i.c)
    if (i.paired) {
      const ratios = i.paired.js.map((j, k) => ratioOf(i.unit, j, i.paired!.c[k]!))
      r.ratio = sig(median(ratios))
      r.spread = spreadOf(ratios)
      r.samples = ratios.length
    } else {
      r.ratio = sig(ratioOf(i.unit, i.js, i.c))
    }
    if (!higherIsBetter(i.unit)) r.aboveC = sig(i.js - i.c)
  }
  if (i.paired) r.jsSpread = spreadOf(i.paired.js)
  else if (i.jsSamples && i.jsSamples.length > 1) {
    r.jsSpread = spreadOf(i.jsSamples)
    r.samples = i.jsSamples.length
  }
  if (i.floor !== undefined && Number.isFinite(i.floor) && i.floor > 0) {
    r.floor = sig(i.floor)
    r.floorRatio = sig(i.paired?.floor ? median(i.paired.js.map((j, k) => j / i.paired!.floor![k]!)) : i.js / i.floor)
  }
  if (i.minOfC !== undefined && r.ratio !== undefined) {
    r.target = sig(1 / i.minOfC)
    r.targetOn = 'ratio'
    r.targetText = `≥ ${Math.round(i.minOfC * 100)} % of C`
    r.met = r.ratio <= 1 / i.minOfC
  } else if (i.maxRatio !== undefined && r.ratio !== undefined) {
    r.target = i.maxRatio
    r.targetOn = 'ratio'
    r.targetText = `≤ ${i.maxRatio.toFixed(1)}× C`
    r.met = r.ratio <= i.maxRatio
  } else if (i.maxValue !== undefined) {
    r.target = i.maxValue
    r.targetOn = 'js'
    r.targetText = `≤ ${i.maxValue} ${i.unit}`
    r.met = r.js <= i.maxValue
  } else if (i.minValue !== undefined) {
    r.target = i.minValue
    r.targetOn = 'js'
    r.targetText = `≥ ${i.minValue} ${i.unit}`
    r.met = r.js >= i.minValue
  }
  if (i.note) r.note = i.note
  return r
}

let gcFn: (() => void) | undefined | null = null

/** A full GC (exposed without --expose-gc), so big side tables of one step are freed before the next. */
export function collectGarbage(): void {
  if (gcFn === null) {
    const g = (globalThis as { gc?: () => void }).gc
    if (g) gcFn = g
    else {
      try {
        v8.setFlagsFromString('--expose-gc')
        gcFn = vm.runInNewContext('gc') as () => void
      } catch {
        gcFn = undefined
      }
    }
  }
  gcFn?.()
}

/** Keeps a value observable so the JIT cannot drop the work that made it. */
export let sink = 0
export function consume(x: number): void {
  sink = (sink + x) | 0
}
