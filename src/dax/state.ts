/**
 * The internal state of one DAX layer (SPEC §5). DaxLayer (layer.ts) is a
 * thin façade over it; the operations live in files by concern and take the
 * state as their first argument:
 *   tree.ts     the per-file mapping tree (FileTree), found or dropped
 *   fault.ts    the fault paths (PTE runs, PMD / folio faults, poison)
 *   zap.ts      zapping mappings, widening to whole PMDs
 *   unmap.ts    munmap, partial munmap, a dead mapping
 *   break.ts    the layout break, its waits and kicks, the final break
 *   entries.ts  page-cache entries, onFree, quarantine
 *   events.ts   memory failure, unbind, device death, unmount teardown
 *   check.ts    the invariant checker
 * Nothing here is part of the published API.
 */
import type { PmemuError } from '../errors.js'
import type { PmemFs } from '../fs/index.js'
import type { PageTable } from '../page/index.js'
import type { Device } from '../region/index.js'
import type { Logger } from '../util/log.js'
import type { DaxLayer } from './layer.js'
import type { DaxMapping } from './mapping.js'
import type { FileTree } from './tree.js'

/** The layer attached to each mounted file system (attachDax, daxOf). */
export const layers = new WeakMap<PmemFs, DaxLayer>()

/** How many recently freed blocks the checker keeps watching (invariant 4). */
export const FREED_WATCH = 4096

/** A layout break in progress on file pages [first, end) (widened); `kick` ends its current wait. */
export interface Breaker { first: number; end: number; kick: AbortController | undefined }

export class DaxState {
  readonly table: PageTable
  readonly pageSize: number
  /** Files with mappings or page-cache entries, by inode number. */
  readonly trees = new Map<number, FileTree>()
  /** Blocks onFree quarantined (freed while referenced: the dax-gup-v1 hazard). */
  readonly quarantine = new Set<number>()
  /**
   * The last FREED_WATCH blocks freed through onFree, checked (invariant 4)
   * until reallocated: a ring, so a free costs one store (a Set trimmed per
   * free walked its deleted holes: ~1.8 µs per block on a 1 GiB truncate).
   */
  readonly freedWatch = new Int32Array(FREED_WATCH).fill(-1)
  freedAt = 0
  /** Layout breaks in progress, by inode number. */
  readonly breakers = new Map<number, Set<Breaker>>()
  /** Set once the device is gone or the fs unmounted: the error every later call gets. */
  dead: (() => PmemuError) | undefined
  /** Undoes the attachments (fs extension, checker, device listeners). */
  readonly undo: Array<() => void> = []

  constructor(readonly fs: PmemFs, readonly dev: Device, readonly log: Logger, readonly owner: DaxLayer) {
    this.table = dev.table
    this.pageSize = dev.pageSize
  }

  get model(): PageTable['model'] { return this.table.model }
}

/** The mapping belongs to the device's current generation (no crash since it was made). */
export function generationOk(st: DaxState, m: DaxMapping): boolean { return m.generation === st.dev.generation }

export function assertUsable(st: DaxState, op: string, path?: string): void {
  if (st.dead) throw st.dead()
  st.dev.assertLive(op)
  st.fs.assertLive(op, path)
}

/**
 * A DAX event on [pfn, pfn+n): one range call of the page table (checked
 * equal to n single calls, test/dax.test.ts), or n single calls on a strict
 * table, where a failing range is rolled back whole rather than stopping
 * at the failing page.
 */
export function rangeEvent(st: DaxState, ev: 'entryInsert' | 'mapInsert' | 'zap', pfn: number, n: number): void {
  const t = st.table
  if (!t.strict || n === 1) { t[ev](pfn, n); return }
  for (let k = 0; k < n; k++) t[ev](pfn + k)
}
