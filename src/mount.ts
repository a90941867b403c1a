/**
 * The public mkfs / mount: the file system with every layer attached — DAX
 * (file.mmap, the layout break) and fault injection (poison through reads
 * and writes, metadata memory failure, unbind). Layers attach only on a real
 * pmemu Device; a bare FsDevice gets the plain file system.
 */
import { mkfs as daxMkfs, mount as daxMount } from './dax/index.js'
import { attachFaults, isFaultCapable } from './faults/index.js'
import type { FsDevice, MkfsOptions, MountOptions, PmemFs } from './fs/index.js'

/** Format the device and mount it (SPEC §4). */
export async function mkfs(dev: FsDevice, opts: MkfsOptions = {}): Promise<PmemFs> {
  const fs = await daxMkfs(dev, opts)
  if (isFaultCapable(dev)) attachFaults(fs)
  return fs
}

/** Mount the file system: replays the journal, releases orphans. */
export async function mount(dev: FsDevice, opts: MountOptions = {}): Promise<PmemFs> {
  const fs = await daxMount(dev, opts)
  if (isFaultCapable(dev)) attachFaults(fs)
  return fs
}
