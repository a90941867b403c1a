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

export function resultRow(r: BenchResult): string[] {
  return [
    label(r), r.model ?? '—', fmtVal(r.js, r.unit), fmtVal(r.c, r.unit),
    r.ratio === undefined ? '—' : `${fmtNum(r.ratio)}× C`,
    r.floor === undefined ? '—' : `${fmtVal(r.floor, r.unit)} (js ${fmtNum(r.floorRatio!)}×)`,
    r.targetText ?? '—',
    r.met === undefined ? '' : r.met ? 'met' : 'MISSED',
  ]
}

export const HEADER = ['path', 'model', 'js', 'C', 'js/C', 'raw-Atomics floor', 'target', '']

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
    changes.push({ path: r.path, model: r.model, ...(r.workers !== undefined ? { workers: r.workers } : {}), unit: r.unit, old: o.js, new: r.js, change, worse })
  }
  const removed = [...before].filter(([k]) => !after.has(k)).map(([, r]) => r)
  return { changes, added, removed }
}

/** Text for --compare; changes beyond `threshold` (default 10 %) are flagged. */
export function compareLines(old: Pick<BenchReport, 'results'>, cur: Pick<BenchReport, 'results'>, threshold = 0.1): string[] {
  const { changes, added, removed } = compareReports(old, cur)
  const rows = [['path', 'model', 'before', 'now', 'change', '']]
  for (const c of changes) {
    const pct = `${c.change >= 0 ? '+' : ''}${(c.change * 100).toFixed(1)} %`
    const flag = Math.abs(c.change) < threshold ? '' : c.worse ? 'WORSE' : 'better'
    rows.push([label(c), c.model ?? '—', fmtVal(c.old, c.unit), fmtVal(c.new, c.unit), pct, flag])
  }
  const out = table(rows)
  for (const r of added) out.push(`new: ${label(r)} ${r.model ?? ''} ${fmtVal(r.js, r.unit)}`)
  for (const r of removed) out.push(`gone: ${label(r)} ${r.model ?? ''} (was ${fmtVal(r.js, r.unit)})`)
  return out
}
