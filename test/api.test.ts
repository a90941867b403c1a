/**
 * The public contract of docs/api-contract.md, walked name by name through the package's
 * own entry (`import … from 'pmemu'` resolves through package.json
 * `exports` to the compiled dist/, as it does for code outside the project).
 */
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as pmemu from 'pmemu'

const { openDevice, mkfs, mount, fsck, DmaEngine, toNodeFs, RandomAccessPmem, PmemuError } = pmemu
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-api-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('the package entry exports the names of docs/api-contract.md', async t => {
  for (const name of ['openDevice', 'mkfs', 'mount', 'fsck', 'DmaEngine', 'toNodeFs', 'RandomAccessPmem', 'PmemuError']) {
    t.type((pmemu as Record<string, unknown>)[name], 'function', name)
  }
})

t.test('Device: fields, pages, counters, bytes, poison, crash, unbind, close', async t => {
  const dev = await openDevice(join(dir, 'a.pmem'), { size: '64MiB', create: true, pageSize: 4096, model: 'dax-gup', crashShadow: true })
  t.equal(dev.size, 64 * 2 ** 20)
  t.equal(dev.pageSize, 4096)
  t.ok(dev.pageCount > 0)
  t.equal(dev.model, 'dax-gup')
  t.equal(dev.backend, 'native')
  t.type(dev.capabilities.mapSync, 'boolean')
  t.match(dev.capabilities.flush, /^(clwb|clflushopt|msync|none)$/)
  const p = dev.page(5)
  t.same(Object.keys(p).sort(), ['flags', 'index', 'inode', 'mapcount', 'order', 'pfn', 'pincount', 'refcount'])
  t.equal(dev.pgmapRefs(), 0)
  t.same(dev.check(), [])
  for (const k of ['gets', 'puts', 'pins', 'unpins', 'faults', 'folioFaults', 'layoutWaits', 'violations']) {
    t.type(dev.stats()[k], 'number', `stats().${k}`)
  }
  dev.pages.get(5)
  dev.pages.put(5)
  dev.pages.pin(6)
  t.equal(dev.pages.maybeDmaPinned(6), true)
  dev.pages.unpin(6)
  dev.pages.pinRange(10, 4)
  dev.pages.unpinRange(10, 4)
  t.throws(() => dev.pages.pin(4, { longterm: true }), { code: 'EOPNOTSUPP' })
  t.equal(dev.stats().gets, 1)
  const v = dev.view(0, 8)
  v.set([1, 2, 3])
  dev.persist(0, 8)
  dev.poison(8192, 512)
  t.same(dev.badblocks(), [{ offset: 8192, length: 512 }])
  dev.write(4096, new Uint8Array(64).fill(9))
  await dev.crash({ seed: 1, keep: 'none' })
  t.same([...dev.view(0, 3)], [1, 2, 3], 'persisted bytes survive')
  t.equal(dev.view(4096, 1)[0], 0, 'unpersisted bytes do not (keep: none)')
  await dev.unbind({ timeoutMs: 1000 })
  t.throws(() => dev.pages.get(1), { code: 'ENXIO' })
  await dev.close()
  await dev.close()
})

t.test('File system, DAX mapping, DMA, adapters', async t => {
  const dev = await openDevice(undefined, { size: '64MiB', model: 'upstream' })
  const fs = await mkfs(dev, { label: 'api' })
  await fs.mkdir('/d')
  const f = await fs.open('/d/f', 'w+')
  t.equal(f.write(new Uint8Array(8192).fill(7), 0), 8192)
  const buf = new Uint8Array(4)
  t.equal(f.read(buf, 4096), 4)
  t.same([...buf], [7, 7, 7, 7])
  t.equal(f.stat().size, 8192)
  await f.fsync()
  await f.fallocate(8192, 8192)
  await f.punchHole(0, 4096)
  const map = f.mmap(0, 16384, { write: true, sync: false })
  const failures: unknown[] = []
  map.on('memory-failure', e => failures.push(e))
  map.populate()
  t.type(map.pfn(4096), 'number')
  t.equal(map.view(4096, 4)[0], 7)
  map.persist(4096, 4)
  const dma = new DmaEngine(dev, { workers: 1 })
  const tr = dma.submit({ map, offset: 4096, length: 4096, direction: 'to-device', hold: 'until-release', pin: 'pin', longterm: false })
  await tr.pinned
  tr.release()
  const r = await tr.done
  t.equal(r.bytes, 4096)
  t.type(r.ns, 'number')
  await dma.close()
  map.unmap()
  await f.truncate(4096, { timeoutMs: 1000 })
  await f.close()
  t.same(await fs.readdir('/d'), ['f'])
  t.equal((await fs.stat('/d/f')).size, 4096)
  await fs.rename('/d/f', '/d/g')
  await fs.unlink('/d/g')
  await fs.rmdir('/d')
  const sf = fs.statfs()
  for (const k of ['blocks', 'free', 'files']) t.type((sf as unknown as Record<string, unknown>)[k], 'number')

  const nodeFs = toNodeFs(fs)
  await nodeFs.writeFile('/n.txt', 'hello')
  t.equal(await nodeFs.readFile('/n.txt', 'utf8'), 'hello')
  await t.rejects(nodeFs.readFile('/missing'), { code: 'ENOENT', syscall: 'open' })
  const ras = new RandomAccessPmem(fs, '/ras')
  await new Promise<void>((res, rej) => ras.write(0, Buffer.from('abc'), (e: Error | null) => e ? rej(e) : res()))
  const got = await new Promise<Buffer>((res, rej) => ras.read(0, 3, (e: Error | null, b?: Buffer) => e ? rej(e) : res(b!)))
  t.equal(got.toString(), 'abc')
  await new Promise<void>(res => ras.close(() => res()))

  await fs.unmount()
  const again = await mount(dev)
  t.equal((await again.stat('/n.txt')).size, 5)
  await again.unmount()
  const rep = await fsck(dev, { repair: false })
  t.equal(rep.clean, true)
  t.equal(rep.exitCode, 0)
  t.same(rep.problems, [])
  await dev.close()
})

t.test('errors are PmemuErrors with code, errno, syscall and path', async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  const fs = await mkfs(dev)
  try {
    await fs.open('/nope', 'r')
    t.fail('should throw')
  } catch (e) {
    t.ok(e instanceof PmemuError)
    t.match(e, { code: 'ENOENT', errno: 2, path: '/nope' })
  }
  await fs.unmount()
  await dev.close()
})
