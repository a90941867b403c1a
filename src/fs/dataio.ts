/** The one place file data and metadata bytes are read and written: the I/O hooks of the fault layer hang off it. */
import { pmemError } from '../errors.js'
import type { FsState } from './state.js'
import type { IoContext } from './types.js'

export function metaRead(st: FsState, off: number, dst: Uint8Array, what: string): void {
  const hook = st.ioHooks.beforeMetaRead
  if (hook) {
    try { hook(off, dst.length, what) } catch (e) {
      st.shutdown(`metadata read failed (${what} at offset ${off}): ${(e as Error).message}`)
      throw pmemError('EIO', 'read', `metadata read failed (${what})`, { offset: off, cause: e })
    }
  }
  st.device.read(off, dst)
}

/** The one place data is read: the fault layer's poison check hangs off beforeDataRead. */
export function dataRead(st: FsState, off: number, dst: Uint8Array, ctx: IoContext): void {
  const hook = st.ioHooks.beforeDataRead
  if (hook) {
    try { hook(off, dst.length, ctx) } catch (e) {
      // A hook refusing part of the range (poison) may say how many bytes at its start are readable:
      // they are copied, nothing past them is (see docs/faults.md).
      const clean = (e as { cleanBytes?: unknown } | null)?.cleanBytes
      if (typeof clean === 'number' && clean > 0 && clean < dst.length) st.device.read(off, dst.subarray(0, clean))
      throw e
    }
  }
  st.device.read(off, dst)
}

/** The one place data is stored (writes and zeroing). */
export function dataWrite(st: FsState, off: number, src: Uint8Array | number, ctx: IoContext): void {
  const len = typeof src === 'number' ? src : src.length
  st.ioHooks.beforeDataWrite?.(off, len, ctx)
  if (typeof src === 'number') st.device.zero(off, src)
  else st.device.write(off, src)
  st.ioHooks.afterDataWrite?.(off, len, ctx)
}
