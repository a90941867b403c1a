/**
 * The DAX layer's invariant checker (SPEC §3 invariants 2, 4 and 5 as the
 * layer sees them): page-cache entries, mappings and recently freed blocks
 * against the page table. Registered on the table by the layer (dev.check()).
 */
import type { PmemFs } from '../fs/index.js'
import type { PageTable, Violation } from '../page/index.js'
import { PMD_PAGES, type FileTree } from './tree.js'
import { PTE_NONE } from './types.js'

/** What the checker reads of a live layer. */
export interface CheckedLayer {
  readonly table: PageTable
  readonly pageSize: number
  readonly model: PageTable['model']
  readonly trees: ReadonlyMap<number, FileTree>
  readonly fs: PmemFs
  /** Recently freed blocks still watched (-1: empty slot); the checker clears the reallocated ones. */
  readonly freedWatch: Int32Array
}

function violation(model: PageTable['model'], invariant: number, kind: string, pfn: number, expected: number, found: number, what: string): Violation {
  return {
    invariant, kind, pfn, model: model.name, op: 'check', expected, found,
    message: `${what}: pfn ${pfn}, op check, model ${model.name}, expected ${expected}, found ${found}`,
  }
}

/** SPEC §3 invariants 2, 4, 5 as the DAX layer sees them. */
export function checkDax(v: CheckedLayer): Violation[] {
  const out: Violation[] = []
  const t = v.table
  const ps = v.pageSize
  const owner = new Map<number, number>()
  const mapped = new Map<number, number>() // head pfn -> mappings (PTE or PMD) counted on it
  for (const tree of v.trees.values()) {
    let size: number
    let extentOk: (index: number, pfn: number) => boolean
    try {
      size = tree.node.size
      const ext = tree.node.extents()
      extentOk = (index, pfn) => {
        for (const e of ext) if (index >= e.l && index < e.l + e.n) return e.p + (index - e.l) === pfn
        return false
      }
    } catch { continue }
    const eof = Math.ceil(size / ps)
    for (const [c, ch] of tree.chunks) {
      for (let k = 0; k < PMD_PAGES; k++) {
        const pfn = ch.pfns[k]!
        if (pfn === PTE_NONE) continue
        const index = c * PMD_PAGES + k
        const other = owner.get(pfn)
        if (other !== undefined && other !== tree.ino) out.push(violation(v.model, 4, 'two-files', pfn, other, tree.ino, 'page has page-cache entries in two files'))
        owner.set(pfn, tree.ino)
        if (index >= eof) out.push(violation(v.model, 5, 'entry-past-eof', pfn, eof, index, `file ${tree.ino} has a page-cache entry past EOF`))
        else if (!extentOk(index, pfn)) out.push(violation(v.model, 5, 'entry-not-allocated', pfn, 1, 0, `file ${tree.ino} page ${index} has a page-cache entry for a block it does not own (a hole or a freed block)`))
        if (ch.folio && k > 0) continue
        const s = t.snapshot(pfn)
        if (!s.flags.includes('entry')) out.push(violation(v.model, 2, 'entry-flag-missing', pfn, 1, 0, `file ${tree.ino} page ${index}: the page does not carry its page-cache entry`))
        if (s.inode !== tree.ino || s.index !== index) out.push(violation(v.model, 2, 'association', pfn, tree.ino, s.inode, `file ${tree.ino} page ${index}: page->mapping/index is ${s.inode}/${s.index}`))
      }
    }
    for (const m of tree.mappings) {
      if (!m.live) continue
      for (let j = 0; j < m.pages; j++) {
        const pfn = m.ptes[j]!
        if (pfn === PTE_NONE) continue
        const index = m.firstIndex + j
        if (index >= eof) out.push(violation(v.model, 5, 'mapped-past-eof', pfn, eof, index, `mapping ${m.id} of file ${tree.ino} maps page ${index} past EOF`))
        if (tree.entry(index) !== pfn) out.push(violation(v.model, 2, 'mapped-without-entry', pfn, pfn, tree.entry(index), `mapping ${m.id} maps file page ${index} without its page-cache entry`))
        const pm = m.pmd.get(Math.floor(index / PMD_PAGES))
        if (pm?.folio) {
          if (index % PMD_PAGES === 0) mapped.set(pm.pfn, (mapped.get(pm.pfn) ?? 0) + 1)
          continue
        }
        const h = t.headOf(pfn)
        mapped.set(h, (mapped.get(h) ?? 0) + 1)
      }
    }
  }
  const mapRefs = v.model.mapRefs
  for (const [h, n] of mapped) {
    const s = t.snapshot(h)
    const want = mapRefs > 0 ? n : 0
    if (s.mapcount !== want) out.push(violation(v.model, 2, 'mapcount-mismatch', h, want, s.mapcount, 'mapcount differs from the mappings installed'))
    const floor = v.model.idleRefcount + (s.flags.includes('entry') ? v.model.entryRefs : 0) + n * mapRefs
    if (s.refcount < floor) out.push(violation(v.model, 2, 'mapped-without-reference', h, floor, s.refcount, 'a mapped page does not hold the references its model says'))
  }
  const watch = v.freedWatch
  for (let i = 0; i < watch.length; i++) {
    const pfn = watch[i]!
    if (pfn < 0) continue
    let kind: string
    try { kind = v.fs.blockOwner(pfn).kind } catch { continue }
    if (kind !== 'free') { watch[i] = -1; continue }
    const s = t.snapshot(pfn)
    if (s.inode !== 0 || s.flags.includes('entry') || s.mapcount !== 0) {
      out.push(violation(v.model, 4, 'free-block-in-use', pfn, 0, s.inode, 'a free block is still associated, entered or mapped'))
    } else if (s.refcount !== v.model.idleRefcount || s.pincount !== 0) {
      out.push(violation(v.model, 4, 'free-block-referenced', pfn, v.model.idleRefcount, s.refcount, 'a free block is referenced or pinned'))
    }
  }
  return out
}
