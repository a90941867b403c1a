/**
 * Every benchmark, in the order it runs. Adding one: write a `Benchmark`
 * (bench/types.ts) in bench/paths/, give it an `available()` that says why it
 * cannot run here (e.g. the native shim is not built), and list it here.
 */
import type { Benchmark } from './types.js'
import { memcpyBw, open64g, persistPath, sideTable } from './paths/region.js'
import { folioPin, getPut, pinSweep, pinUnpin } from './paths/refcount.js'
import { contention } from './paths/contention.js'
import { fsCreate, fsEmptyBig, fsTimes } from './paths/fs.js'
import { daxFaults, daxTruncate, unpinToTruncate } from './paths/dax.js'
import { dmaPaths } from './paths/dma.js'
import { daxViewFaults } from './paths/range.js'
import { crashExplore } from './paths/crash.js'

export const BENCHMARKS: readonly Benchmark[] = [
  sideTable,
  memcpyBw,
  persistPath,
  fsTimes,
  fsEmptyBig,
  fsCreate,
  open64g,
  getPut,
  pinUnpin,
  pinSweep,
  folioPin,
  contention,
  daxFaults,
  daxViewFaults,
  daxTruncate,
  unpinToTruncate,
  dmaPaths,
  crashExplore,
]
