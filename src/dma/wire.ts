/**
 * Errors across postMessage: structured clone keeps an Error's message but
 * not its class or its code/errno/syscall, so PmemuErrors travel as plain
 * objects and are rebuilt on the other side.
 */
import { PmemuAbortError, PmemuError, isErrorCode } from '../errors.js'

export interface SerializedError {
  name: string
  message: string
  code?: string
  syscall?: string
  details: Record<string, unknown>
  stack?: string
  cause?: SerializedError
}

const SKIP = new Set(['name', 'message', 'code', 'errno', 'syscall', 'stack', 'cause'])

export function serializeError(e: unknown, depth = 0): SerializedError {
  if (e instanceof Error) {
    const details: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(e)) {
      if (SKIP.has(k)) continue
      if (v === undefined || typeof v === 'function') continue
      if (typeof v === 'object' && v !== null) {
        try { structuredClone(v) } catch { continue }
      }
      details[k] = v
    }
    const x = e as Error & { code?: unknown; syscall?: unknown }
    return {
      name: e.name, message: e.message, details,
      ...(typeof x.code === 'string' ? { code: x.code } : {}),
      ...(typeof x.syscall === 'string' ? { syscall: x.syscall } : {}),
      ...(e.stack ? { stack: e.stack } : {}),
      ...(e.cause !== undefined && depth < 4 ? { cause: serializeError(e.cause, depth + 1) } : {}),
    }
  }
  return { name: 'Error', message: String(e), details: {} }
}

export function deserializeError(s: SerializedError): Error {
  let e: Error
  if (s.code === 'ABORT_ERR') e = new PmemuAbortError(s.syscall ?? 'dma', s.details)
  else if (isErrorCode(s.code) && s.syscall !== undefined) e = new PmemuError(s.code, s.syscall, '', s.details)
  else if (s.code !== undefined && s.syscall !== undefined) e = new PmemuError('EIO', s.syscall, '', { ...s.details, hostCode: s.code })
  else e = new Error()
  e.message = s.message
  if (s.stack) e.stack = s.stack
  if (s.cause) Object.defineProperty(e, 'cause', { value: deserializeError(s.cause), writable: true, configurable: true, enumerable: false })
  return e
}
