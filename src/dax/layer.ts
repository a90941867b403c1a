/**
 * The DAX layer of one mounted file system (SPEC §3, §5, §7): a thin façade
 * over its state (state.ts); the operations live in files by concern:
 *   attach.ts (attachDax, daxOf), tree.ts (the per-file mapping tree),
 *   fault.ts (the fault path per model), zap.ts / unmap.ts (zap, munmap),
 *   break.ts (the layout break truncate / punch-hole wait on, the final
 *   break), entries.ts (entry deletion, onFree, quarantine of the dax-gup-v1
 *   hazard), events.ts (poison → memory failure, unbind, crash, unmount),
 *   check.ts (the invariant checker).
 *
 * Counting is the page table's (src/page): the layer only decides which
 * events happen, in which order, on which pfns; it never asks which model
 * runs except `model.folios` (is a PMD entry one compound folio?).
 */
import type { PmemuError } from '../errors.js'
import type { PmemFile, PmemFs } from '../fs/index.js'
import type { PageTable, Violation } from '../page/index.js'
import type { Device } from '../region/index.js'
import { subsystemLogger, type Logger } from '../util/log.js'
import { DaxMapping } from './mapping.js'
import { FileTree, PMD_PAGES, treeOf, type Chunk } from './tree.js'
import { checkDax } from './check.js'
import type { ZapReason } from './range.js'
import { assertUsable, DaxState, generationOk } from './state.js'
import { faultRange, populate } from './fault.js'
import { kill, unmap, unmapRange } from './unmap.js'
import { breakLayout } from './break.js'
import { onFree, reclaimQuarantine } from './entries.js'
import { deviceDead, memoryFailure, teardown, unbind } from './events.js'

export interface DaxStats {
  files: number
  mappings: number
  entries: number
  quarantined: number
}

export { FileTree, PMD_PAGES, type Chunk }

// No "implements MappingHost": the members it names are internal (stripped from the
// published .d.ts, where the clause would then fail a consumer's type check); the
// mapping takes the layer as a MappingHost, which still checks the fit at that call.
export class DaxLayer {
  readonly fs: PmemFs
  readonly dev: Device
  readonly table: PageTable
  readonly pageSize: number
  readonly log: Logger
  /** Files with mappings or page-cache entries, by inode number. */
  readonly trees: Map<number, FileTree>
  /** Blocks onFree quarantined (freed while referenced: the dax-gup-v1 hazard). */
  readonly quarantine: Set<number>
  readonly #s: DaxState

  constructor(fs: PmemFs, dev: Device) {
    const s = new DaxState(fs, dev, subsystemLogger(dev.log, 'dax'), this)
    this.#s = s
    this.fs = fs
    this.dev = dev
    this.table = s.table
    this.pageSize = s.pageSize
    this.log = s.log
    this.trees = s.trees
    this.quarantine = s.quarantine
    // One extension: mmap, layout breaks, frees, and unmount (also fsck's repair
    // unmount) tearing every mapping down first.
    s.undo.push(fs.attach({
      name: 'dax',
      mmap: (file, off, len, o) => this.mmap(file, off, len, o),
      breakLayout: (file, first, end, o) => this.breakLayout(file, first, end, o),
      onFree: (pfn, info) => this.onFree(pfn, info),
      beforeUnmount: () => teardown(s),
    }))
    s.undo.push(this.table.addChecker(() => this.check()))
    s.undo.push(dev.attach({
      poison: range => memoryFailure(s, range.offset, range.length),
      unbind: () => unbind(s),
      dead: reason => deviceDead(s, reason),
    }))
  }

  get model(): PageTable['model'] { return this.table.model }

  /** @internal */
  generationOk(m: DaxMapping): boolean { return generationOk(this.#s, m) }

  /** Summary counts. */
  stats(): DaxStats {
    let mappings = 0
    let entries = 0
    for (const t of this.trees.values()) {
      mappings += t.mappings.size
      for (const ch of t.chunks.values()) entries += ch.folio ? 1 : ch.count
    }
    return { files: this.trees.size, mappings, entries, quarantined: this.quarantine.size }
  }

  /** Every live mapping of the file with inode `ino`. */
  mappingsOf(ino: number): DaxMapping[] {
    return [...(this.trees.get(ino)?.mappings ?? [])]
  }

  /** The mmap factory (file.mmap has validated alignment, access and the file type). */
  mmap(file: PmemFile, offset: number, length: number, opts: { write: boolean; sync: boolean }): DaxMapping {
    assertUsable(this.#s, 'mmap', file.path)
    const tree = treeOf(this.trees, file.node)
    const m = new DaxMapping(this, tree, file, offset, length, opts, this.dev.generation)
    file.node.hold()
    tree.mappings.add(m)
    this.log.debug({ id: m.id, ino: m.ino, offset, length, write: opts.write }, 'mmap')
    return m
  }

  /** @internal a dead mapping: no counters change (the device is gone or reset). */
  kill(m: DaxMapping, err: () => PmemuError, why: ZapReason = 'crash'): void { kill(m, err, why) }

  /** @internal munmap */
  unmap(m: DaxMapping): void { unmap(this.#s, m) }

  /** @internal partial munmap of mapping pages [j0, j1) (the mapping keeps the rest). */
  unmapRange(m: DaxMapping, j0: number, j1: number): void { unmapRange(this.#s, m, j0, j1) }

  /** @internal fault mapping pages [j0, j1). `kind` 'cpu' (view: SIGBUS on poison) or 'gup' (EHWPOISON). */
  faultRange(m: DaxMapping, j0: number, j1: number, _write: boolean, kind: 'cpu' | 'gup', op: string): void {
    faultRange(this.#s, m, j0, j1, kind, op)
  }

  /** @internal MAP_POPULATE: fault below EOF, skip pages that fail (poison), as mm_populate ignores errors. */
  populate(m: DaxMapping, from = 0, to = m.pages): void { populate(this.#s, m, from, to) }

  /**
   * The fs frees the block behind file page `index`: zap anything that
   * faulted it in since the layout break, delete its page-cache entry,
   * disassociate, then table.free(). false (the page is still referenced:
   * the dax-gup-v1 plain-get hazard, or a pin taken behind the layout break's
   * back) quarantines the block: the fs keeps it allocated, owned by the
   * quarantine inode, so it is never handed to another file while referenced.
   */
  onFree(pfn: number, info: { ino: number; index: number }): boolean { return onFree(this.#s, pfn, info) }

  /**
   * Give quarantined blocks whose page is idle again (the late put came)
   * back to the free list. Returns how many were released.
   */
  reclaimQuarantine(): number { return reclaimQuarantine(this.#s) }

  /**
   * The layout breaker (fs calls it under the inode lock before freeing or
   * zeroing blocks of [first, end)). The break scope is the whole file
   * (opts.scope 'file', the default: XFS and ext4 break every mapping of the
   * inode, ≤ 6.14 via dax_layout_busy_page(mapping), ≥ 6.15 via
   * dax_break_layout_inode(0, LLONG_MAX)) or [first, end) ('range': FUSE-DAX's
   * __fuse_dax_break_layouts). Unmap the scope from every mapping of the
   * file, then wait until no page of the scope is busy by the model's rule;
   * the model's breakEntries says what happens to the scope's page-cache
   * entries (deleted before the wait, after it, or only as blocks are freed).
   * Pages faulted back in during a wait are zapped again and waited for
   * again, so when it resolves nothing in the scope is mapped or busy
   * (xfs_break_layouts' retry loop). Rejects with ETIMEDOUT / AbortError with
   * nothing changed but the unmapped scope (and entries deleted before the wait).
   */
  breakLayout(file: PmemFile, first: number, end: number,
    opts: { signal?: AbortSignal; timeoutMs?: number; reason: string; scope?: 'file' | 'range' }): Promise<void> {
    return breakLayout(this.#s, file, first, end, opts)
  }

  /** SPEC §3 invariants 2, 4, 5 as the DAX layer sees them (check.ts). */
  check(): Violation[] {
    if (this.#s.dead) return []
    return checkDax(this.#s)
  }
}
