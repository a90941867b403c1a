/**
 * The contract between DAX mappings (src/dax) and their users — the DMA
 * engine (src/dma) above all. Written first so both sides build against it.
 *
 * gup-fast protocol (as mm/gup.c): each mapping keeps its page table in a
 * SharedArrayBuffer — `ptes[i]` is the pfn mapped at mapping page i, or -1.
 * A worker pins without asking the main thread: read ptes[i] → pin that pfn
 * → re-read ptes[i]; if it changed (a zap raced), unpin and take the slow
 * path. A zap clears the pte BEFORE the layout break waits for pins, so a pin
 * either lands before the zap (and the truncate waits for it) or sees -1.
 * The slow path asks the owning thread to fault the range (`fault()`), which
 * runs the model's insert path, may allocate (write fault) and fills ptes.
 */
import type { EventEmitter } from 'node:events'

export const PTE_NONE = -1

export interface MmapOptions {
  /** Writable mapping: write faults on holes allocate blocks. Default false. */
  write?: boolean
  /** MAP_SYNC semantics: faults make metadata durable before returning. */
  sync?: boolean
}

/** What a mapping can tell a DMA worker (postable with postMessage). */
export interface MappingShare {
  id: number
  /** Device generation this mapping belongs to (a crash bumps it). */
  generation: number
  /** Byte offset in the file where the mapping starts (page aligned). */
  offset: number
  length: number
  writable: boolean
  pageSize: number
  /** Int32Array over this: one pfn (or PTE_NONE) per mapping page. */
  ptes: SharedArrayBuffer
  /** Int32Array(1): 0 live, 1 unmapped/dead (checked by workers before each transfer). */
  state: SharedArrayBuffer
  /**
   * The mapping's own address range (when map.capabilities.addressRange):
   * window i covers mapping bytes from i * step. Only pages the owner has
   * viewed are mapped in; zapped pages read the canary.
   */
  range?: { sabs: SharedArrayBuffer[]; step: number }
}

export interface DaxMappingLike extends EventEmitter {
  readonly id: number
  /** File offset and length of the mapping (bytes). */
  readonly offset: number
  readonly length: number
  readonly writable: boolean
  readonly live: boolean
  /** Faults [offset, offset+length) (mapping-relative) and returns a view on the region. */
  view(offset: number, length: number): Uint8Array
  populate(): void
  persist(offset: number, length: number): void
  pfn(offset: number): number
  /** munmap: the whole mapping, or the page-aligned part [offset, offset+length). */
  unmap(offset?: number, length?: number): void
  /** Slow path for DMA: fault the range on the owning thread (errors are PmemuErrors: SIGBUS, EHWPOISON, ENOSPC…). */
  fault(offset: number, length: number, write: boolean): void
  share(): MappingShare
}

/**
 * What a mapping needs from the DAX layer that made it (the layer implements
 * it): mapping.ts depends on this, not on layer.ts.
 */
export interface MappingHost {
  readonly pageSize: number
  readonly dev: import('../region/index.js').Device
  readonly table: import('../page/index.js').PageTable
  generationOk(m: import('./mapping.js').DaxMapping): boolean
  kill(m: import('./mapping.js').DaxMapping, err: () => import('../errors.js').PmemuError, why?: import('./range.js').ZapReason): void
  unmap(m: import('./mapping.js').DaxMapping): void
  unmapRange(m: import('./mapping.js').DaxMapping, j0: number, j1: number): void
  faultRange(m: import('./mapping.js').DaxMapping, j0: number, j1: number, write: boolean, kind: 'cpu' | 'gup', op: string): void
  populate(m: import('./mapping.js').DaxMapping, from?: number, to?: number): void
}
