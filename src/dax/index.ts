/**
 * DAX mappings (SPEC §5): `file.mmap()` → DaxMapping, faults per refcount
 * model, and the layout break truncate / punch-hole wait on. `mkfs` and
 * `mount` here are src/fs's with the DAX layer attached: the public ones.
 */
import {
  mkfs as fsMkfs, mount as fsMount,
  type FsDevice, type MkfsOptions, type MountOptions, type PmemFs,
} from '../fs/index.js'
import { attachDax, isDaxCapable } from './attach.js'
import type { DaxMapping } from './mapping.js'
import type { MmapOptions } from './types.js'

export { PTE_NONE, type MmapOptions, type MappingShare, type DaxMappingLike } from './types.js'
export { DaxMapping, type ViewSegment, type MemoryFailureEvent, type MappingState } from './mapping.js'
export { RANGE_STEP, RANGE_SPAN, type MappingCapabilities, type ZapReason } from './range.js'
export { DaxLayer, FileTree, PMD_PAGES, type Chunk, type DaxStats } from './layer.js'
export { attachDax, daxOf, isDaxCapable } from './attach.js'

/** Format the device, mount it, attach DAX (on a pmemu Device; a bare FsDevice stub gets a plain fs). */
export async function mkfs(dev: FsDevice, opts: MkfsOptions = {}): Promise<PmemFs> {
  const fs = await fsMkfs(dev, opts)
  if (isDaxCapable(dev)) attachDax(fs)
  return fs
}

/** Mount (journal replay, orphans) and attach DAX. */
export async function mount(dev: FsDevice, opts: MountOptions = {}): Promise<PmemFs> {
  const fs = await fsMount(dev, opts)
  if (isDaxCapable(dev)) attachDax(fs)
  return fs
}

/** Typed file.mmap: the same call, with the DaxMapping type (file.mmap is typed `unknown` in src/fs). */
export function mmap(file: { mmap(offset: number, length: number, opts?: Record<string, unknown>): unknown },
  offset: number, length: number, opts: MmapOptions = {}): DaxMapping {
  return file.mmap(offset, length, { ...opts }) as DaxMapping
}

// file.mmap() returns a DaxMapping once this layer is loaded: widen the fs's
// (empty) MmapResult by interface merging, so src/fs needs no import of dax.
declare module '../fs/types.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-interface
  interface MmapResult extends DaxMapping {}
}
