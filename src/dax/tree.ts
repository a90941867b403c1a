/** The mapping tree of one file: its page-cache entries (512-page chunks) and its mappings. */
import type { FsNode } from '../fs/index.js'
import { FOLIO_PAGES } from '../page/index.js'
import type { DaxMapping } from './mapping.js'
import { PTE_NONE } from './types.js'

/** Pages per PMD (2 MiB of 4 KiB pages): the unit of a huge fault and of an upstream folio. */
export const PMD_PAGES = FOLIO_PAGES

/** Page-cache entries of one 512-page chunk of a file (one xarray node). */
export interface Chunk {
  /** pfn of each page's entry, PTE_NONE when none. A folio entry fills all 512 (head + i). */
  pfns: Int32Array
  /** Entries present (512 for a PMD entry). */
  count: number
  /** The chunk is ONE order-9 folio entry, counted on its head (upstream). */
  folio: boolean
  /** The chunk was entered as one PMD entry (all 512 at once). */
  pmd: boolean
}

/** The mapping tree of one file: its page-cache entries and its mappings. */
export class FileTree {
  readonly chunks = new Map<number, Chunk>()
  readonly mappings = new Set<DaxMapping>()
  constructor(readonly ino: number, readonly node: FsNode) {}

  /** pfn of the page-cache entry of file page `index`, or PTE_NONE. */
  entry(index: number): number {
    const ch = this.chunks.get(Math.floor(index / PMD_PAGES))
    return ch ? ch.pfns[index % PMD_PAGES]! : PTE_NONE
  }

  chunk(c: number): Chunk {
    let ch = this.chunks.get(c)
    if (!ch) {
      ch = { pfns: new Int32Array(PMD_PAGES).fill(PTE_NONE), count: 0, folio: false, pmd: false }
      this.chunks.set(c, ch)
    }
    return ch
  }
}


/** The tree of `node`'s file, made (or remade for a new node of the inode, keeping its entries) on demand. */
export function treeOf(trees: Map<number, FileTree>, node: FsNode): FileTree {
  let t = trees.get(node.ino)
  if (!t || t.node !== node) {
    const old = t
    t = new FileTree(node.ino, node)
    if (old) for (const [c, ch] of old.chunks) t.chunks.set(c, ch)
    trees.set(node.ino, t)
  }
  return t
}

/** Forget a tree with no mapping and no entry left. */
export function maybeDropTree(trees: Map<number, FileTree>, t: FileTree): void {
  if (t.mappings.size === 0 && t.chunks.size === 0 && trees.get(t.ino) === t) trees.delete(t.ino)
}
