/**
 * Path resolution as Linux's namei: component by component from the root,
 * '.' and '..' against the directory reached (not lexically), symlinks
 * followed in the middle of a path (and at its end when the call follows
 * them), ELOOP after 40 links (MAXSYMLINKS), ENOENT / ENOTDIR as Linux.
 */
import { pmemError } from '../errors.js'
import { dataRead } from './dataio.js'
import { lookupTx } from './dir.js'
import { mapBlock } from './extents.js'
import { isDir, isLnk, ROOT_INO, SYMLINK_MAX } from './layout.js'
import { checkComponent, parsePath } from './path.js'
import type { FsState } from './state.js'

/** Linux's MAXSYMLINKS: the 41st symlink followed in one lookup is ELOOP. */
export const MAXSYMLINKS = 40

const utf8 = new TextDecoder()

/** The target of symlink inode `ino`, read from its one data block. */
export function readTarget(st: FsState, ino: number, syscall: string, path?: string): string {
  const inode = st.inodes[ino]
  if (!inode || !isLnk(inode.mode)) throw new Error(`pmemu internal: inode ${ino} is not a symlink`)
  const p = mapBlock(inode.extents, 0)
  if (p === null || inode.size < 1 || inode.size > Math.min(SYMLINK_MAX, st.blockSize)) {
    throw pmemError('EFSCORRUPTED', syscall, `symlink inode ${ino}: target of ${inode.size} bytes is not stored in block 0`, { path })
  }
  const buf = new Uint8Array(inode.size)
  const refused = dataRead(st, p * st.blockSize, buf, { ino, fileOffset: 0 })
  if (refused) throw refused.error
  return utf8.decode(buf)
}

/** Where a walk stands: the directories from the root down, with their names ('..' pops one). */
class Cursor {
  inos: number[] = [ROOT_INO]
  names: string[] = []
  get cur(): number { return this.inos[this.inos.length - 1]! }
  push(ino: number, name: string): void { this.inos.push(ino); this.names.push(name) }
  up(): void { if (this.inos.length > 1) { this.inos.pop(); this.names.pop() } }
  toRoot(): void { this.inos.length = 1; this.names.length = 0 }
  get path(): string { return `/${this.names.join('/')}` }
}

/** One lookup: the link budget is shared by every symlink it follows. */
class Walk {
  links = 0
  constructor(readonly st: FsState, readonly syscall: string, readonly path: string) {}

  err(code: 'ENOENT' | 'ENOTDIR' | 'ELOOP', msg: string): Error {
    return pmemError(code, this.syscall, msg, { path: this.path })
  }

  /** Splice symlink `ino`'s target in front of the components still to walk (`q`: next one last). */
  follow(c: Cursor, ino: number, q: string[], markDir: boolean): boolean {
    if (++this.links > MAXSYMLINKS) throw this.err('ELOOP', 'too many levels of symbolic links')
    const target = readTarget(this.st, ino, this.syscall, this.path)
    const comps = target.split('/').filter(x => x !== '')
    for (const x of comps) checkComponent(x, this.syscall, this.path)
    const slash = target.endsWith('/') && comps.length > 0
    // A target ending in '/' must name a directory: a '.' after it checks that.
    if (slash && markDir) comps.push('.')
    if (target.startsWith('/')) c.toRoot()
    for (let i = comps.length - 1; i >= 0; i--) q.push(comps[i]!)
    return slash
  }

  /**
   * Walk `q` from `c` up to its last component and return that name, with
   * `c` at the directory holding it; undefined when the path ends at `c`
   * itself (the root, '.', '..'). Symlinks before the last are followed.
   */
  toLast(c: Cursor, q: string[]): string | undefined {
    const st = this.st
    for (;;) {
      const name = q.pop()
      if (name === undefined) return undefined
      if (name === '.') continue
      if (name === '..') { c.up(); continue }
      if (q.length === 0) return name
      const e = lookupTx(st, undefined, c.cur, name, this.syscall, this.path)
      if (!e) throw this.err('ENOENT', 'no such file or directory')
      const mode = st.inodes[e.ino]!.mode
      if (isLnk(mode)) { this.follow(c, e.ino, q, true); continue }
      if (!isDir(mode)) throw this.err('ENOTDIR', 'not a directory')
      c.push(e.ino, name)
    }
  }

  /** Walk all of `q`: the inode reached and (unless it is `c` itself) its name in `c`. */
  full(c: Cursor, q: string[], followLast: boolean): { ino: number; name: string | undefined } {
    for (;;) {
      const name = this.toLast(c, q)
      if (name === undefined) return { ino: c.cur, name: undefined }
      const e = lookupTx(this.st, undefined, c.cur, name, this.syscall, this.path)
      if (!e) throw this.err('ENOENT', 'no such file or directory')
      if (followLast && isLnk(this.st.inodes[e.ino]!.mode)) { this.follow(c, e.ino, q, true); continue }
      return { ino: e.ino, name }
    }
  }
}

function queueOf(parts: string[], trailingSlash: boolean): string[] {
  const q = parts.slice().reverse()
  // A trailing '/' makes the last component a directory that is walked through (and followed): '/l/' is '/l/.'.
  if (trailingSlash && q.length > 0) q.unshift('.')
  return q
}

/** Resolve a path to an inode; a symlink at the end is followed unless `follow` is false (lstat, readlink). */
export function resolve(st: FsState, path: unknown, syscall: string, follow = true): { ino: number; path: string } {
  const pp = parsePath(path, syscall)
  const p = path as string
  const w = new Walk(st, syscall, p)
  return { ino: w.full(new Cursor(), queueOf(pp.parts, pp.trailingSlash), follow).ino, path: p }
}

/** The canonical absolute path of what `path` names (every symlink followed, '.' and '..' gone), as realpath(3). */
export function realpathOf(st: FsState, path: unknown, syscall: string): string {
  const pp = parsePath(path, syscall)
  const w = new Walk(st, syscall, path as string)
  const c = new Cursor()
  const r = w.full(c, queueOf(pp.parts, pp.trailingSlash), true)
  if (r.name === undefined) return c.path
  return c.names.length === 0 ? `/${r.name}` : `${c.path}/${r.name}`
}

/**
 * A path resolved up to its last component: the directory holding it and its
 * name. `name` is undefined when the path names a directory without a last
 * name ('/', or a final '.' / '..', given in `dot`): `dir` is then that
 * directory itself.
 */
export interface Parent {
  dir: number
  name: string | undefined
  path: string
  trailingSlash: boolean
  dot: '.' | '..' | undefined
  /**
   * Follow symlink inode `ino` (found as `name` in `dir`): the parent of its
   * target, resolved from `dir`, with the same link budget (ELOOP after 40).
   */
  follow(ino: number): Parent
}

function parentAt(w: Walk, c: Cursor, q: string[], trailingSlash: boolean, lastPart: string | undefined): Parent {
  const name = w.toLast(c, q)
  const dot = name === undefined && (lastPart === '.' || lastPart === '..') ? lastPart : undefined
  return {
    dir: c.cur, name, path: w.path, trailingSlash, dot,
    follow(ino: number): Parent {
      const nq: string[] = []
      const slash = w.follow(c, ino, nq, false)
      return parentAt(w, c, nq, slash, nq[0])
    },
  }
}

/** Resolve the parent of a path: its directory inode and the last name (symlinks before it are followed). */
export function resolveParent(st: FsState, path: unknown, syscall: string): Parent {
  const pp = parsePath(path, syscall)
  const w = new Walk(st, syscall, path as string)
  return parentAt(w, new Cursor(), pp.parts.slice().reverse(), pp.trailingSlash, pp.parts[pp.parts.length - 1])
}
