import t, { type Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice, type Device } from '../src/region/index.js'
import { fsck, type PmemFs, type PmemFile, type BlockOwner } from '../src/fs/index.js'
import { mkfs, mount, type DaxMapping } from '../src/dax/index.js'
import { DmaEngine } from '../src/dma/index.js'
import { idleRefcount, pgmapBase, MODELS, MODEL_NAMES, PIN_BIAS } from '../src/page/index.js'
import { attachFaults, forEachCrash, replayCrash, type Workload, type Verify } from '../src/faults/index.js'
import type { ModelName } from '../src/region/types.js'

const dir = mkdtempSync(join(tmpdir(), 'pmemu-faults-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let fileNo = 0
const file = (): string => join(dir, `dev${fileNo++}.pmem`)

async function newDev(t: Test, opts: { size?: string; model?: ModelName } = {}): Promise<Device> {
  const d = await openDevice(undefined, { size: opts.size ?? '16MiB', crashShadow: true, ...(opts.model ? { model: opts.model } : {}) })
  t.teardown(async () => { await d.close() })
  return d
}

/** mkfs (DAX attached) + attachFaults: what the public mkfs does once the lead wires it. */
async function newFs(dev: Device): Promise<PmemFs> {
  const fs = await mkfs(dev)
  attachFaults(fs)
  return fs
}

async function remount(dev: Device): Promise<PmemFs> {
  const fs = await mount(dev)
  attachFaults(fs)
  return fs
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < len; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff }
  return b
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

/** The error code of a sync call, a promise, or a thunk returning one. */
async function code(fn: (() => unknown) | Promise<unknown>): Promise<string> {
  try {
    const r = typeof fn === 'function' ? fn() : fn
    if (r && typeof (r as Promise<unknown>).then === 'function') await r
    return 'ok'
  } catch (e) {
    return (e as { code?: string }).code ?? `untyped: ${String(e)}`
  }
}

async function writeFile(fs: PmemFs, path: string, data: Uint8Array): Promise<PmemFile> {
  const f = await fs.open(path, 'w+')
  f.write(data, 0)
  await f.fsync()
  return f
}

async function readFile(fs: PmemFs, path: string): Promise<Uint8Array> {
  const f = await fs.open(path, 'r')
  const b = new Uint8Array(f.stat().size)
  const n = f.read(b, 0)
  await f.close()
  if (n !== b.length) throw new Error(`short read ${n} of ${b.length}`)
  return b
}

function findBlock(fs: PmemFs, kind: BlockOwner['kind']): number {
  for (let pfn = 0; pfn < fs.blockCount; pfn++) if (fs.blockOwner(pfn).kind === kind) return pfn
  throw new Error(`no ${kind} block`)
}

// ------------------------------------------------------------------------------------ poison: reads

t.test('a read over a poisoned sector fails with EHWPOISON and reads nothing past it', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const data = pattern(3 * 4096, 1)
  const f = await writeFile(fs, '/a', data)
  const pfn = f.node.pfnAt(1)!
  // 10 bytes at file offset 5000 poison the whole sector 4608..5119 of the file
  t.same(dev.poison(pfn * 4096 + 904, 10), { offset: pfn * 4096 + 512, length: 512 })
  t.ok(dev.page(pfn).flags.includes('poisoned'))

  const buf = new Uint8Array(data.length).fill(0xee)
  let err: { code?: string; errno?: number; bytesRead?: number; syscall?: string; path?: string; offset?: number; pfn?: number } = {}
  try { f.read(buf, 0); t.fail('read should fail') } catch (e) { err = e as typeof err }
  t.equal(err.code, 'EHWPOISON')
  t.equal(err.errno, 133)
  t.equal(err.syscall, 'read')
  t.equal(err.path, '/a')
  t.equal(err.offset, 4608, 'file offset of the first poisoned byte')
  t.equal(err.pfn, pfn)
  t.equal(err.bytesRead, 4608, 'the clean prefix is reported')
  t.ok(eq(buf.subarray(0, 4608), data.subarray(0, 4608)), 'bytes before the poison are copied')
  t.ok(buf.subarray(4608).every(b => b === 0xee), 'nothing at or past the poison is read')

  // the file position does not move on a failed read
  f.position = 0
  t.equal(await code(() => f.read(buf)), 'EHWPOISON')
  t.equal(f.position, 0)
  // reads that stop before it, or start after it, are fine
  t.equal(f.read(buf.subarray(0, 4608), 0), 4608)
  t.equal(f.read(buf.subarray(0, 7072), 5120), 7072)
  t.ok(eq(buf.subarray(0, 7072), data.subarray(5120, 5120 + 7072)))
  // a read that starts inside the poisoned sector gets nothing
  buf.fill(0xee)
  try { f.read(buf.subarray(0, 100), 5000); t.fail() } catch (e) {
    t.equal((e as { code: string }).code, 'EHWPOISON')
    t.equal((e as { bytesRead: number }).bytesRead, 0)
  }
  t.ok(buf.subarray(0, 100).every(b => b === 0xee))
  // poison is a device fault, not an fs one: the fs keeps working
  t.notOk(fs.isDead)
  t.equal((await fs.stat('/a')).size, data.length)
  await f.close()
})

t.test('a read over poison in a later extent copies the earlier extents', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await fs.open('/frag', 'w+')
  const spacer = await fs.open('/spacer', 'w+')
  // interleave the two files so /frag has two extents
  f.write(pattern(4096, 2), 0)
  spacer.write(pattern(4096, 3), 0)
  f.write(pattern(4096, 4), 4096)
  t.equal(f.node.extents().length, 2)
  const p1 = f.node.pfnAt(1)!
  dev.poison(p1 * 4096 + 1024, 512)
  const buf = new Uint8Array(8192)
  try { f.read(buf, 0); t.fail() } catch (e) {
    t.equal((e as { code: string }).code, 'EHWPOISON')
    t.equal((e as { bytesRead: number }).bytesRead, 4096 + 1024)
  }
  t.ok(eq(buf.subarray(0, 4096), pattern(4096, 2)))
  t.ok(eq(buf.subarray(4096, 5120), pattern(4096, 4).subarray(0, 1024)))
  t.ok(buf.subarray(5120).every(b => b === 0))
})

// ------------------------------------------------------------------------------------ poison: writes

t.test('a write covering whole poisoned sectors clears them and the data is good (recovery write)', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/a', pattern(8192, 5))
  const pfn = f.node.pfnAt(0)!
  dev.poison(pfn * 4096 + 1024, 1024) // sectors 2 and 3 of the page
  t.equal(dev.badblocks().length, 1)
  t.equal(await code(() => f.read(new Uint8Array(10), 1500)), 'EHWPOISON')
  const fresh = pattern(1024, 6)
  t.equal(f.write(fresh, 1024), 1024, 'the recovery write stores every byte')
  t.same(dev.badblocks(), [], 'the sectors are cleared')
  t.notOk(dev.page(pfn).flags.includes('poisoned'), 'the page flag goes with the last poisoned sector')
  const want = pattern(8192, 5)
  want.set(fresh, 1024)
  t.ok(eq(await readFile(fs, '/a'), want))
  // a recovery write is persisted (memcpy_flushcache): it survives power loss without fsync
  await dev.crash({ seed: 3, keep: 'none' })
  const fs2 = await remount(dev)
  t.ok(eq(await readFile(fs2, '/a'), want))

  // a bigger write that covers poison in the middle clears only the covered whole sectors
  const g = await fs2.open('/a', 'r+')
  dev.poison(pfn * 4096, 512)
  dev.poison(pfn * 4096 + 4096 - 512, 512)
  t.equal(g.write(pattern(4096, 7), 0), 4096)
  t.same(dev.badblocks(), [])
  t.ok(eq((await readFile(fs2, '/a')).subarray(0, 4096), pattern(4096, 7)))
})

t.test('a partial-sector write over poison fails with EHWPOISON and stores nothing', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/a', pattern(4096, 8))
  const pfn = f.node.pfnAt(0)!
  dev.poison(pfn * 4096 + 512, 1024) // sectors 1..2
  const before = Buffer.from(dev.view(pfn * 4096, 4096))
  let err: { code?: string; errno?: number; syscall?: string; offset?: number } = {}
  try { f.write(new Uint8Array(100).fill(1), 600); t.fail() } catch (e) { err = e as typeof err }
  t.equal(err.code, 'EHWPOISON')
  t.equal(err.errno, 133)
  t.equal(err.syscall, 'write')
  t.equal(err.offset, 600)
  // whole sector 1 but only half of sector 2: refused as a whole
  t.equal(await code(() => f.write(new Uint8Array(768).fill(2), 512)), 'EHWPOISON')
  // a write that ends mid-sector before the poison is fine and clears nothing
  t.equal(f.write(new Uint8Array(100).fill(3), 0), 100)
  const after = Buffer.from(dev.view(pfn * 4096, 4096))
  t.ok(before.subarray(100).equals(after.subarray(100)), 'no byte of the refused writes was stored')
  t.same(dev.badblocks(), [{ offset: pfn * 4096 + 512, length: 1024 }], 'the poison stays')
  t.notOk(fs.isDead)
})

t.test('poison survives close and reopen and still fails reads; fsck lists it', async t => {
  const path = file()
  let dev = await openDevice(path, { size: '16MiB', create: true })
  let fs = await newFs(dev)
  const data = pattern(10000, 9)
  const f = await writeFile(fs, '/keep', data)
  const pfn = f.node.pfnAt(2)!
  await f.close()
  dev.poison(pfn * 4096 + 100, 1) // file bytes 8192..8703
  await fs.unmount()
  await dev.close()

  dev = await openDevice(path)
  t.teardown(async () => { await dev.close() })
  t.same(dev.badblocks(), [{ offset: pfn * 4096, length: 512 }])
  t.ok(dev.page(pfn).flags.includes('poisoned'))
  const rep = await fsck(dev)
  t.equal(rep.exitCode, 0, 'poison in file data is not an fs problem')
  t.same(rep.badblocks, [{ offset: pfn * 4096, length: 512, pfn, owner: `data of inode ${f.ino}`, metadata: false }])
  fs = await remount(dev)
  t.notOk(fs.isDead)
  const g = await fs.open('/keep', 'r')
  const buf = new Uint8Array(data.length)
  try { g.read(buf, 0); t.fail() } catch (e) {
    t.equal((e as { code: string }).code, 'EHWPOISON')
    t.equal((e as { bytesRead: number }).bytesRead, 8192)
  }
  t.ok(eq(buf.subarray(0, 8192), data.subarray(0, 8192)))
  await g.close()
  await fs.unmount()
})

// ------------------------------------------------------------------------------------ poison: metadata

const metaKinds: Array<{ kind: BlockOwner['kind']; label: RegExp; setup?: (fs: PmemFs) => Promise<void> }> = [
  { kind: 'superblock', label: /primary superblock/ },
  { kind: 'backup-superblock', label: /backup superblock/ },
  { kind: 'journal', label: /journal/ },
  { kind: 'bitmap', label: /bitmap/ },
  { kind: 'inode-table', label: /inode table/ },
  {
    kind: 'directory', label: /directory block of inode/,
    setup: async fs => { await fs.mkdir('/d'); for (let i = 0; i < 5; i++) await (await fs.open(`/d/f${i}`, 'w')).close() },
  },
  {
    kind: 'extent-block', label: /extent block of inode/,
    setup: async fs => {
      const a = await fs.open('/frag', 'w')
      const b = await fs.open('/other', 'w')
      for (let i = 0; i < 14; i++) { a.write(pattern(16, i), i * 4096); b.write(pattern(16, i), i * 4096) }
      await a.close()
      await b.close()
    },
  },
]

for (const { kind, label, setup } of metaKinds) {
  t.test(`poison in a ${kind} block shuts the mounted fs down (EIO), nothing earlier is lost, fsck reports it`, async t => {
    const dev = await newDev(t, { size: '8MiB' })
    const fs = await newFs(dev)
    const data = pattern(9000, 10)
    const keep = await writeFile(fs, '/keep', data)
    await setup?.(fs)
    const pfn = kind === 'journal' ? findBlock(fs, 'journal') + 1 : findBlock(fs, kind)
    t.ok(fs.isMetadataBlock(pfn))
    t.notOk(fs.isDead)
    dev.poison(pfn * 4096 + 2048, 1)
    t.ok(fs.isDead, 'shut down at once, as XFS on a metadata memory failure')
    const image = Buffer.from(dev.view(0, dev.capacity))
    // every later call fails with EIO
    t.equal(await code(fs.stat('/keep')), 'EIO')
    t.equal(await code(fs.open('/keep', 'r')), 'EIO')
    t.equal(await code(fs.open('/new', 'w')), 'EIO')
    t.equal(await code(fs.mkdir('/m')), 'EIO')
    t.equal(await code(fs.readdir('/')), 'EIO')
    t.equal(await code(fs.unlink('/keep')), 'EIO')
    t.equal(await code(fs.rename('/keep', '/k2')), 'EIO')
    t.equal(await code(() => fs.statfs()), 'EIO')
    t.equal(await code(() => keep.read(new Uint8Array(10), 0)), 'EIO')
    t.equal(await code(() => keep.write(new Uint8Array(10), 0)), 'EIO')
    t.equal(await code(keep.fsync()), 'EIO')
    t.equal(await code(keep.truncate(0)), 'EIO')
    t.ok(Buffer.from(dev.view(0, dev.capacity)).equals(image), 'a shut-down fs writes nothing')
    await fs.unmount() // detaching a shut-down fs is allowed

    // fsck names the poisoned metadata: a problem repair cannot fix
    const rep = await fsck(dev)
    t.equal(rep.exitCode, 4)
    t.equal(rep.problems.filter(p => p.startsWith('badblocks:')).length, 1)
    t.match(rep.problems.find(p => p.startsWith('badblocks:')), label)
    t.match(rep.badblocks, [{ pfn, metadata: true }])
    const fixed = await fsck(dev, { repair: true })
    t.equal(fixed.exitCode, 4, 'repair cannot clear poison')

    // mounting again with the poison still there: shut down at attach
    const again = await remount(dev)
    t.ok(again.isDead)
    t.equal(await code(again.stat('/keep')), 'EIO')
    await again.unmount()

    // once the poison is cleared (ARS / a scrub), everything written before is there
    dev.clearPoison(0, dev.capacity)
    const after = await remount(dev)
    t.ok(eq(await readFile(after, '/keep'), data))
    await after.unmount()
    t.equal((await fsck(dev)).exitCode, 0)
  })
}

t.test('poison in data or free space does not shut the fs down', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/a', pattern(4096, 11))
  dev.poison(f.node.pfnAt(0)! * 4096, 512)
  dev.poison((fs.blockCount - 10) * 4096, 4096)
  t.equal(fs.blockOwner(fs.blockCount - 10).kind, 'free')
  t.notOk(fs.isDead)
  await fs.mkdir('/still-works')
  t.same((await fs.readdir('/')).sort(), ['a', 'still-works'])
})

// ------------------------------------------------------------------------------------ poison: DAX

t.test('DAX: faulting a poisoned page is SIGBUS; poisoning a mapped page emits memory-failure and unmaps it', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/m', pattern(3 * 4096, 12))
  const map = f.mmap(0, 3 * 4096, { write: true }) as DaxMapping
  t.ok(eq(map.view(0, 3 * 4096), pattern(3 * 4096, 12)))
  const events: Array<{ offset: number; length: number; fileOffset: number; pfn: number }> = []
  map.on('memory-failure', ev => events.push(ev))
  const pfn = map.pfn(4096)
  dev.poison(pfn * 4096 + 512, 512)
  t.same(events, [{ offset: 4096 + 512, length: 512, fileOffset: 4096 + 512, pfn }])
  t.equal(await code(() => map.view(4096, 10)), 'SIGBUS', 'the poisoned page cannot be faulted back')
  t.equal(await code(() => map.view(4096 + 1024, 10)), 'SIGBUS', 'the whole page is gone, not only the sector')
  t.ok(eq(map.view(0, 4096), pattern(4096, 12)), 'other pages still map')
  t.equal(await code(() => f.read(new Uint8Array(4096), 4096)), 'EHWPOISON', 'read(2) of the same bytes')
  // a recovery write through the fs clears it; the page can be mapped again
  t.equal(f.write(pattern(4096, 13), 4096), 4096)
  t.same(dev.badblocks(), [])
  t.ok(eq(map.view(4096, 4096), pattern(4096, 13)))
  t.equal(events.length, 1)
  map.unmap()
})

t.test('DMA: a transfer over a poisoned page fails with EHWPOISON and leaves no pin', async t => {
  const dev = await newDev(t)
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/d', pattern(2 * 4096, 14))
  const map = f.mmap(0, 2 * 4096, { write: true }) as DaxMapping
  map.populate()
  const dma = new DmaEngine(dev, { workers: 1 })
  t.teardown(() => dma.close())
  const pfn = map.pfn(4096)
  dev.poison(pfn * 4096, 512)
  const tr = dma.submit({ map, offset: 0, length: 2 * 4096, direction: 'to-device' })
  t.equal(await code(tr.done), 'EHWPOISON')
  t.equal(dev.page(map.pfn(0)).pincount, 0)
  t.notOk(dev.pages.maybeDmaPinned(map.pfn(0)))
  t.same(dev.check(), [])
})

// ------------------------------------------------------------------------------------ power loss

for (const model of MODEL_NAMES) {
  t.test(`${model}: after a crash every object of the old life fails with ENXIO and the side table is idle`, async t => {
    const dev = await newDev(t, { model })
    const fs = await newFs(dev)
    const data = pattern(8192, 15)
    const f = await writeFile(fs, '/a', data)
    const map = f.mmap(0, 8192, { write: true }) as DaxMapping
    map.populate()
    const dma = new DmaEngine(dev, { workers: 1 })
    t.teardown(() => dma.close())
    const held = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release' })
    await held.pinned
    const pfn = map.pfn(0)
    dev.pages.get(pfn)
    t.not(dev.page(pfn).refcount, idleRefcount(model))

    await dev.crash({ seed: 1, keep: 'none' })
    // side table back to a fresh probe
    for (let p = 0; p < dev.pageCount; p += 97) t.equal(dev.page(p).refcount, idleRefcount(model))
    t.equal(dev.page(pfn).refcount, idleRefcount(model))
    t.equal(dev.page(pfn).mapcount, 0)
    t.equal(dev.pgmapRefs(), pgmapBase(MODELS[model], dev.pageCount), 'pgmap back at its base')
    t.same(dev.check(), [], 'no invariant violation')
    // the old life
    t.equal(await code(held.done), 'ENXIO')
    t.equal(await code(fs.stat('/a')), 'ENXIO')
    t.equal(await code(fs.open('/a', 'r')), 'ENXIO')
    t.equal(await code(() => f.read(new Uint8Array(1), 0)), 'ENXIO')
    t.equal(await code(() => f.write(new Uint8Array(1), 0)), 'ENXIO')
    t.equal(await code(() => map.view(0, 1)), 'ENXIO')
    t.equal(await code(() => dma.submit({ map, offset: 0, length: 4096, direction: 'to-device' }).done), 'ENXIO')
    // mount again: journal replay, fsynced data intact
    const fs2 = await remount(dev)
    t.ok(eq(await readFile(fs2, '/a'), data))
    const g = await fs2.open('/a', 'r')
    const map2 = g.mmap(0, 8192) as DaxMapping
    t.ok(eq(map2.view(0, 8192), data))
    map2.unmap()
    await g.close()
  })
}

// ------------------------------------------------------------------------------------ forEachCrash

/** A log of 512-byte records in a preallocated file, and a commit counter in another: counter k means records 0..k-1 are durable. */
function logWorkload(forgetFsync: boolean): Workload {
  return async ({ fs, state }) => {
    const log = await fs.open('/log', 'w+')
    await log.fallocate(0, 8 * 512)
    await log.fsync()
    const meta = await fs.open('/meta', 'w+')
    meta.write(new Uint8Array(8), 0)
    await meta.fsync()
    state.acked = 0
    for (let i = 0; i < 8; i++) {
      log.write(pattern(512, 100 + i), i * 512)
      if (!forgetFsync) await log.fsync()
      const c = new Uint8Array(8)
      new DataView(c.buffer).setUint32(0, i + 1, true)
      meta.write(c, 0)
      await meta.fsync()
      state.acked = i + 1
    }
    await log.close()
    await meta.close()
  }
}

const logVerify: Verify = async ({ fs, state }) => {
  const acked = (state.acked as number | undefined) ?? 0
  if (!(await fs.exists('/meta'))) {
    if (acked > 0) throw new Error(`/meta is gone but ${acked} records were acknowledged`)
    return
  }
  const c = await readFile(fs, '/meta')
  const committed = c.length >= 4 ? new DataView(c.buffer, c.byteOffset).getUint32(0, true) : 0
  if (committed < acked) throw new Error(`counter ${committed} < ${acked} acknowledged`)
  const log = await readFile(fs, '/log')
  for (let i = 0; i < committed; i++) {
    if (!eq(log.subarray(i * 512, (i + 1) * 512), pattern(512, 100 + i))) throw new Error(`record ${i} of ${committed} committed is not intact`)
  }
}

t.test('forEachCrash passes a correct workload', async t => {
  const r = await forEachCrash(logWorkload(false), logVerify, { seeds: 12, size: '8MiB' })
  t.ok(r.ok, r.firstFailure?.message ?? 'ok')
  t.same(r.failures, [])
  t.ok(r.crashPoints >= 8 * 3, `${r.crashPoints} journal crash points`)
  t.ok(r.persists > 16, `${r.persists} persists`)
  t.equal(r.runs, r.crashPoints + 12)
})

t.test('forEachCrash finds a workload that forgets fsync, and replayCrash reproduces it from its seed', async t => {
  const w = logWorkload(true)
  const r = await forEachCrash(w, logVerify, { seeds: 12, size: '8MiB', crashPoints: false })
  t.equal(r.runs, 12)
  t.notOk(r.ok)
  const first = r.firstFailure!
  t.ok(first)
  t.equal(first.phase, 'verify')
  t.equal(first.keep, 'random')
  t.match(first.point, /^(persist:\d+|end)$/)
  t.match(first.message, new RegExp(`seed ${first.seed}`))
  t.match((first.error as Error).message, /record \d+ of \d+ committed is not intact/)
  // the same seed and point fail the same way, every time
  const again = await replayCrash(w, logVerify, { seed: first.seed, point: first.point, keep: first.keep, size: '8MiB' })
  t.ok(again)
  t.equal(again!.phase, 'verify')
  t.equal((again!.error as Error).message, (first.error as Error).message)
  // the point can be left out: the seed picks the same random moment
  const bySeed = await replayCrash(w, logVerify, { seed: first.seed, keep: first.keep, size: '8MiB' })
  t.equal((bySeed!.error as Error).message, (first.error as Error).message)
  // and the correct workload passes that exact crash
  t.equal(await replayCrash(logWorkload(false), logVerify, { seed: first.seed, point: first.point, keep: first.keep, size: '8MiB' }), undefined)
})

t.test('forEachCrash: journaled metadata at every crash point, keep none and all', async t => {
  const w: Workload = async ({ fs, state }) => {
    await fs.mkdir('/d')
    state.step = 1
    const f = await fs.open('/d/x', 'w')
    f.write(pattern(5000, 20), 0)
    await f.close()
    state.step = 2
    await fs.rename('/d/x', '/y')
    state.step = 3
    await fs.unlink('/y')
    state.step = 4
  }
  const v: Verify = async ({ fs, state }) => {
    const step = (state.step as number | undefined) ?? 0
    const hasD = await fs.exists('/d')
    if (step >= 1 && !hasD) throw new Error('/d lost')
    const x = await fs.exists('/d/x')
    const y = await fs.exists('/y')
    if (x && y) throw new Error('the rename is visible twice')
    if (step === 2 && !x && !y) throw new Error('the file is gone before unlink')
    if (step >= 4 && (x || y)) throw new Error('unlinked file came back')
    const present = x ? '/d/x' : y ? '/y' : undefined
    if (present && step >= 2 && !eq(await readFile(fs, present), pattern(5000, 20))) throw new Error('data changed')
  }
  const r = await forEachCrash(w, v, { seeds: 4, keep: ['none', 'all'], size: '8MiB' })
  t.ok(r.ok, r.firstFailure?.message ?? 'ok')
  t.equal(r.runs, 2 * (r.crashPoints + 4))
  t.ok(r.crashPoints >= 5 * 8)
})

t.test('forEachCrash reports unexpected workload errors and rejects a broken dry run', async t => {
  const r = await forEachCrash(async ({ fs }) => {
    await fs.mkdir('/a')
    try { await fs.mkdir('/b') } catch { throw new Error('not an I/O error') }
  }, () => undefined, { seeds: 0, size: '8MiB', fsck: false })
  t.ok(r.failures.length > 0)
  t.ok(r.failures.every(f => f.phase === 'workload' && (f.error as Error).message === 'not an I/O error'))
  await t.rejects(forEachCrash(() => { throw new Error('always') }, () => undefined, { size: '8MiB' }), { message: 'always' })
  await t.rejects(forEachCrash(async () => undefined, () => undefined, { keep: 'some' as 'all', size: '8MiB' }), { code: 'EINVAL', syscall: 'forEachCrash' })
})

// ------------------------------------------------------------------------------------ unbind

/** A device with /a (8 KiB of pattern 31) mapped and a DMA transfer over it held pinned until release. */
async function heldTransfer(t: Test, model: ModelName) {
  const dev = await newDev(t, { model })
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/a', pattern(8192, 31))
  const map = f.mmap(0, 8192, { write: true }) as DaxMapping
  const dma = new DmaEngine(dev, { workers: 1 })
  t.teardown(() => dma.close())
  const tr = dma.submit({ map, offset: 0, length: 8192, direction: 'to-device', hold: 'until-release' })
  await tr.pinned
  return { dev, fs, map, dma, tr }
}

// The models whose unbind waits for every page (SPEC §3 "unbind waits for"): the reworked dax-gup.
for (const model of MODEL_NAMES.filter(m => MODELS[m].unbindWaits === 'all-idle')) {
  t.test(`${model}: unbind times out on a pin and leaves everything working; after unpin it completes, then ENXIO`, async t => {
    const dev = await newDev(t, { model })
    const fs = await newFs(dev)
    const data = pattern(8192, 30)
    const f = await writeFile(fs, '/a', data)
    const map = f.mmap(0, 8192, { write: true }) as DaxMapping
    map.populate()
    const pfn = map.pfn(0)
    dev.pages.pin(pfn)

    await t.rejects(dev.unbind({ timeoutMs: 30 }), { code: 'ETIMEDOUT' })
    t.equal(dev.status, 'open')
    const ac = new AbortController()
    const p = dev.unbind({ signal: ac.signal })
    ac.abort()
    await t.rejects(p, { name: 'AbortError' })
    t.equal(dev.status, 'open')
    // everything still works
    t.ok(eq(map.view(0, 8192), data), 'the mapping faults back in')
    const buf = new Uint8Array(8192)
    t.equal(f.read(buf, 0), 8192)
    t.ok(eq(buf, data))
    await (await fs.open('/b', 'w')).close()
    dev.pages.get(pfn + 1)
    dev.pages.put(pfn + 1)
    t.same(dev.check(), [])

    // unbind waits for the pin
    let done = false
    const u = dev.unbind().then(() => { done = true })
    await new Promise(r => setTimeout(r, 30))
    t.notOk(done, 'still waiting for the pin')
    dev.pages.unpin(pfn)
    await u
    t.equal(dev.status, 'unbound')
    t.equal(await code(fs.open('/a', 'r')), 'ENXIO')
    t.equal(await code(fs.stat('/a')), 'ENXIO')
    t.equal(await code(() => f.read(buf, 0)), 'ENXIO')
    t.equal(await code(() => f.write(buf, 0)), 'ENXIO')
    t.equal(await code(() => map.view(0, 1)), 'ENXIO')
    t.equal(await code(() => dev.pages.get(pfn)), 'ENXIO')
    t.equal(await code(() => dev.page(pfn)), 'ENXIO')
    t.equal(await code(() => dev.view(0, 1)), 'ENXIO')
    t.equal(await code(dev.unbind()), 'ENXIO')
    await fs.unmount()
  })

  t.test(`${model}: unbind with a DMA hold waits until release, then ENXIO for the engine`, async t => {
    const { dev, fs, map, dma, tr } = await heldTransfer(t, model)
    let done = false
    const u = dev.unbind().then(() => { done = true })
    await new Promise(r => setTimeout(r, 40))
    t.notOk(done, 'the hold keeps the device bound')
    tr.release()
    const res = await tr.done
    t.equal(res.bytes, 8192)
    t.ok(eq(tr.buffer, pattern(8192, 31)))
    await u
    t.equal(await code(() => dma.submit({ map, offset: 0, length: 4096, direction: 'to-device' }).done), 'ENXIO')
    t.equal(await code(fs.readdir('/')), 'ENXIO')
  })
}

// The others wait for pgmap refs only (memunmap_pages): a pin left behind is a use-after-unbind hazard.
for (const model of MODEL_NAMES.filter(m => MODELS[m].unbindWaits === 'pgmap-base')) {
  t.test(`${model}: unbind does not wait for pins; the pinned page is reported as a use-after-unbind hazard`, async t => {
    const dev = await newDev(t, { model })
    const fs = await newFs(dev)
    const f = await writeFile(fs, '/a', pattern(4096, 32))
    const map = f.mmap(0, 4096) as DaxMapping
    map.populate()
    const pfn = map.pfn(0)
    dev.pages.pin(pfn)
    await dev.unbind({ timeoutMs: 1000 })
    t.equal(dev.status, 'unbound')
    t.equal(await code(fs.stat('/a')), 'ENXIO')
    t.equal(await code(() => map.view(0, 1)), 'ENXIO')
    t.match(dev.check().filter(v => v.kind === 'use-after-unbind hazard'),
      [{ invariant: 6, pfn, model, op: 'unbind', expected: idleRefcount(model), found: idleRefcount(model) + PIN_BIAS }])
    t.equal(dev.stats().hazards, 1)
  })

  t.test(`${model}: unbind with a DMA hold completes; the held transfer ends, the engine then fails with ENXIO`, async t => {
    const { dev, map, dma, tr } = await heldTransfer(t, model)
    await dev.unbind({ timeoutMs: 5000 })
    t.ok(dev.check().some(v => v.kind === 'use-after-unbind hazard'), 'the pinned pages are reported')
    tr.release()
    await tr.done.then(() => t.pass('the transfer ends'), (e: { code?: string }) => t.equal(e.code, 'ENXIO', 'or fails with ENXIO'))
    t.equal(await code(() => dma.submit({ map, offset: 0, length: 4096, direction: 'to-device' }).done), 'ENXIO')
  })
}

t.test('close: the fs and its files fail with ENXIO', async t => {
  const dev = await openDevice(undefined, { size: '8MiB' })
  const fs = await newFs(dev)
  const f = await writeFile(fs, '/a', pattern(100, 33))
  await dev.close()
  t.equal(await code(fs.stat('/a')), 'ENXIO')
  t.equal(await code(() => f.read(new Uint8Array(1), 0)), 'ENXIO')
  t.equal(await code(() => attachFaults(fs)), 'ok', 'idempotent')
})
