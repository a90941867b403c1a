/** Path operations: open, mkdir, readdir, stat, unlink, rmdir, rename, and fsck's lost+found. */
import { pmemError } from '../errors.js'
import { allocIno, freeBlocks, newInode } from './alloc.js'
import { commit } from './commit.js'
import { addEntry, dirIsEmpty, getDir, lookupTx, removeEntry, touchDir } from './dir.js'
import { PmemFile } from './file.js'
import { isBusy, maybeDrop, nodeFor, releaseInode, statIno } from './inodes.js'
import { DT_DIR, DT_REG, dtOf, isDir, isLnk, ROOT_INO, S_IFDIR, S_IFREG } from './layout.js'
import { type Parent, resolve, resolveParent } from './namei.js'
import { parseFlags } from './path.js'
import type { FsState } from './state.js'
import type { PmemStats } from './stats.js'
import { truncate } from './truncate.js'
import { abort, mut, Tx } from './tx.js'

export async function openFile(st: FsState, path: string, flags: string | number = 'r', mode = 0o666): Promise<PmemFile> {
  const { file, truncate: trunc } = openCore(st, path, flags, mode)
  if (trunc) {
    const node = file.node
    try {
      await truncate(st, file, 0, {}, 'open-truncate')
    } catch (e) {
      st.files.delete(file)
      node.openCount--
      maybeDrop(st, node)
      throw e
    }
  }
  return file
}

/**
 * open(2) without waiting. Truncating a non-empty file ('w', O_TRUNC) may have to
 * wait for DAX mappings and DMA pins to let go, so here it fails with EAGAIN
 * (nothing changed): use the async open for it.
 */
export function openSync(st: FsState, path: string, flags: string | number = 'r', mode = 0o666): PmemFile {
  const { file, truncate: trunc } = openCore(st, path, flags, mode)
  if (trunc) {
    const node = file.node
    st.files.delete(file)
    node.openCount--
    maybeDrop(st, node)
    throw pmemError('EAGAIN', 'open', 'truncating a non-empty file may wait for mappings and pins; use the async open', { path: file.path })
  }
  return file
}

function openCore(st: FsState, path: string, flags: string | number, mode: number): { file: PmemFile; truncate: boolean } {
  st.live('open', typeof path === 'string' ? path : undefined)
  const f = parseFlags(flags, typeof path === 'string' ? path : '')
  let par: Parent = resolveParent(st, path, 'open')
  const p = par.path
  if (f.write || f.truncate || f.create) {
    // Linux checks EROFS only when the open would write; an existing file opened O_RDONLY is fine.
    if (st.device.readOnly && (f.write || f.truncate)) throw pmemError('EROFS', 'open', 'read-only device', { path: p })
  }
  let ino: number
  for (;;) {
    // open(2) with O_CREAT and a trailing '/': EISDIR before the lookup.
    if (f.create && par.trailingSlash && par.name !== undefined) throw pmemError('EISDIR', 'open', 'is a directory', { path: p })
    if (par.name === undefined) {
      // '/', '.', '..': an existing directory (open(2): O_CREAT|O_EXCL says EEXIST, O_CREAT EISDIR).
      if (f.create) throw pmemError(f.exclusive ? 'EEXIST' : 'EISDIR', 'open', f.exclusive ? 'file already exists' : 'is a directory', { path: p })
      ino = par.dir
      break
    }
    const e = lookupTx(st, undefined, par.dir, par.name, 'open', p)
    if (e) {
      // O_EXCL implies O_NOFOLLOW: an existing symlink is EEXIST, even dangling.
      if (f.create && f.exclusive) throw pmemError('EEXIST', 'open', 'file already exists', { path: p })
      if (isLnk(st.inodes[e.ino]!.mode)) {
        if (f.nofollow && !par.trailingSlash) throw pmemError('ELOOP', 'open', 'too many levels of symbolic links (O_NOFOLLOW on a symlink)', { path: p })
        if (par.trailingSlash) {
          // '/l/': the link is walked through, its target must be a directory.
          const r = resolve(st, p, 'open')
          ino = r.ino
          break
        }
        // Follow (a dangling link with O_CREAT creates its target).
        par = par.follow(e.ino)
        continue
      }
      ino = e.ino
      break
    }
    if (!f.create) throw pmemError('ENOENT', 'open', 'no such file or directory', { path: p })
    if (par.trailingSlash) throw pmemError('EISDIR', 'open', 'cannot create a regular file with a trailing slash', { path: p })
    st.writable('open', p)
    const m = typeof mode === 'number' && Number.isInteger(mode) ? mode & 0o7777 : 0o666
    const tx = new Tx('create')
    ino = allocIno(st, tx, 'open', p)
    newInode(st, tx, ino, S_IFREG | m, par.dir)
    try {
      addEntry(st, tx, par.dir, par.name, { ino, type: DT_REG }, 'open', p)
      touchDir(st, tx, par.dir)
    } catch (err) { abort(st, tx); throw err }
    commit(st, tx)
    break
  }
  const inode = st.inodes[ino]!
  if (isDir(inode.mode) && (f.write || f.truncate)) throw pmemError('EISDIR', 'open', 'is a directory', { path: p })
  if (par.trailingSlash && !isDir(inode.mode)) throw pmemError('ENOTDIR', 'open', 'not a directory', { path: p })
  const node = nodeFor(st, ino)
  const file = new PmemFile(st, node, f, p)
  node.openCount++
  st.files.add(file)
  return { file, truncate: f.truncate && inode.size > 0 }
}

export function mkdirSync(st: FsState, path: string, mode = 0o777): void {
  st.live('mkdir', typeof path === 'string' ? path : undefined)
  const par = resolveParent(st, path, 'mkdir')
  if (par.name === undefined) throw pmemError('EEXIST', 'mkdir', 'file exists', { path: par.path })
  if (lookupTx(st, undefined, par.dir, par.name, 'mkdir', par.path)) throw pmemError('EEXIST', 'mkdir', 'file exists', { path: par.path })
  st.writable('mkdir', par.path)
  const tx = new Tx('mkdir')
  const ino = allocIno(st, tx, 'mkdir', par.path)
  newInode(st, tx, ino, S_IFDIR | ((typeof mode === 'number' ? mode : 0o777) & 0o7777), par.dir)
  try {
    addEntry(st, tx, par.dir, par.name, { ino, type: DT_DIR }, 'mkdir', par.path)
    touchDir(st, tx, par.dir).nlink++
  } catch (e) { abort(st, tx); throw e }
  commit(st, tx)
  st.dirs.set(ino, { blocks: [], index: new Map() })
}

export function readdirPath(st: FsState, path: string): string[]

export function readdirPath(st: FsState, path: string, opts: { withFileTypes: true }): Array<{ name: string; ino: number; type: 'file' | 'directory' | 'symlink'; isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }>

export function readdirPath(st: FsState, path: string, opts?: { withFileTypes?: boolean }): unknown[] {
  st.live('scandir', typeof path === 'string' ? path : undefined)
  const r = resolve(st, path, 'scandir')
  if (!isDir(st.inodes[r.ino]!.mode)) throw pmemError('ENOTDIR', 'scandir', 'not a directory', { path: r.path })
  const dir = getDir(st, r.ino, 'scandir', r.path)
  const out: Array<{ name: string; ino: number; type: number }> = []
  for (const b of dir.blocks) for (const [name, e] of b.entries) out.push({ name, ino: e.ino, type: e.type })
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  if (opts?.withFileTypes) {
    return out.map(e => {
      const type = e.type === DT_DIR ? 'directory' : e.type === DT_REG ? 'file' : 'symlink'
      return { name: e.name, ino: e.ino, type, isFile: () => type === 'file', isDirectory: () => type === 'directory', isSymbolicLink: () => type === 'symlink' }
    })
  }
  return out.map(e => e.name)
}

export function statPath(st: FsState, path: string): PmemStats {
  st.live('stat', typeof path === 'string' ? path : undefined)
  return statIno(st, resolve(st, path, 'stat').ino)
}

/** lstat(2): a symlink as the last component is reported itself (a trailing '/' still follows it). */
export function lstatPath(st: FsState, path: string): PmemStats {
  st.live('lstat', typeof path === 'string' ? path : undefined)
  return statIno(st, resolve(st, path, 'lstat', false).ino)
}

export function unlinkPath(st: FsState, path: string): void {
  st.live('unlink', typeof path === 'string' ? path : undefined)
  const par = resolveParent(st, path, 'unlink')
  if (par.name === undefined) throw pmemError('EISDIR', 'unlink', 'is a directory', { path: par.path })
  const e = lookupTx(st, undefined, par.dir, par.name, 'unlink', par.path)
  if (!e) throw pmemError('ENOENT', 'unlink', 'no such file or directory', { path: par.path })
  if (e.type === DT_DIR) throw pmemError('EISDIR', 'unlink', 'is a directory', { path: par.path })
  if (par.trailingSlash) throw pmemError('ENOTDIR', 'unlink', 'not a directory', { path: par.path })
  st.writable('unlink', par.path)
  const tx = new Tx('unlink')
  removeEntry(st, tx, par.dir, par.name, 'unlink', par.path)
  touchDir(st, tx, par.dir)
  const t = mut(st, tx, e.ino)
  t.nlink = Math.max(0, t.nlink - 1)
  t.ctime = Date.now()
  commit(st, tx)
  if (t.nlink === 0 && !isBusy(st, e.ino)) releaseInode(st, e.ino)
}

export function rmdirPath(st: FsState, path: string): void {
  st.live('rmdir', typeof path === 'string' ? path : undefined)
  const par = resolveParent(st, path, 'rmdir')
  // rmdir(2) of a final '.' is EINVAL, of '..' ENOTEMPTY; of '/' EBUSY.
  if (par.dot === '.') throw pmemError('EINVAL', 'rmdir', "cannot remove '.'", { path: par.path })
  if (par.dot === '..') throw pmemError('ENOTEMPTY', 'rmdir', "cannot remove '..'", { path: par.path })
  if (par.name === undefined) throw pmemError('EBUSY', 'rmdir', 'cannot remove the root directory', { path: par.path })
  const e = lookupTx(st, undefined, par.dir, par.name, 'rmdir', par.path)
  if (!e) throw pmemError('ENOENT', 'rmdir', 'no such file or directory', { path: par.path })
  if (e.type !== DT_DIR) throw pmemError('ENOTDIR', 'rmdir', 'not a directory', { path: par.path })
  if (!dirIsEmpty(st, e.ino, 'rmdir', par.path)) throw pmemError('ENOTEMPTY', 'rmdir', 'directory not empty', { path: par.path })
  st.writable('rmdir', par.path)
  const tx = new Tx('rmdir')
  removeEntry(st, tx, par.dir, par.name, 'rmdir', par.path)
  touchDir(st, tx, par.dir).nlink--
  const d = mut(st, tx, e.ino)
  d.nlink = 0
  if (isBusy(st, e.ino)) {
    commit(st, tx)
  } else {
    for (const x of d.extents) freeBlocks(st, tx, x.p, x.n, null)
    for (const p of d.overflow) tx.freed.push([p, 1])
    tx.inodes.set(e.ino, null)
    commit(st, tx)
  }
  st.dirs.delete(e.ino)
}

/** Atomic rename, replacing the target as rename(2) does. */
export function renamePath(st: FsState, oldPath: string, newPath: string): void {
  st.live('rename', typeof oldPath === 'string' ? oldPath : undefined)
  const a = resolveParent(st, oldPath, 'rename')
  const b = resolveParent(st, newPath, 'rename')
  if (a.name === undefined || b.name === undefined) throw pmemError('EBUSY', 'rename', 'cannot rename the root directory', { path: a.path })
  const src = lookupTx(st, undefined, a.dir, a.name, 'rename', a.path)
  if (!src) throw pmemError('ENOENT', 'rename', 'no such file or directory', { path: a.path })
  const srcDir = src.type === DT_DIR
  if (!srcDir && (a.trailingSlash || b.trailingSlash)) throw pmemError('ENOTDIR', 'rename', 'not a directory', { path: a.trailingSlash ? a.path : b.path })
  const dst = lookupTx(st, undefined, b.dir, b.name, 'rename', b.path)
  if (srcDir) {
    // The target's parent must not be inside the source.
    for (let d = b.dir, k = 0; k < st.sb.inodeCount; k++) {
      if (d === src.ino) throw pmemError('EINVAL', 'rename', 'cannot move a directory into itself', { path: b.path })
      if (d === ROOT_INO) break
      d = st.inodes[d]!.parent
    }
  }
  if (dst && dst.type === DT_DIR && dst.ino !== src.ino) {
    // The target is a directory holding the source (rename('/d/x', '/d')): Linux's rename trap, ENOTEMPTY.
    for (let d = a.dir, k = 0; k < st.sb.inodeCount; k++) {
      if (d === dst.ino) throw pmemError('ENOTEMPTY', 'rename', 'directory not empty', { path: b.path })
      if (d === ROOT_INO) break
      d = st.inodes[d]!.parent
    }
  }
  if (dst) {
    if (dst.ino === src.ino) return
    if (srcDir && dst.type !== DT_DIR) throw pmemError('ENOTDIR', 'rename', 'not a directory', { path: b.path })
    if (!srcDir && dst.type === DT_DIR) throw pmemError('EISDIR', 'rename', 'is a directory', { path: b.path })
    if (dst.type === DT_DIR && !dirIsEmpty(st, dst.ino, 'rename', b.path)) throw pmemError('ENOTEMPTY', 'rename', 'directory not empty', { path: b.path })
  }
  st.writable('rename', a.path)
  const tx = new Tx('rename')
  const now = Date.now()
  try {
    if (dst) removeEntry(st, tx, b.dir, b.name, 'rename', b.path)
    removeEntry(st, tx, a.dir, a.name, 'rename', a.path)
    addEntry(st, tx, b.dir, b.name, { ino: src.ino, type: src.type }, 'rename', b.path)
    touchDir(st, tx, a.dir, now)
    touchDir(st, tx, b.dir, now)
    mut(st, tx, src.ino).ctime = now
    if (srcDir && a.dir !== b.dir) {
      mut(st, tx, src.ino).parent = b.dir
      mut(st, tx, a.dir).nlink--
      mut(st, tx, b.dir).nlink++
    }
    if (dst) {
      const t = mut(st, tx, dst.ino)
      if (dst.type === DT_DIR) {
        t.nlink = 0
        mut(st, tx, b.dir).nlink--
      } else {
        t.nlink = Math.max(0, t.nlink - 1)
      }
      t.ctime = now
    }
  } catch (e) { abort(st, tx); throw e }
  commit(st, tx)
  if (dst && st.inodes[dst.ino]?.nlink === 0) {
    if (dst.type === DT_DIR) st.dirs.delete(dst.ino)
    if (!isBusy(st, dst.ino)) releaseInode(st, dst.ino)
  }
}

/** link(2): a second name for an existing file (not a directory: EPERM); the link count goes up. A symlink is linked itself (not followed), as Linux's link(2). */
export function linkPath(st: FsState, existingPath: string, newPath: string): void {
  st.live('link', typeof existingPath === 'string' ? existingPath : undefined)
  // linkat(2)'s order: the old path, then the new one (EEXIST), then the directory check.
  const src = resolve(st, existingPath, 'link', false)
  const par = resolveParent(st, newPath, 'link')
  if (par.name === undefined) throw pmemError('EEXIST', 'link', 'file exists', { path: par.path })
  if (lookupTx(st, undefined, par.dir, par.name, 'link', par.path)) throw pmemError('EEXIST', 'link', 'file exists', { path: par.path })
  if (par.trailingSlash) throw pmemError('ENOENT', 'link', 'no such file or directory', { path: par.path })
  if (isDir(st.inodes[src.ino]!.mode)) throw pmemError('EPERM', 'link', 'hard links to directories are not allowed', { path: src.path })
  st.writable('link', par.path)
  const tx = new Tx('link')
  const now = Date.now()
  try {
    addEntry(st, tx, par.dir, par.name, { ino: src.ino, type: dtOf(st.inodes[src.ino]!.mode) }, 'link', par.path)
    touchDir(st, tx, par.dir, now)
    const t = mut(st, tx, src.ino)
    t.nlink++
    t.ctime = now
  } catch (e) { abort(st, tx); throw e }
  commit(st, tx)
}

/** @internal fsck repair: link unreachable inodes into /lost+found as '#<ino>'. Returns what failed. */
export function attachLost(st: FsState, inos: number[]): string[] {
  const failures: string[] = []
  let lf: number
  try {
    const e = lookupTx(st, undefined, ROOT_INO, 'lost+found', 'fsck', '/lost+found')
    if (e && e.type !== DT_DIR) return ['/lost+found exists and is not a directory']
    if (!e) mkdirSync(st, '/lost+found', 0o700)
    lf = lookupTx(st, undefined, ROOT_INO, 'lost+found', 'fsck', '/lost+found')!.ino
  } catch (err) {
    return [`cannot create /lost+found: ${(err as Error).message}`]
  }
  for (const ino of inos) {
    const inode = st.inodes[ino]
    if (!inode) continue
    const name = `#${ino}`
    try {
      const tx = new Tx('fsck')
      const dir = isDir(inode.mode)
      try {
        addEntry(st, tx, lf, name, { ino, type: dtOf(inode.mode) }, 'fsck', `/lost+found/${name}`)
        if (dir) { mut(st, tx, ino).parent = lf; mut(st, tx, lf).nlink++ }
      } catch (err) { abort(st, tx); throw err }
      commit(st, tx)
    } catch (err) {
      failures.push(`inode ${ino}: ${(err as Error).message}`)
    }
  }
  return failures
}
