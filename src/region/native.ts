import { createRequire } from 'node:module'
import { join } from 'node:path'
import { packageRoot } from '../util/root.js'
import type { FlushKind } from './types.js'

/** The shape of native-shims/src/binding.cc's exports. */
export interface NativeShim {
  mapFile(fd: number, length: number, readOnly: boolean, trySync: boolean, slices: number[]): MapResult
  mapAnon(length: number, slices: number[]): MapResult
  persist(sab: SharedArrayBuffer, offset: number, length: number, kind: FlushKind | number): void
  cpuFlush(): FlushKind
  benchGetPut(sab: SharedArrayBuffer, offset: number, iters: number): number
  benchPinUnpin(sab: SharedArrayBuffer, offset: number, delta: number, iters: number): number
  /** iters × persist(kind) of [offset, offset+length) in C; kind as pmem_core.h's integer or name. */
  benchPersist(sab: SharedArrayBuffer, offset: number, length: number, kind: FlushKind | number, iters: number): number
  /** +delta on the refcount word and +1 on a 64-bit pgmap counter, then both back, per iteration: four locked operations. */
  benchEdgePair(sab: SharedArrayBuffer, refOffset: number, pgmapSab: SharedArrayBuffer, pgmapOffset: number, delta: number, iters: number): number
  benchSweep(sab: SharedArrayBuffer, offset: number, stride: number, count: number, delta: number, rounds: number): number
  benchFolioPin(sab: SharedArrayBuffer, refOffset: number, pinOffset: number, iters: number): number
  benchMemcpy(dst: SharedArrayBuffer, dstOff: number, src: SharedArrayBuffer, srcOff: number, length: number, rounds: number): number
  /**
   * memcpy of `length` bytes between two SharedArrayBuffers (memmove if the
   * ranges overlap); RangeError when a range is outside its buffer. Returns
   * `length`. Optional: a shim built before it was added lacks it.
   */
  copy?(dst: SharedArrayBuffer, dstOff: number, src: SharedArrayBuffer, srcOff: number, length: number): number
  /**
   * How many of the Int32 words [index, index+count) of `sab` are first,
   * first+1, … (up to the first that is not), each read with a seq-cst atomic
   * load. Optional, as `copy`.
   */
  countSequence?(sab: SharedArrayBuffer, index: number, first: number, count: number): number
  // ---- per-mapping address ranges (optional: a shim built before them lacks them) ----
  /**
   * Reserve `length` bytes of address space (whole system pages, private zero
   * pages, never PROT_NONE) and return its id and windows: a
   * SharedArrayBuffer of `span` bytes every `step` bytes. The reservation is
   * unmapped when the last window (or span) is collected, in any thread.
   * ENOMEM past rangeLimits().maxBytes.
   */
  reserve?(length: number, step: number, span: number): { id: number; sabs: SharedArrayBuffer[] }
  /** A SharedArrayBuffer over [offset, offset+length) of range `id` (ENXIO when it is gone). */
  rangeSpan?(id: number, offset: number, length: number): SharedArrayBuffer
  /** Map [fileOffset, +length) of fd at `offset` of the range (MAP_FIXED); mode 0 shared, 1 private, 2 MAP_SYNC. */
  rangeMap?(id: number, offset: number, length: number, fd: number, fileOffset: number, mode: number): void
  /** Replace [offset, +length) of the range with guard pages (the canary). */
  rangeGuard?(id: number, offset: number, length: number): void
  /** Replace [offset, +length) of the range with private zero pages. */
  rangeZero?(id: number, offset: number, length: number): void
  /** -1: [offset, +length) holds the canary; -2: the range is gone; else the offset of the first other byte. */
  rangeCheck?(id: number, offset: number, length: number): number
  /** Live reservations in the process. */
  rangeCount?(): number
  rangeLimits?(): { maxBytes: number; canary: number; pageSize: number }
}
export interface MapResult {
  sabs: SharedArrayBuffer[]; mapSync: boolean; syncErrno: number
  /** mapAnon: a descriptor of the memory file behind the mapping (the caller closes it), or -1 (none). */
  fd?: number
}

let shim: NativeShim | undefined
let loadError: Error | undefined

/** The native shim, loaded once per thread (it is context-aware, so workers load it too). */
export function nativeShim(): NativeShim {
  if (shim) return shim
  if (loadError) throw loadError
  try {
    const require = createRequire(import.meta.url)
    shim = require(join(packageRoot(), 'native-shims/build/Release/pmemu_native.node')) as NativeShim
    return shim
  } catch (e) {
    loadError = e as Error
    throw e
  }
}

export function nativeAvailable(): boolean {
  try { nativeShim(); return true } catch { return false }
}
