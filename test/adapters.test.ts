/**
 * toNodeFs against real node:fs on Linux, case by case: each case runs on a
 * temp dir with node:fs/promises and on a pmemu fs through toNodeFs, and the
 * results and error fields (code, syscall, path, dest) must agree. A sentinel
 * directory on the host is checked before and after: no adapter call may
 * reach the host file system.
 */
import t from 'tap'
import { snapshot } from './fixtures/sentinel.js'
import { Buffer } from 'node:buffer'
import * as realFs from 'node:fs/promises'
import { constants as C, readdirSync, readFileSync, statSync, mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice } from '../src/region/index.js'
import { type PmemFs } from '../src/fs/index.js'
import { mkfs } from '../src/mount.js'
import { toNodeFs } from '../src/adapters/index.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFs = any

// ------------------------------------------------------------------ host sentinel

/** A directory on the host whose listing, sizes, contents and mtimes must not change while adapter tests run. */
const sentinel = mkdtempSync(join(tmpdir(), 'pmemu-sentinel-'))
writeFileSync(join(sentinel, 'f'), 'sentinel')
mkdirSync(join(sentinel, 'd'))
writeFileSync(join(sentinel, 'd', 'g'), 'inner')
const before = snapshot(sentinel)
t.teardown(() => {
  rmSync(sentinel, { recursive: true, force: true })
})

async function newPmem(): Promise<PmemFs> {
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  return mkfs(dev)
}

// ------------------------------------------------------------------ differential cases

interface Case { name: string; run: (fs: AnyFs, p: (rel: string) => string) => Promise<unknown> }

const cases: Case[] = [
  { name: 'a positional write on an a+ handle appends and leaves the position alone', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const h = await fs.open(p('/f'), 'a+')
    const w = await h.write('x', 0)
    const r = await h.read(Buffer.alloc(9), 0, 9, null)
    await h.close()
    return [w.bytesWritten, r.bytesRead, await fs.readFile(p('/f'), 'utf8')]
  } },
  { name: 'a positional write on an a handle leaves the position alone', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const h = await fs.open(p('/f'), 'a')
    await h.write('1', 1)
    await h.write('2')
    await h.close()
    return fs.readFile(p('/f'), 'utf8')
  } },
  { name: 'directory fsync: open(dir, O_RDONLY|O_DIRECTORY), sync, close', run: async (fs, p) => {
    await fs.mkdir(p('/d'))
    const h = await fs.open(p('/d'), C.O_RDONLY | C.O_DIRECTORY)
    await h.sync()
    await h.datasync()
    await h.close()
    return 'ok'
  } },
  { name: 'open(file, O_DIRECTORY): ENOTDIR', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'x')
    await fs.open(p('/f'), C.O_RDONLY | C.O_DIRECTORY)
  } },
  { name: 'open(missing, O_DIRECTORY): ENOENT', run: async (fs, p) => fs.open(p('/nope'), C.O_RDONLY | C.O_DIRECTORY) },
  { name: 'open(dir, O_WRONLY|O_DIRECTORY): EISDIR', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.open(p('/d'), C.O_WRONLY | C.O_DIRECTORY) } },
  { name: 'open(file, O_NOFOLLOW) works on a regular file', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const h = await fs.open(p('/f'), C.O_RDONLY | C.O_NOFOLLOW)
    const r = await h.read(Buffer.alloc(3), 0, 3, 0)
    await h.close()
    return r.buffer.toString()
  } },
  { name: 'negative truncate lengths clamp to 0', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abcdef')
    await fs.truncate(p('/f'), -5)
    const a = (await fs.stat(p('/f'))).size
    await fs.writeFile(p('/f'), 'abcdef')
    const h = await fs.open(p('/f'), 'r+')
    await h.truncate(-1)
    const b = (await h.stat()).size
    await h.close()
    return [a, b]
  } },
  { name: "open('/f/', 'w') on a file: EISDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), 'x'); await fs.open(p('/f/'), 'w') } },
  { name: "open('/f/', 'r') on a file: ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), 'x'); await fs.open(p('/f/'), 'r') } },
  { name: "open('/f/', 'r+') on a file: ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), 'x'); await fs.open(p('/f/'), 'r+') } },
  { name: "open('/new/', 'w'): EISDIR", run: async (fs, p) => fs.open(p('/new/'), 'w') },
  { name: "open('/nope/new/', 'w'): ENOENT", run: async (fs, p) => fs.open(p('/nope/new/'), 'w') },
  { name: "writeFile('/f/') on a file: EISDIR, file kept", run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'keep')
    const e = await fs.writeFile(p('/f/'), 'x').catch((err: { code: string }) => err.code)
    return [e, await fs.readFile(p('/f'), 'utf8')]
  } },
  { name: "appendFile('/f/') on a file: EISDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), 'x'); await fs.appendFile(p('/f/'), 'x') } },
  { name: "copyFile(f, '/g/') on a file: EISDIR", run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'x'); await fs.writeFile(p('/g'), 'y'); await fs.copyFile(p('/f'), p('/g/'))
  } },
  { name: "copyFile('/f/', g): ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), 'x'); await fs.copyFile(p('/f/'), p('/g')) } },
  { name: 'zero-length write on an r handle resolves 0', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const h = await fs.open(p('/f'), 'r')
    const w = await h.write(Buffer.alloc(0))
    await h.close()
    return w.bytesWritten
  } },
  { name: 'zero-length write on a+ does not move the position', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const h = await fs.open(p('/f'), 'a+')
    await h.write(Buffer.alloc(0))
    const r = await h.read(Buffer.alloc(3), 0, 3, null)
    await h.close()
    return [r.bytesRead, r.buffer.toString()]
  } },
  { name: "rename('/d/x', '/d'): ENOTEMPTY", run: async (fs, p) => {
    await fs.mkdir(p('/d')); await fs.writeFile(p('/d/x'), 'x'); await fs.rename(p('/d/x'), p('/d'))
  } },
  { name: "rename('/d/nope', '/d'): ENOENT", run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.rename(p('/d/nope'), p('/d')) } },
  { name: 'copyFile onto itself keeps the data', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    await fs.copyFile(p('/f'), p('/f'))
    return fs.readFile(p('/f'), 'utf8')
  } },
  { name: 'copyFile replaces an existing destination', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'ab'); await fs.writeFile(p('/g'), 'longer')
    await fs.copyFile(p('/f'), p('/g'))
    return fs.readFile(p('/g'), 'utf8')
  } },
  { name: 'copyFile of a directory onto a file: EISDIR, and the destination is removed (libuv)', run: async (fs, p) => {
    await fs.mkdir(p('/d')); await fs.writeFile(p('/g'), 'y')
    const e = await fs.copyFile(p('/d'), p('/g')).catch((err: { code: string; syscall: string }) => `${err.code} ${err.syscall}`)
    return [e, await fs.access(p('/g')).then(() => 'exists', (err: { code: string }) => err.code)]
  } },
  { name: 'copyFile EXCL: EEXIST before the source is looked at', run: async (fs, p) => {
    await fs.mkdir(p('/d')); await fs.writeFile(p('/g'), 'y'); await fs.copyFile(p('/d'), p('/g'), C.COPYFILE_EXCL)
  } },
  { name: 'copyFile missing source onto a directory: ENOENT', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.copyFile(p('/nope'), p('/d')) } },
  { name: 'copyFile onto a directory: EISDIR', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.writeFile(p('/f'), 'x'); await fs.copyFile(p('/f'), p('/d')) } },
  { name: "mkdir('/b/', { recursive }) returns '/b/'", run: async (fs, p) => fs.mkdir(p('/b/'), { recursive: true }) },
  { name: "mkdir('/d/x/y/', { recursive }) returns the first created", run: async (fs, p) => { await fs.mkdir(p('/d')); return fs.mkdir(p('/d/x/y/'), { recursive: true }) } },
  { name: "mkdir('/f/', { recursive }) on a file: ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.mkdir(p('/f/'), { recursive: true }) } },
  { name: 'readv/writev on a closed handle name their syscalls', run: async (fs, p) => {
    const h = await fs.open(p('/f'), 'w+')
    await h.close()
    const a = await h.readv([Buffer.alloc(1)]).catch((e: { code: string; syscall: string }) => `${e.code} ${e.syscall}`)
    const b = await h.writev([Buffer.alloc(1)]).catch((e: { code: string; syscall: string }) => `${e.code} ${e.syscall}`)
    return [a, b]
  } },
  { name: "rmdir('/d/.'): EINVAL and /d stays", run: async (fs, p) => {
    await fs.mkdir(p('/d'))
    const e = await fs.rmdir(p('/d/.')).catch((err: { code: string; syscall: string }) => `${err.code} ${err.syscall}`)
    return [e, (await fs.stat(p('/d'))).isDirectory()]
  } },
  { name: "rmdir('/d/x/..'): ENOTEMPTY", run: async (fs, p) => { await fs.mkdir(p('/d/x'), { recursive: true }); await fs.rmdir(p('/d/x/..')) } },
  { name: "mkdir('/x/.') with /x missing: ENOENT, nothing created", run: async (fs, p) => {
    const e = await fs.mkdir(p('/x/.')).catch((err: { code: string }) => err.code)
    return [e, await fs.readdir(p('/'))]
  } },
  { name: "mkdir('/d/.') with /d present: EEXIST", run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.mkdir(p('/d/.')) } },
  { name: "unlink('/d/.'): EISDIR", run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.unlink(p('/d/.')) } },
  { name: "rename('/d/.', '/q'): EBUSY", run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.rename(p('/d/.'), p('/q')) } },
  { name: "stat('/f/.'): ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.stat(p('/f/.')) } },
  { name: "stat('/nope/..'): ENOENT", run: async (fs, p) => fs.stat(p('/nope/..')) },
  { name: "readFile('/f/../f'): ENOTDIR", run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.readFile(p('/f/../f')) } },
  { name: "open('/d/.', 'w'): EISDIR", run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.open(p('/d/.'), 'w') } },
  { name: "writeFile('/d/x/../y') goes through a real directory", run: async (fs, p) => {
    await fs.mkdir(p('/d/x'), { recursive: true })
    await fs.writeFile(p('/d/x/../y'), 'ok')
    return fs.readFile(p('/d/y'), 'utf8')
  } },
]

function shape(v: unknown, root: string): unknown {
  if (v === undefined) return 'undefined'
  if (typeof v === 'string') return root ? v.split(root).join('') : v
  if (Array.isArray(v)) return v.map(x => shape(x, root))
  return v
}

async function outcome(c: Case, fs: AnyFs, root: string): Promise<unknown> {
  try {
    return { ok: shape(await c.run(fs, rel => root + (rel === '/' ? '' : rel)), root) }
  } catch (e) {
    const err = e as { code?: string; syscall?: string; path?: string; dest?: string; errno?: number }
    const strip = (s: string | undefined): string | undefined => (s === undefined || root === '' ? s : s.split(root).join(''))
    return { error: { code: err.code, errno: err.errno, syscall: err.syscall, path: strip(err.path), dest: strip(err.dest) } }
  }
}

t.test('toNodeFs matches node:fs on Linux, case by case', async t => {
  const base = await realFs.mkdtemp(join(tmpdir(), 'pmemu-adapters-'))
  t.teardown(() => realFs.rm(base, { recursive: true, force: true }))
  const pm = toNodeFs(await newPmem())
  let i = 0
  for (const c of cases) {
    const dir = `/case${i++}`
    await realFs.mkdir(base + dir)
    await pm.mkdir(dir)
    t.same(await outcome(c, pm, dir), await outcome(c, realFs, base + dir), c.name)
  }
})

t.test('EHWPOISON through toNodeFs keeps bytesRead', async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  const pfs = await mkfs(dev)
  const fs = toNodeFs(pfs)
  await fs.writeFile('/a', Buffer.alloc(3 * 4096, 7), { flush: true })
  const h = await fs.open('/a', 'r')
  dev.poison(h.file.node.pfnAt(1)! * 4096 + 904, 10)
  const err = await h.read(Buffer.alloc(3 * 4096), 0, 3 * 4096, 0).catch((e: unknown) => e) as { code: string; errno: number; syscall: string; bytesRead: number }
  t.equal(err.code, 'EHWPOISON')
  t.equal(err.errno, -133)
  t.equal(err.syscall, 'read')
  t.equal(err.bytesRead, 4608, 'the clean prefix copied into the buffer')
  const e2 = await fs.readFile('/a').catch((e: unknown) => e) as { code: string; bytesRead: number }
  t.equal(e2.code, 'EHWPOISON')
  t.equal(typeof e2.bytesRead, 'number')
  await h.close()
})

t.test('the host sentinel directory is untouched', async t => {
  t.equal(snapshot(sentinel), before)
})

t.test('toNodeFs has the whole node:fs shape: dual methods, fd callbacks, ENOSYS for the rest', async t => {
  const fs = toNodeFs(await newPmem()) as AnyFs
  const real = await import('node:fs')
  for (const name of Object.keys(real.default)) t.ok(name in fs, `node:fs.${name} exists`)
  for (const name of Object.keys(real.promises)) t.ok(name in fs.promises, `node:fs/promises.${name} exists`)
  t.equal(await fs.promises.readFile('/nope').catch((e: { code: string }) => e.code), 'ENOENT')
  // callback forms
  await new Promise<void>((resolve, reject) => fs.writeFile('/cb', 'hello', (e: unknown) => (e ? reject(e) : resolve())))
  const text = await new Promise((resolve, reject) => fs.readFile('/cb', 'utf8', (e: unknown, v: string) => (e ? reject(e) : resolve(v))))
  t.equal(text, 'hello')
  const fd = await new Promise<number>((resolve, reject) => fs.open('/cb', 'r', (e: unknown, n: number) => (e ? reject(e) : resolve(n))))
  t.equal(typeof fd, 'number')
  const [n, buf] = await new Promise<[number, Buffer]>((resolve, reject) =>
    fs.read(fd, Buffer.alloc(5), 0, 5, 0, (e: unknown, k: number, b: Buffer) => (e ? reject(e) : resolve([k, b]))))
  t.same([n, buf.toString()], [5, 'hello'])
  await new Promise<void>((resolve, reject) => fs.close(fd, (e: unknown) => (e ? reject(e) : resolve())))
  const bad = await new Promise(resolve => fs.fstat(fd, (e: { code: string }) => resolve(e?.code)))
  t.equal(bad, 'EBADF', 'a closed fd is EBADF')
  t.equal(await new Promise(resolve => fs.exists('/cb', resolve)), true)
  t.equal(await new Promise(resolve => fs.stat('/nope', (e: { code: string; syscall: string }) => resolve(`${e.code} ${e.syscall}`))), 'ENOENT stat')
  // promise style still works on the module shape
  t.equal(await fs.readFile('/cb', 'utf8'), 'hello')
  // real *Sync forms on the pmemu fs
  t.equal(fs.readFileSync('/cb', 'utf8'), 'hello')
  t.equal(fs.existsSync('/cb'), true)
  t.equal(fs.existsSync('/nope'), false)
  t.equal(fs.statSync('/cb').size, 5)
  t.equal(fs.statSync('/nope', { throwIfNoEntry: false }), undefined)
  t.throws(() => fs.statSync('/nope'), { code: 'ENOENT', syscall: 'stat', path: '/nope' })
  fs.writeFileSync('/cb', 'hello, world', { flush: true })
  t.equal(fs.readFileSync('/cb', 'utf8'), 'hello, world', 'a longer replacement needs no shrink')
  // A shrink may wait for DAX mappings and DMA pins, which a *Sync call cannot: EAGAIN, nothing changed.
  t.throws(() => fs.writeFileSync('/cb', 'hi'), { code: 'EAGAIN', syscall: 'open' })
  t.equal(fs.readFileSync('/cb', 'utf8'), 'hello, world')
  t.throws(() => fs.openSync('/cb', 'w'), { code: 'EAGAIN' })
  t.throws(() => fs.truncateSync('/cb', 1), { code: 'EAGAIN', syscall: 'ftruncate' })
  fs.truncateSync('/cb', 20)
  t.equal(fs.statSync('/cb').size, 20, 'growing is fine')
  const sfd = fs.openSync('/cb', 'r+')
  t.equal(fs.writeSync(sfd, 'HE', 0), 2)
  const sb = Buffer.alloc(5)
  t.equal(fs.readSync(sfd, sb, 0, 5, 0), 5)
  t.equal(sb.toString(), 'HEllo')
  fs.fsyncSync(sfd)
  fs.closeSync(sfd)
  t.throws(() => fs.fstatSync(sfd), { code: 'EBADF' })
  fs.mkdirSync('/s/t', { recursive: true })
  fs.renameSync('/s/t', '/s/u')
  t.same(fs.readdirSync('/s'), ['u'])
  fs.rmSync('/s', { recursive: true })
  t.equal(fs.existsSync('/s'), false)
  // not offered: present and failing with a typed ENOSYS, never the host
  for (const name of ['watch', 'watchFile']) {
    t.throws(() => fs[name]('/cb'), { code: 'ENOSYS' }, `${name} fails with ENOSYS`)
  }
})

t.test('streams: createReadStream/createWriteStream (module and FileHandle) as node:fs', async t => {
  const base = await realFs.mkdtemp(join(tmpdir(), 'pmemu-streams-'))
  t.teardown(() => realFs.rm(base, { recursive: true, force: true }))
  const real = (await import('node:fs')).default as AnyFs
  const pm = toNodeFs(await newPmem()) as AnyFs
  const { finished } = await import('node:stream/promises')
  const collect = async (r: AsyncIterable<Buffer | string>): Promise<string[]> => { const out: string[] = []; for await (const c of r) out.push(String(c)); return out }
  const run = async (fs: AnyFs, root: string): Promise<unknown> => {
    const w = fs.createWriteStream(`${root}/s`)
    w.write('hello ')
    w.end('world')
    await finished(w)
    const a = fs.createWriteStream(`${root}/s`, { flags: 'a' })
    a.end('!')
    await finished(a)
    const o = fs.createWriteStream(`${root}/s`, { flags: 'r+', start: 0 })
    o.end('J')
    await finished(o)
    const whole = await collect(fs.createReadStream(`${root}/s`, 'utf8'))
    const part = await collect(fs.createReadStream(`${root}/s`, { start: 2, end: 6, encoding: 'utf8' }))
    const small = await collect(fs.createReadStream(`${root}/s`, { highWaterMark: 4, encoding: 'utf8' }))
    const h = await fs.promises.open(`${root}/s`, 'r')
    const viaHandle = await collect(h.createReadStream({ start: 6, encoding: 'utf8' }))
    const missing = await collect(fs.createReadStream(`${root}/nope`)).catch((e: { code: string; syscall: string }) => `${e.code} ${e.syscall}`)
    return [whole.join(''), part, small, viaHandle, missing]
  }
  t.same(await run(pm, ''), await run(real, base))
})

t.test('the host sentinel directory is still untouched', async t => {
  t.equal(snapshot(sentinel), before)
})
