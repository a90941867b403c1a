/** File attributes: utimes/futimes and chmod/fchmod, through the journal (durable when they return). */
import { pmemError } from '../errors.js'
import { commit } from './commit.js'
import { S_IFMT } from './layout.js'
import { resolve } from './namei.js'
import type { FsState } from './state.js'
import { mut, Tx } from './tx.js'

/** utimes/futimes on an inode. */
export function setTimes(st: FsState, ino: number, atimeMs: number, mtimeMs: number, syscall: string, path: string): void {
  for (const [name, v] of [['atime', atimeMs], ['mtime', mtimeMs]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw pmemError('EINVAL', syscall, `${name} must be a finite number of milliseconds, got ${typeof v === 'number' ? String(v) : typeof v}`, { path })
    }
  }
  st.writable(syscall, path)
  const tx = new Tx('utimes')
  const t = mut(st, tx, ino)
  t.atime = atimeMs
  t.mtime = mtimeMs
  t.ctime = Date.now()
  commit(st, tx)
  const node = st.nodes.get(ino)
  if (node) node.timesDirty = false
}

/** chmod/fchmod on an inode. */
export function setMode(st: FsState, ino: number, mode: number, syscall: string, path: string): void {
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0) {
    throw pmemError('EINVAL', syscall, `mode must be a non-negative integer, got ${typeof mode === 'number' ? String(mode) : typeof mode}`, { path })
  }
  st.writable(syscall, path)
  const tx = new Tx('chmod')
  const t = mut(st, tx, ino)
  t.mode = (t.mode & S_IFMT) | (mode & 0o7777)
  t.ctime = Date.now()
  commit(st, tx)
}

/** utimes(2) by path; with `follow` false (lutimes) a symlink's own times are set. */
export function utimesPath(st: FsState, path: string, atimeMs: number, mtimeMs: number, follow = true): void {
  const syscall = follow ? 'utime' : 'lutime'
  st.live(syscall, typeof path === 'string' ? path : undefined)
  const r = resolve(st, path, syscall, follow)
  setTimes(st, r.ino, atimeMs, mtimeMs, syscall, r.path)
}

/** chmod(2) by path. */
export function chmodPath(st: FsState, path: string, mode: number): void {
  st.live('chmod', typeof path === 'string' ? path : undefined)
  const r = resolve(st, path, 'chmod')
  setMode(st, r.ino, mode, 'chmod', r.path)
}
