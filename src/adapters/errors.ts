/**
 * Node-shaped errors for the adapters: what `node:fs` throws, built from a
 * PmemuError (which is kept as `cause`).
 */
import { getSystemErrorMap } from 'node:util'
import { PmemuError, errnoOf } from '../errors.js'

/**
 * The shape of the errors `node:fs` throws for a failed system call and the
 * adapters throw the same way: `code` (errno name), `errno` (Node's
 * *negative* libuv errno, e.g. -2 for ENOENT), `syscall`, `path` and, for
 * two-path calls (rename, copyfile), `dest`; message
 * `ENOENT: no such file or directory, open '/x'`.
 */
export interface NodeSystemError extends Error {
  code: string
  errno?: number
  syscall: string
  path?: string
  dest?: string
  /** EHWPOISON on a read: how many bytes before the first poisoned sector were copied into the buffer. */
  bytesRead?: number
}

let messages: Map<number, [string, string]> | undefined

/** libuv's description of an errno (`no such file or directory`), or undefined for errnos libuv does not know. */
function uvMessage(errno: number): string | undefined {
  messages ??= getSystemErrorMap()
  return messages.get(-Math.abs(errno))?.[1]
}

/** Build the error Node's fs would throw for `code` from `syscall` on `path` (-> `dest`). */
export function nodeError(code: string, syscall: string, path?: string, dest?: string, cause?: unknown, fallback?: string): NodeSystemError {
  const n = errnoOf(code)
  const desc = (n !== 0 ? uvMessage(n) : undefined) ?? fallback ?? code.toLowerCase()
  let msg = `${code}: ${desc}, ${syscall}`
  if (path !== undefined) msg += ` '${path}'`
  if (dest !== undefined) msg += ` -> '${dest}'`
  const err = new Error(msg, cause !== undefined ? { cause } : undefined) as NodeSystemError
  err.errno = n !== 0 ? -n : undefined
  err.code = code
  err.syscall = syscall
  if (path !== undefined) err.path = path
  if (dest !== undefined) err.dest = dest
  return err
}

/** The pmemu message without its `CODE: ` prefix and `, syscall 'path'` suffix. */
function bareMessage(e: PmemuError): string {
  let m = e.message.replace(/^[A-Z_]+: /, '')
  const i = m.lastIndexOf(`, ${e.syscall}`)
  if (i > 0) m = m.slice(0, i)
  return m
}

/**
 * Translate what pmemu threw into what Node would throw from `syscall`.
 * PmemuErrors become NodeSystemErrors (the original is `cause`); anything else
 * (an AbortError, a programming error) is returned unchanged.
 */
export function toNodeError(e: unknown, syscall: string, path?: string, dest?: string): unknown {
  if (e instanceof PmemuError) {
    if (e.code === 'ABORT_ERR') return e
    const n = nodeError(e.code, syscall, path, dest, e, bareMessage(e))
    // A poisoned read reports how much of the buffer it filled; keep that on the Node-shaped error.
    const br = (e as { bytesRead?: unknown }).bytesRead
    if (typeof br === 'number') n.bytesRead = br
    return n
  }
  return e
}

/** Node's error for a call on a closed FileHandle: `file closed`, code EBADF, no errno. */
export function closedHandleError(syscall: string): NodeSystemError {
  const err = new Error('file closed') as NodeSystemError
  err.code = 'EBADF'
  err.syscall = syscall
  return err
}

/** Node's `ERR_FS_EISDIR` SystemError (rm of a directory without `recursive`). */
export function rmIsDirError(path: string): NodeSystemError {
  const err = new Error(`Path is a directory: rm returned EISDIR (is a directory) ${path}`) as NodeSystemError
  err.name = 'SystemError'
  err.code = 'ERR_FS_EISDIR'
  err.errno = 21
  err.syscall = 'rm'
  err.path = path
  Object.defineProperty(err, 'info', { value: { code: 'EISDIR', message: 'is a directory', path, syscall: 'rm', errno: 21 }, enumerable: false })
  return err
}

/** A Node-style argument error (`ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`, ...). */
export function argError(code: string, message: string, Ctor: ErrorConstructor = TypeError): Error & { code: string } {
  const err = new Ctor(message) as Error & { code: string }
  err.code = code
  return err
}
