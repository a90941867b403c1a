/**
 * Attaching the DAX layer to a mounted file system (SPEC §5): one layer per
 * fs, found again with daxOf; only a pmemu Device (with a page table) can
 * carry one.
 */
import { pmemError } from '../errors.js'
import type { PmemFs } from '../fs/index.js'
import { Device } from '../region/index.js'
import { DaxLayer } from './layer.js'
import { layers } from './state.js'

/** The DAX layer attached to `fs`, if any. */
export function daxOf(fs: PmemFs): DaxLayer | undefined {
  return layers.get(fs)
}

/** True when `d` is a pmemu Device (with a page table), not a bare FsDevice stub. */
export function isDaxCapable(d: unknown): d is Device {
  return d instanceof Device
}

/**
 * Attach the DAX layer to a mounted file system: installs the mmap factory,
 * the layout breaker and the onFree hook, registers the invariant checker
 * and the device listeners. Idempotent (returns the existing layer).
 */
export function attachDax(fs: PmemFs): DaxLayer {
  const have = layers.get(fs)
  if (have) return have
  if (!isDaxCapable(fs.device)) {
    throw pmemError('EINVAL', 'attachDax', 'the file system is not on a pmemu Device (DAX needs the page table)')
  }
  fs.assertLive('attachDax')
  const layer = new DaxLayer(fs, fs.device)
  layers.set(fs, layer)
  return layer
}
