/**
 * Types of the file system's public surface and of the seams the layers
 * above plug into (DAX: mmap factory, layout breaker, onFree; faults: I/O hooks).
 */
import type { CrashPointHook } from './journal.js'
import type { DirEntry } from './layout.js'
import type { Logger } from '../util/log.js'
import type { PmemFile } from './file.js'

/** Progress of a long operation (mkfs zeroing, fsck passes): CLI progress bars hang off this. */
export interface Progress { phase: string; done: number; total: number }
export type ProgressFn = (p: Progress) => void

export interface MountOptions {
  logger?: Logger
  /** Called at every journal crash point; throwing there simulates power loss (the fs shuts down). */
  onCrashPoint?: CrashPointHook
}

export interface MkfsOptions extends MountOptions {
  /** Volume label, at most 63 UTF-8 bytes. */
  label?: string
  progress?: ProgressFn
  /** Number of inodes (default: one per 16 KiB, at least 64). */
  inodes?: number
  /** Journal size in blocks (default: 1/32 of the device, 16..8192). */
  journalBlocks?: number
}

export interface StatFs {
  type: number
  bsize: number
  frsize: number
  /** Total blocks of the device. */
  blocks: number
  /** Free blocks. */
  free: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  namemax: number
  /** Blocks held in quarantine (allocated, owned by nobody, never reused). */
  quarantined: number
}

export interface TruncateOptions { signal?: AbortSignal; timeoutMs?: number }

/** What the layout-break hook receives besides the file and page range. */
export interface LayoutBreakOptions { signal?: AbortSignal; timeoutMs?: number; reason: 'truncate' | 'punch-hole' | 'open-truncate' }
/**
 * Installed by the DAX layer: unmap pages [firstPage, endPage) of the file
 * from every mapping and wait (per the refcount model) until they may be
 * freed. Rejecting (ETIMEDOUT, AbortError…) cancels the operation with
 * nothing changed.
 */
export type LayoutBreaker = (file: PmemFile, firstPage: number, endPage: number, opts: LayoutBreakOptions) => Promise<void>
/**
 * Called for each data block of a regular file about to be freed. Return
 * false to quarantine it instead (it stays allocated, owned by the quarantine
 * inode, and is never handed out again until releaseQuarantine).
 */
export type OnFree = (pfn: number, info: { ino: number; index: number }) => boolean | void
/**
 * What `file.mmap()` returns. Empty here: the DAX layer (src/dax) widens it by
 * interface merging to its DaxMapping shape, so the fs does not import dax.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface MmapResult {}
export type MmapFactory = (file: PmemFile, offset: number, length: number, opts: MmapOptions) => MmapResult
export interface MmapOptions { write: boolean; sync: boolean; [k: string]: unknown }

/** Context passed to I/O hooks. */
export interface IoContext { ino: number; fileOffset: number }
/**
 * Every data read and write goes through these (poison checks, recovery
 * writes). beforeMetaRead guards metadata reads: if it throws, the fs shuts
 * down (EIO), as XFS does on a metadata memory failure.
 */
export interface IoHooks {
  beforeDataRead?: (devOffset: number, length: number, ctx: IoContext) => void
  beforeDataWrite?: (devOffset: number, length: number, ctx: IoContext) => void
  afterDataWrite?: (devOffset: number, length: number, ctx: IoContext) => void
  beforeMetaRead?: (devOffset: number, length: number, what: string) => void
}

export type BlockOwner =
  | { kind: 'superblock' | 'backup-superblock' | 'journal' | 'bitmap' | 'inode-table' | 'free' | 'unowned' }
  | { kind: 'data' | 'directory' | 'extent-block' | 'quarantine'; ino: number; index: number }

export interface FsInfo {
  label: string
  uuid: string
  version: number
  blockSize: number
  blocks: number
  freeBlocks: number
  quarantinedBlocks: number
  inodes: number
  freeInodes: number
  journalBlocks: number
  dataStart: number
  state: 'clean' | 'mounted' | 'not-clean'
  mountCount: number
  createdMs: number
}

/** In-memory directory: its blocks and a name -> block index. */
export interface DirBlockMem { entries: Map<string, DirEntry>; used: number }
export interface DirMem { blocks: DirBlockMem[]; index: Map<string, number> }
/** A transaction's pending changes to one directory. */
export interface DirOverlay { blocks: Map<number, DirBlockMem>; index: Map<string, number>; removed: Set<string>; added: number }
