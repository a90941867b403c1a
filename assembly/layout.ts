// Memory layout of the struct-page side table (SPEC §1). Single source of
// truth for the wasm side; src/page/layout.ts mirrors these numbers and
// checks them against the exported globals at load time.
//
//   [0, 64 KiB)            reserved for AssemblyScript static data (none today)
//   [64 KiB, 128 KiB)      header: identity, model table, hot shared words,
//                          per-thread stats slots, violation ring
//   [128 KiB, ...)         records: 32 bytes per page, pfn-indexed

export const HDR: u32 = 65536
export const RECORDS: u32 = 131072
export const RECORD_SHIFT: u32 = 5 // 32-byte records

// --- record fields (byte offsets in a record) ---------------------------------
export const R_REF: u32 = 0 // i32 refcount (folio: on the head)
export const R_MAP: u32 = 4 // i32 mapcount
export const R_PIN: u32 = 8 // i32 pincount (folio heads only)
export const R_FLAGS: u32 = 12 // u32 flag bits
export const R_INODE: u32 = 16 // u32 owning inode, 0 = none
export const R_INDEX: u32 = 20 // u32 file page index
export const R_ORDER: u32 = 24 // i32 compound order (0 or 9); tails carry it too
export const R_GETS: u32 = 28 // i32 outstanding plain gets (tracked when trackGets)

// --- flag bits ------------------------------------------------------------------
export const F_LOCKED: u32 = 1
export const F_DIRTY: u32 = 2
export const F_POISONED: u32 = 4
export const F_HEAD: u32 = 8
export const F_TAIL: u32 = 16
export const F_RESERVED: u32 = 32
export const F_ENTRY: u32 = 64 // a page-cache (DAX) entry refers to this page

// --- header: identity (absolute byte addresses) --------------------------------
export const H_MAGIC: u32 = HDR + 0
export const H_VERSION: u32 = HDR + 4
export const H_PAGECOUNT: u32 = HDR + 8
export const H_PAGESIZE: u32 = HDR + 12
export const H_MODEL: u32 = HDR + 16
export const H_STRICT: u32 = HDR + 20
export const H_TRACKGETS: u32 = HDR + 24
export const H_BOUND: u32 = HDR + 28 // 1 bound, 0 unbound, 2 device closed: every counting path refuses unless 1

// --- header: model constants ---------------------------------------------------
export const M_IDLE: u32 = HDR + 64 // idle refcount (the floor)
export const M_PGMAP: u32 = HDR + 68 // pgmap rule bits (PGB_*)
export const M_WAKE: u32 = HDR + 72 // wake rule bits (WAKE_*)
export const M_BUSY: u32 = HDR + 76 // busy rule (BUSY_*)
export const M_UNBIND: u32 = HDR + 80 // unbind wait (UNBIND_*)
export const M_FOLIOS: u32 = HDR + 84 // 1 when the model has compound folios
export const M_ENTRY_REF: u32 = HDR + 88 // refs held by a page-cache entry
export const M_MAP_REF: u32 = HDR + 92 // refs held per mapping (mapcount)
export const M_PGMAP_BASE: u32 = HDR + 96 // pgmap refs at rest while bound
export const M_EDGE_OLD: u32 = HDR + 100 // hot path leaves for edge() when old refcount <= this (per-page pgmap: 0)
export const M_EDGE_NEW: u32 = HDR + 104 // ... or when the new refcount <= this (idle - 1; per-page pgmap: 0)

// pgmap rule bits: a model holds dev_pagemap refs in any combination of these ways
export const PGB_BULK: i32 = 1 // one per page, taken at enable (pagemap_range) and dropped at unbind
export const PGB_WALK: i32 = 2 // a transient tryget held for the length of a gup walk (legacy)
export const PGB_PER_PAGE: i32 = 4 // one per page with refcount > 0 (0->1 takes it, ->0 drops it: the reworked dax-gup)
export const PGB_PER_ENTRY: i32 = 8 // one per page-cache entry, taken at insert, dropped at delete (dax-gup-v1)

export const WAKE_TO_IDLE: i32 = 1
export const WAKE_ON_UNPIN: i32 = 2

export const BUSY_ABOVE_IDLE: i32 = 0
export const BUSY_DMA_PINNED: i32 = 1

export const UNBIND_PGMAP_BASE: i32 = 0 // pgmap refs back to the bulk base; referenced pages are use-after-unbind hazards
export const UNBIND_ALL_IDLE: i32 = 1

// --- header: event table, 16 rows of 8 i32 -------------------------------------
export const T_EVENTS: u32 = HDR + 256
export const E_REF: u32 = 0 // refcount delta, small page
export const E_REF_FOLIO: u32 = 4 // refcount delta, folio head
export const E_PIN_FOLIO: u32 = 8 // pincount delta, folio head
export const E_MAP: u32 = 12 // mapcount delta
export const E_GETS: u32 = 16 // outstanding-gets delta
export const E_FLAGS: u32 = 20 // EF_* bits
export const E_INVERSE: u32 = 24 // event that undoes this one
export const E_STAT: u32 = 28 // stats counter index

export const EF_WALK: i32 = 1 // a gup walk (legacy: transient pgmap ref)
export const EF_UNPIN: i32 = 2 // an unpin
export const EF_ENTRY_SET: i32 = 4
export const EF_ENTRY_CLEAR: i32 = 8
export const EF_SLOW: i32 = 16 // not a pure refcount delta here: always the generic path
export const EF_WAKE_UNPINNED: i32 = 32 // may wake when it leaves the page not maybe-DMA-pinned (dax-gup-v1 unpin)
export const EF_WAKE_IDLE: i32 = 64 // reaching the idle refcount may wake (legacy 2->1 and 1025->1, dax-gup and upstream 1->0)
export const EF_PGMAP_GET: i32 = 128 // takes one pgmap ref per page (dax-gup-v1 entry insert)
export const EF_PGMAP_PUT: i32 = 256 // drops one pgmap ref per page (dax-gup-v1 entry delete)

export const EV_GET: i32 = 0
export const EV_PUT: i32 = 1
export const EV_PIN: i32 = 2
export const EV_UNPIN: i32 = 3
export const EV_ENTRY_INSERT: i32 = 4
export const EV_MAP_INSERT: i32 = 5
export const EV_ZAP: i32 = 6
export const EV_ENTRY_DELETE: i32 = 7
export const EV_FREE: i32 = 8 // not a counting event: ring op code only
export const EV_ASSOCIATE: i32 = 9
export const EV_FOLIO: i32 = 10

// --- header: hot shared words (each on its own 64-byte line) --------------------
export const H_PGMAP_REFS: u32 = HDR + 1024
export const H_WAITERS: u32 = HDR + 1088
export const H_RING_HEAD: u32 = HDR + 1152
export const H_SLOTS: u32 = HDR + 1216
export const H_PGMAP_SEQ: u32 = HDR + 1280 // bumped (and notified) when pgmap refs may have reached their base

// --- header: per-thread stats slots ----------------------------------------------
export const STATS: u32 = HDR + 4096
export const STAT_SLOTS: u32 = 64 // slot 63 is shared (atomic) by late attachers
export const STAT_SLOT_BYTES: u32 = 256 // 32 i64 counters
export const S_FREES: u32 = 8
export const S_HAZARDS: u32 = 9
export const S_NOTIFIES: u32 = 10
export const S_TRANSIENT: u32 = 31 // this thread's pgmap refs (legacy walks in flight, dax-gup per-page, v1 per-entry), percpu_ref-like

// --- header: violation ring -------------------------------------------------------
export const RING: u32 = HDR + 20480
export const RING_ENTRIES: u32 = 1024
// entry (8 i32): seq (index+1, written last), kind, pfn, op, expected, found, model, 0

// --- violation kinds (also the return status of an operation) ----------------------
export const V_REF_UNDERFLOW: i32 = 1
export const V_NEVER_GOT: i32 = 2
export const V_MAP_UNDERFLOW: i32 = 3
export const V_PIN_UNDERFLOW: i32 = 4
export const V_DOUBLE_ENTRY: i32 = 5
export const V_MISSING_ENTRY: i32 = 6
export const V_HAZARD: i32 = 7
export const V_TWO_FILES: i32 = 8
/** Not a violation: the table is unbound or its device closed (H_BOUND != 1); nothing was done. JS throws ENXIO. */
export const ST_UNBOUND: i32 = 0x80
