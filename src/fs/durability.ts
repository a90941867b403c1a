/**
 * Durability profiles: what survives a power cut, and when it became
 * durable, on the file system a user deploys on (docs/crash-testing.md,
 * "Durability profiles"). Models are data: this one table is consulted by
 * one code path, the crash-state explorer in src/faults/explore.ts.
 *
 * 'strict' is pmemu's own behaviour (every metadata change journaled and
 * committed when the call returns, appends durable on return, overwrites
 * of owned blocks are cache-line stores until fsync). The weak profiles
 * describe ext4 (data=ordered), XFS and the weakest behaviour POSIX and the
 * Linux fsync contract allow. Each rule names its source.
 */
import { pmemError } from '../errors.js'

export type DurabilityName = 'strict' | 'posix' | 'ext4-ordered' | 'xfs'
export const DURABILITY_NAMES: readonly DurabilityName[] = ['strict', 'posix', 'ext4-ordered', 'xfs']

/** Why an operation may be lost, or may persist out of order, under a profile. */
export interface DurabilityRule { id: string; text: string; source: string }

export interface DurabilityProfile {
  name: DurabilityName
  summary: string
  /**
   * How metadata operations (create, mkdir, rename, unlink, rmdir, link,
   * truncate) persist relative to each other before an fsync forces them:
   *   'immediate'     durable when the call returns (strict);
   *   'prefix'        one running journal transaction: a crash keeps a prefix of them, in program order;
   *   'per-directory' ordered only among operations on the same directory.
   */
  metadataOrder: 'immediate' | 'prefix' | 'per-directory'
  /** fsync/fdatasync of any file commits the whole running transaction (every earlier metadata op persists). */
  fsyncCommitsAllMetadata: boolean
  /** Directory entries of a file persist when the file is fsynced (false: only fsync of the directory persists them). */
  fsyncPersistsOwnEntries: boolean
  /**
   * Appends (writes past EOF, into new blocks), split at block granularity:
   *   'immediate' durable on return; 'prefix' a crash keeps a prefix of the blocks, size and data together;
   *   'any' any subset of the blocks, the size may cover blocks whose data is lost (they read as zeros).
   */
  appends: 'immediate' | 'prefix' | 'any'
  /** Overwrites of existing blocks: any subset of the written blocks survives until fsync ('block'), or cache lines ('cache-line', strict). */
  overwrites: 'block' | 'cache-line'
  /** rename over an existing file first flushes the source file's pending data (ext4 auto_da_alloc). */
  renameFlushesSource: boolean
  /** The rules the explorer cites in its reports, keyed by id. */
  rules: Record<string, DurabilityRule>
}

const ALICE = 'Pillai et al., "All File Systems Are Not Created Equal", OSDI 2014 (ALICE), §2-3 and Table 1'
const B3 = 'Mohan et al., "Finding Crash-Consistency Bugs with Bounded Black-Box Crash Testing", OSDI 2018 (CrashMonkey/B3), §2'
const FSYNC = 'fsync(2) man page: "Calling fsync() does not necessarily ensure that the entry in the directory containing the file has also reached disk. For that an explicit fsync() on a file descriptor for the directory is also needed."'
const EXT4 = 'Linux Documentation/admin-guide/ext4.rst: data=ordered ("All data are forced directly out to the main file system prior to its metadata being committed to the journal"), commit=5 s default, auto_da_alloc'
const XFS = 'Linux Documentation/filesystems/xfs/ (delayed logging: metadata changes aggregate in a checkpoint committed in order; fsync forces the log) and XFS updating the on-disk size only at I/O completion'

const common = (extra: Record<string, DurabilityRule>): Record<string, DurabilityRule> => ({
  'data-unsynced': { id: 'data-unsynced', text: 'file data is durable only after fsync/fdatasync of that file (or sync)', source: `${FSYNC.split(':')[0]}; ${ALICE}` },
  'append-blocks': { id: 'append-blocks', text: 'an append is not atomic: its blocks persist independently until the file is fsynced', source: ALICE },
  'overwrite-blocks': { id: 'overwrite-blocks', text: 'an overwrite is atomic only per block: any subset of its blocks may persist before fsync', source: ALICE },
  ...extra,
})

/** The profiles. */
export const DURABILITY_PROFILES: Readonly<Record<DurabilityName, DurabilityProfile>> = {
  strict: {
    name: 'strict',
    summary: "pmemu's own behaviour: metadata journaled and committed when the call returns, appends durable on return, overwrites are cache-line stores until fsync",
    metadataOrder: 'immediate', fsyncCommitsAllMetadata: true, fsyncPersistsOwnEntries: true,
    appends: 'immediate', overwrites: 'cache-line', renameFlushesSource: false,
    rules: {
      'cache-lines': { id: 'cache-lines', text: 'stores into blocks a file owns are cache-line stores until fsync; any subset of unflushed 64-byte lines may survive', source: 'docs/crash-testing.md ("Why the bug shows"); SNIA NVM Programming Model' },
    },
  },
  posix: {
    name: 'posix',
    summary: 'the weakest behaviour POSIX and the Linux fsync contract allow: nothing is durable before the fsync that covers it; a new directory entry only after fsync of its directory',
    metadataOrder: 'per-directory', fsyncCommitsAllMetadata: false, fsyncPersistsOwnEntries: false,
    appends: 'any', overwrites: 'block', renameFlushesSource: false,
    rules: common({
      'dir-unsynced': { id: 'dir-unsynced', text: 'a directory entry change (create, rename, unlink, mkdir, link) is durable only after fsync of that directory; fsync of the file does not persist it', source: `${FSYNC}; ${B3}` },
      'dir-order': { id: 'dir-order', text: 'metadata operations on different directories persist in any order', source: ALICE },
      'no-order': { id: 'no-order', text: 'operations not yet fsynced persist in any order (no ordering between files, or between data and metadata)', source: ALICE },
    }),
  },
  'ext4-ordered': {
    name: 'ext4-ordered',
    summary: 'ext4 data=ordered with delayed allocation: metadata in one running transaction (a prefix survives; any fsync commits all of it); appended data reaches disk before the size that exposes it, but not before later metadata; rename over a file flushes the source (auto_da_alloc)',
    metadataOrder: 'prefix', fsyncCommitsAllMetadata: true, fsyncPersistsOwnEntries: true,
    appends: 'prefix', overwrites: 'block', renameFlushesSource: true,
    rules: common({
      'journal-prefix': { id: 'journal-prefix', text: 'metadata operations persist in program order, as a prefix of the running transaction (committed every 5 s or at any fsync)', source: EXT4 },
      'delalloc': { id: 'delalloc', text: 'appended data is allocated at writeback (delayed allocation), so it is not ordered before later metadata operations', source: `${EXT4}; ${ALICE} (ext4 "append -> any op" not ordered)` },
      'append-prefix': { id: 'append-prefix', text: 'ordered mode writes appended blocks before the size update that exposes them: a crash keeps a prefix of an append, never garbage', source: EXT4 },
    }),
  },
  xfs: {
    name: 'xfs',
    summary: 'XFS: metadata logged in order (a prefix survives; fsync forces the log, and with it every earlier change); data written back independently; the on-disk size grows only after the data, so appends keep a prefix; no rename heuristic',
    metadataOrder: 'prefix', fsyncCommitsAllMetadata: true, fsyncPersistsOwnEntries: true,
    appends: 'prefix', overwrites: 'block', renameFlushesSource: false,
    rules: common({
      'journal-prefix': { id: 'journal-prefix', text: 'metadata operations persist in program order, as a prefix of the log (fsync forces the log up to the file\'s last change, which includes every earlier change)', source: XFS },
      'delalloc': { id: 'delalloc', text: 'data is written back independently of the log: it is not ordered before later metadata operations (rename of an unsynced file may persist, its data not)', source: `${XFS}; ${ALICE}` },
      'append-prefix': { id: 'append-prefix', text: 'the on-disk size is updated at I/O completion: a crash keeps a prefix of an append', source: XFS },
    }),
  },
}

const fmt = (v: unknown): string => {
  try { return typeof v === 'string' ? `'${v}'` : typeof v === 'symbol' ? v.toString() : typeof v === 'bigint' ? `${v}n` : String(v) } catch { return '(unprintable)' }
}

/** The profile of a name (default 'strict'); anything else is EINVAL. */
export function durabilityProfile(name: unknown = 'strict', syscall = 'mount'): DurabilityProfile {
  if (typeof name === 'string' && Object.prototype.hasOwnProperty.call(DURABILITY_PROFILES, name)) return DURABILITY_PROFILES[name as DurabilityName]
  throw pmemError('EINVAL', syscall, `unknown durability profile ${fmt(name)} (want ${DURABILITY_NAMES.map(n => `'${n}'`).join(', ')})`)
}
