/**
 * Poison and memory failure through the file system (SPEC §7), and the fs
 * side of unbind: `attachFaults(fs)` installs the fs I/O hooks and a device
 * listener. See docs/faults.md for the semantics, summarised here:
 *
 * - A data read whose range covers a poisoned 512-byte sector fails with
 *   EHWPOISON (133). The bytes before the first poisoned sector are copied
 *   into the caller's buffer (`err.bytesRead` says how many), nothing at or
 *   past it is. (Linux returns a short read instead when the read starts
 *   before the poison; pmemu fails the call so the poison cannot be missed,
 *   and keeps the short count in `bytesRead`.)
 * - A data write that covers whole poisoned sectors is a recovery write: the
 *   bytes are stored and persisted (memcpy_flushcache, as pmem_recovery_write),
 *   then the sectors are cleared from the badblocks list. A write that covers
 *   part of a poisoned sector fails with EHWPOISON and stores nothing of that
 *   extent run.
 * - Poison in a metadata block (superblocks, journal, bitmap, inode table,
 *   directory, extent block) shuts the fs down (every later call EIO, nothing
 *   more is written): at once when a block of a mounted fs is poisoned, at
 *   attach when the device already has such poison, or when a lazily read
 *   metadata block (a directory) turns out to be poisoned.
 * - When the device is unbound, closed or crashes, every later call on the fs
 *   and its files fails with ENXIO.
 */
import { pmemError, type PmemuError } from '../errors.js'
import type { PmemFs, FsExtension, BlockOwner } from '../fs/index.js'
import type { BadBlock } from '../region/types.js'
import type { DeviceListener } from '../region/device.js'

const SECTOR = 512

/** What attachFaults needs from the device under the fs (the region Device has it all). */
interface FaultDevice {
  pageSize: number
  pageCount: number
  poisonedIn(offset: number, length: number): BadBlock[]
  clearPoison(offset: number, length: number): void
  persist(offset: number, length: number): void
  badblocks(): BadBlock[]
  attach(l: DeviceListener): () => void
  readonly status?: string
}

/** True when `dev` is a pmemu Device attachFaults can work with (a bare FsDevice stub is not). */
export function isFaultCapable(dev: unknown): boolean { return isFaultDevice(dev) }

function isFaultDevice(d: unknown): d is FaultDevice {
  const x = d as Partial<FaultDevice> | null
  return !!x && typeof x.poisonedIn === 'function' && typeof x.clearPoison === 'function' &&
    typeof x.attach === 'function' && typeof x.badblocks === 'function'
}

export interface FaultsHandle {
  readonly fs: PmemFs
  /** Metadata blocks found poisoned (at attach or since), with their owner. */
  readonly metadataHits: ReadonlyArray<{ pfn: number; owner: BlockOwner['kind'] }>
  /** Recovery writes done (whole poisoned sectors rewritten and cleared). */
  readonly recoveries: number
  /** Remove the hooks and the device listener. */
  detach(): void
}

const attached = new WeakMap<PmemFs, FaultsHandle>()

/** The handle of an fs that attachFaults was called on, if any. */
export function faultsOf(fs: PmemFs): FaultsHandle | undefined { return attached.get(fs) }

function poisonError(syscall: 'read' | 'write', first: BadBlock, fileOffset: number, ino: number, pageSize: number, why: string): PmemuError {
  return pmemError('EHWPOISON', syscall, why, {
    offset: fileOffset, devOffset: first.offset, pfn: Math.floor(first.offset / pageSize), ino,
  })
}

/**
 * Wire poison, memory failure and device death into a mounted fs. Idempotent
 * per fs (a second call returns the first handle). The public mkfs/mount call
 * it; call it yourself on an fs from src/fs directly.
 */
export function attachFaults(fs: PmemFs): FaultsHandle {
  const have = attached.get(fs)
  if (have) return have
  const dev = fs.device as unknown
  if (!isFaultDevice(dev)) {
    throw pmemError('EINVAL', 'attachFaults', 'the file system is not on a pmemu Device (no poison/attach surface)')
  }
  const ps = dev.pageSize
  const metadataHits: Array<{ pfn: number; owner: BlockOwner['kind'] }> = []
  let recoveries = 0
  /** The recovery write in flight between beforeDataWrite and afterDataWrite (JS runs them back to back). */
  let pending: { off: number; len: number } | undefined

  const ext: FsExtension = {
    name: 'faults',
    checkDataRead(off, len, ctx) {
      const bad = dev.poisonedIn(off, len)
      if (bad.length === 0) return
      const first = bad.reduce((a, b) => (b.offset < a.offset ? b : a))
      const clean = first.offset - off
      const e = poisonError('read', first, ctx.fileOffset + clean, ctx.ino, ps,
        `read of poisoned memory at file offset ${ctx.fileOffset + clean} (device bytes ${first.offset}..${first.offset + first.length - 1})`)
      return { readable: clean, error: e }
    },
    checkDataWrite(off, len, ctx) {
      pending = undefined
      const bad = dev.poisonedIn(off, len)
      if (bad.length === 0) return
      for (const b of bad) {
        if (b.offset % SECTOR !== 0 || (b.offset + b.length) % SECTOR !== 0) {
          const fo = ctx.fileOffset + (b.offset - off)
          return poisonError('write', b, fo, ctx.ino, ps,
            `write covers part of a poisoned 512-byte sector at file offset ${fo}: only whole-sector writes clear poison`)
        }
      }
      pending = { off, len }
    },
    afterDataWrite(off, len) {
      const p = pending
      pending = undefined
      if (!p || p.off !== off || p.len !== len) return
      // Recovery write: the new bytes are durable before the poison record goes (memcpy_flushcache).
      dev.persist(off, len)
      dev.clearPoison(off, len)
      recoveries++
    },
    checkMetaRead(off, len, what) {
      const bad = dev.poisonedIn(off, len)
      if (bad.length === 0) return
      const b = bad[0]!
      return pmemError('EHWPOISON', 'read', `${what} at device offset ${b.offset} is poisoned`, { offset: b.offset, pfn: Math.floor(b.offset / ps) })
    },
  }

  /** Shut the fs down if any block of [offset, offset+length) is fs metadata. */
  const checkMeta = (range: BadBlock, when: string): void => {
    if (fs.isDead || fs.isUnmounted) return
    const first = Math.floor(range.offset / ps)
    const last = Math.min(fs.blockCount - 1, Math.floor((range.offset + range.length - 1) / ps))
    for (let pfn = first; pfn <= last; pfn++) {
      const owner = fs.blockOwner(pfn)
      if (!fs.isMetadataBlock(pfn)) continue
      metadataHits.push({ pfn, owner: owner.kind })
      fs.shutdown(`memory failure ${when} in ${owner.kind} block ${pfn} (device bytes ${range.offset}..${range.offset + range.length - 1})`)
      return
    }
  }

  let unsubscribe: (() => void) | undefined
  const listener: DeviceListener = {
    poison(range) {
      if (fs.isUnmounted) { unsubscribe?.(); return }
      checkMeta(range, 'of a mounted file system')
    },
    dead(reason) {
      if (fs.isUnmounted) { unsubscribe?.(); return }
      const why = reason === 'unbound' ? 'the device was unbound'
        : reason === 'closed' ? 'the device is closed' : 'the device crashed (power loss); mount it again'
      fs.shutdown(why, 'ENXIO')
      unsubscribe?.()
    },
  }

  let detachExt: (() => void) | undefined = fs.attach(ext)
  unsubscribe = dev.attach(listener)
  const handle: FaultsHandle = {
    fs,
    metadataHits,
    get recoveries() { return recoveries },
    detach() {
      unsubscribe?.()
      unsubscribe = undefined
      detachExt?.()
      detachExt = undefined
      attached.delete(fs)
    },
  }
  attached.set(fs, handle)
  // Poison already on the device (it survives reopen): metadata hits shut the fs down now.
  for (const b of dev.badblocks()) checkMeta(b, 'found at mount')
  return handle
}
