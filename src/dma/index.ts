/**
 * The DMA engine (SPEC §6): worker_threads that pin the pages of a DAX
 * mapping (pin_user_pages semantics), copy, hold and unpin. See docs/dma.md.
 */
export {
  DmaEngine,
  type DmaEngineOptions, type SubmitOptions, type DmaTransfer, type DmaResult, type DmaStats, type DmaMode,
  type Direction, type PinKind, type FailPoint,
} from './engine.js'
