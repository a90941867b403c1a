/**
 * Timing helpers: mitata for the JS paths (each timed call runs a block of
 * operations, so the per-op figure is not swamped by call overhead), the
 * median of repeated C baseline calls (each returns its own elapsed ns), and
 * the arithmetic every result shares (ratios, targets).
 */
import { measure } from 'mitata'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { Budget, BenchResult, Unit } from './types.js'
import { higherIsBetter } from './types.js'

export const QUICK_BUDGET: Budget = {
  minCpuNs: 25e6, block: 1024, cIters: 200_000, cReps: 5, sweepPages: 262_144,
  copyBytes: 16 * 2 ** 20, contentionMs: 40, openBytes: 64 * 2 ** 30,
  daxBytes: 32 * 2 ** 20, truncateBytes: 128 * 2 ** 20, rounds: 5, samples: 200,
}
export const FULL_BUDGET: Budget = {
  minCpuNs: 300e6, block: 1024, cIters: 2_000_000, cReps: 9, sweepPages: 262_144,
  copyBytes: 64 * 2 ** 20, contentionMs: 400, openBytes: 64 * 2 ** 30,
  daxBytes: 64 * 2 ** 20, truncateBytes: 2 ** 30, rounds: 9, samples: 1000,
}
/** The smallest budget, for tests: figures are noisy, shapes are right. */
export const TINY_BUDGET: Budget = {
  minCpuNs: 2e6, block: 256, cIters: 20_000, cReps: 3, sweepPages: 4096,
  copyBytes: 2 ** 20, contentionMs: 10, openBytes: 256 * 2 ** 20,
  daxBytes: 4 * 2 ** 20, truncateBytes: 8 * 2 ** 20, rounds: 2, samples: 8,
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
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
  note?: string
}

/** Build a result: ratios, floor ratio, target and whether it was met. */
export function result(i: ResultInput): BenchResult {
  const r: BenchResult = { path: i.path, model: i.model, unit: i.unit, js: sig(i.js) }
  if (i.workers !== undefined) r.workers = i.workers
  if (i.c !== undefined && Number.isFinite(i.c) && i.c > 0) {
    r.c = sig(i.c)
    r.ratio = sig(ratioOf(i.unit, i.js, i.c))
  }
  if (i.floor !== undefined && Number.isFinite(i.floor) && i.floor > 0) {
    r.floor = sig(i.floor)
    r.floorRatio = sig(i.js / i.floor)
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
