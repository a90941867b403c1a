/**
 * RandomAccessPmem as random-access-file 4 users rely on it: the `pool`
 * option and `createPool`, one random-access-storage copy shared with the
 * consumer (instanceof), and `completion: { reorder: seed }` completing
 * independent operations in a seeded order, as a real disk may.
 */
import t from 'tap'
import { Buffer } from 'node:buffer'
import { createRequire } from 'node:module'
import { openDevice } from '../src/region/index.js'
import { mkfs, type PmemFs } from '../src/fs/index.js'
import { RandomAccessPmem, type RandomAccessPmemOptions } from '../src/adapters/index.js'

const require = createRequire(import.meta.url)

async function newFs(): Promise<PmemFs> {
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  return mkfs(dev)
}

function cb<T = void>(fn: (done: (err: Error | null, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))))
}

t.test('one random-access-storage copy: instanceof the consumer\'s class holds', async t => {
  const fs = await newFs()
  const RandomAccessStorage = require('random-access-storage')
  const s = new RandomAccessPmem(fs, '/x')
  t.ok(s instanceof RandomAccessStorage, 'the class the consumer requires is the base class')
  const pkg = require('../package.json') as { peerDependencies?: Record<string, string>; dependencies?: Record<string, string> }
  t.ok(pkg.peerDependencies?.['random-access-storage'], 'declared as a peer dependency')
  t.notOk(pkg.dependencies?.['random-access-storage'], 'not a private dependency (that would load a second copy)')
})

t.test('pool: at most maxSize files open, the others reopen transparently', async t => {
  const fs = await newFs()
  const pool = RandomAccessPmem.createPool(2, { seed: 7 })
  t.equal(pool.maxSize, 2)
  const stores = [0, 1, 2, 3].map(i => new RandomAccessPmem(fs, `/pool/${i}`, { pool }))
  for (const [i, s] of stores.entries()) await cb(d => s.write(0, Buffer.from(`file ${i}`), d))
  // Suspensions are queued operations: let them finish before counting.
  await new Promise<void>(resolve => setImmediate(resolve))
  t.ok(pool.active.length <= 2, `at most 2 open (open: ${pool.active.length})`)
  t.equal(stores.filter(s => s.file !== null).length, pool.active.length, 'active = storages with an open file')
  t.ok(stores.some(s => s.suspended), 'a storage was suspended to make room')
  for (const [i, s] of stores.entries()) {
    t.equal((await cb<Buffer>(d => s.read(0, 6, d))).toString(), `file ${i}`, `storage ${i} reads its data (reopened if suspended)`)
  }
  for (const s of stores) await cb(d => s.close(d))
  t.equal(pool.active.length, 0, 'closing leaves the pool empty')
})

t.test('pool: a reopen after suspension does not apply truncate/size again', async t => {
  const fs = await newFs()
  const pool = RandomAccessPmem.createPool(1)
  const a = new RandomAccessPmem(fs, '/t/a', { pool, truncate: true })
  await cb(d => a.write(0, Buffer.from('keep me'), d))
  const b = new RandomAccessPmem(fs, '/t/b', { pool, size: 4 })
  await cb(d => b.open(d))
  await new Promise<void>(resolve => setImmediate(resolve))
  t.ok(a.suspended, 'the first storage was suspended by the second')
  t.equal((await cb<Buffer>(d => a.read(0, 7, d))).toString(), 'keep me', 'data survives the reopen')
  await cb(d => a.close(d))
  await cb(d => b.close(d))
})

t.test('pool and completion: bad values are EINVAL', async t => {
  const fs = await newFs()
  t.throws(() => RandomAccessPmem.createPool(0), { code: 'EINVAL', syscall: 'createPool' })
  t.throws(() => RandomAccessPmem.createPool(1.5), { code: 'EINVAL' })
  t.throws(() => RandomAccessPmem.createPool(10n as never), { code: 'EINVAL', message: /10/ })
  t.throws(() => new RandomAccessPmem(fs, '/f', { pool: {} as never }), { code: 'EINVAL', message: /createPool/ })
  t.throws(() => new RandomAccessPmem(fs, '/f', { completion: 'random' as never }), { code: 'EINVAL', message: /in-order/ })
  t.throws(() => new RandomAccessPmem(fs, '/f', { completion: { reorder: Symbol('s') } as never }), { code: 'EINVAL' })
  t.doesNotThrow(() => new RandomAccessPmem(fs, '/f', { completion: 'in-order' }))
})

/** Issue writes 0..n-1 of one byte each at offset 0 without waiting; return completion order and final byte. */
async function race(fs: PmemFs, name: string, opts: RandomAccessPmemOptions, n = 6): Promise<{ order: number[]; last: number }> {
  const s = new RandomAccessPmem(fs, name, { ...opts, truncate: true })
  await cb(d => s.open(d))
  const order: number[] = []
  const all = Array.from({ length: n }, (_, i) => cb(d => s.write(0, Buffer.from([i]), err => { order.push(i); d(err) })))
  await Promise.all(all)
  const last = (await cb<Buffer>(d => s.read(0, 1, d)))[0]!
  await cb(d => s.close(d))
  return { order, last }
}

t.test('completion in-order (default): unawaited writes complete and land in issue order', async t => {
  const fs = await newFs()
  const r = await race(fs, '/o/default', {})
  t.same(r.order, [0, 1, 2, 3, 4, 5])
  t.equal(r.last, 5, 'the last issued write wins')
  t.same(await race(fs, '/o/explicit', { completion: 'in-order' }), r)
})

t.test('completion { reorder: seed }: independent operations complete in a seeded order', async t => {
  const fs = await newFs()
  const runs = []
  for (let seed = 1; seed <= 8; seed++) runs.push(await race(fs, `/r/${seed}`, { completion: { reorder: seed } }))
  for (const r of runs) t.same([...r.order].sort(), [0, 1, 2, 3, 4, 5], 'every write completes once')
  for (const r of runs) t.equal(r.last, r.order.at(-1), 'the data is that of the write that completed last')
  t.ok(runs.some(r => r.order.join() !== '0,1,2,3,4,5'), 'some seed completes out of issue order')
  t.ok(new Set(runs.map(r => r.order.join())).size > 1, 'different seeds give different orders')
  t.same(await race(fs, '/r/again', { completion: { reorder: 3 } }), runs[2], 'the same seed gives the same order')
})

t.test('completion { reorder }: finds a read-after-unawaited-write assumption', async t => {
  const fs = await newFs()
  // The buggy pattern: write without waiting, then read, assuming the read sees the write.
  const sawOld: number[] = []
  for (let seed = 1; seed <= 10; seed++) {
    const s = new RandomAccessPmem(fs, `/bug/${seed}`, { completion: { reorder: seed } })
    await cb(d => s.write(0, Buffer.from('old'), d))
    s.write(0, Buffer.from('new'))
    const got = (await cb<Buffer>(d => s.read(0, 3, d))).toString()
    if (got === 'old') sawOld.push(seed)
    await cb(d => s.close(d))
  }
  t.ok(sawOld.length > 0, `some seeds expose the stale read (seeds ${sawOld.join(', ')})`)
  t.ok(sawOld.length < 10, 'and others do not, as on a real disk')
})

t.test('completion { reorder }: blocking operations stay barriers', async t => {
  const fs = await newFs()
  const s = new RandomAccessPmem(fs, '/barrier', { completion: { reorder: 42 } })
  const events: string[] = []
  for (let i = 0; i < 4; i++) s.write(i, Buffer.from([65 + i]), () => events.push(`w${i}`))
  s.close(() => events.push('close'))
  await new Promise<void>(resolve => s.once('close', () => resolve()))
  await new Promise<void>(resolve => setImmediate(resolve))
  t.equal(events.at(-1), 'close', 'close completes after every write issued before it')
  const r = new RandomAccessPmem(fs, '/barrier', { writable: false })
  t.equal((await cb<Buffer>(d => r.read(0, 4, d))).toString(), 'ABCD', 'non-overlapping writes all land')
  await cb(d => r.close(d))
})
