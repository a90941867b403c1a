/**
 * Zapping (SPEC §5 zap; §3 the models' zap event): a mapping's ptes are
 * cleared first (the gup-fast protocol, types.ts), then the model's zap runs
 * per PTE run / PMD; a file range is zapped from every mapping of the file,
 * widened to whole chunks where a folio or a PMD covers an edge.
 *
 * The zaps go through the page table's range form zap(pfn, n), one call per
 * run of contiguous pfns (rangeEvent, state.ts).
 */
import type { DaxMapping } from './mapping.js'
import type { ZapReason } from './range.js'
import { PMD_PAGES, type FileTree } from './tree.js'
import { PTE_NONE } from './types.js'
import { rangeEvent, type DaxState } from './state.js'

/**
 * Zap mapping pages [j0, j1) (extended to whole PMDs): clear the ptes
 * first (gup-fast protocol), then run the model's zap per PTE / PMD.
 * Returns the number of ptes cleared.
 */
export function zapMapping(st: DaxState, m: DaxMapping, j0: number, j1: number, why: ZapReason): number {
  const pmd = m.pmd
  if (pmd.size > 0) {
    for (const c of pmd.keys()) {
      const cj0 = c * PMD_PAGES - m.firstIndex
      const cj1 = cj0 + PMD_PAGES
      if (cj0 < j1 && cj1 > j0) { j0 = Math.min(j0, cj0); j1 = Math.max(j1, cj1) }
    }
  }
  const ptes = m.ptes
  const first = m.firstIndex
  // Clear every pte first; the counters follow, once every pte is gone: a
  // racing gup-fast either pinned before (and the layout break waits for
  // it) or sees PTE_NONE. `work` records, in pte order, runs of PTEs with
  // contiguous pfns (pfn, n) and PMDs (-1 - chunk, 0), each PMD once.
  const work: number[] = []
  let cleared = 0
  let runPfn = -1
  let runLen = 0
  let lastJ = -2
  let curC = -1
  let curPmd = false
  for (let j = j0; j < j1; j++) {
    const p = ptes[j]!
    if (p === PTE_NONE) continue
    Atomics.store(ptes, j, PTE_NONE)
    cleared++
    if (pmd.size > 0) {
      const c = Math.floor((first + j) / PMD_PAGES)
      if (c !== curC) {
        curC = c
        curPmd = pmd.has(c)
        if (curPmd) {
          if (runLen > 0) { work.push(runPfn, runLen); runLen = 0 }
          work.push(-1 - c, 0)
        }
      }
      if (curPmd) { lastJ = -2; continue }
    }
    if (runLen > 0 && j === lastJ + 1 && p === runPfn + runLen) runLen++
    else {
      if (runLen > 0) work.push(runPfn, runLen)
      runPfn = p
      runLen = 1
    }
    lastJ = j
  }
  if (cleared === 0) return 0
  m._zapped(j0, j1, why)
  if (runLen > 0) work.push(runPfn, runLen)
  for (let i = 0; i < work.length; i += 2) {
    const w = work[i]!
    if (w >= 0) { rangeEvent(st, 'zap', w, work[i + 1]!); continue }
    const c = -1 - w
    const pm = pmd.get(c)!
    if (pm.folio) st.table.zap(pm.pfn)
    else rangeEvent(st, 'zap', pm.pfn, PMD_PAGES)
    pmd.delete(c)
  }
  return cleared
}

/** [first, end) of the file widened to whole chunks where a folio entry or a PMD mapping covers an edge. */
export function widen(tree: FileTree, first: number, end: number): [number, number] {
  if (end <= first) return [first, end]
  const edge = (c: number): boolean => {
    if (tree.chunks.get(c)?.folio) return true
    for (const m of tree.mappings) if (m.pmd.has(c)) return true
    return false
  }
  const c0 = Math.floor(first / PMD_PAGES)
  const c1 = Math.floor((end - 1) / PMD_PAGES)
  if (edge(c0)) first = c0 * PMD_PAGES
  if (edge(c1)) end = (c1 + 1) * PMD_PAGES
  return [first, end]
}

/** Unmap file pages [first, end) from every mapping of the file. Returns ptes cleared. */
export function zapFile(st: DaxState, tree: FileTree, first: number, end: number, why: ZapReason): number {
  const [f, e] = widen(tree, first, end)
  let n = 0
  for (const m of tree.mappings) {
    const j0 = Math.max(0, f - m.firstIndex)
    const j1 = Math.min(m.pages, e - m.firstIndex)
    if (j0 < j1) n += zapMapping(st, m, j0, j1, why)
  }
  return n
}
