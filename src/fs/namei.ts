/** Path resolution (ENOENT / ENOTDIR as Linux). */
import { pmemError } from '../errors.js'
import { lookupTx } from './dir.js'
import { isDir, ROOT_INO } from './layout.js'
import { parsePath } from './path.js'
import type { FsState } from './state.js'

export function resolveParts(st: FsState, parts: string[], syscall: string, path: string): number {
  let cur = ROOT_INO
  for (const name of parts) {
    const inode = st.inodes[cur]!
    if (!isDir(inode.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path })
    const e = lookupTx(st, undefined, cur, name, syscall, path)
    if (!e) throw pmemError('ENOENT', syscall, 'no such file or directory', { path })
    cur = e.ino
  }
  return cur
}

/** Resolve a path to an inode (ENOENT / ENOTDIR as Linux). */
export function resolve(st: FsState, path: unknown, syscall: string): { ino: number; path: string } {
  const pp = parsePath(path, syscall)
  const p = path as string
  const ino = resolveParts(st, pp.parts, syscall, p)
  if (pp.trailingSlash && !isDir(st.inodes[ino]!.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path: p })
  return { ino, path: p }
}

/** Resolve the parent of a path: its directory inode and the last name. '/' has no parent (EBUSY/EEXIST by caller). */
export function resolveParent(st: FsState, path: unknown, syscall: string): { dir: number; name: string | undefined; path: string; trailingSlash: boolean } {
  const pp = parsePath(path, syscall)
  const p = path as string
  if (pp.parts.length === 0) return { dir: ROOT_INO, name: undefined, path: p, trailingSlash: pp.trailingSlash }
  const dir = resolveParts(st, pp.parts.slice(0, -1), syscall, p)
  if (!isDir(st.inodes[dir]!.mode)) throw pmemError('ENOTDIR', syscall, 'not a directory', { path: p })
  return { dir, name: pp.parts[pp.parts.length - 1]!, path: p, trailingSlash: pp.trailingSlash }
}
