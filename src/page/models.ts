/**
 * The three DAX page-refcount models of SPEC §3, as data. Nothing else in
 * pmemu asks "which model is this?": the page table encodes one of these
 * rows into small integers in the shared header, and the single wasm code
 * path (assembly/pages.ts) reads them.
 */
import type { ModelName } from '../region/types.js'
import {
  EV, EVENT_ROW_WORDS, EF_WALK, EF_UNPIN, EF_ENTRY_SET, EF_ENTRY_CLEAR, EF_SLOW, EF_WAKE_ANY, EF_WAKE_IDLE, M_EDGE_OLD, M_EDGE_NEW,
  PG_TRANSIENT, PG_PER_PAGE, PG_BULK, WAKE_TO_IDLE, WAKE_ON_UNPIN,
  BUSY_ABOVE_IDLE, BUSY_DMA_PINNED, UNBIND_PGMAP_ZERO, UNBIND_ALL_IDLE,
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

export type PgmapPolicy = 'transient' | 'per-page' | 'bulk'
export type BusyRule = 'above-idle' | 'maybe-dma-pinned'
export type WakeRule = 'to-idle' | 'on-unpin'
export type UnbindWait = 'pgmap-zero' | 'all-idle'
/**
 * What a layout break does with the file's page-cache entries (SPEC §3 ★):
 * 'range-after-free' — only the entries of the freed blocks go, as each is
 * freed (truncate_inode_pages); 'scope-before-wait' — after the zap, every
 * entry of the break scope is deleted before the wait (the reworked dax-gup
 * series: break-layouts "zaps the ptes, drops the reference … and waits for
 * _refcount to drop to zero"); 'scope-after-wait' — after the wait, every
 * DAX entry of the break scope is deleted and its folios split (Linux ≥ 6.15:
 * dax_break_layout_inode, then dax_delete_mapping_range). Pages fault back in.
 */
export type BreakEntries = 'range-after-free' | 'scope-before-wait' | 'scope-after-wait'

export interface RefcountModel {
  name: ModelName
  /** Refcount of an idle page: the floor (legacy: 1, never 0 while bound). */
  idleRefcount: number
  /** dev_pagemap ownership: transient during walks, one per referenced page, or bulk at enable. */
  pgmap: PgmapPolicy
  /** Truncate/punch-hole waits while a page is busy: refcount above idle, or maybe-DMA-pinned. */
  busy: BusyRule
  /** Waiters are woken on a transition to idle (legacy 2->1, upstream 1->0) or on any unpin. */
  wake: WakeRule
  /** Unbind waits for the pgmap count to reach 0 (walks / referenced pages), or for every page to be idle. */
  unbindWaits: UnbindWait
  /** Compound folios (order 9, counted on the head) exist only in this model. */
  folios: boolean
  /** References a page-cache entry holds on its page. */
  entryRefs: number
  /** References each mapping (PTE/PMD) holds; mapcount counts the mappings. */
  mapRefs: number
  /** What a layout break does with the page-cache entries of its scope (BreakEntries). */
  breakEntries: BreakEntries
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

export const MODELS: Readonly<Record<ModelName, RefcountModel>> = {
  legacy: {
    name: 'legacy', idleRefcount: 1, pgmap: 'transient', busy: 'above-idle', wake: 'to-idle',
    unbindWaits: 'pgmap-zero', folios: false, entryRefs: 0, mapRefs: 0, breakEntries: 'range-after-free',
    events: { ...GUP, entryInsert: NOTHING, mapInsert: NOTHING, zap: NOTHING, entryDelete: NOTHING },
    summary: 'Linux <= 6.14 fsdax: idle refcount 1, devmap entries hold no reference, truncate waits for refcount == 1 (woken on 2->1), pgmap only held during gup walks',
  },
  'dax-gup': {
    name: 'dax-gup', idleRefcount: 0, pgmap: 'per-page', busy: 'maybe-dma-pinned', wake: 'on-unpin',
    unbindWaits: 'pgmap-zero', folios: false, entryRefs: 1, mapRefs: 0, breakEntries: 'scope-before-wait',
    events: { ...GUP, entryInsert: e(1), mapInsert: NOTHING, zap: NOTHING, entryDelete: e(-1) },
    summary: 'the 2022 DAX-gup series: the page-cache entry holds one ref (0->1 takes the pgmap ref, the free drops it), truncate waits only for !page_maybe_dma_pinned(), woken on unpin',
  },
  upstream: {
    name: 'upstream', idleRefcount: 0, pgmap: 'bulk', busy: 'above-idle', wake: 'to-idle',
    unbindWaits: 'all-idle', folios: true, entryRefs: 0, mapRefs: 1, breakEntries: 'scope-after-wait',
    events: { ...GUP, entryInsert: NOTHING, mapInsert: e(1, 1), zap: e(-1, -1), entryDelete: NOTHING },
    summary: 'Linux >= 6.15: each mapping holds 1 ref + 1 mapcount, 2 MiB extents are order-9 folios counted on the head, truncate waits for refcount 0 (woken on 1->0), pgmap refs taken in bulk at enable',
  },
}

export const MODEL_NAMES = Object.keys(MODELS) as ModelName[]
export const MODEL_IDS: Readonly<Record<ModelName, number>> = { legacy: 0, 'dax-gup': 1, upstream: 2 }

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

const PGMAP_CODE: Record<PgmapPolicy, number> = { transient: PG_TRANSIENT, 'per-page': PG_PER_PAGE, bulk: PG_BULK }
const WAKE_CODE: Record<WakeRule, number> = { 'to-idle': WAKE_TO_IDLE, 'on-unpin': WAKE_ON_UNPIN }
const BUSY_CODE: Record<BusyRule, number> = { 'above-idle': BUSY_ABOVE_IDLE, 'maybe-dma-pinned': BUSY_DMA_PINNED }
const UNBIND_CODE: Record<UnbindWait, number> = { 'pgmap-zero': UNBIND_PGMAP_ZERO, 'all-idle': UNBIND_ALL_IDLE }

/** pgmap refs at rest while bound. */
export function pgmapBase(model: RefcountModel, pageCount: number): number {
  return model.pgmap === 'bulk' ? pageCount : 0
}

/**
 * Write `model` into the header of a side table as small integers: the model
 * constants and one row per event (see layout.ts). Done once at open.
 */
export function encodeModel(i32: Int32Array, model: RefcountModel, pageCount: number, opts: { trackGets?: boolean } = {}): void {
  i32[M_IDLE >> 2] = model.idleRefcount
  i32[M_PGMAP >> 2] = PGMAP_CODE[model.pgmap]
  i32[M_WAKE >> 2] = WAKE_CODE[model.wake]
  i32[M_BUSY >> 2] = BUSY_CODE[model.busy]
  i32[M_UNBIND >> 2] = UNBIND_CODE[model.unbindWaits]
  i32[M_FOLIOS >> 2] = model.folios ? 1 : 0
  i32[M_ENTRY_REF >> 2] = model.entryRefs
  i32[M_MAP_REF >> 2] = model.mapRefs
  i32[M_PGMAP_BASE >> 2] = pgmapBase(model, pageCount)
  // The hot path must leave its fast lane whenever the old refcount is one a
  // pgmap transition can start from (per-page: 0).
  i32[M_EDGE_OLD >> 2] = model.pgmap === 'per-page' ? 0 : -0x80000000
  // ... and whenever the new one is below the floor or one a per-page pgmap
  // transition ends at (0).
  i32[M_EDGE_NEW >> 2] = model.pgmap === 'per-page' ? 0 : model.idleRefcount - 1
  for (const ev of PAGE_EVENTS) {
    const fx = model.events[ev]
    const t = TRAITS[ev]
    let flags = t.flags
    // Derived routing bits: not a pure refcount delta -> generic path;
    // woken on every unpin -> every unpin checks for waiters.
    if (fx.map !== 0 || (t.flags & (EF_ENTRY_SET | EF_ENTRY_CLEAR)) || (t.gets !== 0 && opts.trackGets)) flags |= EF_SLOW
    if (model.wake === 'on-unpin' && (t.flags & EF_UNPIN)) flags |= EF_WAKE_ANY
    if (model.wake === 'to-idle' && (fx.ref < 0 || fx.folioRef < 0)) flags |= EF_WAKE_IDLE
    const row = (T_EVENTS >> 2) + EV[ev] * EVENT_ROW_WORDS
    i32.set([fx.ref, fx.folioRef, fx.folioPin, fx.map, t.gets, flags, EV[t.inverse], EV[ev]], row)
  }
}

/** Refcount an idle page of `model` has: the floor. */
export function idleRefcount(model: ModelName): number {
  return MODELS[model].idleRefcount
}
