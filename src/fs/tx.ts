/** Transactions: the in-memory copy-on-write of inodes a metadata operation changes. */
import type { Inode, Superblock } from './layout.js'
import type { FsState } from './state.js'
import type { DirOverlay } from './types.js'

export class Tx {
  inodes = new Map<number, Inode | null>()
  allocated: Array<[number, number]> = []
  freed: Array<[number, number]> = []
  newInos: number[] = []
  dirs = new Map<number, DirOverlay>()
  sb: Superblock | undefined
  /** Inode slots [from, to) the commit zeroes before raising the high-water mark to `to`. */
  zeroInodes: [number, number] | undefined
  constructor(readonly op: string) {}
}

function cloneInode(i: Inode): Inode {
  const extents = new Array<Inode['extents'][number]>(i.extents.length)
  for (let k = 0; k < extents.length; k++) { const e = i.extents[k]!; extents[k] = { l: e.l, p: e.p, n: e.n } }
  return { ...i, extents, overflow: i.overflow.slice() }
}

export function txInode(st: FsState, tx: Tx, ino: number): Inode | undefined {
  if (tx.inodes.has(ino)) return tx.inodes.get(ino) ?? undefined
  return st.inodes[ino]
}

export function mut(st: FsState, tx: Tx, ino: number): Inode {
  const t = tx.inodes.get(ino)
  if (t) return t
  const cur = st.inodes[ino]
  if (!cur) throw new Error(`pmemu internal: inode ${ino} is not in use`)
  const c = cloneInode(cur)
  tx.inodes.set(ino, c)
  return c
}

export function abort(st: FsState, tx: Tx): void {
  for (const [p, n] of tx.allocated) st.bitmap.clearRange(p, n)
  for (const ino of tx.newInos) st.reservedInos.delete(ino)
}
