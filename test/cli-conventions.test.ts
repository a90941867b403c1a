// The CLI as a user meets it: no command destroys data without --force,
// usage errors exit 2 with a user-level message, EPIPE is quiet, reads work
// beside a writer in another process, and an unclean shutdown is reported
// and cleared. Commands that spawn run the compiled bin (dist/), as npx does.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDevice, mkfs, mount } from '../src/index.js'
import { cli } from './fixtures/cli.js'
import { runBenchCommand } from '../src/cli/bench.js'
import { TINY_BUDGET } from '../bench/index.js'

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-cli-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const bin = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url))
const hash = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex')
let n = 0
const file = () => join(dir, `d${n++}.pmem`)


/** A device with a file system holding one file. */
async function withFile(): Promise<string> {
  const f = file()
  const dev = await openDevice(f, { size: '16MiB', create: true })
  const fs = await mkfs(dev)
  const h = await fs.open('/keep', 'w+')
  h.write(new Uint8Array(8192).fill(5), 0)
  await h.fsync()
  await h.close()
  await fs.unmount()
  await dev.close()
  return f
}

t.test('mkfs refuses to overwrite a file system or foreign data without --force', async t => {
  const f = await withFile()
  const before = hash(f)
  const r = await cli('mkfs', f, '--size', '16MiB')
  t.equal(r.code, 1)
  t.match(r.err, /EEXIST: .* holds a pmemu file system \(\d+ inodes in use, .* used\); mkfs would destroy it\. Use --force/)
  t.equal(hash(f), before, 'nothing on disk changed')
  const forced = await cli('mkfs', f, '--force')
  t.equal(forced.code, 0, forced.err)
  t.not(hash(f), before, '--force reformats')
  const dev = await openDevice(f)
  const fs = await mount(dev)
  await t.rejects(async () => fs.stat('/keep'), { code: 'ENOENT' }, 'the old file is gone after the forced mkfs')
  await fs.unmount(); await dev.close()

  const other = join(dir, 'notes.txt')
  writeFileSync(other, 'my notes')
  const r2 = await cli('mkfs', other, '--size', '16MiB')
  t.equal(r2.code, 1, 'a file that is not a device is not touched either')
  t.equal(readFileSync(other, 'utf8'), 'my notes')
})

t.test('bench --file refuses a device that holds files without --force', async t => {
  const f = await withFile()
  const before = hash(f)
  await t.rejects(runBenchCommand({ file: f, size: '16MiB', model: 'upstream', out: () => {}, err: () => {}, plain: true,
    run: { budget: TINY_BUDGET, only: ['side-table'] } }), { code: 'EEXIST', message: /holds a pmemu file system.*would reformat it\. Use --force/ })
  t.equal(hash(f), before, 'nothing on disk changed')
  const r = await cli('bench', '--file', f, '--quick')
  t.equal(r.code, 1)
  t.equal(hash(f), before)
  const rep = await runBenchCommand({ file: f, size: '16MiB', model: 'upstream', force: true, out: () => {}, err: () => {}, plain: true,
    run: { budget: TINY_BUDGET, only: ['side-table'] } })
  t.ok(rep.results.length > 0, 'with --force it runs')
})

t.test('bench --file refuses a pmemu device with no file system without --force (its region may hold data)', async t => {
  const f = file()
  const dev = await openDevice(f, { size: '8MiB', create: true })
  dev.region.write(0, Uint8Array.of(1, 2, 3, 4))
  dev.region.persist(0, 4)
  await dev.close()
  const before = hash(f)
  await t.rejects(runBenchCommand({ file: f, size: '8MiB', model: 'upstream', out: () => {}, err: () => {}, plain: true,
    run: { budget: TINY_BUDGET, only: ['side-table'] } }), { code: 'EEXIST', message: /holds a pmemu device \(8388608 bytes \(8 MiB\), no file system; its region may hold data\); the benchmarks would reformat it/ })
  t.equal(hash(f), before, 'nothing on disk changed')
})

t.test('usage errors exit 2 with user-level messages', async t => {
  const f = file()
  for (const [args, re] of [
    [['mkfs', f], /--size is required to make a new device/],
    [['mkfs', f, '--size', '2PiB'], /sizes in PiB are past the largest device pmemu can make \(511\.98 GiB of 4096-byte pages/],
    [['mkfs', f, '--size', '1EiB'], /sizes in EiB are past the largest device/],
    [['mkfs', f, '--size', '1TiB'], /past the largest device of 4096-byte pages pmemu can make \(511\.98 GiB\)/],
    [['badblocks', f, '--offset', '0'], /--offset and --length go with --clear/],
  ] as const) {
    const r = await cli(...args)
    t.equal(r.code, 2, args.join(' '))
    t.match(r.err, re)
    t.notMatch(r.err, /at .*\.(js|ts):\d+|PageTable|Region|TypeError/, 'no stack trace, no internal class names')
  }
  t.notOk(existsSync(f), 'no usage error created a file')
})

t.test('poison --json, info shows the uuid, badblocks --clear', async t => {
  const f = await withFile()
  const p = await cli('poison', f, '--offset', '1MiB', '--length', '600', '--json')
  t.equal(p.code, 0)
  t.same(JSON.parse(p.out), { offset: 1048576, length: 1024, sectors: 2, badblocks: [{ offset: 1048576, length: 1024 }] })
  const info = await cli('info', f)
  const dev = await openDevice(f, { readOnly: true })
  t.match(info.out, new RegExp(`^uuid\\s+${dev.uuid}$`, 'm'))
  await dev.close()
  const c = await cli('badblocks', f, '--clear')
  t.equal(c.code, 0)
  t.match(c.out, /cleared 1024 poisoned bytes; 0 bytes still poisoned/)
  t.match((await cli('badblocks', f)).out, /no bad blocks/)
})

t.test('fsck --repair names the command that clears poison it cannot repair', async t => {
  const f = await withFile()
  t.equal((await cli('poison', f, '--offset', '204800', '--length', '4096')).code, 0) // a journal block
  const r = await cli('fsck', f, '--repair')
  t.equal(r.code, 4)
  t.match(r.out, /problems left uncorrected: 1 poisoned block a repair cannot clear .*pmemu badblocks --clear/)
  t.notMatch(r.out, /run with --repair/, 'a repair never advises a repair')
  const ro = await cli('fsck', f)
  t.match(ro.out, /run `pmemu fsck --repair .*`; 1 poisoned block need `pmemu badblocks --clear/)
})

t.test('fsck lists poison in file data or free space (not a problem) with the command that clears it', async t => {
  const f = await withFile()
  t.equal((await cli('poison', f, '--offset', '1MiB', '--length', '512')).code, 0) // free space
  for (const args of [[f], [f, '--repair']]) {
    const r = await cli('fsck', ...args)
    t.equal(r.code, 0, 'poison outside metadata is not a problem')
    t.match(r.out, /poisoned: bytes 1048576\.\.1049087 \(512 bytes\) in block 256 \(free space\)/)
    t.match(r.out, /a repair cannot clear poison; `pmemu badblocks --clear .*` does/)
  }
  t.equal((await cli('badblocks', f, '--clear')).code, 0)
  t.notMatch((await cli('fsck', f)).out, /poisoned:/, 'cleared poison is no longer listed')
})

t.test('EPIPE exits quietly', async t => {
  const f = await withFile()
  const r = spawnSync('bash', ['-c', `node '${bin}' info '${f}' | head -1`], { encoding: 'utf8' })
  t.equal(r.status, 0)
  t.match(r.stdout, /^file\s/)
  t.equal(r.stderr, '', 'no stack trace')
})

t.test('info, badblocks and fsck read a device another process holds for writing; kill -9 is reported and cleared', async t => {
  const f = await withFile()
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `
    import { openDevice, mount } from ${JSON.stringify(new URL('../dist/src/index.js', import.meta.url).href)}
    const dev = await openDevice(${JSON.stringify(f)}); await mount(dev)
    process.stdout.write('held\\n'); setInterval(() => {}, 1000)`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((res, rej) => { holder.stdout.once('data', () => res()); holder.once('exit', c => rej(new Error(`holder exited ${c}`))) })
  try {
    const info = await cli('info', f)
    t.equal(info.code, 0, info.err)
    t.match(info.err, /open for writing in another process/)
    t.match(info.out, /fs state\s+mounted \(by another process\)/)
    t.equal((await cli('badblocks', f)).code, 0)
    const ck = await cli('fsck', f)
    t.equal(ck.code, 0, ck.err)
    const rep = await cli('fsck', f, '--repair')
    t.equal(rep.code, 8, 'a repair needs the device to itself')
    t.match(rep.err, /EBUSY/)
  } finally {
    holder.kill('SIGKILL')
    await new Promise(r => holder.once('exit', r))
  }
  const info = await cli('info', f)
  t.match(info.out, /fs state\s+not cleanly unmounted \(the last mount ended without unmount: a crash or kill -9/)
  t.equal(JSON.parse((await cli('info', f, '--json')).out).fs.cleanlyUnmounted, false)
  const ck = await cli('fsck', f)
  t.match(ck.out, /not cleanly unmounted/)
  const rep = await cli('fsck', f, '--repair')
  t.equal(rep.code, 0, rep.out)
  t.match(rep.out, /not cleanly unmounted.*; cleared/)
  t.match((await cli('info', f)).out, /fs state\s+clean/)
})
