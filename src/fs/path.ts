/** Path parsing for the fs: absolute, '/'-separated, lexically normalised. */
import { pmemError, safeString } from '../errors.js'
import { NAME_MAX, encodeUtf8 } from './layout.js'

export const PATH_MAX = 4096

export interface ParsedPath {
  /** The components as written ('.' and '..' kept: namei resolves them against the directory reached, as Linux). Empty = root. */
  parts: string[]
  /** The path ended with '/': the target must be a directory (a symlink there is followed). */
  trailingSlash: boolean
}

/**
 * Parse a user path. EINVAL when it is not a string, not absolute, has an
 * empty component ('//') or contains NUL; ENAMETOOLONG for a component over
 * 255 UTF-8 bytes or a path over 4096. '.' and '..' stay components: '..'
 * is the parent of the directory reached so far (after symlinks), and '..'
 * of the root is the root, as on Linux.
 */
export function parsePath(path: unknown, syscall: string): ParsedPath {
  if (typeof path !== 'string') {
    throw pmemError('EINVAL', syscall, `path must be a string, got ${path === null ? 'null' : typeof path}`)
  }
  if (path.includes('\0')) throw pmemError('EINVAL', syscall, 'path contains a NUL byte', { path })
  if (!path.startsWith('/')) throw pmemError('EINVAL', syscall, 'path must be absolute', { path })
  // UTF-8 takes at most 3 bytes per UTF-16 unit: short strings need no encoding to be measured.
  if (path.length * 3 >= PATH_MAX && encodeUtf8(path).length >= PATH_MAX) throw pmemError('ENAMETOOLONG', syscall, `path longer than ${PATH_MAX - 1} bytes`, { path })
  const trailingSlash = path.length > 1 && path.endsWith('/')
  const body = trailingSlash ? path.slice(1, -1) : path.slice(1)
  const parts: string[] = []
  if (body.length > 0) {
    for (const c of body.split('/')) {
      if (c === '') throw pmemError('EINVAL', syscall, 'path has an empty component', { path })
      checkComponent(c, syscall, path)
      parts.push(c)
    }
  }
  return { parts, trailingSlash }
}

export function checkComponent(c: string, syscall: string, path: string): void {
  // a UTF-8 character is at most 3 bytes per UTF-16 unit: short names skip the encoder
  if (c.length * 3 > NAME_MAX && encodeUtf8(c).length > NAME_MAX) {
    throw pmemError('ENAMETOOLONG', syscall, `component '${c.slice(0, 16)}…' is longer than ${NAME_MAX} bytes`, { path })
  }
}

/** Node's open flag strings -> access mode and behaviour. */
export interface OpenFlags {
  read: boolean
  write: boolean
  create: boolean
  exclusive: boolean
  truncate: boolean
  append: boolean
  sync: boolean
  /** O_NOFOLLOW: a symlink as the last component is ELOOP. */
  nofollow: boolean
}

const FLAG_TABLE: Record<string, OpenFlags> = {}
function def(names: string[], f: Partial<OpenFlags>): void {
  for (const n of names) {
    FLAG_TABLE[n] = { read: false, write: false, create: false, exclusive: false, truncate: false, append: false, sync: false, nofollow: false, ...f }
  }
}
def(['r'], { read: true })
def(['rs', 'sr'], { read: true, sync: true })
def(['r+'], { read: true, write: true })
def(['rs+', 'sr+'], { read: true, write: true, sync: true })
def(['w'], { write: true, create: true, truncate: true })
def(['wx', 'xw'], { write: true, create: true, truncate: true, exclusive: true })
def(['w+'], { read: true, write: true, create: true, truncate: true })
def(['wx+', 'xw+'], { read: true, write: true, create: true, truncate: true, exclusive: true })
def(['a'], { write: true, create: true, append: true })
def(['ax', 'xa'], { write: true, create: true, append: true, exclusive: true })
def(['as', 'sa'], { write: true, create: true, append: true, sync: true })
def(['a+'], { read: true, write: true, create: true, append: true })
def(['ax+', 'xa+'], { read: true, write: true, create: true, append: true, exclusive: true })
def(['as+', 'sa+'], { read: true, write: true, create: true, append: true, sync: true })

// Linux O_* values (as node:fs constants on Linux).
const O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000, O_APPEND = 0o2000, O_SYNC = 0o4010000, O_DSYNC = 0o10000, O_NOFOLLOW = 0o400000
const KNOWN = 3 | O_NOFOLLOW | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | O_SYNC | O_DSYNC | 0o400 /* O_NOCTTY */ | 0o4000 /* O_NONBLOCK */ | 0o2000000 /* O_CLOEXEC */ | 0o40000 /* O_DIRECT */ | 0o1000000 /* O_NOATIME */ | 0o100000 /* O_LARGEFILE */

export function parseFlags(flags: unknown, path: string): OpenFlags {
  if (flags === undefined) flags = 'r'
  if (typeof flags === 'string') {
    const f = FLAG_TABLE[flags]
    if (!f) throw pmemError('EINVAL', 'open', `unknown open flags '${flags}'`, { path })
    return { ...f }
  }
  if (typeof flags === 'number' && Number.isInteger(flags) && flags >= 0 && (flags & ~KNOWN) === 0 && (flags & 3) !== 3) {
    const acc = flags & 3
    return {
      read: acc !== O_WRONLY, write: acc === O_WRONLY || acc === O_RDWR,
      create: (flags & O_CREAT) !== 0, exclusive: (flags & O_EXCL) !== 0 && (flags & O_CREAT) !== 0,
      truncate: (flags & O_TRUNC) !== 0, append: (flags & O_APPEND) !== 0, sync: (flags & (O_SYNC | O_DSYNC)) !== 0,
      nofollow: (flags & O_NOFOLLOW) !== 0,
    }
  }
  throw pmemError('EINVAL', 'open', `invalid open flags ${safeString(flags)}`, { path })
}
