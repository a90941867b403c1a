// A DAX mapping's own address range: the native core (C, run directly), the
// V8 windows and their deleter, one view over any file layout, guard pages
// after a zap and the stale-store check.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Worker } from 'node:worker_threads'
import { openDevice, nativeShim, type Device } from '../src/region/index.js'
import { mkfs, mount, type DaxMapping } from '../src/dax/index.js'
import type { PmemFile, PmemFs } from '../src/fs/index.js'
import { DmaEngine } from '../src/dma/index.js'
import { MODEL_NAMES } from '../src/page/index.js'
import { MappingRange } from '../src/dax/range.js'
import { packageRoot } from '../src/util/root.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const PS = 4096
const MiB = 2 ** 20
const GiB = 2 ** 30
const CANARY = [0xde, 0xad, 0xbe, 0xef]
const shim = nativeShim()
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-range-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const mmap = (f: PmemFile, off: number, len: number, o: { write?: boolean } = {}): DaxMapping => f.mmap(off, len, o) as DaxMapping
const read = (f: PmemFile, len: number, at = 0): Uint8Array => { const b = new Uint8Array(len); f.read(b, at); return b }
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24 }
  return b
}
async function code(fn: () => unknown): Promise<string | undefined> {
  try { await fn() } catch (e) { return (e as { code?: string }).code ?? String(e) }
  return undefined
}
const stale = (dev: Device) => dev.check().filter(v => v.kind === 'stale-store')

/** A file of many extents: pieces written between another file's, a punched and rewritten middle. */
async function manyExtents(fs: PmemFs, pages: number): Promise<{ f: PmemFile; other: PmemFile }> {
  const f = await fs.open('/many', 'w+')
  const other = await fs.open('/other', 'w+')
  for (let p = 0; p < pages; p += 4) {
    f.write(pattern(4 * PS, p + 1), p * PS) // grow in pieces
    other.write(pattern(PS, 1000 + p), (p / 4) * PS) // interleave another file's blocks
  }
  await f.punchHole(5 * PS, 6 * PS)
  f.write(pattern(3 * PS, 77), 6 * PS) // rewrite part of the hole: new blocks elsewhere
  return { f, other }
}

t.test('the C core, run directly', async t => {
  const cc = spawnSync('cc', ['--version'])
  if (cc.status !== 0) { t.pass('skipped: no C compiler'); return }
  const root = packageRoot()
  const exe = join(dir, 'range_test')
  execFileSync('cc', ['-std=gnu11', '-O1', '-Wall', '-o', exe, join(root, 'native-shims/test/range_test.c'), join(root, 'native-shims/src/pmem_core.c'), '-lpthread'])
  const r = spawnSync(exe, { encoding: 'utf8' })
  const lines = r.stdout.split('\n').filter(l => /^(not )?ok /.test(l))
  t.ok(lines.length > 20, 'the C test ran its checks')
  t.same(lines.filter(l => l.startsWith('not ok')), [], 'every C check passed')
  t.equal(r.status, 0)
})

t.test('glue: windows over one reservation, spans, limits, the deleter', async t => {
  const lim = shim.rangeLimits!()
  t.equal(lim.maxBytes, 2 ** 44)
  const before = shim.rangeCount!()
  let r: { id: number; sabs: SharedArrayBuffer[] } | undefined = shim.reserve!(3 * GiB, 2 * GiB, 4 * GiB)
  t.same(r.sabs.map(s => s.byteLength), [3 * GiB, GiB], 'a window every 2 GiB, up to 4 GiB long')
  const a = new Uint8Array(r.sabs[0]!)
  const b = new Uint8Array(r.sabs[1]!)
  a[2 * GiB + 5] = 42
  t.equal(b[5], 42, 'overlapping windows are the same memory')
  t.equal(a[GiB], 0, 'unfaulted pages read zero')
  const span = new Uint8Array(shim.rangeSpan!(r.id, 2 * GiB, 16))
  t.equal(span[5], 42, 'a span is the same memory')
  shim.rangeGuard!(r.id, 0, PS)
  t.same([...a.subarray(0, 8)], [...CANARY, ...CANARY], 'guard pages read the canary')
  t.equal(shim.rangeCheck!(r.id, 0, PS), -1)
  a[9] = 1
  t.equal(shim.rangeCheck!(r.id, 0, PS), 9, 'a store into a guard page is found')
  t.throws(() => shim.rangeMap!(r!.id, 1, PS, 0, 0, 0), 'unaligned: refused')
  t.throws(() => shim.rangeGuard!(r!.id, 3 * GiB, PS), /outside/, 'outside the reservation')
  t.throws(() => shim.reserve!(2 ** 45, 2 * GiB, 4 * GiB), /address space/, 'past the limit: ENOMEM')
  t.throws(() => shim.reserve!(-1, 1, 1), RangeError)
  t.equal(shim.rangeCount!(), before + 1)
})

/** gc until range `id` is gone (or tries run out); true when gone. */
async function collected(id: number, tries = 20): Promise<boolean> {
  for (let i = 0; i < tries && shim.rangeCheck!(id, 0, 0) !== -2; i++) { gc(); await new Promise(res => setImmediate(res)) }
  return shim.rangeCheck!(id, 0, 0) === -2
}

t.test('glue: the reservation goes when its last holder lets go, in any thread', async t => {
  const before = shim.rangeCount!()
  const id = (() => shim.reserve!(16 * PS, 2 * GiB, 4 * GiB).id)()
  t.ok(await collected(id), 'no holder left: unmapped')
  t.ok(shim.rangeCount!() <= before, 'unregistered')
  // A window handed to a worker keeps it alive after ours is collected.
  const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads')
    let v = new Uint8Array(workerData.sab); parentPort.postMessage(v[5])
    parentPort.on('message', () => { v = null; workerData.sab = null; parentPort.postMessage('dropped') })`,
  { eval: true, workerData: { sab: ((): SharedArrayBuffer => { const r = shim.reserve!(16 * PS, 2 * GiB, 4 * GiB); new Uint8Array(r.sabs[0]!)[5] = 42; (globalThis as Record<string, unknown>).lastId = r.id; return r.sabs[0]! })() } })
  const id2 = (globalThis as Record<string, unknown>).lastId as number
  delete (globalThis as Record<string, unknown>).lastId
  t.equal(await new Promise(res => w.once('message', res)), 42, 'the worker sees the bytes')
  t.notOk(await collected(id2, 5), 'alive while the worker holds a window')
  await w.terminate()
  t.ok(await collected(id2), 'gone once the worker let go')
})


for (const backend of ['memory', 'native'] as const) {
  const open = async (o: Record<string, unknown> = {}): Promise<Device> => backend === 'memory'
    ? openDevice(undefined, { size: '64MiB', ...o })
    : openDevice(join(dir, `d-${Math.random().toString(36).slice(2)}.pmem`), { size: '64MiB', create: true, ...o })

  t.test(`${backend}: one view over a file of many extents equals file.read, and its stores are DAX stores`, async t => {
    const dev = await open()
    const fs = await mkfs(dev)
    const { f, other } = await manyExtents(fs, 64)
    const size = f.stat().size
    const m = mmap(f, 0, size, { write: true })
    t.ok(m.capabilities.addressRange, 'an address range')
    t.ok(m.views(0, size).length > 8, 'many runs of device pages below')
    const v = m.view(0, size)
    t.equal(v.length, size)
    t.same(Buffer.compare(v, read(f, size)), 0, 'byte for byte what file.read returns')
    t.same(Buffer.compare(m.view(3 * PS + 100, 9 * PS), read(f, 9 * PS, 3 * PS + 100)), 0, 'and any sub-range')
    // stores through the one view: visible to file.read, durable after persist
    const data = pattern(size, 9)
    v.set(data)
    m.persist(0, size)
    t.same(Buffer.compare(read(f, size), data), 0, 'file.read sees the stores')
    t.same(Buffer.compare(read(other, 16 * PS), (() => { const b = new Uint8Array(16 * PS); for (let p = 0; p < 64; p += 4) b.set(pattern(PS, 1000 + p), (p / 4) * PS); return b })()), 0, 'the other file untouched')
    // the views are the same bytes as the device runs
    for (const s of m.views(0, size)) t.equal(Buffer.compare(s.bytes, v.subarray(s.offset, s.offset + s.bytes.length)), 0)
    // a read-only mapping of a file with a hole reads zeros there
    await f.punchHole(20 * PS, 2 * PS)
    const ro = await fs.open('/many', 'r')
    const mr = mmap(ro, 0, size)
    const rv = mr.view(0, size)
    t.ok(rv.subarray(20 * PS, 22 * PS).every(x => x === 0), 'hole reads zero')
    t.same(Buffer.compare(rv, read(f, size)), 0)
    t.same(dev.check(), [], 'clean')
    m.unmap(); mr.unmap()
    await ro.close(); await f.close(); await other.close()
    await fs.unmount()
    const fs2 = await mount(dev)
    const f2 = await fs2.open('/many', 'r')
    const want = data.slice(); want.fill(0, 20 * PS, 22 * PS)
    t.same(Buffer.compare(read(f2, size), want), 0, 'stores through the view survive remount')
    await dev.close()
  })

  t.test(`${backend}: a DMA transfer and a CPU view see the same bytes; workers given the mapping too`, async t => {
    const dev = await open()
    const fs = await mkfs(dev)
    const { f } = await manyExtents(fs, 32)
    const size = f.stat().size
    const m = mmap(f, 0, size, { write: true })
    const dma = new DmaEngine(dev, { workers: 1 })
    t.teardown(async () => { await dma.close(); await dev.close() })
    const src = pattern(10 * PS + 99, 3)
    await dma.submit({ map: m, offset: 2 * PS + 1, length: src.length, direction: 'from-device', buffer: src }).done
    const v = m.view(0, size)
    t.same(Buffer.compare(v.subarray(2 * PS + 1, 2 * PS + 1 + src.length), src), 0, 'the view sees what DMA wrote')
    v.fill(0x3c, 4 * PS, 9 * PS)
    const r = dma.submit({ map: m, offset: 4 * PS, length: 5 * PS, direction: 'to-device' })
    await r.done
    t.ok(r.buffer.every(x => x === 0x3c), 'DMA reads what the view stored')
    const share = m.share()
    t.ok(share.range, 'the share carries the range')
    const got = await new Promise<number[]>((res, rej) => {
      const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads')
        const v = new Uint8Array(workerData.range.sabs[0]); parentPort.postMessage(Array.from(v.subarray(${2 * PS + 1}, ${2 * PS + 1 + 64})))`,
      { eval: true, workerData: { range: share.range } })
      w.once('message', x => { res(x as number[]); void w.terminate() })
      w.once('error', rej)
    })
    t.same(got, [...src.subarray(0, 64)], 'a worker given the mapping sees the same bytes')
    t.same(dev.check(), [], 'clean')
  })

  t.test(`${backend}: populate() maps every faulted page into the range: a worker sees them with no view on this thread`, async t => {
    const dev = await open()
    t.teardown(() => dev.close())
    const fs = await mkfs(dev)
    const { f } = await manyExtents(fs, 16)
    const size = f.stat().size
    const m = mmap(f, 0, size, { write: true })
    m.populate()
    const got = await new Promise<Uint8Array>((res, rej) => {
      const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads')
        parentPort.postMessage(new Uint8Array(workerData.range.sabs[0]).slice(0, ${size}))`,
      { eval: true, workerData: { range: m.share().range } })
      w.once('message', x => { res(x as Uint8Array); void w.terminate() })
      w.once('error', rej)
    })
    t.equal(Buffer.compare(got, read(f, size)), 0, 'the worker reads the file byte for byte')
    t.same(dev.check(), [], 'clean')
    m.unmap(); await f.close()
  })

  t.test(`${backend}: a stale view after unmap / truncate / punch-hole reaches no device byte and is reported`, async t => {
    for (const how of ['unmap', 'truncate', 'punch-hole'] as const) {
      const dev = await open()
      const fs = await mkfs(dev)
      const { f, other } = await manyExtents(fs, 32)
      const size = f.stat().size
      const m = mmap(f, 0, size, { write: true })
      const v = m.view(0, size)
      if (how === 'unmap') m.unmap()
      else if (how === 'truncate') await f.truncate(4 * PS)
      else await f.punchHole(8 * PS, 8 * PS)
      // Let another file take the freed blocks, as Linux would hand them out.
      const third = await fs.open('/third', 'w+')
      third.write(pattern(16 * PS, 5), 0)
      const image = dev.view(0, dev.region.capacity).slice()
      t.same([...v.subarray(8 * PS, 8 * PS + 8)], [...CANARY, ...CANARY], `${how}: a stale read sees the canary`)
      v.fill(0xee, 8 * PS, 16 * PS) // the bug under test: a store through the stale view
      t.equal(Buffer.compare(dev.view(0, dev.region.capacity), image), 0, `${how}: no device byte changed (every file, the free space)`)
      const found = stale(dev)
      t.ok(found.length > 0, `${how}: dev.check() reports it`)
      const msg = found[0]!.message
      t.match(msg, new RegExp(`mapping ${m.id} of /many`), 'names the mapping and the file')
      t.match(msg, /file offset 32768 /, 'and the offset')
      t.match(msg, new RegExp(`zapped by ${how} at \\d{4}-`), 'and when it was zapped')
      if (how !== 'unmap') {
        // a later fault maps the live pages back (through the same address range)
        const again = m.view(0, 4 * PS)
        t.same(Buffer.compare(again, read(f, 4 * PS)), 0, `${how}: a new view sees the live pages`)
        t.equal(v[0], again[0], 'and so does the old array on the refaulted page')
      } else {
        t.equal(await code(() => m.view(0, 1)), 'EFAULT', 'a view of an unmapped mapping: EFAULT')
      }
      t.same(Buffer.compare(read(third, 16 * PS), pattern(16 * PS, 5)), 0, 'the file that took the blocks is intact')
      t.ok(read(other, 8 * PS).some(x => x !== 0xee), 'the other file is intact')
      await third.close(); await other.close(); await f.close()
      await dev.close()
    }
  })
}

t.test('crash(): stores through the view are lost or kept like any store; the old view reads the canary', async t => {
  const dev = await openDevice(undefined, { size: '64MiB', crashShadow: true })
  const fs = await mkfs(dev)
  const { f } = await manyExtents(fs, 16)
  await f.fsync()
  const size = f.stat().size
  const before = read(f, size)
  const m = mmap(f, 0, size, { write: true })
  const v = m.view(0, size)
  v.fill(1, 0, PS) // persisted: kept
  m.persist(0, PS)
  v.fill(2, 8 * PS, 9 * PS) // not persisted: lost with keep 'none'
  await dev.crash({ keep: 'none' })
  t.same([...v.subarray(0, 4)], CANARY, 'the dead mapping reads the canary')
  v[5] = 9
  t.ok(stale(dev).some(x => /zapped by crash/.test(x.message)), 'a store after the crash is reported')
  t.equal(await code(() => m.view(0, 1)), 'ENXIO', 'views on a dead mapping: ENXIO')
  const fs2 = await mount(dev)
  const f2 = await fs2.open('/many', 'r')
  const after = read(f2, size)
  t.ok(after.subarray(0, PS).every(x => x === 1), 'the persisted store survived')
  t.same(Buffer.compare(after.subarray(8 * PS, 9 * PS), before.subarray(8 * PS, 9 * PS)), 0, 'the unpersisted one was lost')
  await dev.close()
})

t.test('memory failure and unbind zap to guard pages too; a later fault maps the live pages back', async t => {
  const dev = await openDevice(undefined, { size: '64MiB' })
  const fs = await mkfs(dev)
  const f = await fs.open('/p', 'w+')
  f.write(pattern(8 * PS, 2), 0)
  const m = mmap(f, 0, 8 * PS, { write: true })
  const v = m.view(0, 8 * PS)
  const pfn = m.pfn(3 * PS)
  const events: number[] = []
  m.on('memory-failure', (e: { offset: number }) => events.push(e.offset))
  dev.poison(pfn * PS, 512)
  t.same(events, [3 * PS], 'the owner hears of it')
  t.same([...v.subarray(3 * PS, 3 * PS + 4)], CANARY, 'the poisoned page is a guard page in the range')
  t.same(Buffer.compare(v.subarray(0, 3 * PS), read(f, 3 * PS)), 0, 'the other pages are still the live ones')
  v[3 * PS + 600] = 1 // past the poisoned sector: a stale store
  t.ok(stale(dev).some(x => /zapped by memory failure/.test(x.message)), 'reported, naming the memory failure')
  const again = m.view(0, 3 * PS)
  t.equal(again[0], v[0])
  // unbind: every mapping zapped before the wait
  const w = mmap(f, 0, 2 * PS, { write: true })
  const wv = w.view(0, 2 * PS)
  await dev.unbind({ timeoutMs: 1000 })
  t.same([...wv.subarray(0, 4)], CANARY, 'after unbind the view reads the canary')
  t.equal(await code(() => w.view(0, 1)), 'ENXIO', 'and the mapping is dead')
})

t.test('without an address range the mapping says why (map.capabilities)', async t => {
  const dev = await openDevice(undefined, { size: '64MiB' })
  t.teardown(() => dev.close())
  const owner = { id: 0, path: '/x', ino: 2, offset: 0 }
  const noFd = { mapSource: () => 'the mmap-io backend cannot map device pages into another range' } as unknown as Device['region']
  t.equal(MappingRange.create(noFd, dev.table, owner, 4, PS), 'the mmap-io backend cannot map device pages into another range')
  const fs = await mkfs(dev)
  const f = await fs.open('/c', 'w+')
  f.write(pattern(PS, 1), 0)
  t.same(mmap(f, 0, PS).capabilities, { addressRange: true }, 'memory backend on a memfd: an address range')
})

t.test('partial munmap: the part goes (guard pages, EFAULT), the rest stays mapped', async t => {
  for (const model of MODEL_NAMES) {
    const dev = await openDevice(undefined, { size: '64MiB', model })
    const fs = await mkfs(dev)
    const f = await fs.open('/u', 'w+')
    f.write(pattern(8 * PS, 3), 0)
    const m = mmap(f, 0, 8 * PS, { write: true })
    const v = m.view(0, 8 * PS)
    m.unmap(2 * PS, 2 * PS)
    t.equal(m.state, 'live', `${model}: the rest is still mapped`)
    t.same([...v.subarray(2 * PS, 2 * PS + 4)], CANARY, 'the unmapped part reads the canary')
    t.same(Buffer.compare(v.subarray(0, 2 * PS), read(f, 2 * PS)), 0, 'the rest is live')
    for (const [name, fn] of [['view', () => m.view(2 * PS, 1)], ['views', () => m.views(PS, 2 * PS)], ['pfn', () => m.pfn(3 * PS)],
      ['fault', () => m.fault(2 * PS, PS, false)], ['persist', () => m.persist(0, 8 * PS)]] as const) {
      t.equal(await code(fn), 'EFAULT', `${name} reaching into the unmapped part: EFAULT`)
    }
    t.same(Buffer.compare(m.view(4 * PS, 4 * PS), read(f, 4 * PS, 4 * PS)), 0, 'views of the rest work')
    m.populate()
    t.equal(m.pte(2 * PS), -1, 'populate skips the unmapped part')
    t.not(m.pte(5 * PS), -1)
    t.same(dev.check(), [], 'clean')
    v[2 * PS + 1] = 0
    t.ok(stale(dev).some(x => /zapped by unmap/.test(x.message)), 'a store into the unmapped part is a stale store')
    t.equal(await code(() => m.unmap(1)), 'EINVAL', 'unaligned offset')
    t.equal(await code(() => m.unmap(0, 0)), 'EINVAL', 'zero length')
    t.equal(await code(() => m.unmap(0, 9 * PS)), 'EINVAL', 'past the mapping')
    t.equal(await code(() => m.unmap(Symbol('x') as unknown as number)), 'EINVAL', 'a Symbol offset')
    t.equal(await code(() => m.unmap(0, 10n as unknown as number)), 'EINVAL', 'a BigInt length')
    m.unmap(0, 2 * PS)
    m.unmap(4 * PS) // to the end
    t.equal(m.state, 'unmapped', 'the last part unmaps the mapping')
    t.equal(await code(() => m.view(0, 1)), 'EFAULT')
    await dev.close()
  }
  // A PMD-mapped chunk: a partial unmap splits it, and the chunk never comes back as one PMD.
  const dev = await openDevice(undefined, { size: '64MiB', model: 'upstream' })
  const fs = await mkfs(dev)
  const f = await fs.open('/h', 'w+')
  await f.fallocate(0, 6 * MiB)
  const m = mmap(f, 0, 4 * MiB, { write: true })
  const before = dev.stats().pmdFaults ?? 0
  m.populate()
  t.equal((dev.stats().pmdFaults ?? 0) - before, 2, 'two PMD faults')
  m.unmap(PS, PS)
  m.populate()
  t.equal(m.pte(PS), -1, 'the unmapped page stays unmapped')
  t.not(m.pte(0), -1, 'its neighbours are mapped again, as PTEs')
  t.not(m.pte(2 * MiB), -1, 'the other chunk keeps its PMD')
  t.same(dev.check(), [], 'clean')
  await dev.close()
})

t.test('strict mode throws at the next call for a store through a stale view', async t => {
  const dev = await openDevice(undefined, { size: '64MiB', strict: true })
  const fs = await mkfs(dev)
  const f = await fs.open('/s', 'w+')
  f.write(pattern(8 * PS, 1), 0)
  const m = mmap(f, 0, 8 * PS, { write: true })
  const m2 = mmap(f, 0, 8 * PS, { write: true })
  const v = m.view(0, 8 * PS)
  m.unmap()
  v[3 * PS] = 1
  const e = await (async () => { try { m2.view(0, PS) } catch (x) { return x as { code: string; message: string } } })()
  t.equal(e?.code, 'EFAULT')
  t.match(e?.message, /store through a stale view/)
  t.doesNotThrow(() => m2.view(0, PS), 'reported once')
  await dev.close()
})

t.test('bad input: ranges outside the mapping, a mapping too large to reserve, dead mappings', async t => {
  const dev = await openDevice(undefined, { size: '64MiB' })
  const fs = await mkfs(dev)
  const f = await fs.open('/b', 'w+')
  f.write(pattern(4 * PS, 1), 0)
  const m = mmap(f, 0, 4 * PS, { write: true })
  t.equal(await code(() => m.view(3 * PS, 2 * PS)), 'EINVAL', 'past the mapping')
  t.equal(await code(() => m.view(-1, 1)), 'EINVAL')
  t.equal(await code(() => m.view(0, 2n as unknown as number)), 'EINVAL', 'a BigInt length')
  t.equal(await code(() => mmap(f, 0, 2 ** 45)), 'ENOMEM', 'far past the file system: ENOMEM')
  // The file system refuses first below 16 TiB of device; the range's own limit, asked directly:
  const owner = { id: 0, path: '/b', ino: f.ino, offset: 0 }
  const tooBig = (): unknown => MappingRange.create(dev.region, dev.table, owner, 2 ** 44 / PS + 1, PS)
  t.equal(await code(tooBig), 'ENOMEM', 'larger than the address space a mapping can reserve')
  t.match(await (async () => { try { tooBig() } catch (e) { return (e as Error).message } })(), /16 TiB of address space/, 'names the limit')
  m.unmap()
  t.equal(await code(() => m.view(0, 1)), 'EFAULT', 'unmapped')
  t.equal(await code(() => m.views(0, 1)), 'EFAULT')
  await dev.close()
  t.equal(await code(() => m.view(0, 1)), 'EFAULT', 'still EFAULT after close')
})

t.test('a view across the region\'s 1 GiB window boundary (sparse file on tmpfs)', async t => {
  if (!existsSync('/dev/shm')) { t.pass('skipped: needs tmpfs'); return }
  const dev = await openDevice(join(dir, 'big.pmem'), { size: '1100MiB', create: true })
  const fs = await mkfs(dev)
  const f = await fs.open('/edge', 'w+')
  // The allocator prefers low blocks: a filler file up to just below 1 GiB, then the file under test.
  const filler = await fs.open('/filler', 'w+')
  await filler.fallocate(0, GiB - 64 * MiB)
  const fill = pattern(MiB, 4)
  let guard = 0
  let crosses = false
  while (!crosses && guard++ < 200) {
    f.write(fill, f.stat().size)
    const m0 = mmap(f, 0, f.stat().size)
    const runs = m0.views(0, f.stat().size)
    m0.unmap()
    crosses = runs.some(r => Math.floor(r.pfn * PS / GiB) !== Math.floor((r.pfn * PS + r.bytes.length - 1) / GiB)) ||
      new Set(runs.map(r => Math.floor(r.pfn * PS / GiB))).size > 1
  }
  t.ok(crosses, 'the file has pages on both sides of the 1 GiB window boundary')
  const size = f.stat().size
  const m = mmap(f, 0, size, { write: true })
  const v = m.view(0, size)
  t.same(Buffer.compare(v, read(f, size)), 0, 'one view across the window boundary equals file.read')
  await dev.close()
})

t.test('views of a mapping larger than one window: spans up to 4 GiB, EINVAL past that', async t => {
  if (!existsSync('/dev/shm')) { t.pass('skipped: needs tmpfs'); return }
  const dev = await openDevice(join(dir, 'wide.pmem'), { size: '5GiB', create: true })
  t.teardown(() => dev.close())
  const fs = await mkfs(dev)
  const f = await fs.open('/sparse', 'w+')
  await f.truncate(4.5 * GiB) // holes: a read-only mapping reads them as zero pages, nothing allocated
  f.write(new Uint8Array([7]), 4.25 * GiB)
  const ro = await fs.open('/sparse', 'r')
  const m = mmap(ro, 0, 4.5 * GiB)
  const a = m.view(GiB, 3.5 * GiB) // inside no window: a span of its own
  t.equal(a.length, 3.5 * GiB)
  t.equal(a[3.25 * GiB], 7, 'a span sees the data')
  const b = m.view(2.5 * GiB, 2 * GiB) // inside the second window
  t.equal(b[1.75 * GiB], 7)
  t.equal(b[0], 0)
  const e = await (async () => { try { m.view(0, 4.5 * GiB) } catch (x) { return x as { code: string; message: string } } })()
  t.equal(e?.code, 'EINVAL', 'past 4 GiB: EINVAL')
  t.match(e?.message, /at most 4 GiB/, 'naming the limit')
})
