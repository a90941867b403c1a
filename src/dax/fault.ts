/**
 * The fault paths of the DAX layer (SPEC §5 faults; §3 the models' insert
 * events): a CPU access (view) or a DMA slow path (gup) faults mapping pages
 * in, as PTE runs or one PMD per 2 MiB chunk (one compound folio where the
 * model has folios); poisoned pages fail with SIGBUS / EHWPOISON.
 *
 * The fault path issues the DAX events through the page table's range forms
 * (entryInsert(pfn, n), mapInsert(pfn, n)), one call per run of contiguous
 * pfns; test/dax.test.ts checks them against n single calls (an earlier wasm
 * core took a refcount-only fast lane on flagless order-0 pages and skipped
 * the entry flag / mapcount).
 */
import { isPmemuError, pmemError } from '../errors.js'
import type { DaxMapping } from './mapping.js'
import { PMD_PAGES } from './tree.js'
import { PTE_NONE } from './types.js'
import { kickBreakers } from './break.js'
import { assertUsable, rangeEvent, type DaxState } from './state.js'

/** Fault mapping pages [j0, j1). `kind` 'cpu' (view: SIGBUS on poison) or 'gup' (EHWPOISON). */
export function faultRange(st: DaxState, m: DaxMapping, j0: number, j1: number, kind: 'cpu' | 'gup', op: string): void {
  if (st.dead) throw st.dead()
  const ptes = m.ptes
  let j = j0
  while (j < j1 && ptes[j] !== PTE_NONE) j++
  if (j >= j1) return
  assertUsable(st, op, m.path)
  try {
    faultSpan(st, m, j, j1, Math.ceil(m.node.size / st.pageSize), kind, op, false)
  } finally {
    if (st.breakers.size > 0) kickBreakers(st, m.ino, m.firstIndex + j, m.firstIndex + j1)
  }
}

/** MAP_POPULATE: fault below EOF, skip pages that fail (poison), as mm_populate ignores errors. */
export function populate(st: DaxState, m: DaxMapping, from: number, to: number): void {
  assertUsable(st, 'populate', m.path)
  const eof = Math.ceil(m.node.size / st.pageSize)
  const end = Math.max(0, Math.min(to, eof - m.firstIndex))
  if (from >= end) return
  try {
    faultSpan(st, m, from, end, eof, 'cpu', 'populate', true)
  } finally {
    if (st.breakers.size > 0) kickBreakers(st, m.ino, m.firstIndex + from, m.firstIndex + end)
  }
}

/**
 * Fault the unmapped pages of mapping pages [j, j1), as if one page at a
 * time in order (faultPage), but batched: a PMD fault is tried once per
 * 2 MiB chunk (its outcome cannot change for the later pages of the chunk
 * in this call), then the rest of the chunk is mapped in runs — one extent
 * lookup and one range call of the page table per run of pages backed by
 * contiguous blocks. With poison on the device, or a strict page table
 * (whose range forms roll a failing run back whole, where single pages
 * would have left the earlier ones done), pages go one at a time.
 * `populate`: pages that fail with SIGBUS / EHWPOISON are skipped.
 */
function faultSpan(st: DaxState, m: DaxMapping, j: number, j1: number, eof: number, kind: 'cpu' | 'gup', op: string, populate: boolean): void {
  const ptes = m.ptes
  const first = m.firstIndex
  const single = st.table.strict || anyPoison(st)
  while (j < j1) {
    if (ptes[j] !== PTE_NONE) { j++; continue }
    const index = first + j
    if (single || index >= eof) {
      if (!populate) faultPage(st, m, j, eof, kind, op)
      else {
        try {
          faultPage(st, m, j, eof, kind, op)
        } catch (e) {
          if (!isPmemuError(e, 'SIGBUS') && !isPmemuError(e, 'EHWPOISON')) throw e
        }
      }
      j++
      continue
    }
    const chunkEnd = index - (index % PMD_PAGES) + PMD_PAGES
    if (pmdFault(st, m, index, eof)) { j = chunkEnd - first; continue }
    const stop = Math.min(j1, chunkEnd - first, eof - first)
    pteRuns(st, m, j, stop, kind, op)
    j = stop
  }
}

/**
 * Order-0 faults of the unmapped pages of [j, stop) (all in one chunk,
 * below EOF, no poison, not strict): pages whose page-cache entry exists
 * get their mapping in runs of contiguous pfns; pages without one are
 * associated, entered and mapped in runs of one extent; a hole goes
 * through pteFault (zero page, or an allocation on a write fault).
 * Counters, entries and dirty ranges end up as the per-page path leaves them.
 */
function pteRuns(st: DaxState, m: DaxMapping, j: number, stop: number, kind: 'cpu' | 'gup', op: string): void {
  const ptes = m.ptes
  const first = m.firstIndex
  const tree = m.tree
  const node = m.node
  const t = st.table
  const ps = st.pageSize
  const ino = m.ino
  const writable = m.writable
  const c = Math.floor((first + j) / PMD_PAGES)
  const cbase = c * PMD_PAGES
  let chunk = tree.chunks.get(c)
  while (j < stop) {
    if (ptes[j] !== PTE_NONE) { j++; continue }
    const index = first + j
    const k = index - cbase
    const have = chunk ? chunk.pfns[k]! : PTE_NONE
    let n = 1
    let pfn: number
    if (have !== PTE_NONE) {
      const pfns = chunk!.pfns
      while (j + n < stop && ptes[j + n] === PTE_NONE && pfns[k + n] === have + n) n++
      pfn = have
    } else {
      // one page left: the block alone (pfnAt allocates no extent record)
      const one = stop - j === 1
      const ext = one ? null : node.extentAt(index)
      const at = one ? node.pfnAt(index) : ext ? ext.pfn : null
      if (at === null) {
        pteFault(st, m, j, index, kind, op)
        chunk = tree.chunks.get(c)
        j++
        continue
      }
      pfn = at
      const max = ext ? Math.min(stop - j, ext.count) : 1
      if (chunk) {
        const pfns = chunk.pfns
        while (n < max && ptes[j + n] === PTE_NONE && pfns[k + n] === PTE_NONE) n++
      } else {
        while (n < max && ptes[j + n] === PTE_NONE) n++
      }
      chunk ??= tree.chunk(c)
      for (let i = 0; i < n; i++) t.associate(pfn + i, ino, index + i)
      t.entryInsert(pfn, n)
      const pfns = chunk.pfns
      for (let i = 0; i < n; i++) pfns[k + i] = pfn + i
      chunk.count += n
    }
    t.mapInsert(pfn, n)
    for (let i = 0; i < n; i++) ptes[j + i] = pfn + i
    t.bump('faults', n)
    if (writable) node.addDirty(pfn * ps, n * ps)
    j += n
  }
}

function faultPage(st: DaxState, m: DaxMapping, j: number, eof: number, kind: 'cpu' | 'gup', op: string): void {
  const index = m.firstIndex + j
  if (index >= eof) {
    st.table.bump('sigbus')
    throw pmemError('SIGBUS', op, `file page ${index} is past EOF (${m.node.size} bytes)`, { path: m.path, offset: j * st.pageSize })
  }
  if (pmdFault(st, m, index, eof)) return
  pteFault(st, m, j, index, kind, op)
}

/** Try to map the 2 MiB chunk around `index` in one fault. False: fall back to a PTE fault. */
function pmdFault(st: DaxState, m: DaxMapping, index: number, eof: number): boolean {
  const base = index - (index % PMD_PAGES)
  if (base < m.firstIndex || base + PMD_PAGES > m.firstIndex + m.pages || base + PMD_PAGES > eof) return false
  if (base + PMD_PAGES > st.table.pageCount) return false
  const tree = m.tree
  const c = base / PMD_PAGES
  const chunk = tree.chunks.get(c)
  if (chunk && chunk.count > 0 && !chunk.pmd) return false
  const jb = base - m.firstIndex
  const ptes = m.ptes
  for (let k = 0; k < PMD_PAGES; k++) if (ptes[jb + k] !== PTE_NONE) return false
  if (m._goneIn(jb, jb + PMD_PAGES)) return false // a partial unmap took part of the chunk
  const node = m.node
  const ps = st.pageSize
  let pfn0: number
  if (chunk && chunk.count > 0) {
    pfn0 = chunk.pfns[0]!
  } else {
    let ext = node.extentAt(base)
    if (!ext) {
      if (!m.writable || node.extentAt(index)) return false
      const r = node.allocateForFault(index, { huge: true })
      if (r.index !== base || r.count < PMD_PAGES) return false // one page was allocated: the PTE fault maps it
      ext = r
    }
    if (ext.count < PMD_PAGES || ext.pfn % PMD_PAGES !== 0) return false
    pfn0 = ext.pfn
    if (anyPoison(st) && st.dev.poisonedIn(pfn0 * ps, PMD_PAGES * ps).length > 0) return false
    const folio = st.model.folios
    if (folio && !makeFolio(st, pfn0)) return false
    const ch = tree.chunk(c)
    if (folio) {
      st.table.associate(pfn0, m.ino, base)
      st.table.entryInsert(pfn0)
    } else {
      for (let k = 0; k < PMD_PAGES; k++) st.table.associate(pfn0 + k, m.ino, base + k)
      rangeEvent(st, 'entryInsert', pfn0, PMD_PAGES)
    }
    for (let k = 0; k < PMD_PAGES; k++) ch.pfns[k] = pfn0 + k
    ch.count = PMD_PAGES
    ch.pmd = true
    ch.folio = folio
  }
  const folio = tree.chunks.get(c)!.folio
  if (folio) st.table.mapInsert(pfn0)
  else rangeEvent(st, 'mapInsert', pfn0, PMD_PAGES)
  m.pmd.set(c, { pfn: pfn0, folio })
  for (let k = 0; k < PMD_PAGES; k++) ptes[jb + k] = pfn0 + k
  st.table.bump('faults')
  st.table.bump('pmdFaults')
  if (folio) st.table.bump('folioFaults')
  if (m.writable) node.addDirty(pfn0 * ps, PMD_PAGES * ps)
  return true
}

function anyPoison(st: DaxState): boolean { return st.dev.region.info.badblocks.length > 0 }

/** makeFolio, or reuse an idle, unassociated order-9 folio left from an earlier life of the blocks. */
function makeFolio(st: DaxState, head: number): boolean {
  try {
    st.table.makeFolio(head)
    return true
  } catch (e) {
    if (!isPmemuError(e, 'EBUSY')) throw e
    const s = st.table.snapshot(head)
    return s.flags.includes('head') && s.order === 9 && s.inode === 0 && !s.flags.includes('entry') &&
      s.refcount === st.model.idleRefcount && s.mapcount === 0 && s.pincount === 0
  }
}

function pteFault(st: DaxState, m: DaxMapping, j: number, index: number, kind: 'cpu' | 'gup', op: string): void {
  const tree = m.tree
  const c = Math.floor(index / PMD_PAGES)
  const k = index % PMD_PAGES
  const node = m.node
  const ps = st.pageSize
  let chunk = tree.chunks.get(c)
  let pfn = chunk ? chunk.pfns[k]! : PTE_NONE
  if (pfn === PTE_NONE) {
    let ext = node.extentAt(index)
    if (!ext) {
      // A hole of a read-only mapping: Linux maps the shared zero page
      // (dax_load_hole). It is not a device page: the pte stays PTE_NONE
      // and view() hands out a private zero-filled copy.
      if (!m.writable) { st.table.bump('faults'); return }
      ext = node.allocateForFault(index, { huge: false })
    }
    pfn = ext.pfn
  }
  if (anyPoison(st) && st.dev.poisonedIn(pfn * ps, ps).length > 0) {
    st.table.bump('sigbus')
    const msg = `memory failure: file page ${index} (pfn ${pfn}) is poisoned`
    throw kind === 'gup'
      ? pmemError('EHWPOISON', op, msg, { path: m.path, pfn, offset: (index - m.firstIndex) * ps })
      : pmemError('SIGBUS', op, msg, { path: m.path, pfn, offset: (index - m.firstIndex) * ps })
  }
  if (!chunk || chunk.pfns[k] === PTE_NONE) {
    chunk ??= tree.chunk(c)
    st.table.associate(pfn, m.ino, index)
    st.table.entryInsert(pfn)
    chunk.pfns[k] = pfn
    chunk.count++
  }
  st.table.mapInsert(pfn)
  m.ptes[j] = pfn
  st.table.bump('faults')
  if (m.writable) node.addDirty(pfn * ps, ps)
}
