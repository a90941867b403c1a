/**
 * The four DAX page-refcount models of SPEC §3 (revised 2026-12), as data.
 * Nothing else in pmemu asks "which model is this?": the page table encodes
 * one of these rows into small integers in the shared header, and the single
 * wasm code path (assembly/pages.ts) reads them; the DAX layer reads
 * `breakEntries`. docs/models.md cites the kernel function or posted patch
 * behind every field.
 */
import { MODEL_BY_ID, type ModelName } from '../util/model-ids.js'
import {
  EV, EVENT_ROW_WORDS, EF_WALK, EF_UNPIN, EF_ENTRY_SET, EF_ENTRY_CLEAR, EF_SLOW, EF_WAKE_UNPINNED, EF_WAKE_IDLE,
  EF_PGMAP_GET, EF_PGMAP_PUT, M_EDGE_OLD, M_EDGE_NEW,
  PGB_BULK, PGB_WALK, PGB_PER_PAGE, PGB_PER_ENTRY, WAKE_TO_IDLE, WAKE_ON_UNPIN,
  BUSY_ABOVE_IDLE, BUSY_DMA_PINNED, UNBIND_PGMAP_BASE, UNBIND_ALL_IDLE,
  M_IDLE, M_PGMAP, M_WAKE, M_BUSY, M_UNBIND, M_FOLIOS, M_ENTRY_REF, M_MAP_REF, M_PGMAP_BASE,
  T_EVENTS,
} from './layout.js'

export type { ModelName }

/** Counting events: what the DAX layer, gup and drivers do to a page. */
export type PageEvent = 'get' | 'put' | 'pin' | 'unpin' | 'entryInsert' | 'mapInsert' | 'zap' | 'entryDelete'
export const PAGE_EVENTS: readonly PageEvent[] = ['get', 'put', 'pin', 'unpin', 'entryInsert', 'mapInsert', 'zap', 'entryDelete']

/** GUP_PIN_COUNTING_BIAS: a pin of a small page adds this to its refcount. */
export const PIN_BIAS = 1024
/** Order of a PMD folio: 512 pages (2 MiB at 4 KiB). */
export const FOLIO_ORDER = 9
export const FOLIO_PAGES = 1 << FOLIO_ORDER

/** What one event does to the counters of the page (or folio head) it names. */
export interface EventEffect {
  /** refcount delta on an order-0 page */
  ref: number
  /** refcount delta on a folio head */
  folioRef: number
  /** pincount delta on a folio head */
  folioPin: number
  /** mapcount delta */
  map: number
}

/**
 * How a model holds dev_pagemap references (any combination):
 * 'bulk' one per page taken when the device is enabled (pagemap_range's
 * percpu_ref_get_many) and dropped at unbind; 'walk' a transient tryget held
 * for the length of a gup walk (legacy get_dev_pagemap); 'per-page' one per
 * page whose refcount is > 0 (the reworked series: 0->1 takes it, the free
 * drops it); 'per-entry' one per page-cache entry (dax-gup-v1: taken at
 * insert, dropped when truncate_inode_pages deletes the entry).
 */
export type PgmapRef = 'bulk' | 'walk' | 'per-page' | 'per-entry'
/** Truncate/punch-hole waits while a page of the file is busy: refcount above idle, or maybe-DMA-pinned. */
export type BusyRule = 'above-idle' | 'maybe-dma-pinned'
/** Waiters are woken when a put/unpin reaches the idle refcount, or when an unpin leaves the page not maybe-DMA-pinned. */
export type WakeRule = 'to-idle' | 'on-unpin'
/**
 * Unbind waits for the pgmap refs to fall back to the bulk base (pages still
 * referenced afterwards are reported as use-after-unbind hazards), or for
 * every page to be idle.
 */
export type UnbindWait = 'pgmap-base' | 'all-idle'
/**
 * What a layout break (truncate / punch-hole) does with the page-cache
 * entries of the broken scope: 'range-after-free' keeps them and truncate
 * deletes the freed range's (legacy, dax-gup-v1: truncate_inode_pages);
 * 'scope-before-wait' deletes them after the zap, before the wait (the
 * reworked series' break drops the entry's page reference, then waits for
 * refcount 0); 'scope-after-wait' deletes them after the wait and splits
 * their folios (>= 6.15: dax_break_layout_inode, then dax_delete_mapping_range).
 */
export type BreakEntries = 'range-after-free' | 'scope-before-wait' | 'scope-after-wait'

export interface RefcountModel {
  name: ModelName
  /** Refcount of an idle page: the floor (1 in the 1-based models, never below it while bound). */
  idleRefcount: number
  /** dev_pagemap references: the ways this model holds them. */
  pgmap: readonly PgmapRef[]
  busy: BusyRule
  wake: WakeRule
  unbindWaits: UnbindWait
  breakEntries: BreakEntries
  /** Compound folios (order 9, counted on the head) exist only in this model. */
  folios: boolean
  /** Page references a page-cache entry holds on its page. */
  entryRefs: number
  /** References each mapping (PTE/PMD) holds; mapcount counts the mappings. */
  mapRefs: number
  events: Readonly<Record<PageEvent, EventEffect>>
  /** One line per row of SPEC §3, for docs and logs. */
  summary: string
}

const e = (ref: number, map = 0, folioRef = Math.sign(ref), folioPin = 0): EventEffect => ({ ref, folioRef, folioPin, map })

/** Rows shared by every model: plain gets and pins (folio pin = +1 ref +1 pincount). */
const GUP: Pick<Record<PageEvent, EventEffect>, 'get' | 'put' | 'pin' | 'unpin'> = {
  get: e(1), put: e(-1), pin: e(PIN_BIAS, 0, 1, 1), unpin: e(-PIN_BIAS, 0, -1, -1),
}
const NOTHING = e(0)

// In the seed thread's order: the 1-refcount hack, the series as posted, the
// rework its review led to, and what Linux 6.15 merged.
export const MODELS: Readonly<Record<ModelName, RefcountModel>> = {
  legacy: {
    name: 'legacy', idleRefcount: 1, pgmap: ['bulk', 'walk'], busy: 'above-idle', wake: 'to-idle',
    unbindWaits: 'pgmap-base', breakEntries: 'range-after-free', folios: false, entryRefs: 0, mapRefs: 0,
    events: { ...GUP, entryInsert: NOTHING, mapInsert: NOTHING, zap: NOTHING, entryDelete: NOTHING },
    summary: 'Linux <= 6.14 fsdax: idle refcount 1, devmap entries hold no reference, truncate waits until no page of the file has refcount > 1 (woken on a put or unpin that leaves 1), pgmap refs bulk at enable plus a transient tryget per gup walk',
  },
  'dax-gup-v1': {
    name: 'dax-gup-v1', idleRefcount: 1, pgmap: ['bulk', 'per-entry'], busy: 'maybe-dma-pinned', wake: 'on-unpin',
    unbindWaits: 'pgmap-base', breakEntries: 'range-after-free', folios: false, entryRefs: 0, mapRefs: 0,
    events: { ...GUP, entryInsert: NOTHING, mapInsert: NOTHING, zap: NOTHING, entryDelete: NOTHING },
    summary: 'the DAX-gup series as posted (v1, 2022-09): idle refcount 1, an entry takes a pgmap ref and no page ref (dropped in truncate_inode_pages), truncate waits only for !page_maybe_dma_pinned() (woken on unpin), so a plain get outstanding at the free is a use-after-free hazard',
  },
  'dax-gup': {
    name: 'dax-gup', idleRefcount: 0, pgmap: ['per-page'], busy: 'above-idle', wake: 'to-idle',
    unbindWaits: 'all-idle', breakEntries: 'scope-before-wait', folios: false, entryRefs: 1, mapRefs: 0,
    events: { ...GUP, entryInsert: e(1), mapInsert: NOTHING, zap: NOTHING, entryDelete: e(-1) },
    summary: 'the reworked DAX-gup series (v2/v3): 0-based, the page-cache entry holds one page ref (0->1 takes the pgmap ref, the free drops it), the layout break drops the entry refs and waits for refcount 0 (woken on 1->0)',
  },
  upstream: {
    name: 'upstream', idleRefcount: 0, pgmap: ['bulk'], busy: 'above-idle', wake: 'to-idle',
    unbindWaits: 'pgmap-base', breakEntries: 'scope-after-wait', folios: true, entryRefs: 0, mapRefs: 1,
    events: { ...GUP, entryInsert: NOTHING, mapInsert: e(1, 1), zap: e(-1, -1), entryDelete: NOTHING },
    summary: 'Linux >= 6.15: each mapping holds 1 ref + 1 mapcount, 2 MiB extents are order-9 folios counted on the head, truncate waits for refcount 0 (woken on 1->0) and then deletes every DAX entry of the file, pgmap refs taken in bulk at enable',
  },
}

export const MODEL_NAMES = Object.keys(MODELS) as ModelName[]
/** The id recorded in the info block and the side table's header (src/util/model-ids.ts). */
export const MODEL_IDS = Object.fromEntries(MODEL_BY_ID.map((n, i) => [n, i])) as Readonly<Record<ModelName, number>>

export function isModelName(x: unknown): x is ModelName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(MODELS, x)
}

/** Model-independent attributes of each event. */
interface EventTraits { gets: number; flags: number; inverse: PageEvent }
const TRAITS: Readonly<Record<PageEvent, EventTraits>> = {
  get: { gets: 1, flags: EF_WALK, inverse: 'put' },
  put: { gets: -1, flags: 0, inverse: 'get' },
  pin: { gets: 0, flags: EF_WALK, inverse: 'unpin' },
  unpin: { gets: 0, flags: EF_UNPIN, inverse: 'pin' },
  entryInsert: { gets: 0, flags: EF_ENTRY_SET, inverse: 'entryDelete' },
  mapInsert: { gets: 0, flags: 0, inverse: 'zap' },
  zap: { gets: 0, flags: 0, inverse: 'mapInsert' },
  entryDelete: { gets: 0, flags: EF_ENTRY_CLEAR, inverse: 'entryInsert' },
}

const PGMAP_BIT: Record<PgmapRef, number> = { bulk: PGB_BULK, walk: PGB_WALK, 'per-page': PGB_PER_PAGE, 'per-entry': PGB_PER_ENTRY }
const WAKE_CODE: Record<WakeRule, number> = { 'to-idle': WAKE_TO_IDLE, 'on-unpin': WAKE_ON_UNPIN }
const BUSY_CODE: Record<BusyRule, number> = { 'above-idle': BUSY_ABOVE_IDLE, 'maybe-dma-pinned': BUSY_DMA_PINNED }
const UNBIND_CODE: Record<UnbindWait, number> = { 'pgmap-base': UNBIND_PGMAP_BASE, 'all-idle': UNBIND_ALL_IDLE }

/** Does `model` hold pgmap refs in way `how`? */
export function holdsPgmap(model: RefcountModel, how: PgmapRef): boolean {
  return model.pgmap.includes(how)
}

/** pgmap refs at rest while bound: the bulk refs taken at enable. */
export function pgmapBase(model: RefcountModel, pageCount: number): number {
  return holdsPgmap(model, 'bulk') ? pageCount : 0
}

/**
 * Write `model` into the header of a side table as small integers: the model
 * constants and one row per event (see layout.ts). Done once at open.
 */
export function encodeModel(i32: Int32Array, model: RefcountModel, pageCount: number, opts: { trackGets?: boolean } = {}): void {
  i32[M_IDLE >> 2] = model.idleRefcount
  i32[M_PGMAP >> 2] = model.pgmap.reduce((bits, how) => bits | PGMAP_BIT[how], 0)
  i32[M_WAKE >> 2] = WAKE_CODE[model.wake]
  i32[M_BUSY >> 2] = BUSY_CODE[model.busy]
  i32[M_UNBIND >> 2] = UNBIND_CODE[model.unbindWaits]
  i32[M_FOLIOS >> 2] = model.folios ? 1 : 0
  i32[M_ENTRY_REF >> 2] = model.entryRefs
  i32[M_MAP_REF >> 2] = model.mapRefs
  i32[M_PGMAP_BASE >> 2] = pgmapBase(model, pageCount)
  // The hot path must leave its fast lane whenever the old refcount is one a
  // pgmap transition can start from (per-page: 0).
  const perPage = holdsPgmap(model, 'per-page')
  i32[M_EDGE_OLD >> 2] = perPage ? 0 : -0x80000000
  // ... and whenever the new one is below the floor or one a per-page pgmap
  // transition ends at (0).
  i32[M_EDGE_NEW >> 2] = perPage ? 0 : model.idleRefcount - 1
  for (const ev of PAGE_EVENTS) {
    const fx = model.events[ev]
    const t = TRAITS[ev]
    let flags = t.flags
    // Derived routing bits: not a pure refcount delta -> generic path; the
    // wake rule -> which events check for waiters; per-entry pgmap refs ->
    // the entry events take and drop them.
    if (fx.map !== 0 || (t.flags & (EF_ENTRY_SET | EF_ENTRY_CLEAR)) || (t.gets !== 0 && opts.trackGets)) flags |= EF_SLOW
    if (model.wake === 'on-unpin' && (t.flags & EF_UNPIN)) flags |= EF_WAKE_UNPINNED
    if (model.wake === 'to-idle' && (fx.ref < 0 || fx.folioRef < 0)) flags |= EF_WAKE_IDLE
    if (holdsPgmap(model, 'per-entry') && (t.flags & EF_ENTRY_SET)) flags |= EF_PGMAP_GET
    if (holdsPgmap(model, 'per-entry') && (t.flags & EF_ENTRY_CLEAR)) flags |= EF_PGMAP_PUT
    const row = (T_EVENTS >> 2) + EV[ev] * EVENT_ROW_WORDS
    i32.set([fx.ref, fx.folioRef, fx.folioPin, fx.map, t.gets, flags, EV[t.inverse], EV[ev]], row)
  }
}

/** Refcount an idle page of `model` has: the floor. */
export function idleRefcount(model: ModelName): number {
  return MODELS[model].idleRefcount
}
