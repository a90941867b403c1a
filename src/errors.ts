/**
 * pmemu's one error type (SPEC §8). Every error a user can provoke is a
 * PmemuError with an errno name in `code`, the positive Linux errno in
 * `errno`, the operation in `syscall`, and the path, pfn or offset involved —
 * shaped like Node's fs errors so tooling handles it the same way.
 */
import { constants } from 'node:os'

/** errno names pmemu raises that Node's `os.constants.errno` does not have (all real Linux errnos). */
const EXTRA_ERRNO: Record<string, number> = {
  EHWPOISON: 133,
  EFSCORRUPTED: 117, // Linux's EUCLEAN, as XFS/ext4 use it
  EUCLEAN: 117,
}

/**
 * Codes that are not errnos: their `errno` is 0. `SIGBUS` (a CPU access past
 * EOF or to a poisoned page, as Linux delivers a signal) carries
 * `signal: 'SIGBUS'` and `signo: 7`; `ABORT_ERR` (name 'AbortError', as
 * Node's own AbortError) carries the signal's reason as `cause`.
 */
const NOT_ERRNO = new Set(['SIGBUS', 'ABORT_ERR'])

/**
 * Every `code` a PmemuError can have: the errno names pmemu raises, the host
 * errors it passes through from the file a device lives in (any other host
 * code becomes `EIO`, the original kept as `cause` and `hostCode`), plus
 * `SIGBUS` and `ABORT_ERR`, which are not errnos.
 */
export type ErrorCode =
  | 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'ENOTEMPTY' | 'ENOSPC' | 'EBADF'
  | 'EROFS' | 'EFBIG' | 'ENAMETOOLONG' | 'EBUSY' | 'EINVAL' | 'ETIMEDOUT' | 'EHWPOISON'
  | 'EOPNOTSUPP' | 'ENXIO' | 'EIO' | 'EFSCORRUPTED' | 'EUCLEAN' | 'EACCES' | 'EPERM'
  | 'ENOMEM' | 'ENOTSUP' | 'EXDEV' | 'ELOOP' | 'EMFILE' | 'ENFILE' | 'ENODEV' | 'EAGAIN' | 'ESPIPE'
  | 'ERANGE' | 'EOVERFLOW' | 'EFAULT' | 'ENOSYS' | 'EDQUOT' | 'ETXTBSY' | 'EINTR' | 'EDEADLK'
  | 'ENOLCK' | 'EWOULDBLOCK'
  | 'SIGBUS' | 'ABORT_ERR'

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'ENOSPC', 'EBADF',
  'EROFS', 'EFBIG', 'ENAMETOOLONG', 'EBUSY', 'EINVAL', 'ETIMEDOUT', 'EHWPOISON',
  'EOPNOTSUPP', 'ENXIO', 'EIO', 'EFSCORRUPTED', 'EUCLEAN', 'EACCES', 'EPERM',
  'ENOMEM', 'ENOTSUP', 'EXDEV', 'ELOOP', 'EMFILE', 'ENFILE', 'ENODEV', 'EAGAIN', 'ESPIPE',
  'ERANGE', 'EOVERFLOW', 'EFAULT', 'ENOSYS', 'EDQUOT', 'ETXTBSY', 'EINTR', 'EDEADLK',
  'ENOLCK', 'EWOULDBLOCK',
  'SIGBUS', 'ABORT_ERR',
])

/** Is `code` one of the codes a PmemuError can carry? */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && CODES.has(code)
}

/** Look up the positive Linux errno for a code (0 when it is not an errno: SIGBUS, ABORT_ERR, unknown). */
export function errnoOf(code: string): number {
  if (NOT_ERRNO.has(code)) return 0
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

/**
 * A value as it reads in an error message, never throwing (Symbols, BigInts,
 * objects with a hostile toString, revoked proxies): strings quoted, numbers as they are.
 */
export function describeValue(v: unknown): string {
  try {
    if (typeof v === 'string') return `'${v.length > 4096 ? `${v.slice(0, 4096)}…` : v}'`
    if (typeof v === 'bigint') return `${v}n`
    if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || typeof v === 'symbol') return String(v)
    if (v === null) return 'null'
    if (typeof v === 'function') return 'a function'
    if (Array.isArray(v)) return 'an array'
    if (ArrayBuffer.isView(v)) return 'a typed array'
    return 'an object'
  } catch {
    return 'a value'
  }
}

/**
 * `String(v)` for a message, never throwing: primitives as String() gives
 * them (a Symbol too), objects and functions described by kind (their
 * toString/valueOf are never called).
 */
export function safeString(v: unknown): string {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return String(v)
  return describeValue(v)
}

export class PmemuError extends Error {
  readonly code: ErrorCode
  /** The positive Linux errno of `code`; 0 for SIGBUS and ABORT_ERR, which are not errnos. */
  readonly errno: number
  readonly syscall: string
  path?: string
  pfn?: number
  offset?: number
  length?: number
  /** SIGBUS only: the signal's name, as Node reports a process signal. */
  signal?: 'SIGBUS'
  /** SIGBUS only: the signal number (7 on Linux x86-64 and arm64). */
  signo?: number
  /** EHWPOISON from a read: how many bytes were copied into the caller's buffer before the poison. */
  bytesRead?: number
  /** EHWPOISON: the device offset of the first poisoned byte met. */
  devOffset?: number
  /** An invariant violation (strict mode, or EFAULT for a stale store): what `dev.check()` would report. */
  violation?: unknown
  /** A host error with a code pmemu does not name, passed on as EIO: the host's code. */
  hostCode?: string

  constructor(code: ErrorCode, syscall: string, message: string, details: ErrorDetails = {}) {
    // Details may come straight from user input (a Symbol path, a BigInt offset): format them so building the error never throws.
    const where = details.path !== undefined ? ` ${describeValue(details.path)}`
      : details.pfn !== undefined ? `, pfn ${describeValue(details.pfn)}`
      : details.offset !== undefined ? `, offset ${describeValue(details.offset)}` : ''
    super(`${code}: ${message}, ${syscall}${where}`, details.cause !== undefined ? { cause: details.cause } : undefined)
    this.name = 'PmemuError'
    this.code = code
    this.errno = errnoOf(code)
    this.syscall = syscall
    if (code === 'SIGBUS') { this.signal = 'SIGBUS'; this.signo = constants.signals.SIGBUS }
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
  const msg = typeof err?.message === 'string' ? err.message.replace(/^[A-Z]+[:,] ?/, '') : describeValue(e)
  if (isErrorCode(code)) return new PmemuError(code, syscall, msg, { ...details, cause: e })
  return new PmemuError('EIO', syscall, msg, { ...details, cause: e, ...(code !== undefined ? { hostCode: code } : {}) })
}
