/** Sorted extent-list helpers (logical block -> physical block runs). */
import type { Extent } from './layout.js'

/** Index of the extent containing logical block l, or -1. */
export function findExtent(ext: Extent[], l: number): number {
  let lo = 0
  let hi = ext.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const e = ext[mid]!
    if (l < e.l) hi = mid - 1
    else if (l >= e.l + e.n) lo = mid + 1
    else return mid
  }
  return -1
}

/** Index of the first extent whose end is past l (i.e. e.l + e.n > l). */
export function firstEndingAfter(ext: Extent[], l: number): number {
  let lo = 0
  let hi = ext.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (ext[mid]!.l + ext[mid]!.n > l) hi = mid
    else lo = mid + 1
  }
  return lo
}

export function mapBlock(ext: Extent[], l: number): number | null {
  const i = findExtent(ext, l)
  if (i < 0) return null
  const e = ext[i]!
  return e.p + (l - e.l)
}

/** Insert a run that lies entirely in a hole; merges with physically contiguous neighbours. */
export function insertExtent(ext: Extent[], run: Extent): void {
  const i = firstEndingAfter(ext, run.l)
  const prev = i > 0 ? ext[i - 1] : undefined
  const next = ext[i]
  let cur: Extent = { ...run }
  let at = i
  if (prev && prev.l + prev.n === cur.l && prev.p + prev.n === cur.p && prev.n + cur.n <= 0xffffffff) {
    prev.n += cur.n
    cur = prev
    at = i - 1
  } else {
    ext.splice(i, 0, cur)
  }
  const nxt = ext[at + 1]
  if (nxt && nxt === next && cur.l + cur.n === nxt.l && cur.p + cur.n === nxt.p && cur.n + nxt.n <= 0xffffffff) {
    cur.n += nxt.n
    ext.splice(at + 1, 1)
  }
}

/**
 * Remove logical blocks [l0, l1) from the list (splitting extents), returning
 * the freed physical runs [pfn, count]. Mutates `ext`.
 */
export function removeRange(ext: Extent[], l0: number, l1: number): Array<[number, number]> {
  const freed: Array<[number, number]> = []
  const i0 = firstEndingAfter(ext, l0)
  let i = i0
  const replacement: Extent[] = []
  while (i < ext.length && ext[i]!.l < l1) {
    const e = ext[i]!
    const eEnd = e.l + e.n
    if (e.l < l0) replacement.push({ l: e.l, p: e.p, n: l0 - e.l })
    const cs = Math.max(e.l, l0)
    const ce = Math.min(eEnd, l1)
    freed.push([e.p + (cs - e.l), ce - cs])
    if (eEnd > l1) replacement.push({ l: l1, p: e.p + (l1 - e.l), n: eEnd - l1 })
    i++
  }
  ext.splice(i0, i - i0, ...replacement)
  return freed
}

/** Walk [l0, l1) as maximal runs: cb(l, n, pfn or null for a hole). */
export function forEachRun(ext: Extent[], l0: number, l1: number, cb: (l: number, n: number, p: number | null) => void): void {
  let l = l0
  let i = firstEndingAfter(ext, l0)
  while (l < l1) {
    const e = ext[i]
    if (!e || e.l >= l1) { cb(l, l1 - l, null); return }
    if (e.l > l) { cb(l, e.l - l, null); l = e.l; continue }
    const end = Math.min(e.l + e.n, l1)
    cb(l, end - l, e.p + (l - e.l))
    l = end
    i++
  }
}

export function blockCount(ext: Extent[]): number {
  let n = 0
  for (const e of ext) n += e.n
  return n
}

export function lastEnd(ext: Extent[]): number {
  const e = ext[ext.length - 1]
  return e ? e.l + e.n : 0
}
