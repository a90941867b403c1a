/**
 * The layout break (SPEC §3 ★ truncate / punch-hole rows; §5 layout break):
 * truncate and punch-hole unmap their scope and wait until no page of it is
 * busy by the model's rule; faults during the wait kick it (kickBreakers).
 * Also the final break of an unlinked file whose last mapping goes while its
 * pages are still busy (releaseHold).
 */
import { isPmemuError, pmemError, PmemuAbortError } from '../errors.js'
import type { FsNode, PmemFile } from '../fs/index.js'
import type { DaxMapping } from './mapping.js'
import type { ZapReason } from './range.js'
import { PMD_PAGES, maybeDropTree } from './tree.js'
import { assertUsable, type Breaker, type DaxState } from './state.js'
import { widen, zapFile } from './zap.js'
import { evictAll, evictRange } from './entries.js'

interface BusyRun { pfn: number; count: number }

/**
 * The mapping's hold on the inode goes. If the file is unlinked and its
 * pages are still busy (a DMA pin outlived the mapping), the release — and
 * with it the freeing of the blocks — waits for them, as Linux 6.15's
 * dax_break_layout_final() does at eviction.
 */
export function releaseHold(st: DaxState, m: DaxMapping): void {
  const node = m.node
  const release = (): void => {
    try { node.release() } catch (e) { st.log.warn({ err: e, ino: node.ino }, 'release of a mapping hold failed') }
  }
  try {
    if (node.nlink === 0 && node.holds === 1 && node.openCount === 0) {
      // the reworked dax-gup's entries hold page refs: the final break drops them before it waits
      const tree = st.trees.get(node.ino)
      if (tree && st.model.breakEntries === 'scope-before-wait') evictAll(st, tree)
      const runs = busyRuns(st, node, 0, Number.MAX_SAFE_INTEGER)
      if (runs.length > 0) {
        st.log.debug({ ino: node.ino, runs: runs.length }, 'unlinked file still busy: release deferred')
        void (async () => {
          for (const r of runs) await st.table.waitIdle(r.pfn, r.count)
        })().catch(() => undefined).finally(release)
        return
      }
    }
  } catch { /* fs dead: plain release */ }
  release()
}

/** Allocated pfn runs of file pages [first, end) that are busy by the model's truncate rule. */
export function busyRuns(st: DaxState, node: FsNode, first: number, end: number): BusyRun[] {
  const out: BusyRun[] = []
  for (const e of node.extents()) {
    const s = Math.max(first, e.l)
    const t = Math.min(end, e.l + e.n)
    if (s >= t) continue
    const pfn = e.p + (s - e.l)
    const count = t - s
    if (st.table.firstBusy(pfn, count) >= 0) out.push({ pfn, count })
  }
  return out
}

/**
 * The layout breaker (DaxLayer.breakLayout has the contract): unmap the
 * scope from every mapping of the file, apply the model's breakEntries, wait
 * until no page of the scope is busy; pages faulted back in during a wait
 * are zapped again and waited for again (xfs_break_layouts' retry loop).
 */
export async function breakLayout(st: DaxState, file: PmemFile, first: number, end: number,
  opts: { signal?: AbortSignal; timeoutMs?: number; reason: string; scope?: 'file' | 'range' }): Promise<void> {
  const syscall = opts.reason === 'punch-hole' ? 'fallocate' : opts.reason === 'open-truncate' ? 'open' : 'ftruncate'
  assertUsable(st, syscall, file.path)
  st.table.bump(opts.reason === 'punch-hole' ? 'punchHoles' : 'truncates')
  const node = file.node
  const whole = opts.scope !== 'range'
  const [sf, se] = whole ? [0, Number.MAX_SAFE_INTEGER] : [first, end]
  const why: ZapReason = opts.reason === 'punch-hole' ? 'punch-hole' : 'truncate'
  const entries = st.model.breakEntries
  const deadline = opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs
  // A fault in the scope during the wait (a view, a DMA slow path) maps a
  // page again. Linux blocks such faults on the invalidate lock; here they
  // cannot block, so the fault kicks the wait instead (kickBreakers): the
  // loop zaps again and waits again. Without the kick an upstream wait on
  // a page refaulted before its unpin never ends (the unpin leaves the map
  // ref: no 1->0 transition, no wake-up).
  const entry: Breaker = { first: sf, end: se, kick: undefined }
  let set = st.breakers.get(node.ino)
  if (!set) { set = new Set(); st.breakers.set(node.ino, set) }
  set.add(entry)
  try {
    for (;;) {
      const tree = st.trees.get(node.ino)
      let [wf, we] = [sf, se]
      if (tree) {
        [wf, we] = widen(tree, sf, se)
        zapFile(st, tree, sf, se, why)
        // the reworked dax-gup: the break drops the entries' page refs before it waits
        if (entries === 'scope-before-wait') evictRange(st, tree, wf, we)
      }
      entry.first = wf
      entry.end = we
      const runs = busyRuns(st, node, wf, we)
      if (runs.length === 0) {
        // ≥ 6.15: dax_delete_mapping_range over the scope once nothing is busy (folios split)
        if (tree && entries === 'scope-after-wait') evictRange(st, tree, wf, we)
        if (tree) maybeDropTree(st.trees, tree)
        return
      }
      for (const r of runs) {
        const remaining = deadline === Infinity ? undefined : Math.max(0, deadline - performance.now())
        const kick = new AbortController()
        const user = opts.signal
        const onUser = (): void => kick.abort(user?.reason)
        if (user?.aborted) onUser()
        else user?.addEventListener('abort', onUser, { once: true })
        entry.kick = kick
        let kicked = false
        try {
          await st.table.waitIdle(r.pfn, r.count, { signal: kick.signal, timeoutMs: remaining })
        } catch (e) {
          if (isPmemuError(e, 'ABORT_ERR') && !user?.aborted) {
            kicked = true
          } else {
            if (isPmemuError(e, 'ETIMEDOUT')) {
              const what = whole ? `pages of the file (whole-file break for file pages [${first}, ${end}))` : `file pages [${first}, ${end})`
              throw pmemError('ETIMEDOUT', syscall,
                `${what} still busy after ${opts.timeoutMs} ms (${st.model.busy} rule of the ${st.model.name} model, pfn ${String(e.pfn)}); nothing was changed`,
                { path: file.path, pfn: e.pfn, cause: e })
            }
            if (isPmemuError(e, 'ABORT_ERR')) throw new PmemuAbortError(syscall, { path: file.path, cause: user?.reason })
            throw e
          }
        } finally {
          entry.kick = undefined
          user?.removeEventListener('abort', onUser)
        }
        assertUsable(st, syscall, file.path)
        if (kicked) break // a page of the scope was faulted in again: zap it and look again
      }
      // We awaited: faults or pins may have happened meanwhile. Go round
      // again; a pass that does not need to wait runs without yielding.
    }
  } finally {
    set.delete(entry)
    if (set.size === 0 && st.breakers.get(node.ino) === set) st.breakers.delete(node.ino)
  }
}

/** A fault mapped (or tried to map) file pages [first, end) of `ino`: wake the layout breaks waiting on a range that overlaps. */
export function kickBreakers(st: DaxState, ino: number, first: number, end: number): void {
  const set = st.breakers.get(ino)
  if (!set) return
  // a PMD fault maps the whole chunk around the faulting page
  first -= first % PMD_PAGES
  end += (PMD_PAGES - (end % PMD_PAGES)) % PMD_PAGES
  for (const b of set) if (b.kick && first < b.end && end > b.first) b.kick.abort()
}
