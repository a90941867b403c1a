/**
 * pmemu: a persistent-memory device emulator with an fsdax-like file layer.
 * (`SPEC §N` in comments throughout the code is section N of docs/spec.md,
 * the design spec; the exported names follow docs/api-contract.md.)
 *
 * ```ts
 * import { openDevice, mkfs, DmaEngine } from 'pmemu'
 * const dev = await openDevice('/dev/shm/a.pmem', { size: '64MiB', create: true, model: 'dax-gup' })
 * const fs = await mkfs(dev)
 * ```
 * See docs/ for the tour, the models and the format.
 */

// The device (SPEC §1–2)
export { openDevice, Device, Region, WINDOW_BYTES, SECTOR } from './region/index.js'
export type {
  OpenDeviceOptions, PagePaths, DeviceListener, DeviceState, Backend, MapMode, ModelName, Persistence, Capabilities,
  BadBlock, CrashOptions, DeviceInfo, FlushKind,
} from './region/index.js'

// The page table and the models (SPEC §3)
export { PageTable, MODELS, MODEL_NAMES, PIN_BIAS, FOLIO_PAGES } from './page/index.js'
export type { PageSnapshot, Violation, PageTableStats, RefcountModel, WaitOptions } from './page/index.js'

// The file system (SPEC §4), with DAX and fault injection attached
export { mkfs, mount } from './mount.js'
export { fsck, fsInfo, PmemFs, PmemFile, CRASH_POINTS, DURABILITY_PROFILES, DURABILITY_NAMES, durabilityProfile } from './fs/index.js'
export type {
  FsDevice, MkfsOptions, MountOptions, StatFs, PmemStats, TruncateOptions, FsckOptions, FsckReport, FsSummary,
  Progress, ProgressFn, CrashPoint, DurabilityName, DurabilityProfile, DurabilityRule, BreakScope,
} from './fs/index.js'

// DAX mappings (SPEC §5)
export { DaxMapping, PTE_NONE, mmap, attachDax, daxOf } from './dax/index.js'
export type { MmapOptions, MappingShare, DaxMappingLike, ViewSegment, MemoryFailureEvent, MappingCapabilities, ZapReason } from './dax/index.js'

// The DMA engine (SPEC §6)
export { DmaEngine } from './dma/index.js'
export type { DmaEngineOptions, DmaTransfer, SubmitOptions as DmaSubmitOptions, DmaResult, DmaStats, DmaMode } from './dma/index.js'

// Fault injection (SPEC §7)
export { attachFaults, forEachCrash, replayCrash } from './faults/index.js'
export type {
  ForEachCrashOptions, ForEachCrashResult, CrashFailure, Workload, Verify, WorkloadContext, VerifyContext, Keep, CrashAt,
} from './faults/index.js'

// Test-double adapters
export { toNodeFs, RandomAccessPmem, pmemStorage } from './adapters/index.js'
export type { PmemNodeFs, PmemNodeFsPromises, RandomAccessPmemOptions, RandomAccessPool } from './adapters/index.js'

// Errors and sizes (SPEC §8)
export { PmemuError, PmemuAbortError, pmemError, isPmemuError, isErrorCode } from './errors.js'
export type { ErrorCode } from './errors.js'
export { parseSize, formatBytes } from './util/size.js'
/** CRC-32C (Castagnoli), as the fs checksums its metadata: handy for logs and records built on pmemu. */
export { crc32c } from './util/crc32c.js'
export type { Size } from './util/size.js'
