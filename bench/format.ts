/**
 * Text output: the results table (every number with its unit) and the
 * per-path comparison of two runs (--compare).
 */
import type { BenchReport, BenchResult, SkippedPath, Unit } from './types.js'
import { higherIsBetter } from './types.js'

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x)
  const a = Math.abs(x)
  if (a === 0) return '0'
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 1) return x.toFixed(2)
  if (a >= 0.01) return x.toFixed(3)
  return x.toPrecision(2)
}

export function fmtVal(x: number | undefined, unit: Unit): string {
  return x === undefined ? '—' : `${fmtNum(x)} ${unit}`
}

export function label(r: { path: string; model: string | null; workers?: number }): string {
  return `${r.path}${r.workers !== undefined ? ` ×${r.workers}` : ''}`
}

/** A plain-text table, columns padded. */
export function table(rows: string[][]): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, [...c].length) })
  return rows.map(row => row.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join('  ').trimEnd())
}

/** "1.23× C (1.10–1.41, n=21)": the ratio with the p10–p90 of its paired rounds. */
export function fmtRatio(r: BenchResult): string {
  if (r.ratio === undefined) return '—'
  const s = r.spread ? ` (${fmtNum(r.spread.p10)}–${fmtNum(r.spread.p90)}, n=${r.samples ?? '?'})` : ''
  return `${fmtNum(r.ratio)}× C${s}`
}

export function resultRow(r: BenchResult): string[] {
  return [
    label(r), r.model ?? '—', fmtVal(r.js, r.unit), fmtVal(r.c, r.unit),
    fmtRatio(r),
    r.aboveC === undefined ? '—' : `${r.aboveC >= 0 ? '+' : ''}${fmtVal(r.aboveC, r.unit)}`,
    r.floor === undefined ? '—' : `${fmtVal(r.floor, r.unit)} (js ${fmtNum(r.floorRatio!)}×)`,
    r.targetText ?? '—',
    r.met === undefined ? '' : r.met ? 'met' : 'MISSED',
  ]
}

/**
 * "cost vs C" holds js/C for times and C/js for bandwidths (GB/s): in both,
 * > 1 means pmemu is slower than C. The parenthesis is the p10–p90 of the
 * paired rounds it is the median of.
 */
export const HEADER = ['path', 'model', 'js', 'C', 'cost vs C (p10–p90)', 'js − C', 'JS floor', 'target', '']

export function resultsTable(rep: BenchReport): string[] {
  return table([HEADER, ...rep.results.map(resultRow)])
}

/** Skipped paths, one line per reason (paths and models grouped). */
export function skippedLines(skipped: SkippedPath[]): string[] {
  const by = new Map<string, Set<string>>()
  for (const s of skipped) {
    const k = s.reason
    if (!by.has(k)) by.set(k, new Set())
    by.get(k)!.add(s.path)
  }
  return [...by].map(([reason, paths]) => `skipped ${[...paths].join(', ')}: ${reason}`)
}

export interface Change {
  path: string
  model: string | null
  workers?: number
  unit: Unit
  old: number
  new: number
  /** Relative change of the value, new/old − 1. */
  change: number
  /** True when the change is for the worse (slower, fewer GB/s, more bytes). */
  worse: boolean
  /**
   * 'outside' when the change exceeds both runs' spread (their p10–p90
   * ranges of the figure do not overlap and the difference is larger than
   * either range); 'noise' when it does not; 'unknown' when a run recorded
   * no spread (then the relative threshold decides).
   */
  noise: 'outside' | 'noise' | 'unknown'
  /** Samples behind the old and the new figure (undefined: one figure, no repetitions recorded). */
  samples: [number | undefined, number | undefined]
}

/** Does the move from o to r exceed both runs' spread? */
export function beyondNoise(o: BenchResult, r: BenchResult): Change['noise'] {
  const a = o.jsSpread
  const b = r.jsSpread
  if (!a || !b) return 'unknown'
  const diff = Math.abs(r.js - o.js)
  const overlap = a.p10 <= b.p90 && b.p10 <= a.p90
  return !overlap && diff > a.p90 - a.p10 && diff > b.p90 - b.p10 ? 'outside' : 'noise'
}

function key(r: { path: string; model: string | null; workers?: number }): string {
  return `${r.path}|${r.model ?? ''}|${r.workers ?? ''}`
}

/** Per-path change between two runs: paths in both, plus those only in one. */
export function compareReports(old: Pick<BenchReport, 'results'>, cur: Pick<BenchReport, 'results'>): { changes: Change[]; added: BenchResult[]; removed: BenchResult[] } {
  const before = new Map(old.results.map(r => [key(r), r]))
  const after = new Map(cur.results.map(r => [key(r), r]))
  const changes: Change[] = []
  const added: BenchResult[] = []
  for (const [k, r] of after) {
    const o = before.get(k)
    if (!o) { added.push(r); continue }
    if (o.unit !== r.unit) { added.push(r); continue }
    const change = o.js === 0 ? 0 : r.js / o.js - 1
    const worse = higherIsBetter(r.unit) ? change < 0 : change > 0
    changes.push({
      path: r.path, model: r.model, ...(r.workers !== undefined ? { workers: r.workers } : {}), unit: r.unit,
      old: o.js, new: r.js, change, worse, noise: beyondNoise(o, r), samples: [o.samples, r.samples],
    })
  }
  const removed = [...before].filter(([k]) => !after.has(k)).map(([, r]) => r)
  return { changes, added, removed }
}

/**
 * Text for --compare. A change is called better or WORSE only when it exceeds
 * both runs' spread; otherwise "within noise". For figures with no recorded
 * spread (an older JSON, a single-shot figure) a change beyond `threshold`
 * (default 10 %) is flagged with "(no spread)".
 */
export function compareLines(old: Pick<BenchReport, 'results'>, cur: Pick<BenchReport, 'results'>, threshold = 0.1): string[] {
  const { changes, added, removed } = compareReports(old, cur)
  const rows = [['path', 'model', 'before', 'now', 'change', 'samples', '']]
  for (const c of changes) {
    const pct = `${c.change >= 0 ? '+' : ''}${(c.change * 100).toFixed(1)} %`
    const dir = c.worse ? 'WORSE' : 'better'
    const flag = c.noise === 'outside' ? dir
      : c.noise === 'noise' ? 'within noise'
        : Math.abs(c.change) < threshold ? '' : `${dir} (no spread)`
    const n = c.samples.map(x => x === undefined ? '1' : String(x)).join(' / ')
    rows.push([label(c), c.model ?? '—', fmtVal(c.old, c.unit), fmtVal(c.new, c.unit), pct, n, flag])
  }
  const out = table(rows)
  for (const r of added) out.push(`new: ${label(r)} ${r.model ?? ''} ${fmtVal(r.js, r.unit)}`)
  for (const r of removed) out.push(`gone: ${label(r)} ${r.model ?? ''} (was ${fmtVal(r.js, r.unit)})`)
  return out
}
