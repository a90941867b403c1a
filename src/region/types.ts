/**
 * Contracts of the region layer (SPEC §1–2). A Region is the raw byte range:
 * usable offsets start at 0 = first byte after the info block (and, with
 * map 'dev', after the space reserved for the side table).
 */
export type Backend = 'native' | 'mmap-io' | 'memory'
export type MapMode = 'mem' | 'dev'
export type Persistence = 'adr' | 'eadr'
import type { ModelName } from '../util/model-ids.js'
export type { ModelName }
export type FlushKind = 'clwb' | 'clflushopt' | 'msync' | 'none'

export interface Capabilities {
  /** MAP_SYNC held on the backing file (real DAX). */
  mapSync: boolean
  /** How persist() makes stores durable. */
  flush: FlushKind
  /** Why MAP_SYNC did not hold, e.g. 'EOPNOTSUPP' on tmpfs/ext4. */
  mapSyncError?: string
  /** The region can be shared with worker threads (false on mmap-io). */
  workers: boolean
}

export interface BadBlock { offset: number; length: number }

/** What the info block at the start of the backing file records. */
export interface DeviceInfo {
  version: number
  /** Total size of the device (backing file), bytes. */
  size: number
  pageSize: number
  model: ModelName
  map: MapMode
  persistence: Persistence
  uuid: string
  /** Bytes at the start of the file before the usable region. */
  dataOffset: number
  /** Usable bytes (a multiple of pageSize). */
  capacity: number
  badblocks: BadBlock[]
}

/**
 * One window of the usable region: `length` bytes from usable offset `offset`.
 * `sab` is the SharedArrayBuffer over the mapping (absent on mmap-io, whose
 * Buffers cannot be shared with workers); `bytes` views it.
 */
export interface Window { offset: number; length: number; bytes: Uint8Array; sab?: SharedArrayBuffer }

export interface CrashOptions { seed?: number; keep?: 'none' | 'all' | 'random' }

export type CrashListener = (info: { seed: number; keep: string; linesLost: number }) => void | Promise<void>
