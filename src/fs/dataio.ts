/** The one place file data and metadata bytes are read and written: the extensions' I/O checks hang off it. */
import { pmemError } from '../errors.js'
import type { FsState } from './state.js'
import type { IoContext, ReadRefusal } from './types.js'

export function metaRead(st: FsState, off: number, dst: Uint8Array, what: string): void {
  for (const check of st.hooks.checkMetaRead) {
    const e = check(off, dst.length, what)
    if (e) {
      st.shutdown(`metadata read failed (${what} at offset ${off}): ${e.message}`)
      throw pmemError('EIO', 'read', `metadata read failed (${what})`, { offset: off, cause: e })
    }
  }
  st.device.read(off, dst)
}

/**
 * The one place data is read. An extension refusing part of the range (poison)
 * says how many bytes at its start are readable: they are copied, nothing past
 * them is, and the refusal is returned for the caller to throw (see docs/faults.md).
 */
export function dataRead(st: FsState, off: number, dst: Uint8Array, ctx: IoContext): ReadRefusal | undefined {
  const checks = st.hooks.checkDataRead
  if (checks.length > 0) {
    let refusal: ReadRefusal | undefined
    for (const check of checks) {
      const r = check(off, dst.length, ctx)
      if (r && (!refusal || r.readable < refusal.readable)) refusal = r
    }
    if (refusal) {
      const clean = Math.max(0, Math.min(dst.length, Math.floor(refusal.readable)))
      if (clean > 0) st.device.read(off, dst.subarray(0, clean))
      return { readable: clean, error: refusal.error }
    }
  }
  st.device.read(off, dst)
  return undefined
}

/** The one place data is stored (writes and zeroing). */
export function dataWrite(st: FsState, off: number, src: Uint8Array | number, ctx: IoContext): void {
  const len = typeof src === 'number' ? src : src.length
  const h = st.hooks
  for (const check of h.checkDataWrite) {
    const e = check(off, len, ctx)
    if (e) throw e
  }
  if (typeof src === 'number') st.device.zero(off, src)
  else st.device.write(off, src)
  for (const after of h.afterDataWrite) after(off, len, ctx)
}
