/**
 * munmap (SPEC §5): the whole mapping or mapping pages [j0, j1), and a dead
 * mapping (device gone or reset: no counter changes). The mapping's hold on
 * the inode goes through the final break (releaseHold, break.ts).
 */
import { pmemError, type PmemuError } from '../errors.js'
import type { DaxMapping } from './mapping.js'
import type { ZapReason } from './range.js'
import { maybeDropTree } from './tree.js'
import { PTE_NONE } from './types.js'
import { releaseHold } from './break.js'
import { generationOk, type DaxState } from './state.js'
import { zapMapping } from './zap.js'

/** A dead mapping: no counters change (the device is gone or reset). */
export function kill(m: DaxMapping, err: () => PmemuError, why: ZapReason = 'crash'): void {
  m.ptes.fill(PTE_NONE)
  m._zapped(0, m.pages, why)
  m.pmd.clear()
  m._setState('dead', err)
  m.tree.mappings.delete(m)
}

/** munmap: zap the whole mapping, then the final release of its hold. */
export function unmap(st: DaxState, m: DaxMapping): void {
  if (!generationOk(st, m) || st.dead) {
    kill(m, st.dead ?? (() => pmemError('ENXIO', 'unmap', 'the device crashed', { path: m.path })))
    return
  }
  zapMapping(st, m, 0, m.pages, 'unmap')
  m._setState('unmapped')
  m.tree.mappings.delete(m)
  maybeDropTree(st.trees, m.tree)
  releaseHold(st, m)
  st.log.debug({ id: m.id, ino: m.ino }, 'unmap')
}

/** Partial munmap of mapping pages [j0, j1) (the mapping keeps the rest). */
export function unmapRange(st: DaxState, m: DaxMapping, j0: number, j1: number): void {
  if (!generationOk(st, m) || st.dead) {
    kill(m, st.dead ?? (() => pmemError('ENXIO', 'unmap', 'the device crashed', { path: m.path })))
    return
  }
  zapMapping(st, m, j0, j1, 'unmap')
  st.log.debug({ id: m.id, ino: m.ino, j0, j1 }, 'partial unmap')
}
