/** Journaled block allocation for a DAX write fault. */
import { pmemError } from '../errors.js'
import { allocFile, findAligned, takeRun } from './alloc.js'
import { validateInt } from './check.js'
import { journalAndInstall, prepare } from './commit.js'
import { dataWrite } from './dataio.js'
import { forEachRun, insertExtent } from './extents.js'
import type { FsNode } from './inodes.js'
import { type Extent, HUGE_BYTES, isReg } from './layout.js'
import type { FsState } from './state.js'
import { abort, mut, Tx } from './tx.js'

/** @internal */
export function allocateForFault(st: FsState, node: FsNode, index: number, huge: boolean): { index: number; pfn: number; count: number } {
  st.writable('allocateForFault')
  validateInt(index, 'index', 'allocateForFault')
  const inode = st.inodes[node.ino]
  if (!inode || !isReg(inode.mode)) throw pmemError('EINVAL', 'allocateForFault', `inode ${node.ino} is not a regular file`)
  const bs = st.blockSize
  const eofPages = Math.ceil(inode.size / bs)
  if (index >= eofPages) throw pmemError('SIGBUS', 'allocateForFault', `page ${index} is past EOF (${eofPages} pages)`, { offset: index * bs })
  const have = node.extentAt(index)
  if (have) return have
  const H = Math.max(1, HUGE_BYTES / bs)
  const tx = new Tx('fault')
  const m = mut(st, tx, node.ino)
  let runs: Extent[] = []
  try {
    const base = index - (index % H)
    let allHole = huge && H > 1 && base + H <= eofPages
    if (allHole) forEachRun(m.extents, base, base + H, (_l, _n, p) => { if (p !== null) allHole = false })
    if (allHole) {
      const p = findAligned(st, H, 0, H)
      if (p >= 0) {
        takeRun(st, tx, p, H)
        insertExtent(m.extents, { l: base, p, n: H })
        runs = [{ l: base, p, n: H }]
      }
    }
    if (runs.length === 0) runs = allocFile(st, tx, m, index, 1, false, 'allocateForFault')
  } catch (e) { abort(st, tx); throw e }
  const rb = prepare(st, tx)
  try {
    for (const r of runs) {
      dataWrite(st, r.p * bs, r.n * bs, { ino: node.ino, fileOffset: r.l * bs })
      st.device.persist(r.p * bs, r.n * bs)
    }
  } catch (err) { abort(st, tx); throw err }
  journalAndInstall(st, tx, rb)
  const r = runs.find(x => index >= x.l && index < x.l + x.n)!
  return r.n === H && huge ? { index: r.l, pfn: r.p, count: r.n } : { index, pfn: r.p + (index - r.l), count: 1 }
}
