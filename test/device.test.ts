import t, { type Test } from 'tap'
import { mkdtempSync, existsSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice, isPmemuError } from '../src/index.js'
import { cli } from './fixtures/cli.js'

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-dev-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const file = () => join(dir, `d${n++}.pmem`)


t.test('openDevice: identity, defaults and the memory backend', async t => {
  const dev = await openDevice(undefined, { size: '64MiB' })
  t.equal(dev.backend, 'memory')
  t.equal(dev.model, 'upstream')
  t.equal(dev.pageSize, 4096)
  t.equal(dev.size, 64 * 2 ** 20)
  t.equal(dev.pageCount * dev.pageSize, dev.capacity)
  t.equal(dev.pgmapRefs(), dev.pageCount, 'upstream takes pgmap refs in bulk at enable')
  t.same(dev.check(), [])
  t.equal(dev.page(5).refcount, 0)
  await dev.close()
  await dev.close()
  t.throws(() => dev.view(0, 1), { code: 'ENXIO' })
  t.throws(() => dev.pages.get(1), { code: 'ENXIO' })
  t.throws(() => dev.page(1), { code: 'ENXIO' })
})

t.test('every model idles as SPEC §3 says after open', async t => {
  // pgmap -1: the bulk refs of enable, one per page
  for (const [model, ref, pgmap] of [['legacy', 1, -1], ['dax-gup-v1', 1, -1], ['dax-gup', 0, 0], ['upstream', 0, -1]] as const) {
    const dev = await openDevice(undefined, { size: '8MiB', model })
    t.equal(dev.page(3).refcount, ref, `${model} idle refcount`)
    t.equal(dev.pgmapRefs(), pgmap === -1 ? dev.pageCount : pgmap, `${model} pgmap`)
    dev.pages.get(3)
    t.equal(dev.page(3).refcount, ref + 1)
    dev.pages.put(3)
    t.same(dev.check(), [])
    await dev.close()
  }
})

t.test('poison survives close and reopen and marks the page', async t => {
  const f = file()
  const dev = await openDevice(f, { size: '8MiB', create: true })
  const r = dev.poison(4096 + 100, 10)
  t.same(r, { offset: 4096, length: 512 }, 'rounded to 512-byte sectors')
  t.ok(dev.page(1).flags.includes('poisoned'))
  await dev.close()
  const again = await openDevice(f)
  t.same(again.badblocks(), [{ offset: 4096, length: 512 }])
  t.ok(again.page(1).flags.includes('poisoned'))
  again.clearPoison(4096, 512)
  t.same(again.badblocks(), [])
  t.notOk(again.page(1).flags.includes('poisoned'))
  t.throws(() => again.poison(again.capacity, 1), { code: 'EINVAL' })
  t.throws(() => again.poison(0, 0), { code: 'EINVAL' })
  await again.close()
})

t.test('crash resets the side table and keeps the device open', async t => {
  const dev = await openDevice(undefined, { size: '8MiB', crashShadow: true, model: 'legacy' })
  dev.pages.get(2)
  dev.write(0, Buffer.from('durable'))
  dev.persist(0, 7)
  dev.write(4096, Buffer.from('lost'))
  let told = 0
  dev.onCrash(() => { told++ })
  const r = await dev.crash({ keep: 'none', seed: 7 })
  t.equal(r.linesLost, 1)
  t.equal(told, 1)
  t.equal(dev.page(2).refcount, 1, 'idle again')
  t.equal(Buffer.from(dev.view(0, 7)).toString(), 'durable')
  t.equal(dev.view(4096, 1)[0], 0)
  await dev.close()
})

t.test('bad options are typed errors', async t => {
  await t.rejects(openDevice(undefined, {}), { code: 'EINVAL' })
  await t.rejects(openDevice(42 as unknown as string), { code: 'EINVAL' })
  await t.rejects(openDevice(undefined, { size: '1MiB', model: 'nope' as 'legacy' }), { code: 'EINVAL' })
  try {
    await openDevice(join(dir, 'missing.pmem'))
    t.fail('should throw')
  } catch (e) {
    t.ok(isPmemuError(e, 'ENOENT'))
  }
})

t.test('pmemu info on a file made by openDevice', async t => {
  const f = file()
  const dev = await openDevice(f, { size: '16MiB', create: true, model: 'dax-gup' })
  dev.poison(0, 1024)
  await dev.close()
  const text = await cli('info', f)
  t.equal(text.code, 0)
  t.match(text.out, /size\s+16 MiB/)
  t.match(text.out, /model\s+dax-gup/)
  t.match(text.out, /MAP_SYNC\s+(no \(EOPNOTSUPP: not a DAX mount\)|yes)/)
  t.match(text.out, /badblocks\s+1 range, 1024 bytes/)
  const json = await cli('info', f, '--json')
  const s = JSON.parse(json.out)
  t.equal(s.sizeBytes, 16 * 2 ** 20)
  t.equal(s.pageSizeBytes, 4096)
  t.equal(s.badblocks, 1)
  const missing = await cli('info', join(dir, 'nope'))
  t.equal(missing.code, 1)
  t.match(missing.err, /ENOENT/)
  const usage = await cli('info')
  t.equal(usage.code, 2)
  t.ok(existsSync(f) && readFileSync(f).length === 16 * 2 ** 20)
})

t.test('pmemu mkfs, info, fsck, poison, badblocks', async t => {
  const f = file()
  const made = await cli('mkfs', f, '--size', '32MiB', '--label', 'scratch', '--model', 'legacy')
  t.equal(made.code, 0, made.err)
  t.match(made.out, /made a file system on .*: 32 MiB, \d+ blocks of 4096 bytes/)
  const info = JSON.parse((await cli('info', f, '--json')).out)
  t.equal(info.model, 'legacy')
  t.equal(info.fs.present, true)
  t.equal(info.fs.label, 'scratch')
  t.equal(info.fs.state, 'clean')
  const text = await cli('info', f)
  t.match(text.out, /fs\s+pmemu fs v\d+, label 'scratch'/)
  const clean = await cli('fsck', f)
  t.equal(clean.code, 0)
  t.match(clean.out, /clean/)
  const j = JSON.parse((await cli('fsck', f, '--json')).out)
  t.equal(j.exitCode, 0)
  t.same(j.problems, [])
  const p = await cli('poison', f, '--offset', '1MiB', '--length', '100')
  t.equal(p.code, 0)
  t.match(p.out, /poisoned bytes 1048576\.\.1049088 \(1 sector of 512 bytes\)/, 'singular')
  t.match((await cli('poison', f, '--offset', '2MiB', '--length', '1024')).out, /\(2 sectors of 512 bytes\)/)
  const bb = JSON.parse((await cli('badblocks', f, '--json')).out)
  t.same(bb, [{ offset: 1048576, length: 512 }, { offset: 2097152, length: 1024 }])
  t.match((await cli('badblocks', f)).out, /offset 1048576 bytes, length 512 bytes/)
  const bad = await cli('poison', f, '--offset', 'x', '--length', '1')
  t.equal(bad.code, 2, 'a bad option value is a usage error')
  t.match(bad.err, /--offset/)
  const noDev = await cli('fsck', join(dir, 'absent.pmem'))
  t.equal(noDev.code, 8, 'e2fsck: operational error')
  const raw = file()
  ;(await openDevice(raw, { size: '8MiB', create: true })).close()
  const noFs = await cli('fsck', raw)
  t.not(noFs.code, 0, 'a device without a file system is not clean')
  t.match((await cli('info', raw)).out, /fs\s+none/)
  const mk2 = await cli('mkfs', join(dir, 'nosize.pmem'))
  t.equal(mk2.code, 2, 'a missing --size for a new device is a usage error')
  t.match(mk2.err, /--size is required to make a new device/)
  t.notOk(existsSync(join(dir, 'nosize.pmem')), 'and nothing is created')
})

t.test('pmemu mkfs: a failure leaves no new file behind and an existing device as it was', async t => {
  const { statSync, readFileSync: rd } = await import('node:fs')
  const f = file()
  const long = await cli('mkfs', f, '--size', '1MiB', '--label', 'x'.repeat(80))
  t.equal(long.code, 2, 'an over-long label is a usage error')
  t.match(long.err, /--label must be at most 63 UTF-8 bytes, got 80 bytes/)
  t.notOk(existsSync(f), 'nothing created')
  t.equal((await cli('mkfs', f, '--size', '4MiB')).code, 0, 'a retry with another size works')
  t.equal(statSync(f).size, 4 * 2 ** 20)
  const small = file()
  const tooSmall = await cli('mkfs', small, '--size', '68KiB')
  t.equal(tooSmall.code, 1)
  t.match(tooSmall.err, /ENOSPC/)
  t.notOk(existsSync(small), 'a device file mkfs created is removed when mkfs fails')
  const existing = file()
  ;await (await openDevice(existing, { size: '128KiB', create: true })).close()
  const before = rd(existing)
  t.equal((await cli('mkfs', existing)).code, 1)
  t.ok(existsSync(existing), 'an existing device is kept')
  t.same(rd(existing), before, 'and left as it was')
})

t.test('bad option values are usage errors (exit 2) naming the option, with units', async t => {
  const f = file()
  for (const [args, re] of [
    [['mkfs', f, '--size', 'x'], /option '--size <size>' argument 'x' is invalid/],
    [['mkfs', f, '--size', '-1'], /--size/],
    [['mkfs', f, '--size', '1.5KiB'], /--size must be a multiple of the 4096-byte page size, got 1536 bytes \(1\.5 KiB\)/],
    [['mkfs', f, '--size', '12KiB', '--page-size', '8KiB'], /--size must be a multiple of the 8192-byte page size, got 12288 bytes \(12 KiB\)/],
    [['mkfs', f, '--size', '1MiB', '--page-size', '1000'], /--page-size must be a power of two .*got 1000 bytes/],
    [['poison', f, '--offset', '-1', '--length', '1'], /--offset/],
    [['poison', f, '--offset', '0', '--length', '0'], /--length must be at least 1 byte/],
    [['bench', '--size', 'x'], /--size/],
    [['bench', '--size', '-1'], /--size/],
    [['bench', '--workers', '-1'], /--workers must be a whole number from 1 to 64/],
    [['bench', '--workers', '1.5'], /--workers must be a whole number from 1 to 64, got '1\.5'/],
  ] as [string[], RegExp][]) {
    const r = await cli(...args)
    t.equal(r.code, 2, args.join(' '))
    t.match(r.err, re, args.join(' '))
    t.notMatch(r.err, /parseSize|\n\s+at /, 'no parseSize, no stack')
  }
  t.notOk(existsSync(f), 'no device made by a rejected command')
})

t.test('parseSize names the caller\'s operation', async t => {
  const { parseSize } = await import('../src/util/size.js')
  t.throws(() => parseSize('x', 'size'), { code: 'EINVAL', syscall: 'parseSize' }, 'default unchanged')
  t.throws(() => parseSize(-1, 'offset', 'Region.read'), { code: 'EINVAL', syscall: 'Region.read', message: /, Region\.read$/ })
  t.equal(parseSize('2KiB', 'size', 'mkfs'), 2048)
})

t.test('pmemu bench: a missing --file / --json / --html directory is a one-line error naming the path', async t => {
  const missing = join(dir, 'nope')
  for (const args of [['--file', join(missing, 'x')], ['--json', join(missing, 'out.json')], ['--html', join(missing, 'r.html')]]) {
    const r = await cli('bench', '--quick', ...args)
    t.equal(r.code, 1, args.join(' '))
    t.match(r.err, new RegExp(`^pmemu: ENOENT: ${args[0]}: directory .*nope does not exist, bench '.*nope/`), args.join(' '))
    t.equal(r.err.trim().split('\n').length, 1, 'one line, no stack')
  }
  t.notOk(existsSync(missing), 'no directory created')
})

t.test('the README tour runs and prints what it says', async t => {
  const { tour } = await import('../examples/tour.js')
  const lines: string[] = []
  await tour(l => lines.push(l))
  t.match(lines[0], /after fault: .*"refcount":1,"mapcount":1/)
  t.match(lines[1], /pinned by DMA: refcount 1025, maybe DMA pinned: true/)
  t.equal(lines[2], 'truncate waiting: true')
  t.equal(lines[3], 'DMA copied 4096 bytes')
  t.match(lines[4], /truncate done; page idle: refcount 0; layout waits 1; violations 0/)
})

t.test('an injected pino logger gets one child per subsystem; silent by default', async t => {
  const { pino } = await import('pino')
  const { Writable } = await import('node:stream')
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } })
  const logger = pino({ level: 'debug' }, sink)
  const { mkfs } = await import('../src/index.js')
  const dev = await openDevice(undefined, { size: '8MiB', logger })
  const fs = await mkfs(dev)
  await fs.unmount()
  await dev.close()
  await new Promise(r => setImmediate(r))
  const subsystems = new Set(lines.map(l => l.subsystem))
  t.ok(subsystems.has('pages'), 'page table logs as subsystem pages')
  t.ok(subsystems.has('fs'), 'the fs logs through the device logger')
  t.ok(lines.some(l => l.msg === 'device open' && l.model === 'upstream'))
  const { rootLogger } = await import('../src/util/log.js')
  const saved = process.env.PMEMU_LOG
  delete process.env.PMEMU_LOG
  t.equal(rootLogger().level, 'silent')
  process.env.PMEMU_LOG = 'debug'
  t.equal(rootLogger().level, 'debug')
  if (saved === undefined) delete process.env.PMEMU_LOG
  else process.env.PMEMU_LOG = saved
})

// ---- SPEC §8: every bad argument is a typed EINVAL, never a bare TypeError (QA probe) ----------

const einval = (t: Test, fn: () => unknown, syscall: string, msg: RegExp, what: string): void => {
  let err: unknown
  try { fn() } catch (e) { err = e }
  t.ok(isPmemuError(err, 'EINVAL') && err.syscall === syscall && msg.test(err.message), what, { err: String(err) })
}

t.test('unbind: a bad signal or timeoutMs is EINVAL and leaves the device as it was', async t => {
  const dev = await openDevice(undefined, { size: '4MiB' })
  t.teardown(() => dev.close())
  for (const opts of [{ signal: {} }, { signal: 'x' }, { timeoutMs: -1 }, { timeoutMs: '5' }, null]) {
    await t.rejects(dev.unbind(opts as never), { code: 'EINVAL', syscall: 'unbind' }, `unbind(${JSON.stringify(opts)})`)
    t.equal(dev.status, 'open', 'still open (nothing pinned)')
  }
  dev.pages.pin(3)
  await t.rejects(dev.unbind({ signal: {} as AbortSignal }), { code: 'EINVAL', syscall: 'unbind' }, 'with a page pinned')
  t.equal(dev.status, 'open')
  await t.rejects(dev.table.waitIdle(3, 1, { signal: {} as AbortSignal }), { code: 'EINVAL', syscall: 'waitIdle' })
  dev.pages.unpin(3)
  await dev.unbind({ timeoutMs: 1000 })
  t.equal(dev.status, 'unbound')
})

t.test('openDevice: bad options and logger are EINVAL', async t => {
  await t.rejects(openDevice(undefined, null as never), { code: 'EINVAL', syscall: 'open', message: /options must be an object/ })
  await t.rejects(openDevice(undefined, { size: '1MiB', logger: {} as never }), { code: 'EINVAL', syscall: 'open', message: /logger must be a pino logger/ })
  for (const k of ['crashShadow', 'strict', 'create', 'readOnly'] as const) {
    await t.rejects(openDevice(undefined, { size: '1MiB', [k]: k === 'readOnly' ? 1 : 'yes' } as never),
      { code: 'EINVAL', syscall: 'open', message: new RegExp(`${k} must be a boolean`) }, k)
  }
  const p = file()
  await t.rejects(openDevice(p, { size: '1MiB', create: true, readOnly: true }), { code: 'EINVAL', message: /readOnly and create conflict/ })
  t.notOk(existsSync(p), 'nothing created')
  await t.rejects(openDevice(`${p}\0x`, { size: '1MiB', create: true }), { code: 'EINVAL', errno: 22, syscall: 'open', message: /NUL/ })
  await t.rejects(openDevice(undefined, { size: 'lots' }), { code: 'EINVAL', syscall: 'open' }, 'size errors name the operation')
  const dev = await openDevice(p, { size: '4MiB', create: true, map: 'mem' })
  await dev.close()
  await t.rejects(openDevice(p, { map: 'dev' }), { code: 'EINVAL', syscall: 'open', message: /created with map: 'mem', not 'dev'/ })
  const again = await openDevice(p, { map: 'mem' })
  await again.close()
})

t.test('read/write/view/crash/page: typed EINVAL naming the argument', async t => {
  const dev = await openDevice(undefined, { size: '4MiB' })
  t.teardown(() => dev.close())
  for (const dst of [[1, 2], 'abc', null, {}, new Float64Array(2)]) {
    einval(t, () => dev.read(0, dst as never), 'read', /dst .*must be a Uint8Array/, `read(0, ${String(dst)})`)
    einval(t, () => dev.write(0, dst as never), 'write', /src .*must be a Uint8Array/, `write(0, ${String(dst)})`)
  }
  einval(t, () => dev.view('3' as never, 16), 'view', /offset must be a non-negative integer, got '3'/, "view('3')")
  einval(t, () => dev.view(1.5, 16), 'view', /offset must be a non-negative integer, got 1\.5/, 'view(1.5)')
  einval(t, () => dev.view(0, -1), 'view', /length must be a non-negative integer, got -1/, 'view(0, -1)')
  einval(t, () => dev.view(dev.capacity, 16), 'view', /is outside the device/, 'past the end still says range')
  await t.rejects(dev.crash(null as never), { code: 'EINVAL', syscall: 'crash' })
  t.throws(() => dev.poison('x', 1), { code: 'EINVAL', syscall: 'poison' })
  einval(t, () => dev.page(1n as never), 'snapshot', /pfn must be a whole number .* got 1n/, 'dev.page(1n)')
  for (const k of ['get', 'put', 'pin', 'unpin', 'maybeDmaPinned'] as const) {
    einval(t, () => (dev.pages[k] as (p: unknown) => void)(2n), k, /pfn must be/, `pages.${k}(2n)`)
  }
  einval(t, () => dev.pages.pinRange(1n as never, 2), 'pinRange', /pfn must be/, 'pinRange(1n)')
  einval(t, () => dev.pages.unpinRange(1, 2n as never), 'unpinRange', /count must be/, 'unpinRange(1, 2n)')
  einval(t, () => dev.table.getPut(1n as never), 'getPut', /pfn must be/, 'getPut(1n)')
  t.same(dev.check(), [], 'no invariant broken')
  // The shared factory's paths (where code generation from strings is disabled) behave the same.
  const { _disableHotCodegen } = await import('../src/page/hot.js')
  _disableHotCodegen(true)
  const plain = await openDevice(undefined, { size: '4MiB' }).finally(() => _disableHotCodegen(false))
  t.teardown(() => plain.close())
  t.ok(Object.hasOwn(plain.pages, 'get'), 'paths installed without code generation (the shared factory)')
  for (const k of ['get', 'put', 'pin', 'unpin', 'maybeDmaPinned'] as const) {
    einval(t, () => (plain.pages[k] as (p: unknown) => void)(2n), k, /pfn must be/, `shared-factory pages.${k}(2n)`)
  }
  einval(t, () => plain.pages.pinRange(1n as never, 2), 'pinRange', /pfn must be/, 'shared-factory pinRange(1n)')
  einval(t, () => plain.pages.unpinRange(1, 2n as never), 'unpinRange', /count must be/, 'shared-factory unpinRange(1, 2n)')
})

t.test('JSON.stringify and inspect of a device are small summaries', async t => {
  const { inspect } = await import('node:util')
  const p = file()
  const dev = await openDevice(p, { size: '16MiB', create: true })
  t.teardown(() => dev.close())
  for (const [name, v] of [['dev', dev], ['region', dev.region], ['table', dev.table]] as const) {
    const j = JSON.stringify(v)
    t.ok(j.length < 4096, `${name}: ${j.length} bytes`)
    t.ok(inspect(v).length < 4096, `${name}: inspect is small`)
  }
  t.match(JSON.parse(JSON.stringify(dev)), { type: 'Device', path: p, size: 16 * 2 ** 20, status: 'open' })
  t.match(JSON.parse(JSON.stringify(dev.region)), { type: 'Region', path: p })
})
