/**
 * Device and mount events the DAX layer hears (SPEC §7; §5): poison (memory
 * failure: poisoned pages unmapped, 'memory-failure' events), unbind (unmap
 * everything, drop every entry before the device's wait), the device's death
 * (closed, unbound, crashed: every mapping dead, ENXIO) and unmount (every
 * mapping unmapped, then EIO), the last two ending in the layer's detach.
 */
import { pmemError, type PmemuError } from '../errors.js'
import type { DaxMapping, MemoryFailureEvent } from './mapping.js'
import { evictAll } from './entries.js'
import { layers, type DaxState } from './state.js'
import { kill, unmap } from './unmap.js'
import { zapMapping } from './zap.js'

/** dev.poison(): every mapping holding a poisoned page loses it and hears 'memory-failure' (Linux memory_failure → SIGBUS). */
export function memoryFailure(st: DaxState, offset: number, length: number): void {
  if (st.dead) return
  const ps = st.pageSize
  const p0 = Math.floor(offset / ps)
  const p1 = Math.min(st.table.pageCount, Math.ceil((offset + length) / ps))
  const events = new Map<DaxMapping, MemoryFailureEvent[]>()
  for (let pfn = p0; pfn < p1; pfn++) {
    const s = st.table.snapshot(pfn)
    if (s.inode === 0) continue
    const tree = st.trees.get(s.inode)
    if (!tree) continue
    const index = s.index
    for (const m of [...tree.mappings]) {
      const j = index - m.firstIndex
      if (j < 0 || j >= m.pages || m.ptes[j] !== pfn) continue
      zapMapping(st, m, j, j + 1, 'memory failure')
      const bs = Math.max(offset, pfn * ps)
      const be = Math.min(offset + length, (pfn + 1) * ps)
      const ev: MemoryFailureEvent = { offset: j * ps + (bs - pfn * ps), length: be - bs, fileOffset: index * ps + (bs - pfn * ps), pfn }
      const list = events.get(m) ?? []
      const last = list[list.length - 1]
      if (last && last.offset + last.length === ev.offset) last.length += ev.length
      else list.push(ev)
      events.set(m, list)
    }
  }
  for (const [m, list] of events) {
    st.table.bump('memoryFailures')
    st.log.warn({ id: m.id, ino: m.ino, ranges: list }, 'memory failure: poisoned pages unmapped')
    for (const ev of list) m.emit('memory-failure', ev)
  }
}

/** Unbind: unmap everything and drop every page-cache entry before the device's wait. */
export function unbind(st: DaxState): void {
  if (st.dead) return
  for (const tree of [...st.trees.values()]) {
    for (const m of tree.mappings) zapMapping(st, m, 0, m.pages, 'unbind')
    evictAll(st, tree)
  }
}

/** The device is gone (unbound, closed, crashed): every mapping dies with ENXIO, no counter changes, detach. */
export function deviceDead(st: DaxState, reason: 'unbound' | 'closed' | 'crashed'): void {
  const why = reason === 'crashed' ? 'the device crashed (power loss)' : reason === 'closed' ? 'the device is closed' : 'the device was unbound'
  st.dead = () => pmemError('ENXIO', 'dax', why, st.dev.path ? { path: st.dev.path } : {})
  for (const tree of st.trees.values()) {
    for (const m of [...tree.mappings]) {
      kill(m, () => pmemError('ENXIO', 'mmap', why, { path: m.path }), reason === 'crashed' ? 'crash' : reason === 'closed' ? 'device closed' : 'unbind')
    }
  }
  st.trees.clear()
  detach(st)
}

/** Unmount: unmap every mapping (later calls: EIO), evict every entry, detach. */
export function teardown(st: DaxState): void {
  if (st.dead) return
  const err = (): PmemuError => pmemError('EIO', 'mmap', 'file system is unmounted')
  for (const tree of [...st.trees.values()]) {
    for (const m of [...tree.mappings]) {
      try { unmap(st, m) } catch (e) { st.log.warn({ err: e, id: m.id }, 'unmap at unmount failed') }
      m._setState('dead', () => pmemError('EIO', 'mmap', 'file system is unmounted', { path: m.path }))
    }
  }
  for (const tree of [...st.trees.values()]) evictAll(st, tree)
  st.trees.clear()
  st.dead = err
  detach(st)
}

/** Undo every attachment (fs extension, checker, device listeners) and leave the registry. */
function detach(st: DaxState): void {
  for (const u of st.undo.splice(0)) { try { u() } catch { /* already gone */ } }
  if (layers.get(st.fs) === st.owner) layers.delete(st.fs)
}
