/**
 * Types of the file system's public surface and of the seams the layers
 * above plug into (FsExtension: DAX and fault injection attach through fs.attach).
 */
import type { CrashPointHook } from './journal.js'
import type { DirEntry } from './layout.js'
import type { Logger } from '../util/log.js'
import type { PmemFile } from './file.js'
import type { DurabilityName } from './durability.js'

/** Progress of a long operation (mkfs zeroing, fsck passes): CLI progress bars hang off this. */
export interface Progress { phase: string; done: number; total: number }
export type ProgressFn = (p: Progress) => void

export interface MountOptions {
  logger?: Logger
  /** Called at every journal crash point; throwing there simulates power loss (the fs shuts down). */
  onCrashPoint?: CrashPointHook
  /**
   * The durability profile this mount models (docs/crash-testing.md): 'strict'
   * (default) or 'posix', 'ext4-ordered', 'xfs'; anything else is EINVAL.
   * The medium always behaves as 'strict'; forEachCrash's explorer builds the
   * crash states a weak profile allows. Read it back as `fs.durability`.
   */
  durability?: DurabilityName
  /**
   * What truncate and punch-hole break before they free blocks (SPEC §3 ★,
   * docs/mappings.md): 'file' (default) unmaps every mapping of the file and
   * waits until no page of the whole file is busy, as XFS and ext4 do
   * (xfs_break_dax_layouts / ext4_break_layouts, dax_break_layout_inode);
   * 'range' unmaps and waits for the affected pages only, as FUSE-DAX's
   * __fuse_dax_break_layouts. Anything else is EINVAL. Read it back as
   * `fs.breakScope`.
   */
  breakScope?: BreakScope
}

/** The extent of a layout break: the whole file (XFS, ext4) or the range being freed (FUSE-DAX). */
export type BreakScope = 'file' | 'range'
export const BREAK_SCOPES: readonly BreakScope[] = ['file', 'range']

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
export interface LayoutBreakOptions {
  signal?: AbortSignal
  timeoutMs?: number
  reason: 'truncate' | 'punch-hole' | 'open-truncate'
  /** The mount's breakScope: break the whole file, or only [firstPage, endPage). */
  scope: BreakScope
}
/**
 * Installed by the DAX layer: before pages [firstPage, endPage) of the file
 * are freed (or zeroed in place), unmap the break scope (opts.scope: every
 * mapping of the whole file, or that range) and wait (per the refcount
 * model) until no page of the scope is busy. Rejecting (ETIMEDOUT,
 * AbortError…) cancels the operation with nothing changed.
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

/** Where a data read or write lands: the file's inode and the file offset of the range's first byte. */
export interface IoContext { ino: number; fileOffset: number }

/** A data read an extension refuses: the first `readable` bytes are copied, then `error` is thrown. */
export interface ReadRefusal { readonly readable: number; readonly error: Error }

/**
 * What an upper layer plugs into a mounted fs with `fs.attach(ext)`: the DAX
 * layer (mmap, layout break, onFree, unmount teardown) and fault injection
 * (poison checks on every data and metadata access). Every hook is optional;
 * several extensions compose as documented on each hook. Hooks answer with
 * return values; none of them passes data on a thrown error.
 */
export interface FsExtension {
  /** Names the extension in errors (e.g. 'dax', 'faults'). */
  readonly name: string
  /** Build what `file.mmap()` returns. At most one attached extension provides it (else EBUSY at attach). */
  mmap?(file: PmemFile, offset: number, length: number, opts: MmapOptions): MmapResult
  /**
   * Unmap file pages [firstPage, endPage) from every mapping and wait (per the
   * refcount model) until they may be freed. Rejecting (ETIMEDOUT, AbortError…)
   * cancels the truncate/punch-hole with nothing changed. Extensions run one
   * after another in attach order; the first rejection wins.
   */
  breakLayout?(file: PmemFile, firstPage: number, endPage: number, opts: LayoutBreakOptions): Promise<void>
  /**
   * Called for each data block of a regular file about to be freed. Return
   * false to quarantine it instead (it stays allocated, owned by the quarantine
   * inode, never handed out again until releaseQuarantine). Every extension is
   * asked; one false quarantines.
   */
  onFree?(pfn: number, info: { ino: number; index: number }): boolean | void
  /** Before a data read: a refusal (poison) or nothing. The refusal with the fewest readable bytes wins. */
  checkDataRead?(devOffset: number, length: number, ctx: IoContext): ReadRefusal | undefined | void
  /** Before a data store: an error refuses it (nothing of the range is stored), nothing lets it through. */
  checkDataWrite?(devOffset: number, length: number, ctx: IoContext): Error | undefined | void
  /** After a data store (e.g. a recovery write clearing poison). */
  afterDataWrite?(devOffset: number, length: number, ctx: IoContext): void
  /** Before a metadata read: an error shuts the fs down (EIO), as XFS does on a metadata memory failure. */
  checkMetaRead?(devOffset: number, length: number, what: string): Error | undefined | void
  /**
   * At the start of unmount (and of fsck's repair unmount), before files are
   * closed and orphans released: the DAX layer unmaps everything here so no
   * mapping outlives the blocks it maps. Called for every extension, in attach order.
   */
  beforeUnmount?(): void
}

/** Undo an attach (idempotent). */
export type Detach = () => void

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
export interface DirBlockMem {
  entries: Map<string, DirEntry>
  used: number
  /** The block as it is on the device (crc included), a zero tail after the entries: a change journals only the bytes it touches. */
  bytes: Uint8Array
  /** The device's copy differs from `bytes` (a non-zero tail was read): the next change journals the whole block. */
  rewrite: boolean
  /** The previous `bytes`, reused by the next change. */
  spare?: Uint8Array | undefined
}
export interface DirMem { blocks: DirBlockMem[]; index: Map<string, number> }
/** A transaction's pending changes to one directory block: what is added and removed, and the block's new bytes (crc set at commit). */
export interface DirBlockChange {
  base: DirBlockMem | undefined
  added: Map<string, DirEntry>
  removed: Set<string>
  used: number
  bytes: Uint8Array
  /** Byte range of the entries the change touched ([lo, hi); lo > hi: none). */
  lo: number
  hi: number
}
/** A transaction's pending changes to one directory. */
export interface DirOverlay { blocks: Map<number, DirBlockChange>; index: Map<string, number>; removed: Set<string>; added: number }
