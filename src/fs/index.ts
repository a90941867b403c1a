/**
 * The pmemu file system (SPEC §4): an extent file system on a persistent-memory
 * region with a redo journal, crash-point hooks, fsck, and the seams the DAX
 * and fault layers plug into. See docs/format.md for the on-region format.
 */
export type { FsDevice } from './device.js'
export {
  mkfs, mount, isMounted, PmemFs, PmemFile, FsNode, PmemStats, CRASH_POINTS, formatUuid,
  type MkfsOptions, type MountOptions, type StatFs, type TruncateOptions, type LayoutBreaker, type LayoutBreakOptions,
  type OnFree, type MmapFactory, type MmapResult, type MmapOptions, type IoContext, type BlockOwner, type FsInfo,
  type FsExtension, type ReadRefusal, type Detach, type BreakScope, BREAK_SCOPES,
  type Progress, type ProgressFn, type CrashPoint, type CrashPointHook,
} from './fs.js'
export type { CrashPointInfo } from './journal.js'
export { fsck, type FsckOptions, type FsckReport } from './fsck.js'
export { fsInfo, type FsSummary } from './info.js'
export { crc32c } from '../util/crc32c.js'
export {
  DURABILITY_PROFILES, DURABILITY_NAMES, durabilityProfile,
  type DurabilityName, type DurabilityProfile, type DurabilityRule,
} from './durability.js'
