import { pmemError } from '../errors.js'

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
}

/** A size in bytes: a non-negative safe integer, or a string like '64MiB', '2GiB', '4096'. */
export type Size = number | string

/**
 * Parse a size; throws EINVAL (naming `what`) on anything that is not a whole,
 * non-negative byte count. `op` becomes the error's `syscall` (the operation
 * the caller was performing, e.g. 'mkfs' or 'Region.read'); it defaults to
 * 'parseSize'.
 */
export function parseSize(value: Size | undefined | null, what = 'size', op = 'parseSize'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw pmemError('EINVAL', op, `${what} must be a non-negative whole number of bytes, got ${value}`)
    }
    return value
  }
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value)
    const mult = m ? UNITS[m[2]!.toLowerCase()] : undefined
    if (m && mult !== undefined) {
      const n = Number(m[1]) * mult
      if (Number.isSafeInteger(n)) return n
    }
    throw pmemError('EINVAL', op, `${what} '${value}' is not a size (use bytes or e.g. '64MiB', '2GiB')`)
  }
  throw pmemError('EINVAL', op, `${what} must be a number of bytes or a string like '64MiB', got ${typeof value}`)
}

/** Human-readable bytes with a binary unit, e.g. 67108864 -> '64 MiB'. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1 && v % 1 === 0) { v /= 1024; i++ }
  return `${Number.isInteger(v) ? v : v.toFixed(2)} ${units[i]}`
}
