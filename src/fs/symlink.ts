/** Symbolic links: symlink(2), readlink(2), realpath(3). The target lives in the link's one data block (docs/format.md). */
import { pmemError, safeString } from '../errors.js'
import { allocIno, allocRun, newInode } from './alloc.js'
import { commit } from './commit.js'
import { dataWrite } from './dataio.js'
import { addEntry, lookupTx, touchDir } from './dir.js'
import { DT_LNK, encodeUtf8, FEAT_SYMLINKS, isLnk, S_IFLNK, SYMLINK_MAX } from './layout.js'
import { readTarget, realpathOf, resolve, resolveParent } from './namei.js'
import type { FsState } from './state.js'
import { abort, Tx } from './tx.js'

/**
 * symlink(2): a new name `path` whose content is `target` (any string, not
 * checked against the tree: it may dangle). Linux's order: an empty target is
 * ENOENT and one over 4095 bytes ENAMETOOLONG, then `path` as for mkdir
 * (EEXIST when the name exists, even as a dangling link; ENOENT for a new name
 * with a trailing '/'). The first symlink sets the superblock's symlink
 * feature flag in the same transaction.
 */
export function symlinkPath(st: FsState, target: string, path: string): void {
  st.live('symlink', typeof path === 'string' ? path : undefined)
  if (typeof target !== 'string') throw pmemError('EINVAL', 'symlink', `target must be a string, got ${safeString(target)}`, { path: typeof path === 'string' ? path : undefined })
  const bytes = encodeUtf8(target)
  if (bytes.length === 0) throw pmemError('ENOENT', 'symlink', 'empty symlink target', { path: typeof path === 'string' ? path : undefined })
  if (target.includes('\0')) throw pmemError('EINVAL', 'symlink', 'target contains a NUL byte', { path: typeof path === 'string' ? path : undefined })
  if (bytes.length > SYMLINK_MAX) throw pmemError('ENAMETOOLONG', 'symlink', `target longer than ${SYMLINK_MAX} bytes`, { path: typeof path === 'string' ? path : undefined })
  const par = resolveParent(st, path, 'symlink')
  const p = par.path
  if (par.name === undefined) throw pmemError('EEXIST', 'symlink', 'file exists', { path: p })
  if (lookupTx(st, undefined, par.dir, par.name, 'symlink', p)) throw pmemError('EEXIST', 'symlink', 'file exists', { path: p })
  if (par.trailingSlash) throw pmemError('ENOENT', 'symlink', 'no such file or directory', { path: p })
  st.writable('symlink', p)
  const bs = st.blockSize
  const tx = new Tx('symlink')
  try {
    const ino = allocIno(st, tx, 'symlink', p)
    const inode = newInode(st, tx, ino, S_IFLNK | 0o777, par.dir)
    const [pfn] = allocRun(st, tx, 1, st.allocCursor, 'symlink')
    // The block is written whole and persisted before the commit makes it reachable.
    dataWrite(st, pfn * bs, bytes, { ino, fileOffset: 0 })
    dataWrite(st, pfn * bs + bytes.length, bs - bytes.length, { ino, fileOffset: bytes.length })
    st.device.persist(pfn * bs, bs)
    inode.extents.push({ l: 0, p: pfn, n: 1 })
    inode.size = bytes.length
    addEntry(st, tx, par.dir, par.name, { ino, type: DT_LNK }, 'symlink', p)
    touchDir(st, tx, par.dir)
    if ((st.sb.features & FEAT_SYMLINKS) === 0) tx.sb = { ...st.sb, features: st.sb.features | FEAT_SYMLINKS }
  } catch (e) { abort(st, tx); throw e }
  commit(st, tx)
}

/** readlink(2): the target of the symlink `path` names (EINVAL when it is not a symlink). */
export function readlinkPath(st: FsState, path: string): string {
  st.live('readlink', typeof path === 'string' ? path : undefined)
  const r = resolve(st, path, 'readlink', false)
  if (!isLnk(st.inodes[r.ino]!.mode)) throw pmemError('EINVAL', 'readlink', 'not a symbolic link', { path: r.path })
  return readTarget(st, r.ino, 'readlink', r.path)
}

/** realpath(3): the canonical absolute path (symlinks followed, '.' and '..' resolved). */
export function realpathPath(st: FsState, path: string): string {
  st.live('realpath', typeof path === 'string' ? path : undefined)
  return realpathOf(st, path, 'realpath')
}
