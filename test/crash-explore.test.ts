// The crash-state explorer under weak durability profiles: the four classic
// application crash bugs (ALICE, CrashMonkey) show under 'posix', their fixed
// versions pass every state, and a correct workload passes every profile.
import t from 'tap'
import { forEachCrash, replayCrash, type Workload, type Verify } from '../src/faults/index.js'
import type { PmemFs } from '../src/fs/index.js'

const opts = { size: '8MiB', seeds: 8 } as const
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const fsyncDir = async (fs: PmemFs, p = '/') => { const d = await fs.open(p, 'r'); await d.fsync(); await d.close() }
const readAll = async (fs: PmemFs, p: string) => { const f = await fs.open(p, 'r'); const b = new Uint8Array(f.size); f.read(b, 0); await f.close(); return b }

// (1) atomic replace by rename without fsync of the temp file
const V2 = 'v2-'.repeat(3000) // 9000 bytes: three blocks
const replace = (fixed: boolean): Workload => async ({ fs, state }) => {
  let f = await fs.open('/db', 'w'); f.write(enc('v1'), 0); await f.fsync(); await f.close()
  await fsyncDir(fs)
  state.v = 'v1'
  f = await fs.open('/db.tmp', 'w'); f.write(enc(V2), 0)
  if (fixed) await f.fsync()
  await f.close()
  await fs.rename('/db.tmp', '/db')
  await fsyncDir(fs)
  state.v = 'v2'
}
const replaceVerify: Verify = async ({ fs, state }) => {
  if (!state.v) return
  if (!(await fs.exists('/db'))) throw new Error('/db is gone')
  const got = dec(await readAll(fs, '/db'))
  if (got !== 'v1' && got !== V2) throw new Error(`/db holds neither version (${got.length} bytes)`)
  if (state.v === 'v2' && got !== V2) throw new Error('acknowledged v2 lost')
}

// (2) create + fsync of the file without fsync of its directory
const create = (fixed: boolean): Workload => async ({ fs, state }) => {
  const f = await fs.open('/new', 'w'); f.write(enc('hello'), 0); await f.fsync(); await f.close()
  if (fixed) await fsyncDir(fs)
  state.created = true
}
const createVerify: Verify = async ({ fs, state }) => {
  if (state.created && !(await fs.exists('/new'))) throw new Error('acknowledged /new is missing')
}

// (3) append-only log whose commit marker is fsynced but whose records are not
const RS = 5000
const rec = (i: number) => new Uint8Array(RS).fill(i + 1)
const log = (fixed: boolean): Workload => async ({ fs, state }) => {
  const l = await fs.open('/log', 'w'), m = await fs.open('/marker', 'w')
  m.write(new Uint8Array(4), 0); await m.fsync(); await l.fsync(); await fsyncDir(fs)
  state.acked = 0
  for (let i = 0; i < 2; i++) {
    l.write(rec(i), i * RS)
    if (fixed) await l.fsync()
    const c = new Uint8Array(4); new DataView(c.buffer).setUint32(0, i + 1, true)
    m.write(c, 0); await m.fsync()
    state.acked = i + 1
  }
}
const logVerify: Verify = async ({ fs, state }) => {
  if (state.acked === undefined) return
  const mk = await readAll(fs, '/marker')
  const n = mk.length >= 4 ? new DataView(mk.buffer).getUint32(0, true) : 0
  if (n < (state.acked as number)) throw new Error('marker went backwards')
  const l = await readAll(fs, '/log')
  for (let i = 0; i < n; i++) if (!l.subarray(i * RS, (i + 1) * RS).every(b => b === i + 1) || l.length < (i + 1) * RS) throw new Error(`record ${i} of ${n} committed is not intact`)
}

// (4) two files updated in program order and assumed to persist in order
const ordered = (fixed: boolean): Workload => async ({ fs, state }) => {
  const a = await fs.open('/a', 'w'), b = await fs.open('/b', 'w')
  await a.fsync(); await b.fsync(); await fsyncDir(fs)
  state.ready = true
  a.write(enc('first'), 0)
  if (fixed) await a.fsync()
  b.write(enc('second'), 0)
}
const orderedVerify: Verify = async ({ fs, state }) => {
  if (!state.ready) return
  const b = await readAll(fs, '/b'), a = await readAll(fs, '/a')
  if (b.length > 0 && dec(a) !== 'first') throw new Error('/b was updated but /a, written before it, was not')
}

const bugs = [
  ['atomic replace without fsync of the temp file', replace, replaceVerify, 'write(\'/db.tmp\''],
  ['create + fsync without fsync of the directory', create, createVerify, 'open(\'/new\''],
  ['log records not fsynced before the commit marker', log, logVerify, 'write(\'/log\''],
  ['two files assumed to persist in program order', ordered, orderedVerify, 'write(\'/a\''],
] as const

for (const [name, w, v, lostOp] of bugs) {
  t.test(`posix finds: ${name}; the fixed version passes every state`, async t => {
    const bad = await forEachCrash(w(false), v, { ...opts, durability: 'posix' })
    t.notOk(bad.ok, 'the bug is found')
    const f = bad.firstFailure!
    t.equal(f.phase, 'verify')
    t.equal(f.at.kind, 'ops')
    t.match(f.message, lostOp, 'the report names the lost operation')
    t.match(f.message, /crash-explore\.test\.ts:\d+/, 'and its call site in the workload')
    t.match(f.message, /posix: /, 'and the profile rule')
    const again = await replayCrash(w(false), v, f)
    t.equal(again?.message, f.message, 'replayCrash reproduces the state')
    const good = await forEachCrash(w(true), v, { ...opts, durability: 'posix' })
    t.ok(good.ok, good.firstFailure?.message ?? 'ok')
    t.ok(good.runs > 1)
  })
}

t.test('a workload that fsyncs correctly passes under every profile', async t => {
  for (const durability of ['strict', 'posix', 'ext4-ordered', 'xfs'] as const) {
    for (const [, w, v] of bugs) {
      const r = await forEachCrash(w(true), v, { ...opts, seeds: 4, durability })
      t.ok(r.ok, `${durability}: ${r.firstFailure?.message ?? 'ok'}`)
    }
  }
})

t.test('ext4-ordered hides what its heuristics and journal hide; xfs does not', async t => {
  t.ok((await forEachCrash(replace(false), replaceVerify, { ...opts, durability: 'ext4-ordered' })).ok, 'auto_da_alloc: rename over a file flushes the source')
  t.notOk((await forEachCrash(replace(false), replaceVerify, { ...opts, durability: 'xfs' })).ok, 'xfs has no such heuristic')
  t.ok((await forEachCrash(create(false), createVerify, { ...opts, durability: 'xfs' })).ok, 'fsync forces the log with the create in it')
  t.notOk((await forEachCrash(log(false), logVerify, { ...opts, durability: 'ext4-ordered' })).ok, 'an fsync of the marker does not flush the log\'s data')
})

t.test('bad input: unknown profile, verify throwing non-Errors, nondeterministic workload', async t => {
  await t.rejects(forEachCrash(create(true), createVerify, { ...opts, durability: 'zfs' as 'posix' }), { code: 'EINVAL', message: /unknown durability profile 'zfs'/ })
  await t.rejects(forEachCrash(create(true), createVerify, { ...opts, durability: Symbol('x') as unknown as 'posix' }), { code: 'EINVAL' })
  for (const thrown of [Symbol('boom'), 'a string', { toString() { throw new Error('no') } }, undefined]) {
    const r = await forEachCrash(create(true), () => { throw thrown }, { ...opts, durability: 'posix', maxFailures: 1 })
    t.equal(r.failures.length, 1)
    t.equal(r.firstFailure!.error, thrown)
    t.type(r.firstFailure!.message, 'string')
  }
  let n = 0
  const flaky: Workload = async ({ fs }) => { const f = await fs.open(n++ % 2 ? '/x' : '/y', 'w'); await f.close() }
  const r = await forEachCrash(flaky, () => undefined, { ...opts, durability: 'posix' })
  t.notOk(r.ok)
  t.equal(r.firstFailure!.phase, 'workload')
  t.match(r.firstFailure!.message, /not deterministic: operation 0 was open\('\/y'.* and open\('\/x'/)
})

t.test('replaying a crash state onto a workload that diverged: EINVAL naming the operation, not a TypeError', async t => {
  const bad = await forEachCrash(replace(false), replaceVerify, { ...opts, durability: 'posix', maxFailures: 1 })
  const f = bad.firstFailure!
  t.equal(f.at.kind, 'ops')
  if (f.at.kind !== 'ops') return
  t.equal(f.at.trace.length, f.at.of, 'the failure carries its recorded trace')
  t.match(f.at.trace[f.at.index - 1], { call: /^rename\('\/db\.tmp' → '\/db'\)/, site: /crash-explore\.test\.ts:\d+/ })
  // the fixed workload fsyncs the temp file before the rename: its operation there is another one
  const fixedErr = await replayCrash(replace(true), replaceVerify, f).then(() => undefined, (e: unknown) => e) as Record<string, unknown>
  t.match(fixedErr, { code: 'EINVAL', syscall: 'replayCrash', point: f.point, operation: f.at.index - 1 })
  t.match(fixedErr.message, /operation \d+ was rename\('\/db\.tmp' → '\/db'\) at crash-explore\.test\.ts:\d+ when the state was recorded and is fsync\('\/db\.tmp'\) at crash-explore\.test\.ts:\d+ now/)
  t.match(fixedErr, { recorded: /^rename/, replayed: /^fsync/ })
  // an unrelated workload diverges at its first operation
  await t.rejects(replayCrash(create(true), createVerify, f), { code: 'EINVAL', operation: 0, message: /operation 0 was open\('\/db'.* and is open\('\/new'/ })
  // a workload that stops early
  const short: Workload = async ({ fs }) => { const x = await fs.open('/db', 'w'); x.write(enc('v1'), 0); await x.close() }
  await t.rejects(replayCrash(short, replaceVerify, f), { code: 'EINVAL', message: /operation 2 was fsync\('\/db'\).* and is \(no operation\) now/ })
  // the same workload still replays; a point without its trace still works as before
  t.equal((await replayCrash(replace(false), replaceVerify, f))?.message, f.message)
  t.equal((await replayCrash(replace(false), replaceVerify, { seed: f.seed, point: f.point, durability: 'posix', size: opts.size }))?.message, f.message)
  // bad points and options are typed too
  for (const point of ['ops:x:1', 'ops:1', Symbol('p'), 7n]) {
    await t.rejects(replayCrash(replace(false), replaceVerify, { seed: f.seed, point: point as string, durability: 'posix', size: opts.size }), { code: 'EINVAL', syscall: 'replayCrash' })
  }
  await t.rejects(replayCrash(replace(false), replaceVerify, { seed: f.seed, point: 'ops:1:ffff', durability: 'posix', size: opts.size }), { code: 'EINVAL', message: /not a state 'posix' allows/ })
  await t.rejects(replayCrash(replace(false), replaceVerify, { seed: f.seed, point: 'ops:99:0', durability: 'posix', size: opts.size }), { code: 'EINVAL', message: /it made \d+ operations, the state is after operation 99/ })
  await t.rejects(replayCrash(replace(false), replaceVerify, undefined as unknown as typeof f), { code: 'EINVAL' })
  await t.rejects(replayCrash(replace(false), replaceVerify, { seed: 1, point: 'crash-point:x' }), { code: 'EINVAL' })
  await t.rejects(forEachCrash(null as unknown as Workload, replaceVerify), { code: 'EINVAL', syscall: 'forEachCrash' })
})

t.test('errors after the cut count as expected even re-wrapped without cause; a predicate decides otherwise', async t => {
  const w: Workload = async ({ fs }) => {
    await fs.mkdir('/a')
    try { await fs.mkdir('/b') } catch (e) { throw new Error(`WRITE_FAILED(${(e as Error).message})`) }
  }
  const r = await forEachCrash(w, () => undefined, { seeds: 0, size: '8MiB', fsck: false })
  t.ok(r.ok, r.firstFailure?.message ?? 'ok')
  const strictPred = await forEachCrash(w, () => undefined, { seeds: 0, size: '8MiB', fsck: false, expectedError: e => !(e instanceof Error && e.message.startsWith('WRITE_FAILED')) })
  t.ok(strictPred.failures.length > 0)
})

t.test('mount and mkfs accept a durability profile; unknown names are EINVAL', async t => {
  const { openDevice } = await import('../src/region/index.js')
  const { mkfs, mount } = await import('../src/fs/index.js')
  const dev = await openDevice(undefined, { size: '8MiB' })
  t.teardown(() => dev.close())
  await t.rejects(mkfs(dev, { durability: 'ext3' as 'posix' }), { code: 'EINVAL', syscall: 'mkfs' })
  const fs = await mkfs(dev, { durability: 'xfs' })
  t.equal(fs.durability, 'xfs')
  await fs.unmount()
  await t.rejects(mount(dev, { durability: 7 as unknown as 'posix' }), { code: 'EINVAL', message: /unknown durability profile 7/ })
  const fs2 = await mount(dev)
  t.equal(fs2.durability, 'strict')
  await fs2.unmount()
})
