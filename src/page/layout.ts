/**
 * Memory layout of the struct-page side table, mirrored from
 * assembly/layout.ts (the source of truth; `verifyLayout` checks the mirror
 * against the globals the wasm module exports).
 *
 * ```
 * byte offset            what
 * 0       .. 65535       reserved for AssemblyScript static data (none today)
 * 65536   .. 131071      header (HDR)
 *   +0     magic 'PMPT', version, pageCount, pageSize, model id, strict, trackGets, bound
 *   +64    model constants: idle, pgmap rule bits, wake rule, busy rule, unbind wait,
 *          folios, entry refs, map refs, pgmap base, edge thresholds (old, new)
 *   +256   event table: 16 rows x 8 i32 (ref, folioRef, folioPin, map, gets, flags, inverse, stat)
 *   +1024  pgmap refcount        (i32, own cache line)
 *   +1088  waiters present       (i32, own cache line)
 *   +1152  violation ring head   (u32, own cache line; = violations ever recorded)
 *   +1216  stats slot allocator  (u32)
 *   +1280  pgmap sequence        (i32: bumped + notified when pgmap refs may have reached their base)
 *   +4096  stats: 64 slots x 32 i64 counters (one slot per thread, 256 B each; counter 31 =
 *          the thread's in-flight transient pgmap refs)
 *   +20480 violation ring: 1024 entries x 8 i32 (seq, kind, pfn, op, expected, found, model, 0)
 * 131072  .. +32*pageCount  records, 32 bytes per pfn:
 *   +0 refcount i32, +4 mapcount i32, +8 pincount i32 (folio heads), +12 flags u32,
 *   +16 inode u32 (0 = none), +20 file index u32, +24 order i32, +28 outstanding gets i32
 * ```
 */

export const HDR = 65536
export const RECORDS = 131072
export const RECORD_SHIFT = 5
export const RECORD_BYTES = 32
export const RECORD_WORDS = 8

/** Record word indexes (i32 units). */
export const W_REF = 0
export const W_MAP = 1
export const W_PIN = 2
export const W_FLAGS = 3
export const W_INODE = 4
export const W_INDEX = 5
export const W_ORDER = 6
export const W_GETS = 7

export const F_LOCKED = 1
export const F_DIRTY = 2
export const F_POISONED = 4
export const F_HEAD = 8
export const F_TAIL = 16
export const F_RESERVED = 32
export const F_ENTRY = 64

export const FLAG_NAMES = [
  ['locked', F_LOCKED], ['dirty', F_DIRTY], ['poisoned', F_POISONED], ['head', F_HEAD],
  ['tail', F_TAIL], ['reserved', F_RESERVED], ['entry', F_ENTRY],
] as const
export type PageFlag = (typeof FLAG_NAMES)[number][0]
/** Flags that callers may set or clear (head/tail belong to folio ops, entry to the model). */
export const SETTABLE_FLAGS: Readonly<Record<string, number>> = {
  locked: F_LOCKED, dirty: F_DIRTY, poisoned: F_POISONED, reserved: F_RESERVED,
}

// header (absolute byte addresses)
export const H_MAGIC = HDR + 0
export const H_VERSION = HDR + 4
export const H_PAGECOUNT = HDR + 8
export const H_PAGESIZE = HDR + 12
export const H_MODEL = HDR + 16
export const H_STRICT = HDR + 20
export const H_TRACKGETS = HDR + 24
export const H_BOUND = HDR + 28
export const M_IDLE = HDR + 64
export const M_PGMAP = HDR + 68
export const M_WAKE = HDR + 72
export const M_BUSY = HDR + 76
export const M_UNBIND = HDR + 80
export const M_FOLIOS = HDR + 84
export const M_ENTRY_REF = HDR + 88
export const M_MAP_REF = HDR + 92
export const M_PGMAP_BASE = HDR + 96
export const M_EDGE_OLD = HDR + 100
export const M_EDGE_NEW = HDR + 104
export const T_EVENTS = HDR + 256
export const EVENT_ROW_WORDS = 8
export const H_PGMAP_REFS = HDR + 1024
export const H_WAITERS = HDR + 1088
export const H_RING_HEAD = HDR + 1152
export const H_SLOTS = HDR + 1216
export const H_PGMAP_SEQ = HDR + 1280
export const STATS = HDR + 4096
export const STAT_SLOTS = 64
export const STAT_COUNTERS = 32
export const RING = HDR + 20480
export const RING_ENTRIES = 1024

export const MAGIC = 0x54504d50 // 'PMPT' little-endian
export const LAYOUT_VERSION = 1

/** Largest page count a wasm32 memory can describe: (4 GiB - 128 KiB) / 32 = 134 213 632 (~512 GiB at 4 KiB). */
export const MAX_PAGES = Math.floor((65536 * 65536 - RECORDS) / RECORD_BYTES)

// model constant encodings
export const PGB_BULK = 1
export const PGB_WALK = 2
export const PGB_PER_PAGE = 4
export const PGB_PER_ENTRY = 8
export const WAKE_TO_IDLE = 1
export const WAKE_ON_UNPIN = 2
export const BUSY_ABOVE_IDLE = 0
export const BUSY_DMA_PINNED = 1
export const UNBIND_PGMAP_BASE = 0
export const UNBIND_ALL_IDLE = 1

// event table flags
export const EF_WALK = 1
export const EF_UNPIN = 2
export const EF_ENTRY_SET = 4
export const EF_ENTRY_CLEAR = 8
export const EF_SLOW = 16
export const EF_WAKE_UNPINNED = 32
export const EF_WAKE_IDLE = 64
export const EF_PGMAP_GET = 128
export const EF_PGMAP_PUT = 256

/** Event ids (rows of the event table) and, past 7, ring op codes. */
export const EV = {
  get: 0, put: 1, pin: 2, unpin: 3, entryInsert: 4, mapInsert: 5, zap: 6, entryDelete: 7,
  free: 8, associate: 9, folio: 10,
} as const
export const OP_NAMES = ['get', 'put', 'pin', 'unpin', 'entryInsert', 'mapInsert', 'zap', 'entryDelete', 'free', 'associate', 'folio'] as const

/** Stats counters, by index in a thread's slot. 0..7 are the events' own counters. */
export const COUNTER_NAMES = [
  'gets', 'puts', 'pins', 'unpins', 'entryInserts', 'mapInserts', 'zaps', 'entryDeletes',
  'frees', 'hazards', 'notifies', 'faults', 'folioFaults', 'layoutWaits', 'folioMakes', 'folioSplits',
  'unbinds', 'resets', 'truncates', 'punchHoles', 'dmaTransfers', 'dmaBytes', 'memoryFailures', 'sigbus',
  'pmdFaults', 'custom1', 'custom2', 'custom3', 'custom4', 'custom5', 'custom6',
] as const
/** Counter index of a thread's in-flight transient pgmap refs (not a stat). */
export const S_TRANSIENT = 31
export type CounterName = (typeof COUNTER_NAMES)[number]
export const S_FREES = 8
export const S_HAZARDS = 9
export const S_LAYOUT_WAITS = 13
export const S_FOLIO_MAKES = 14
export const S_FOLIO_SPLITS = 15
export const S_UNBINDS = 16
export const S_RESETS = 17

/** Violation kinds: wasm status codes 1..8, check-time kinds from 20. */
export const V = {
  refUnderflow: 1, neverGot: 2, mapUnderflow: 3, pinUnderflow: 4, doubleEntry: 5, missingEntry: 6,
  hazard: 7, twoFiles: 8,
  belowStructuralFloor: 20, tailCounts: 21, pgmap: 22, lost: 23, unbindHazard: 24,
} as const

/** Status of a counting path on an unbound table or a closed device (H_BOUND != 1): nothing done; ENXIO. */
export const ST_UNBOUND = 0x80
/** H_BOUND values. */
export const BOUND = 1
export const UNBOUND = 0
export const CLOSED = 2

/** Exported wasm globals that must equal the mirror above. */
export const VERIFIED: Readonly<Record<string, number>> = {
  HDR, RECORDS, RECORD_SHIFT, T_EVENTS, H_PGMAP_REFS, H_WAITERS, H_RING_HEAD, H_PGMAP_SEQ, STATS, RING, H_BOUND, ST_UNBOUND,
}
