/**
 * Argument checks shared by the public entry points (SPEC §8): each throws a
 * PmemuError EINVAL naming the operation and the argument.
 */
import { pmemError, type ErrorDetails } from '../errors.js'

/** How a bad value reads in a message: strings quoted, others by type/value, never a whole buffer. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`
  if (typeof v === 'bigint') return `${v}n`
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`
  if (typeof v === 'object') return `an object`
  if (typeof v === 'function') return 'a function'
  return String(v)
}

/** `value` must be an AbortSignal (or undefined). */
export function checkSignal(value: unknown, op: string, what = 'signal', details?: ErrorDetails): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (!(value instanceof AbortSignal)) {
    throw pmemError('EINVAL', op, `${what} must be an AbortSignal, got ${describe(value)}`, details)
  }
  return value
}

/** `value` must be a boolean (or undefined). */
export function checkBoolean(value: unknown, op: string, what: string, details?: ErrorDetails): boolean | undefined {
  if (value !== undefined && typeof value !== 'boolean') {
    throw pmemError('EINVAL', op, `${what} must be a boolean, got ${describe(value)}`, details)
  }
  return value
}

/** `value` must be a Uint8Array (Buffer included). */
export function checkBytes(value: unknown, op: string, what: string, details?: ErrorDetails): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw pmemError('EINVAL', op, `${what} must be a Uint8Array, got ${describe(value)}`, details)
  }
  return value
}

/** `value` must be a non-negative safe integer. */
export function checkOffset(value: unknown, op: string, what: string, details?: ErrorDetails): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw pmemError('EINVAL', op, `${what} must be a non-negative integer, got ${describe(value)}`, details)
  }
  return value
}

/** `value` must be undefined or a plain options object (not null, not a primitive). */
export function checkOptions(value: unknown, op: string, details?: ErrorDetails): void {
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw pmemError('EINVAL', op, `options must be an object, got ${describe(value)}`, details)
  }
}

/** `{ signal, timeoutMs }` of a wait: both checked before anything changes. */
export function checkWaitOptions(opts: unknown, op: string, details?: ErrorDetails): void {
  checkOptions(opts, op, details)
  if (opts === undefined) return
  const o = opts as { signal?: unknown; timeoutMs?: unknown }
  checkSignal(o.signal, op, 'signal', details)
  const t = o.timeoutMs
  if (t !== undefined && !(typeof t === 'number' && t >= 0 && !Number.isNaN(t))) {
    throw pmemError('EINVAL', op, `timeoutMs must be a non-negative number, got ${describe(t)}`, details)
  }
}
