import t from 'tap'
import { Worker } from 'node:worker_threads'
import { mkdtempSync, writeFileSync, readFileSync, statSync, existsSync, mkdirSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Region, WINDOW_BYTES } from '../src/region/region.js'
import { geometry, infoBytes } from '../src/region/info.js'
import { spawnWorker } from '../src/util/worker.js'

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-region-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const file = () => join(dir, `r${n++}.pmem`)

/** Run plain JS in a worker with `sab` (and `extra`) in scope; resolves with what it posts. */
function inWorker<T>(code: string, data: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
      (async () => { ${code} })().then(v => parentPort.postMessage(v), e => { throw e })`, { eval: true, workerData: data })
    w.once('message', v => { resolve(v as T); void w.terminate() })
    w.once('error', reject)
  })
}

for (const backend of ['native', 'memory'] as const) {
  const open = (opts: Record<string, unknown> = {}) =>
    backend === 'memory' ? Region.open(undefined, { size: '8MiB', ...opts })
      : Region.open(file(), { size: '8MiB', create: true, ...opts })

  t.test(`${backend}: a worker given the SAB sees the bytes`, async t => {
    const r = await open()
    const v = r.view(4096, 16)
    v.set([1, 2, 3, 4])
    const sab = r.windows[0]!.sab!
    const got = await inWorker<number[]>(`return Array.from(new Uint8Array(workerData.sab, 4096, 4))`, { sab })
    t.same(got, [1, 2, 3, 4])
    // and stores made in the worker are seen here
    await inWorker(`new Uint8Array(workerData.sab)[8192] = 99`, { sab })
    t.equal(r.view(8192, 1)[0], 99)
    r.close()
  })

  t.test(`${backend}: Atomics.add from main and 2 workers sums exactly`, async t => {
    const r = await open()
    const sab = r.windows[0]!.sab!
    const i32 = new Int32Array(sab, 0, 4)
    const N = 200_000
    const work = [0, 1].map(() => inWorker(`const a = new Int32Array(workerData.sab, 0, 4); for (let i = 0; i < ${N}; i++) Atomics.add(a, 1, 1); return 0`, { sab }))
    for (let i = 0; i < N; i++) Atomics.add(i32, 1, 1)
    await Promise.all(work)
    t.equal(Atomics.load(i32, 1), 3 * N)
    r.close()
  })

  t.test(`${backend}: Atomics.waitAsync here is woken by Atomics.notify in a worker`, async t => {
    const r = await open()
    const sab = r.windows[0]!.sab!
    const i32 = new Int32Array(sab, 64, 1)
    const w = Atomics.waitAsync(i32, 0, 0, 10_000)
    t.equal(w.async, true)
    const woke = await inWorker<number>(`const a = new Int32Array(workerData.sab, 64, 1); Atomics.store(a, 0, 1);
      let n = 0; while (n === 0) n = Atomics.notify(a, 0); return n`, { sab })
    t.equal(woke, 1)
    t.equal(await w.value, 'ok')
    r.close()
  })

  t.test(`${backend}: close while a worker still holds the SAB does not crash`, async t => {
    const r = await open()
    const sab = r.windows[0]!.sab!
    const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads');
      const u = new Uint8Array(workerData.sab); parentPort.on('message', m => { u[m] = 7; parentPort.postMessage(u[m]) })`,
    { eval: true, workerData: { sab } })
    r.close()
    t.throws(() => r.view(0, 1), { code: 'ENXIO' })
    const got = await new Promise(res => { w.once('message', res); w.postMessage(100) })
    t.equal(got, 7, 'the mapping outlives close while a worker holds it')
    await w.terminate()
  })
}

t.test('native: data written, persisted, closed and reopened is there; info block round-trips', async t => {
  const f = file()
  const r = await Region.open(f, { size: '4MiB', create: true, model: 'dax-gup', map: 'dev', persistence: 'eadr' })
  t.equal(r.size, 4 * 2 ** 20)
  const g = geometry(4 * 2 ** 20, 4096, 'dev')
  t.equal(r.pageCount, g.pageCount)
  t.ok(r.pageCount < (4 * 2 ** 20 - infoBytes(4096)) / 4096, 'map dev shrinks capacity')
  r.write(12345, Buffer.from('hello pmem'))
  r.persist(12345, 10)
  r.writeInfo({ badblocks: [{ offset: 512, length: 1024 }] })
  const uuid = r.info.uuid
  r.close()
  const r2 = await Region.open(f)
  t.equal(Buffer.from(r2.view(12345, 10)).toString(), 'hello pmem')
  t.equal(r2.info.model, 'dax-gup')
  t.equal(r2.info.map, 'dev')
  t.equal(r2.info.persistence, 'eadr')
  t.equal(r2.info.uuid, uuid)
  t.same(r2.badblocks, [{ offset: 512, length: 1024 }])
  if (r2.capabilities.mapSync) {
    t.equal(r2.capabilities.mapSyncError, undefined, 'a real DAX mount: MAP_SYNC held')
  } else {
    t.equal(r2.capabilities.mapSyncError, 'EOPNOTSUPP', 'tmpfs/ext4 refuse MAP_SYNC with EOPNOTSUPP')
  }
  t.match(r2.capabilities.flush, /^(clwb|clflushopt|msync)$/)
  r2.close()
  r2.close() // idempotent
})

t.test('native: a second writer gets EBUSY naming the path; readers share', async t => {
  const f = file()
  const r = await Region.open(f, { size: '1MiB', create: true })
  await t.rejects(Region.open(f), { code: 'EBUSY', path: f, message: new RegExp(f.replace(/[.]/g, '\\.')) })
  await t.rejects(Region.open(f, { readOnly: true }), { code: 'EBUSY' })
  r.close()
  const a = await Region.open(f, { readOnly: true })
  const b = await Region.open(f, { readOnly: true })
  t.throws(() => a.write(0, new Uint8Array(1)), { code: 'EROFS' })
  await t.rejects(Region.open(f), { code: 'EBUSY' })
  a.close(); b.close()
})

t.test('crash emulation', async t => {
  const mk = async (opts = {}) => {
    const r = await Region.open(undefined, { size: '1MiB', crashShadow: true, ...opts })
    r.write(0, new Uint8Array(256).fill(1))
    r.persist(0, 128) // lines 0,1 durable
    r.write(4096, new Uint8Array(64 * 10).fill(2)) // 10 lines not persisted
    return r
  }
  const none = await mk()
  const rn = none.crash({ keep: 'none', seed: 1 })
  t.equal(rn.linesLost, 12, 'exactly the lines not persisted are lost (2 at 128..256 + 10)')
  t.same([...none.view(0, 128)].every(b => b === 1), true)
  t.same([...none.view(128, 128)].every(b => b === 0), true)
  t.same([...none.view(4096, 640)].every(b => b === 0), true)

  const all = await mk()
  t.equal(all.crash({ keep: 'all' }).linesLost, 0)
  t.same([...all.view(4096, 640)].every(b => b === 2), true)

  const e = await mk({ persistence: 'eadr' })
  t.equal(e.crash({ keep: 'none' }).linesLost, 0, 'eADR loses nothing')
  t.equal(e.view(4200, 1)[0], 2)

  const images: string[] = []
  for (let i = 0; i < 2; i++) {
    const r = await mk()
    const c = r.crash({ keep: 'random', seed: 42 })
    t.ok(c.linesLost > 0 && c.linesKept > 0, 'random keeps some and loses some')
    images.push(Buffer.from(r.view(0, 8192)).toString('hex'))
  }
  t.equal(images[0], images[1], 'the same seed gives the same image')
  const other = await mk()
  other.crash({ keep: 'random', seed: 43 })
  t.not(Buffer.from(other.view(0, 8192)).toString('hex'), images[0], 'another seed, another image')

  const noShadow = await Region.open(undefined, { size: '1MiB' })
  t.throws(() => noShadow.crash(), { code: 'EINVAL' })
  t.throws(() => all.crash({ keep: 'some' as 'all' }), { code: 'EINVAL' })
})

t.test('large regions are windows; a page never straddles two', async t => {
  const r = await Region.open(file(), { size: '3GiB', create: true })
  t.equal(r.windows.length, Math.ceil(r.capacity / WINDOW_BYTES))
  for (const w of r.windows) t.equal(w.offset % r.pageSize, 0)
  const at = WINDOW_BYTES - 3
  r.write(at, Buffer.from('abcdef'))
  const back = Buffer.alloc(6)
  r.read(at, back)
  t.equal(back.toString(), 'abcdef', 'read/write cross windows')
  t.throws(() => r.view(at, 6), { code: 'EINVAL' })
  t.equal(statSync(r.path!).blocks < 1024, true, 'the file stays sparse')
  r.close()
})

t.test('bad input gets a clear error and changes nothing', async t => {
  const f = file()
  await t.rejects(Region.open(f, { size: 4096 * 100 + 1, create: true }), { code: 'EINVAL', message: /multiple of the page size/ })
  t.equal(existsSync(f), false, 'nothing created')
  await t.rejects(Region.open(f, { size: '1MiB', create: true, pageSize: 6000 }), { code: 'EINVAL', message: /power of two/ })
  await t.rejects(Region.open(f, { size: '1MiB', create: true, pageSize: 2048 }), { code: 'EINVAL' })
  await t.rejects(Region.open(f, { size: 0, create: true }), { code: 'EINVAL' })
  await t.rejects(Region.open(f, { size: 65536, create: true }), { code: 'EINVAL', message: /no room/ })
  await t.rejects(Region.open(f, { size: 'huge', create: true }), { code: 'EINVAL' })
  await t.rejects(Region.open(f), { code: 'ENOENT', path: f })
  await t.rejects(Region.open(dir, { size: '1MiB', create: true }), { code: 'EISDIR' })
  await t.rejects(Region.open(f, { size: '1MiB', create: true, model: 'modern' as 'legacy' }), { code: 'EINVAL' })
  await t.rejects(Region.open(f, { size: '1MiB', create: true, backend: 'tape' as 'native' }), { code: 'EINVAL' })
  t.equal(existsSync(f), false)

  const foreign = file()
  const junk = Buffer.alloc(1 << 20, 0x41)
  writeFileSync(foreign, junk)
  await t.rejects(Region.open(foreign), { code: 'EINVAL', message: /not a pmemu device/ })
  await t.rejects(Region.open(foreign, { create: true, size: '1MiB' }), { code: 'EINVAL' })
  t.same(readFileSync(foreign).equals(junk), true, 'foreign bytes untouched')

  const empty = file()
  writeFileSync(empty, '')
  await t.rejects(Region.open(empty), { code: 'EINVAL', message: /empty/ })

  const dmg = file()
  ;(await Region.open(dmg, { size: '1MiB', create: true })).close()
  const bytes = readFileSync(dmg)
  bytes[20] = bytes[20]! ^ 0xff // inside the size field: crc fails
  writeFileSync(dmg, bytes)
  await t.rejects(Region.open(dmg), { code: 'EFSCORRUPTED', message: /info block/ })

  const ok = file()
  ;(await Region.open(ok, { size: '1MiB', create: true })).close()
  await t.rejects(Region.open(ok, { size: '2MiB' }), { code: 'EINVAL', message: /not 2097152/ })
  await t.rejects(Region.open(ok, { pageSize: 8192 }), { code: 'EINVAL', message: /8192/ })

  if (process.getuid?.() !== 0) {
    const ro = join(dir, 'ro')
    mkdirSync(ro)
    chmodSync(ro, 0o500)
    await t.rejects(Region.open(join(ro, 'x'), { size: '1MiB', create: true }), { code: 'EACCES' })
  }
  const r = await Region.open(undefined, { size: '1MiB' })
  t.throws(() => r.view(r.capacity, 1), { code: 'EINVAL' })
  t.throws(() => r.write(-1, new Uint8Array(1)), { code: 'EINVAL' })
  r.close()
})

t.test('mmap-io backend: open, write, reopen; limits', async t => {
  const f = file()
  const r = await Region.open(f, { size: '2MiB', create: true, backend: 'mmap-io' })
  t.equal(r.capabilities.workers, false)
  t.equal(r.capabilities.flush, 'msync')
  r.write(100, Buffer.from('via mmap-io'))
  r.persist(100, 11)
  t.throws(() => r.transferable(), { code: 'EOPNOTSUPP' })
  r.close()
  const r2 = await Region.open(f, { backend: 'mmap-io' })
  t.equal(Buffer.from(r2.view(100, 11)).toString(), 'via mmap-io')
  r2.close()
  const r3 = await Region.open(f)
  t.equal(Buffer.from(r3.view(100, 11)).toString(), 'via mmap-io', 'same bytes through the native backend')
  r3.close()
  await t.rejects(Region.open(file(), { size: '3GiB', create: true, backend: 'mmap-io' }), { code: 'EINVAL', message: /2 GiB/ })
  const err = await new Promise<{ code: string; message: string }>((resolve, reject) => {
    const w = spawnWorker(new URL('./fixtures/mmap-io-worker.ts', import.meta.url), { workerData: { path: f } })
    w.once('message', resolve)
    w.once('error', reject)
  })
  t.equal(err.code, 'EOPNOTSUPP')
  t.match(err.message, /main thread only/)
})

t.test('SPEC §8: option types, map mismatch, NUL path, argument names, small JSON', async t => {
  const f = file()
  for (const [k, v] of [['crashShadow', 'yes'], ['create', 'yes'], ['readOnly', 1]] as const) {
    await t.rejects(Region.open(f, { size: '4MiB', [k]: v } as never), { code: 'EINVAL', syscall: 'open', message: new RegExp(`${k} must be a boolean`) }, k)
  }
  await t.rejects(Region.open(f, { size: '4MiB', create: true, readOnly: true }), { code: 'EINVAL', message: /conflict/ })
  await t.rejects(Region.open(`${f}\0`, { size: '4MiB', create: true }), { code: 'EINVAL', errno: 22, syscall: 'open' })
  await t.rejects(Region.open(f, { size: -1, create: true }), { code: 'EINVAL', syscall: 'open', message: /size must be/ })
  t.notOk(existsSync(f), 'nothing created by a rejected open')
  const r = await Region.open(f, { size: '4MiB', create: true, map: 'dev' })
  t.throws(() => r.view('3' as never, 16), { code: 'EINVAL', syscall: 'view', message: /offset must be a non-negative integer, got '3'/ })
  t.throws(() => r.checkRange('zero', 0, 1.5), { code: 'EINVAL', syscall: 'zero', message: /length must be a non-negative integer, got 1\.5/ })
  const j = JSON.stringify(r)
  t.ok(j.length < 4096, `JSON.stringify(region) is ${j.length} bytes`)
  t.match(JSON.parse(j), { type: 'Region', path: f, map: 'dev', closed: false })
  r.close()
  await t.rejects(Region.open(f, { map: 'mem' }), { code: 'EINVAL', syscall: 'open', message: /created with map: 'dev', not 'mem'/, path: f })
  const again = await Region.open(f, {})
  t.equal(again.info.map, 'dev', 'no map option: the device keeps its own')
  again.close()
})
