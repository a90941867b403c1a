/** truncate and punch-hole: break the layout (DAX), zero partial blocks, free whole ones. */
import { pmemError, PmemuAbortError } from '../errors.js'
import { commit } from './commit.js'
import { dataWrite } from './dataio.js'
import { forEachRun, lastEnd } from './extents.js'
import type { PmemFile } from './file.js'
import { freeRange, maybeDrop } from './inodes.js'
import { zeroTail } from './io.js'
import { MAX_LOGICAL_BLOCKS } from './layout.js'
import type { FsState } from './state.js'
import { mut, Tx } from './tx.js'
import type { LayoutBreakOptions, TruncateOptions } from './types.js'

export async function breakLayout(st: FsState, file: PmemFile, first: number, end: number, opts: TruncateOptions, reason: LayoutBreakOptions['reason'], syscall: string): Promise<void> {
  if (opts.signal?.aborted) throw new PmemuAbortError(syscall, { path: file.path })
  if (end <= first) return
  // Each extension's break in turn (a snapshot: one attached meanwhile waits for the next break).
  for (const fn of st.hooks.breakLayout) {
    await fn(file, first, end, { signal: opts.signal, timeoutMs: opts.timeoutMs, reason, scope: st.breakScope })
    st.live(syscall, file.path)
  }
}

/** @internal */
/** Grow-only truncate: nothing to break or free, so it needs no lock wait. */
export function growSync(st: FsState, file: PmemFile, length: number): void {
  const path = file.path
  st.writable('ftruncate', path)
  if (length > st.maxFileSize) throw pmemError('EFBIG', 'ftruncate', `length ${length} exceeds the file size limit ${st.maxFileSize}`, { path })
  const node = file.node
  if (node.isDirectory) throw pmemError('EISDIR', 'ftruncate', 'is a directory', { path })
  const inode = st.inodes[node.ino]!
  if (length === inode.size) return
  const bs = st.blockSize
  if (length < inode.size || Math.max(Math.ceil(inode.size / bs), lastEnd(inode.extents)) > Math.ceil(length / bs) || node.holds > 0) {
    throw pmemError('EAGAIN', 'ftruncate', 'shrinking may wait for mappings and pins; use the async truncate', { path })
  }
  zeroTail(st, node, inode.size, length)
  const tx = new Tx('truncate')
  const m = mut(st, tx, node.ino)
  m.size = length
  m.mtime = m.ctime = Date.now()
  commit(st, tx)
}

export async function truncate(st: FsState, file: PmemFile, length: number, opts: TruncateOptions, reason: 'truncate' | 'open-truncate'): Promise<void> {
  const path = file.path
  const syscall = reason === 'truncate' ? 'ftruncate' : 'open'
  st.writable(syscall, path)
  if (length > st.maxFileSize) throw pmemError('EFBIG', syscall, `length ${length} exceeds the file size limit ${st.maxFileSize}`, { path })
  const node = file.node
  if (node.isDirectory) throw pmemError('EISDIR', syscall, 'is a directory', { path })
  node.holds++
  try {
    await node.lock(async () => {
      st.live(syscall, path)
      const bs = st.blockSize
      const inode0 = st.inodes[node.ino]!
      const first = Math.ceil(length / bs)
      const end0 = Math.max(Math.ceil(inode0.size / bs), lastEnd(inode0.extents))
      if (length < inode0.size || end0 > first) {
        // the block holding the new EOF is zeroed past it in place: break it too
        await breakLayout(st, file, length < inode0.size ? Math.floor(length / bs) : first, end0, opts, reason, syscall)
        const inode = st.inodes[node.ino]
        if (!inode) return
        st.writable(syscall, path)
        if (length < inode.size) zeroTail(st, node, length, inode.size)
        freeRange(st, node.ino, first, MAX_LOGICAL_BLOCKS, 'truncate', length)
      } else if (length > inode0.size) {
        zeroTail(st, node, inode0.size, length)
        const tx = new Tx('truncate')
        const m = mut(st, tx, node.ino)
        m.size = length
        m.mtime = m.ctime = Date.now()
        commit(st, tx)
      }
    })
  } finally {
    node.holds--
    if (!st.dead && !st.unmounted) maybeDrop(st, node)
  }
}

/** @internal */
export async function punchHole(st: FsState, file: PmemFile, off: number, len: number, opts: TruncateOptions): Promise<void> {
  const path = file.path
  st.writable('fallocate', path)
  const node = file.node
  if (node.isDirectory) throw pmemError('EISDIR', 'fallocate', 'is a directory', { path })
  if (off + len > st.maxFileSize) throw pmemError('EFBIG', 'fallocate', `range exceeds the file size limit ${st.maxFileSize}`, { path })
  node.holds++
  try {
    await node.lock(async () => {
      st.live('fallocate', path)
      const bs = st.blockSize
      const size0 = st.inodes[node.ino]!.size
      if (off >= size0) return
      const toEof = off + len >= size0
      // blocks freed: the whole ones inside the range
      const first = Math.ceil(off / bs)
      const end = toEof ? Math.max(Math.ceil(size0 / bs), first) : Math.floor((off + len) / bs)
      // Layout broken over the page-rounded range, edge pages included: their
      // bytes are zeroed in place below, so a mapping or a DMA pin on them must
      // be gone first, as Linux breaks layouts over the rounded byte range.
      const breakFirst = Math.floor(off / bs)
      const breakEnd = Math.max(end, Math.ceil(Math.min(off + len, size0) / bs))
      await breakLayout(st, file, breakFirst, breakEnd, opts, 'punch-hole', 'fallocate')
      const inode = st.inodes[node.ino]
      if (!inode) return
      st.writable('fallocate', path)
      const stop = Math.min(off + len, inode.size)
      // Partial blocks at the edges are zeroed in place (persisted).
      const zero = (a: number, b: number): void => {
        forEachRun(inode.extents, Math.floor(a / bs), Math.ceil(b / bs), (l, n, p) => {
          if (p === null) return
          const cs = Math.max(a, l * bs)
          const ce = Math.min(b, (l + n) * bs)
          const o = p * bs + (cs - l * bs)
          dataWrite(st, o, ce - cs, { ino: node.ino, fileOffset: cs })
          st.device.persist(o, ce - cs)
        })
      }
      if (first * bs > off) zero(off, Math.min(first * bs, stop))
      if (end * bs < stop && end >= first) zero(Math.max(end * bs, off), stop)
      if (end > first) freeRange(st, node.ino, first, end, 'punch-hole')
      const tx = new Tx('punch-hole')
      const m = mut(st, tx, node.ino)
      m.mtime = m.ctime = Date.now()
      commit(st, tx)
    })
  } finally {
    node.holds--
    if (!st.dead && !st.unmounted) maybeDrop(st, node)
  }
}
