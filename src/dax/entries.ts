/**
 * Page-cache entries and freed blocks (SPEC §3 entry events, invariant 4;
 * §5 quarantine): deleting entries (a folio entry whole, then split), the
 * fs's onFree hook, and the quarantine of blocks freed while still
 * referenced (the dax-gup-v1 plain-get hazard) until their page is idle.
 */
import { isPmemuError } from '../errors.js'
import { PMD_PAGES, maybeDropTree, type Chunk, type FileTree } from './tree.js'
import { PTE_NONE } from './types.js'
import { assertUsable, FREED_WATCH, type DaxState } from './state.js'
import { zapFile } from './zap.js'

/** Delete the page-cache entry of chunk slot k (a folio entry: the whole chunk, then split). */
function evict(st: DaxState, tree: FileTree, c: number, ch: Chunk, k: number): void {
  if (ch.folio) {
    const head = ch.pfns[0]!
    st.table.entryDelete(head)
    st.table.disassociate(head)
    try {
      st.table.splitFolio(head)
    } catch (e) {
      st.log.warn({ err: e, pfn: head }, 'folio still referenced at eviction: it stays compound')
    }
    ch.pfns.fill(PTE_NONE)
    ch.count = 0
    ch.folio = false
    ch.pmd = false
  } else {
    const p = ch.pfns[k]!
    if (p === PTE_NONE) return
    st.table.entryDelete(p)
    st.table.disassociate(p)
    ch.pfns[k] = PTE_NONE
    ch.count--
    ch.pmd = false
  }
  if (ch.count === 0) tree.chunks.delete(c)
}

/** Delete every page-cache entry of file pages [first, end) (a folio entry overlapping it: whole, then split). */
export function evictRange(st: DaxState, tree: FileTree, first: number, end: number): void {
  if (end <= first) return
  const c0 = Math.floor(first / PMD_PAGES)
  const c1 = Math.floor((end - 1) / PMD_PAGES)
  for (const [c, ch] of [...tree.chunks]) {
    if (c < c0 || c > c1) continue
    if (ch.folio) { evict(st, tree, c, ch, 0); continue }
    const k0 = Math.max(0, first - c * PMD_PAGES)
    const k1 = Math.min(PMD_PAGES, end - c * PMD_PAGES)
    for (let k = k0; k < k1 && ch.count > 0; k++) if (ch.pfns[k] !== PTE_NONE) evict(st, tree, c, ch, k)
  }
}

export function evictAll(st: DaxState, tree: FileTree): void {
  for (const [c, ch] of [...tree.chunks]) {
    if (ch.folio) { evict(st, tree, c, ch, 0); continue }
    for (let k = 0; k < PMD_PAGES && ch.count > 0; k++) if (ch.pfns[k] !== PTE_NONE) evict(st, tree, c, ch, k)
    tree.chunks.delete(c)
  }
}

/**
 * The fs frees the block behind file page `index`: zap anything that
 * faulted it in since the layout break, delete its page-cache entry,
 * disassociate, then table.free(). false (the page is still referenced:
 * the dax-gup-v1 plain-get hazard, or a pin taken behind the layout break's
 * back) quarantines the block: the fs keeps it allocated, owned by the
 * quarantine inode, so it is never handed to another file while referenced.
 */
export function onFree(st: DaxState, pfn: number, info: { ino: number; index: number }): boolean {
  if (st.dead) return true
  const tree = st.trees.get(info.ino)
  if (tree) {
    if (tree.mappings.size > 0) zapFile(st, tree, info.index, info.index + 1, 'free')
    const c = Math.floor(info.index / PMD_PAGES)
    const k = info.index % PMD_PAGES
    const ch = tree.chunks.get(c)
    if (ch && ch.pfns[k] !== PTE_NONE) {
      if (ch.pfns[k] !== pfn) st.log.warn({ ino: info.ino, index: info.index, pfn, entry: ch.pfns[k] }, 'page-cache entry does not match the block being freed')
      evict(st, tree, c, ch, k)
    }
    maybeDropTree(st.trees, tree)
  }
  const ok = st.table.free(pfn)
  if (ok) {
    st.freedWatch[st.freedAt] = pfn
    st.freedAt = (st.freedAt + 1) % FREED_WATCH
  } else {
    st.quarantine.add(pfn)
    const s = st.table.snapshot(pfn)
    st.log.warn({ pfn, ino: info.ino, index: info.index, refcount: s.refcount, model: st.model.name },
      'block freed while still referenced (use-after-free hazard): quarantined')
  }
  return ok
}

/**
 * Give quarantined blocks whose page is idle again (the late put came)
 * back to the free list. Returns how many were released.
 */
export function reclaimQuarantine(st: DaxState): number {
  assertUsable(st, 'reclaimQuarantine')
  let n = 0
  for (const pfn of [...st.quarantine]) {
    const s = st.table.snapshot(pfn)
    if (s.refcount !== st.model.idleRefcount || s.mapcount !== 0 || s.pincount !== 0 || s.inode !== 0) continue
    try {
      st.fs.releaseQuarantine(pfn, 1)
      n++
    } catch (e) {
      if (!isPmemuError(e, 'EINVAL')) throw e // already released by someone else
    }
    st.quarantine.delete(pfn)
  }
  return n
}
