/**
 * The struct-page side table and the four DAX refcount models (SPEC §1, §3).
 * `PageTable` is what the device exposes as `dev.pages`; the DAX layer and
 * the DMA engine (via `PageTable.attach` in a worker) drive the same table.
 */
export {
  PageTable,
  type PageTableOptions, type PageTableTransferable, type PageSnapshot, type PageTableStats,
  type Violation, type WaitOptions,
} from './table.js'
export {
  MODELS, MODEL_NAMES, PAGE_EVENTS, PIN_BIAS, FOLIO_ORDER, FOLIO_PAGES, isModelName, idleRefcount, pgmapBase, holdsPgmap,
  type RefcountModel, type PageEvent, type EventEffect, type PgmapRef, type BusyRule, type WakeRule, type UnbindWait, type BreakEntries,
  type ModelName,
} from './models.js'
export { MAX_PAGES, RECORDS, RECORD_BYTES, HDR, COUNTER_NAMES, type CounterName, type PageFlag } from './layout.js'
export { wasmPath, loadModule } from './wasm.js'
