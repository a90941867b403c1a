/**
 * Shapes of the benchmark suite: the Benchmark JSON of docs/api-contract.md (`BenchReport`,
 * `BenchResult`) and the small module interface every benchmark implements
 * (`Benchmark`), registered in one list (bench/registry.ts).
 */
import type { Device } from '../src/region/index.js'
import type { ModelName } from '../src/region/types.js'

export type { ModelName }
export type Unit = 'ns/op' | 'ns/page' | 'GB/s' | 'ms' | 'B/page' | 'MiB' | 'µs' | 'states/s'

/** Is bigger better (GB/s, states/s) or smaller better (everything else)? */
export function higherIsBetter(unit: Unit): boolean {
  return unit === 'GB/s' || unit === 'states/s'
}

/** Spread of repeated samples: min, 10th and 90th percentile, max, and how many samples (docs/api-contract.md). */
export interface Spread { min: number; p10: number; p90: number; max: number; n: number }

/**
 * One figure. `js` is what pmemu's TypeScript/wasm path measured; `c` the
 * native baseline on the same memory in the same run; `ratio` = js / c for
 * times and c / js for GB/s (so > 1 always means "slower than C");
 * When C and JS are timed paired (alternating blocks in one window), `ratio`
 * is the median of the per-round ratios and `spread` its min/p10/p90/max over
 * `samples` rounds; `aboveC` = js − c, in the unit (the JS overhead as a
 * constant, independent of the host's atomic cost). `jsSpread` is the spread
 * of the js figure itself (what --compare judges noise by).
 * `floor` is the JS floor (the same number of JS→wasm calls, each doing one
 * atomic, on the same memory) and `floorRatio` = js / floor.
 * `target` applies to `targetOn` ('ratio' or the 'js' value itself);
 * `met` says whether it held.
 */
export interface BenchResult {
  path: string
  model: ModelName | null
  workers?: number
  unit: Unit
  js: number
  c?: number
  ratio?: number
  /** Spread of the paired ratios (when timed paired). */
  spread?: Spread
  /** Rounds behind ratio/spread (or behind jsSpread). */
  samples?: number
  /** js − c in the unit (time units only). */
  aboveC?: number
  /** Spread of the js figure over its samples. */
  jsSpread?: Spread
  floor?: number
  floorRatio?: number
  target?: number
  targetOn?: 'ratio' | 'js'
  /** The target as people read it, e.g. '≤ 2.0× C', '≤ 1000 ms'. */
  targetText?: string
  met?: boolean
  /** Free-text context: what exactly was timed, sizes, caveats. */
  note?: string
}

/** A path that could not run (its layer is not there yet, or it does not apply). */
export interface SkippedPath {
  path: string
  model: ModelName | null
  reason: string
}

export interface BenchReport {
  version: string
  node: string
  machine: { cpus: number; model: string; memory: number; arch: string; platform: string; kernel: string }
  file: string
  fsType: string
  /** The mount has DAX on (real pmem). */
  dax: boolean
  /** Human-readable: what the fs type means for the figures. */
  fsNote: string
  backend: string
  capabilities: Record<string, unknown>
  quick: boolean
  models: ModelName[]
  workers: number
  startedAt: string
  durationMs: number
  results: BenchResult[]
  skipped: SkippedPath[]
}

export type ProgressEvent =
  | { kind: 'start'; total: number; steps: number }
  /**
   * done/total: weighted work, for a bar; step/steps: the benchmark being run
   * (1-based, each once); `detail` marks a message from inside that step.
   */
  | { kind: 'step'; done: number; total: number; step: number; steps: number; label: string; detail?: boolean }
  | { kind: 'result'; result: BenchResult }
  | { kind: 'skip'; skipped: SkippedPath }
  | { kind: 'end' }

/** Timing knobs, scaled down in quick mode. */
export interface Budget {
  /** mitata min_cpu_time per measurement, ns. */
  minCpuNs: number
  /** Operations per timed JS call (the loop inside one mitata sample). */
  block: number
  /** Iterations handed to one C baseline call. */
  cIters: number
  /** Repetitions of the C baseline (unpaired figures: the minimum is kept). */
  cReps: number
  /** Rounds of a paired JS/C measurement (the median of the per-round ratios is kept). */
  pairs: number
  /** Pages of the pin sweep. */
  sweepPages: number
  /** Bytes per memcpy round. */
  copyBytes: number
  /** Wall-clock ms per contention point. */
  contentionMs: number
  /** Size of the sparse region the open benchmark opens (64 GiB but in tests). */
  openBytes: number
  /** Bytes of the files the DAX fault / unmap benchmarks map (capped by the region). */
  daxBytes: number
  /** Size of the unpinned file the truncate benchmark truncates (1 GiB in a full run; own device). */
  truncateBytes: number
  /** Rounds of the fault / unmap / truncate / DMA bandwidth measurements (the median is kept). */
  rounds: number
  /** Samples of the latency benchmarks (unpin → truncate resumed, submit → pinned; the median is kept). */
  samples: number
}

export interface BenchContext {
  file: string
  /** Usable bytes of the bench region. */
  size: number
  quick: boolean
  workers: number
  budget: Budget
  /** A scratch directory for extra files (removed at the end). */
  scratch: string
  /** The model of this invocation (null for model-independent benchmarks). */
  model: ModelName | null
  /** The bench region, opened with `model` (upstream for global benchmarks). */
  dev: Device
  /** Plain progress text (one line). */
  log(msg: string): void
}

/**
 * One benchmark module. `paths` lists the result paths it produces, for the
 * skipped list when `available()` says no. `available` returns null when it
 * can run, or the reason it cannot (e.g. 'the native shim is not built'); it is called once per run.
 */
export interface Benchmark {
  id: string
  title: string
  paths: string[]
  /** 'model': once per selected model; 'global': once, model null. */
  scope: 'model' | 'global'
  /** Relative cost, for the progress bar (default 1). */
  weight?: number
  available(): Promise<string | null>
  run(ctx: BenchContext): Promise<BenchResult[]>
  /**
   * Does the produced result path stand for the declared one? (default: equal,
   * or a prefix of it). The open benchmark names its paths by size
   * ('open-256m' for 'open-64g' in small runs).
   */
  covers?(declared: string, produced: string): boolean
}
