/**
 * pmemu's one error type (SPEC §8). Every error a user can provoke is a
 * PmemuError with an errno name in `code`, the positive Linux errno in
 * `errno`, the operation in `syscall`, and the path, pfn or offset involved —
 * shaped like Node's fs errors so tooling handles it the same way.
 */
import { constants } from 'node:os'

/** errno names pmemu raises that Node's `os.constants.errno` does not have. */
const EXTRA_ERRNO: Record<string, number> = {
  EHWPOISON: 133,
  EFSCORRUPTED: 117, // Linux's EUCLEAN, as XFS/ext4 use it
  EUCLEAN: 117,
  SIGBUS: 7, // a signal, not an errno: reported with the signal number
  ABORT_ERR: 20,
}

export type ErrorCode =
  | 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'ENOSPC' | 'EBADF'
  | 'EROFS' | 'EFBIG' | 'ENAMETOOLONG' | 'EBUSY' | 'EINVAL' | 'ETIMEDOUT' | 'EHWPOISON'
  | 'EOPNOTSUPP' | 'ENXIO' | 'EIO' | 'EFSCORRUPTED' | 'SIGBUS' | 'EACCES' | 'EPERM'
  | 'ENOMEM' | 'ENOTSUP' | 'EXDEV' | 'ELOOP' | 'EMFILE' | 'ENODEV' | 'EAGAIN' | 'ESPIPE'
  | 'ERANGE' | 'ABORT_ERR' | 'EOVERFLOW'
  | (string & {})

/** Look up the positive Linux errno for a code (0 when unknown). */
export function errnoOf(code: string): number {
  const known = (constants.errno as Record<string, number>)[code]
  return known ?? EXTRA_ERRNO[code] ?? 0
}

export interface ErrorDetails {
  path?: string
  pfn?: number
  offset?: number
  length?: number
  cause?: unknown
  [key: string]: unknown
}

export class PmemuError extends Error {
  readonly code: ErrorCode
  readonly errno: number
  readonly syscall: string
  path?: string
  pfn?: number
  offset?: number
  length?: number

  constructor(code: ErrorCode, syscall: string, message: string, details: ErrorDetails = {}) {
    const where = details.path !== undefined ? ` '${details.path}'`
      : details.pfn !== undefined ? `, pfn ${details.pfn}`
      : details.offset !== undefined ? `, offset ${details.offset}` : ''
    super(`${code}: ${message}, ${syscall}${where}`, details.cause !== undefined ? { cause: details.cause } : undefined)
    this.name = 'PmemuError'
    this.code = code
    this.errno = errnoOf(code)
    this.syscall = syscall
    for (const [k, v] of Object.entries(details)) {
      if (k !== 'cause' && v !== undefined) (this as Record<string, unknown>)[k] = v
    }
  }
}

/** Build a PmemuError: `pmemError('ENOENT', 'open', 'no such file', { path })`. */
export function pmemError(code: ErrorCode, syscall: string, message: string, details?: ErrorDetails): PmemuError {
  return new PmemuError(code, syscall, message, details)
}

/** The error an aborted operation rejects with: a DOMException-like AbortError with a code. */
export class PmemuAbortError extends PmemuError {
  constructor(syscall: string, details: ErrorDetails = {}) {
    super('ABORT_ERR', syscall, 'The operation was aborted', details)
    this.name = 'AbortError'
  }
}

export function isPmemuError(e: unknown, code?: string): e is PmemuError {
  return e instanceof PmemuError && (code === undefined || e.code === code)
}

/**
 * Wrap an error from Node, fs-ext (positive errno, syscall 'Flock') or the
 * native shim into a PmemuError, keeping the original as `cause`.
 */
export function wrapSystemError(e: unknown, syscall: string, details: ErrorDetails = {}): PmemuError {
  if (e instanceof PmemuError) return e
  const err = e as { code?: unknown; errno?: unknown; message?: unknown }
  let code = typeof err?.code === 'string' ? err.code : undefined
  if (code === undefined && typeof err?.errno === 'number') {
    const n = Math.abs(err.errno)
    code = Object.entries(constants.errno).find(([, v]) => v === n)?.[0]
  }
  const msg = typeof err?.message === 'string' ? err.message.replace(/^[A-Z]+[:,] ?/, '') : String(e)
  return new PmemuError(code ?? 'EIO', syscall, msg, { ...details, cause: e })
}
