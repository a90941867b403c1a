/** Argument checks and small helpers shared by the fs operation files. */
import { pmemError, safeString } from '../errors.js'
import type { FsDevice } from './device.js'
import { forEachRun, lastEnd } from './extents.js'
import type { Extent } from './layout.js'
import { BREAK_SCOPES, type BreakScope, type TruncateOptions } from './types.js'

export function validateInt(v: unknown, what: string, syscall: string, path?: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw pmemError('EINVAL', syscall, `${what} must be an integer >= ${min}, got ${safeString(v)}`, { path })
  }
  return v
}

export function validateOpts(opts: TruncateOptions | undefined, syscall: string, path: string): TruncateOptions {
  if (opts === undefined || opts === null) return {}
  if (typeof opts !== 'object') throw pmemError('EINVAL', syscall, 'options must be an object', { path })
  if (opts.timeoutMs !== undefined && (typeof opts.timeoutMs !== 'number' || !(opts.timeoutMs >= 0))) {
    throw pmemError('EINVAL', syscall, `timeoutMs must be a number >= 0, got ${safeString(opts.timeoutMs)}`, { path })
  }
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw pmemError('EINVAL', syscall, 'signal must be an AbortSignal', { path })
  }
  return opts
}

export function freedWithIndex(ext: Extent[], l0: number, l1: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = []
  forEachRun(ext, l0, Math.min(l1, Math.max(l0, lastEnd(ext))), (l, n, p) => { if (p !== null) out.push([p, n, l]) })
  return out
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function formatUuid(u: Uint8Array): string {
  const h = Buffer.from(u).toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`
}

/** Typed EINVAL for option objects whose callbacks are not functions. */
export function checkHookOpts(opts: unknown, syscall: string): void {
  if (opts === undefined) return
  if (opts === null || typeof opts !== 'object') throw pmemError('EINVAL', syscall, 'options must be an object')
  for (const k of ['onCrashPoint', 'progress'] as const) {
    const v = (opts as Record<string, unknown>)[k]
    if (v !== undefined && typeof v !== 'function') throw pmemError('EINVAL', syscall, `${k} must be a function`)
  }
}

/** The mount option breakScope (default 'file'); anything else is EINVAL. */
export function breakScopeOf(v: unknown, syscall: string): BreakScope {
  if (v === undefined) return 'file'
  if (typeof v === 'string' && (BREAK_SCOPES as readonly string[]).includes(v)) return v as BreakScope
  const shown = typeof v === 'string' ? `'${v}'` : typeof v === 'bigint' ? `${v}n` : safeString(v)
  throw pmemError('EINVAL', syscall, `breakScope must be ${BREAK_SCOPES.map(n => `'${n}'`).join(' or ')}, got ${shown}`)
}

/** Typed EINVAL for objects that do not look like an FsDevice. */
export function checkDevice(dev: unknown, syscall: string): asserts dev is FsDevice {
  const d = dev as FsDevice | null | undefined
  if (!d || typeof d !== 'object' || typeof d.read !== 'function' || typeof d.write !== 'function' ||
      typeof d.persist !== 'function' || typeof d.zero !== 'function' || typeof d.onCrash !== 'function') {
    throw pmemError('EINVAL', syscall, 'not a device (needs read, write, zero, persist, onCrash)')
  }
  const ps = d.pageSize
  if (typeof ps !== 'number' || !Number.isInteger(ps) || ps < 4096 || (ps & (ps - 1)) !== 0 || ps > 1 << 24) {
    throw pmemError('EINVAL', syscall, `page size ${safeString(ps)} is not a power of two in 4096..16 MiB`)
  }
  if (typeof d.pageCount !== 'number' || !Number.isSafeInteger(d.pageCount) || d.pageCount < 1) {
    throw pmemError('EINVAL', syscall, `bad page count ${safeString(d.pageCount)}`)
  }
}
