import t from 'tap'
import { mkdtempSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice, isPmemuError } from '../src/index.js'
import { main } from '../src/cli/main.js'

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-dev-'))
let n = 0
const file = () => join(dir, `d${n++}.pmem`)

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const ow = process.stdout.write.bind(process.stdout)
  const ew = process.stderr.write.bind(process.stderr)
  process.stdout.write = ((s: string) => { out += s; return true }) as typeof process.stdout.write
  process.stderr.write = ((s: string) => { err += s; return true }) as typeof process.stderr.write
  try {
    const code = await main(['node', 'pmemu', ...args])
    return { code, out, err }
  } finally {
    process.stdout.write = ow
    process.stderr.write = ew
    process.exitCode = 0
  }
}

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
  for (const [model, ref, pgmap] of [['legacy', 1, 0], ['dax-gup', 0, 0], ['upstream', 0, -1]] as const) {
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
  t.match(text.out, /MAP_SYNC\s+no/)
  t.match(text.out, /badblocks\s+1 ranges, 1024 bytes/)
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
  t.match(p.out, /poisoned bytes 1048576\.\.1049088 \(1 sectors/)
  const bb = JSON.parse((await cli('badblocks', f, '--json')).out)
  t.same(bb, [{ offset: 1048576, length: 512 }])
  t.match((await cli('badblocks', f)).out, /offset 1048576 bytes, length 512 bytes/)
  const bad = await cli('poison', f, '--offset', 'x', '--length', '1')
  t.equal(bad.code, 1)
  t.match(bad.err, /EINVAL/)
  const noDev = await cli('fsck', join(dir, 'absent.pmem'))
  t.equal(noDev.code, 8, 'e2fsck: operational error')
  const raw = file()
  ;(await openDevice(raw, { size: '8MiB', create: true })).close()
  const noFs = await cli('fsck', raw)
  t.not(noFs.code, 0, 'a device without a file system is not clean')
  t.match((await cli('info', raw)).out, /fs\s+none/)
  const mk2 = await cli('mkfs', join(dir, 'nosize.pmem'))
  t.equal(mk2.code, 1)
  t.match(mk2.err, /needs a size/)
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
