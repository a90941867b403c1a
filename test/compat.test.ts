/**
 * Compat suites for the test-double adapters:
 *  1. the same cases against real `node:fs/promises` on a temp dir and against
 *     `toNodeFs` over a pmemu fs, comparing results and error fields;
 *  2. random-access-storage's expectations against RandomAccessPmem;
 *  3. the WAL examples under forEachCrash / replayCrash.
 */
import t from 'tap'
import { Buffer } from 'node:buffer'
import { createHash } from 'node:crypto'
import * as realFs from 'node:fs/promises'
import { constants } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice } from '../src/region/index.js'
import { mkfs, mount, type PmemFs } from '../src/fs/index.js'
import { PmemuError } from '../src/errors.js'
import { toNodeFs, RandomAccessPmem, type RandomAccessPmemOptions } from '../src/adapters/index.js'
import { forEachCrash } from '../src/faults/index.js'
import { runGoodWal } from '../examples/wal-good.js'
import { runBadWal, replayBadWal } from '../examples/wal-bad.js'
import { KEEP_MODES } from '../examples/wal.js'

type Dev = Awaited<ReturnType<typeof openDevice>>
// The cases are written once against this loose shape; both implementations satisfy it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFs = any

async function newPmem(size = '32MiB', crashShadow = false): Promise<{ dev: Dev; fs: PmemFs }> {
  const dev = await openDevice(undefined, { size, crashShadow })
  t.teardown(async () => { await dev.close() })
  return { dev, fs: await mkfs(dev) }
}

// ------------------------------------------------------------------ 1. node:fs vs toNodeFs

interface Case { name: string; run: (fs: AnyFs, p: (rel: string) => string) => Promise<unknown> }

const stats = (s: { size: number; isFile(): boolean; isDirectory(): boolean }): unknown =>
  ({ size: s.size, file: s.isFile(), dir: s.isDirectory() })
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const cases: Case[] = [
  { name: 'writeFile/readFile utf8 round trip', run: async (fs, p) => {
    await fs.writeFile(p('/a.txt'), 'héllo wörld')
    return [await fs.readFile(p('/a.txt'), 'utf8'), await fs.readFile(p('/a.txt'), { encoding: 'hex' })]
  } },
  { name: 'writeFile Buffer, readFile Buffer', run: async (fs, p) => {
    await fs.writeFile(p('/b.bin'), Buffer.from([0, 1, 2, 255]))
    const b = await fs.readFile(p('/b.bin'))
    return [Buffer.isBuffer(b), hex(b)]
  } },
  { name: 'writeFile base64 encoding, Uint8Array, iterable', run: async (fs, p) => {
    await fs.writeFile(p('/c'), 'aGVsbG8=', 'base64')
    const one = await fs.readFile(p('/c'), 'utf8')
    await fs.writeFile(p('/c'), new Uint8Array([65, 66]))
    const two = await fs.readFile(p('/c'), 'latin1')
    await fs.writeFile(p('/c'), ['x', Buffer.from('y'), 'z'])
    return [one, two, await fs.readFile(p('/c'), 'utf8')]
  } },
  { name: 'appendFile creates and appends', run: async (fs, p) => {
    await fs.appendFile(p('/log'), 'one\n')
    await fs.appendFile(p('/log'), Buffer.from('two\n'))
    await fs.writeFile(p('/log'), 'three\n', { flag: 'a' })
    return fs.readFile(p('/log'), 'utf8')
  } },
  { name: 'writeFile flag wx on existing: EEXIST', run: async (fs, p) => {
    await fs.writeFile(p('/x'), '1')
    await fs.writeFile(p('/x'), '2', { flag: 'wx' })
  } },
  { name: 'readFile missing: ENOENT open', run: async (fs, p) => fs.readFile(p('/missing')) },
  { name: 'open r missing: ENOENT', run: async (fs, p) => fs.open(p('/missing'), 'r') },
  { name: 'open r+ missing: ENOENT', run: async (fs, p) => fs.open(p('/missing'), 'r+') },
  { name: 'open wx existing: EEXIST', run: async (fs, p) => { await fs.writeFile(p('/x'), ''); await fs.open(p('/x'), 'wx') } },
  { name: 'open numeric flags O_CREAT|O_WRONLY', run: async (fs, p) => {
    const fh = await fs.open(p('/n'), constants.O_CREAT | constants.O_WRONLY)
    await fh.write('abc')
    await fh.close()
    return fs.readFile(p('/n'), 'utf8')
  } },
  { name: 'FileHandle write/read (buffer, offset, length, position)', run: async (fs, p) => {
    const fh = await fs.open(p('/f'), 'w+')
    const w = await fh.write(Buffer.from('0123456789'), 2, 5, 0)
    const buf = Buffer.alloc(8, 0x2e)
    const r = await fh.read(buf, 1, 6, 0)
    const r2 = await fh.read(buf, 0, 4, 100)
    await fh.close()
    return [w.bytesWritten, r.bytesRead, buf.toString(), r2.bytesRead]
  } },
  { name: 'FileHandle string write with position and encoding', run: async (fs, p) => {
    const fh = await fs.open(p('/s'), 'w+')
    const a = await fh.write('hello')
    const b = await fh.write('ff00', 10, 'hex')
    const st = await fh.stat()
    await fh.close()
    return [a.bytesWritten, typeof a.buffer, b.bytesWritten, st.size, hex(await fs.readFile(p('/s')))]
  } },
  { name: 'FileHandle sequential writes and reads share the position', run: async (fs, p) => {
    const fh = await fs.open(p('/q'), 'w+')
    await fh.write(Buffer.from('abc'))
    await fh.write(Buffer.from('def'), null)
    const r = await fh.read(Buffer.alloc(4), 0, 4, 0)
    const r2 = await fh.read(Buffer.alloc(4), 0, 4, null)
    await fh.close()
    return [r.bytesRead, r.buffer.toString(), r2.bytesRead]
  } },
  { name: 'FileHandle read() without arguments and with options', run: async (fs, p) => {
    await fs.writeFile(p('/r'), 'abcdef')
    const fh = await fs.open(p('/r'), 'r')
    const a = await fh.read()
    const b = await fh.read({ buffer: Buffer.alloc(3), position: 2 })
    const c = await fh.read(Buffer.alloc(4), { offset: 1, length: 2, position: 4 })
    await fh.close()
    return [a.bytesRead, a.buffer.length, a.buffer.subarray(0, a.bytesRead).toString(), b.buffer.toString(), hex(c.buffer)]
  } },
  { name: 'FileHandle readv/writev', run: async (fs, p) => {
    const fh = await fs.open(p('/v'), 'w+')
    const w = await fh.writev([Buffer.from('ab'), Buffer.from('cde')], 0)
    const bufs = [Buffer.alloc(1), Buffer.alloc(3)]
    const r = await fh.readv(bufs, 1)
    await fh.close()
    return [w.bytesWritten, r.bytesRead, bufs.map(b => b.toString())]
  } },
  { name: 'FileHandle readFile reads from the current position, writeFile writes from it', run: async (fs, p) => {
    await fs.writeFile(p('/h'), 'abcdef')
    const fh = await fs.open(p('/h'), 'r+')
    await fh.read(Buffer.alloc(2), 0, 2, null)
    const rest = await fh.readFile('utf8')
    await fh.close()
    const fw = await fs.open(p('/h'), 'r+')
    await fw.read(Buffer.alloc(3), 0, 3, null)
    await fw.writeFile('XY')
    await fw.appendFile('Z')
    await fw.close()
    return [rest, await fs.readFile(p('/h'), 'utf8')]
  } },
  { name: 'sparse write: hole reads as zeros', run: async (fs, p) => {
    const fh = await fs.open(p('/sp'), 'w+')
    await fh.write(Buffer.from('end'), 0, 3, 20000)
    const st = await fh.stat()
    const mid = Buffer.alloc(16, 1)
    await fh.read(mid, 0, 16, 10000)
    await fh.close()
    return [st.size, hex(mid)]
  } },
  { name: 'truncate grow then shrink (path and handle)', run: async (fs, p) => {
    await fs.writeFile(p('/t'), 'abcdef')
    await fs.truncate(p('/t'), 10)
    const grown = hex(await fs.readFile(p('/t')))
    await fs.truncate(p('/t'), 2)
    const shrunk = await fs.readFile(p('/t'), 'utf8')
    const fh = await fs.open(p('/t'), 'r+')
    await fh.truncate(5)
    await fh.truncate()
    const sz = (await fh.stat()).size
    await fh.close()
    return [grown, shrunk, sz]
  } },
  { name: 'truncate missing: ENOENT open', run: async (fs, p) => fs.truncate(p('/missing'), 1) },
  { name: 'truncate directory: EISDIR open', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.truncate(p('/d')) } },
  { name: "append mode: positioned writes still append (Linux O_APPEND)", run: async (fs, p) => {
    await fs.writeFile(p('/ap'), 'abc')
    const fh = await fs.open(p('/ap'), 'a+')
    await fh.write(Buffer.from('XY'), 0, 2, 0)
    const r = await fh.read(Buffer.alloc(5), 0, 5, 0)
    await fh.close()
    return [r.buffer.toString(), await fs.readFile(p('/ap'), 'utf8')]
  } },
  { name: '3 MiB write round trip', run: async (fs, p) => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 123)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff
    await fs.writeFile(p('/big'), big)
    const back = await fs.readFile(p('/big'))
    return [back.length, createHash('sha256').update(back).digest('hex') === createHash('sha256').update(big).digest('hex')]
  } },
  { name: 'stat / lstat of files and directories', run: async (fs, p) => {
    await fs.mkdir(p('/dir'))
    await fs.writeFile(p('/dir/f'), '12345')
    return [stats(await fs.stat(p('/dir'))), stats(await fs.stat(p('/dir/f'))), stats(await fs.lstat(p('/dir/f')))]
  } },
  { name: 'stat missing, through a file, trailing slash on a file', run: async (fs, p) => {
    await fs.writeFile(p('/file'), 'x')
    const out: unknown[] = []
    for (const q of ['/missing', '/file/x', '/file/']) {
      try { await fs.stat(p(q)) } catch (e) { out.push(errShape(e, p(''))) }
    }
    try { await fs.lstat(p('/missing')) } catch (e) { out.push(errShape(e, p(''))) }
    return out
  } },
  { name: 'readdir names sorted, withFileTypes, recursive', run: async (fs, p) => {
    await fs.mkdir(p('/r/b/c'), { recursive: true })
    for (const n of ['zeta', 'alpha', 'Mid', 'b/inner', 'b/c/deep']) await fs.writeFile(p(`/r/${n}`), n)
    const names = (await fs.readdir(p('/r'))).sort()
    const typed = (await fs.readdir(p('/r'), { withFileTypes: true }))
      .map((d: { name: string; isFile(): boolean; isDirectory(): boolean; parentPath: string }) =>
        [d.name, d.isFile(), d.isDirectory(), d.parentPath === p('/r')]).sort()
    const rec = (await fs.readdir(p('/r'), { recursive: true })).sort()
    return [names, typed, rec]
  } },
  { name: 'readdir of a file: ENOTDIR scandir; missing: ENOENT', run: async (fs, p) => {
    await fs.writeFile(p('/f'), '')
    const out: unknown[] = []
    for (const q of ['/f', '/missing']) { try { await fs.readdir(p(q)) } catch (e) { out.push(errShape(e, p(''))) } }
    return out
  } },
  { name: 'opendir iterates entries; missing: ENOENT opendir', run: async (fs, p) => {
    await fs.mkdir(p('/od'))
    await fs.writeFile(p('/od/a'), '')
    await fs.mkdir(p('/od/b'))
    const dir = await fs.opendir(p('/od'))
    const seen: string[] = []
    for await (const d of dir) seen.push(`${d.name}:${d.isDirectory()}`)
    await fs.opendir(p('/nope')).catch((e: unknown) => seen.push(JSON.stringify(errShape(e, p('')))))
    return seen.sort()
  } },
  { name: 'mkdir recursive returns the first created directory', run: async (fs, p) => {
    await fs.mkdir(p('/m'))
    const first = await fs.mkdir(p('/m/a/b/c'), { recursive: true })
    const again = await fs.mkdir(p('/m/a/b/c'), { recursive: true })
    const plain = await fs.mkdir(p('/m/z'))
    return [typeof first === 'string' ? first.slice(p('').length) : first, again, plain, (await fs.stat(p('/m/a/b/c'))).isDirectory()]
  } },
  { name: 'mkdir existing: EEXIST', run: async (fs, p) => { await fs.mkdir(p('/e')); await fs.mkdir(p('/e')) } },
  { name: 'mkdir missing parent: ENOENT', run: async (fs, p) => fs.mkdir(p('/no/such')) },
  { name: 'mkdir recursive on a file: EEXIST', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.mkdir(p('/f'), { recursive: true }) } },
  { name: 'mkdir recursive through a file: ENOTDIR', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.mkdir(p('/f/a/b'), { recursive: true }) } },
  { name: 'rm recursive removes a tree', run: async (fs, p) => {
    await fs.mkdir(p('/tree/a/b'), { recursive: true })
    await fs.writeFile(p('/tree/a/b/f'), 'x')
    await fs.writeFile(p('/tree/g'), 'y')
    await fs.rm(p('/tree'), { recursive: true })
    await fs.rm(p('/tree'), { recursive: true, force: true })
    return fs.readdir(p('/'))
  } },
  { name: 'rm a file; rm missing: ENOENT lstat', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.rm(p('/f')); await fs.rm(p('/f')) } },
  { name: 'rm directory without recursive: ERR_FS_EISDIR', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.rm(p('/d'), { force: true }) } },
  { name: 'rm through a file with force: ENOTDIR lstat', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.rm(p('/f/x'), { force: true }) } },
  { name: 'rmdir non-empty: ENOTEMPTY', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.writeFile(p('/d/f'), ''); await fs.rmdir(p('/d')) } },
  { name: 'rmdir a file: ENOTDIR', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.rmdir(p('/f')) } },
  { name: 'rmdir empty, then missing: ENOENT', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.rmdir(p('/d')); await fs.rmdir(p('/d')) } },
  { name: 'unlink a directory: EISDIR; missing: ENOENT', run: async (fs, p) => {
    await fs.mkdir(p('/d'))
    const out: unknown[] = []
    for (const q of ['/d', '/missing']) { try { await fs.unlink(p(q)) } catch (e) { out.push(errShape(e, p(''))) } }
    return out
  } },
  { name: 'unlink, then the name is gone', run: async (fs, p) => {
    await fs.writeFile(p('/u1'), '1'); await fs.writeFile(p('/u2'), '2')
    await fs.unlink(p('/u1'))
    return [(await fs.readdir(p('/'))).sort()]
  } },
  { name: 'rename replacing a file', run: async (fs, p) => {
    await fs.writeFile(p('/src'), 'new'); await fs.writeFile(p('/dst'), 'old')
    await fs.rename(p('/src'), p('/dst'))
    await fs.rename(p('/dst'), p('/dst'))
    return [await fs.readFile(p('/dst'), 'utf8'), (await fs.readdir(p('/'))).sort()]
  } },
  { name: 'rename a directory into another, replacing an empty one', run: async (fs, p) => {
    await fs.mkdir(p('/a/sub'), { recursive: true }); await fs.writeFile(p('/a/sub/f'), 'f')
    await fs.mkdir(p('/b/sub'), { recursive: true })
    await fs.rename(p('/a/sub'), p('/b/sub'))
    return [await fs.readFile(p('/b/sub/f'), 'utf8'), await fs.readdir(p('/a'))]
  } },
  { name: 'rename missing: ENOENT with dest', run: async (fs, p) => fs.rename(p('/missing'), p('/b')) },
  { name: 'rename file over directory: EISDIR', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.mkdir(p('/d')); await fs.rename(p('/f'), p('/d')) } },
  { name: 'rename directory over file: ENOTDIR', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.mkdir(p('/d')); await fs.rename(p('/d'), p('/f')) } },
  { name: 'rename directory over non-empty directory: ENOTEMPTY', run: async (fs, p) => {
    await fs.mkdir(p('/d1')); await fs.mkdir(p('/d2')); await fs.writeFile(p('/d2/f'), '')
    await fs.rename(p('/d1'), p('/d2'))
  } },
  { name: 'rename directory into itself: EINVAL', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.rename(p('/d'), p('/d/inner')) } },
  { name: 'readFile of a directory: EISDIR read', run: async (fs, p) => { await fs.mkdir(p('/d')); await fs.readFile(p('/d')) } },
  { name: 'writeFile/appendFile to a directory: EISDIR open', run: async (fs, p) => {
    await fs.mkdir(p('/d'))
    const out: unknown[] = []
    try { await fs.writeFile(p('/d'), 'x') } catch (e) { out.push(errShape(e, p(''))) }
    try { await fs.appendFile(p('/d'), 'x') } catch (e) { out.push(errShape(e, p(''))) }
    return out
  } },
  { name: 'open a directory for writing: EISDIR; read from a directory handle: EISDIR read', run: async (fs, p) => {
    await fs.mkdir(p('/d'))
    const out: unknown[] = []
    try { await fs.open(p('/d'), 'r+') } catch (e) { out.push(errShape(e, p(''))) }
    const dh = await fs.open(p('/d'), 'r')
    try { await dh.read(Buffer.alloc(2), 0, 2, 0) } catch (e) { out.push(errShape(e, p(''))) }
    await dh.close()
    return out
  } },
  { name: 'FileHandle after close: EBADF "file closed"; close twice resolves', run: async (fs, p) => {
    const fh = await fs.open(p('/c'), 'w+')
    await fh.close()
    const out: unknown[] = [fh.fd]
    const ops: Array<() => Promise<unknown>> = [
      () => fh.read(Buffer.alloc(1), 0, 1, 0), () => fh.write(Buffer.from('x')), () => fh.stat(), () => fh.truncate(0),
      () => fh.sync(), () => fh.datasync(), () => fh.readFile(), () => fh.writeFile('x'),
    ]
    for (const op of ops) { try { await op() } catch (e) { out.push(errShape(e, p(''))) } }
    await fh.close()
    return out
  } },
  { name: 'access modes on the wrong handle: EBADF write/read, EINVAL ftruncate', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const out: unknown[] = []
    const ro = await fs.open(p('/f'), 'r')
    try { await ro.write('x') } catch (e) { out.push(errShape(e, p(''))) }
    try { await ro.truncate(1) } catch (e) { out.push(errShape(e, p(''))) }
    await ro.close()
    const wo = await fs.open(p('/f'), 'a')
    try { await wo.read(Buffer.alloc(1), 0, 1, 0) } catch (e) { out.push(errShape(e, p(''))) }
    await wo.close()
    return out
  } },
  { name: 'access F_OK / R_OK / W_OK, X_OK on a non-executable file: EACCES; missing: ENOENT', run: async (fs, p) => {
    await fs.writeFile(p('/f'), '', { mode: 0o644 })
    await fs.access(p('/f'))
    await fs.access(p('/f'), constants.R_OK | constants.W_OK)
    const out: unknown[] = []
    for (const [q, m] of [['/f', constants.X_OK], ['/missing', constants.F_OK]] as const) {
      try { await fs.access(p(q), m) } catch (e) { out.push(errShape(e, p(''))) }
    }
    return out
  } },
  { name: 'copyFile copies; COPYFILE_EXCL onto existing: EEXIST copyfile', run: async (fs, p) => {
    await fs.writeFile(p('/a'), 'data')
    await fs.copyFile(p('/a'), p('/b'))
    await fs.writeFile(p('/c'), 'longer old content')
    await fs.copyFile(p('/a'), p('/c'))
    const got = [await fs.readFile(p('/b'), 'utf8'), await fs.readFile(p('/c'), 'utf8')]
    try { await fs.copyFile(p('/a'), p('/b'), constants.COPYFILE_EXCL) } catch (e) { got.push(JSON.stringify(errShape(e, p('')))) }
    return got
  } },
  { name: 'copyFile missing source: ENOENT; onto / from a directory: EISDIR', run: async (fs, p) => {
    await fs.writeFile(p('/a'), 'x'); await fs.mkdir(p('/d'))
    const out: unknown[] = []
    for (const [a, b] of [['/missing', '/z'], ['/a', '/d'], ['/d', '/z']]) {
      try { await fs.copyFile(p(a!), p(b!)) } catch (e) { out.push(errShape(e, p(''))) }
    }
    return out
  } },
  { name: 'realpath normalises; missing: ENOENT realpath', run: async (fs, p) => {
    await fs.mkdir(p('/rp/x'), { recursive: true })
    const r = await fs.realpath(p('/rp/x/../x/./'))
    const out: unknown[] = [r.slice(p('').length)]
    try { await fs.realpath(p('/rp/missing')) } catch (e) { out.push(errShape(e, p(''))) }
    return out
  } },
  { name: 'readlink of a regular file: EINVAL', run: async (fs, p) => { await fs.writeFile(p('/f'), ''); await fs.readlink(p('/f')) } },
  { name: 'mkdtemp creates a unique directory with the prefix', run: async (fs, p) => {
    const a = await fs.mkdtemp(p('/tmp-'))
    const b = await fs.mkdtemp(p('/tmp-'))
    return [a !== b, a.slice(p('').length).length, (await fs.stat(a)).isDirectory()]
  } },
  { name: 'stat bigint', run: async (fs, p) => {
    await fs.writeFile(p('/f'), 'abc')
    const s = await fs.stat(p('/f'), { bigint: true })
    return [typeof s.size, s.size === 3n, typeof s.mtimeNs, s.isFile()]
  } },
]

/** The comparable part of an error: prefix (the temp dir) stripped from paths and the message. */
function errShape(e: unknown, prefix: string): Record<string, unknown> {
  const err = e as { name?: string; code?: string; errno?: number; syscall?: string; path?: string; dest?: string; message?: string }
  const strip = (s: string | undefined): string | undefined => (s === undefined || prefix === '' ? s : s.split(prefix).join(''))
  return {
    name: err.name, code: err.code, errno: err.errno, syscall: err.syscall,
    path: strip(err.path), dest: strip(err.dest), message: strip(err.message),
  }
}

async function outcome(c: Case, fs: AnyFs, root: string): Promise<unknown> {
  try {
    const v = await c.run(fs, rel => root + (rel === '/' ? '' : rel))
    return { ok: normalise(v, root) }
  } catch (e) {
    return { error: errShape(e, root) }
  }
}

function normalise(v: unknown, root: string): unknown {
  if (v === undefined) return 'undefined'
  if (typeof v === 'string') return root ? v.split(root).join('') : v
  if (Buffer.isBuffer(v)) return `buffer:${v.toString('hex')}`
  if (Array.isArray(v)) return v.map(x => normalise(x, root))
  if (v && typeof v === 'object' && typeof (v as { close?: unknown }).close === 'function') return 'handle'
  return v
}

t.test('node:fs/promises vs toNodeFs: same results, same errors', async t => {
  const base = await realFs.mkdtemp(join(tmpdir(), 'pmemu-compat-'))
  t.teardown(() => realFs.rm(base, { recursive: true, force: true }))
  const { fs: pfs } = await newPmem('32MiB')
  const pm = toNodeFs(pfs)
  let i = 0
  for (const c of cases) {
    const dir = `/case${i++}`
    await realFs.mkdir(base + dir)
    await pm.mkdir(dir)
    const real = await outcome(c, realFs, base + dir)
    const emu = await outcome(c, pm, dir)
    t.same(emu, real, c.name)
  }
})

t.test('toNodeFs: pmemu-specific behaviour', async t => {
  const { dev, fs: pfs } = await newPmem('16MiB', true)
  const fs = toNodeFs(pfs)

  await t.test('relative paths resolve against /, Buffers and file: URLs are paths', async t => {
    await fs.mkdir('rel/dir', { recursive: true })
    await fs.writeFile('rel/dir/../f.txt', 'x')
    t.same(await fs.readdir('/rel'), ['dir', 'f.txt'])
    t.equal(await fs.readFile(Buffer.from('/rel/f.txt'), 'utf8'), 'x')
    t.equal(await fs.readFile(new URL('file:///rel/f.txt'), 'utf8'), 'x')
    const e = await fs.stat('rel/missing').catch((err: unknown) => err) as { path: string; message: string }
    t.equal(e.path, 'rel/missing', 'errors report the path as the caller gave it')
    t.match(e.message, /^ENOENT: no such file or directory, stat 'rel\/missing'$/)
  })

  await t.test('errors: negative errno, PmemuError as cause', async t => {
    const e = await fs.open('/nope').catch((err: unknown) => err) as Error & { errno: number; code: string }
    t.equal(e.errno, -2)
    t.equal(e.code, 'ENOENT')
    t.ok(e.cause instanceof PmemuError, 'cause is the PmemuError')
    const bad = await fs.readFile('/a\0b').catch((err: unknown) => err) as { code: string }
    t.equal(bad.code, 'ERR_INVALID_ARG_VALUE')
    const typ = await fs.stat(42 as unknown as string).catch((err: unknown) => err) as { code: string }
    t.equal(typ.code, 'ERR_INVALID_ARG_TYPE')
  })

  await t.test('unlink while open keeps the data readable through the handle', async t => {
    await fs.writeFile('/open-unlinked', 'still here')
    const fh = await fs.open('/open-unlinked', 'r')
    await fs.unlink('/open-unlinked')
    t.equal((await fh.readFile('utf8')), 'still here')
    await fh.close()
  })

  await t.test('statfs, unsupported calls', async t => {
    const s = await fs.statfs('/')
    t.ok(s.blocks > 0 && s.bfree > 0 && s.bsize === 4096)
    await t.rejects(fs.chown('/rel', 0, 0), { code: 'ENOSYS', syscall: 'chown' })
    await t.rejects(fs.readFile('/x', { signal: AbortSignal.abort() }), { name: 'AbortError' })
  })

  await t.test('handle.file exposes the PmemFile (fallocate, punchHole)', async t => {
    const fh = await fs.open('/pf', 'w+')
    await fh.write(Buffer.alloc(8192, 7))
    await fh.file.punchHole(0, 4096)
    const b = Buffer.alloc(2)
    await fh.read(b, 0, 2, 0)
    t.same([...b], [0, 0])
    await fh.close()
  })

  await t.test('after crash(): old adapter fails with ENXIO, remount and wrap again', async t => {
    await fs.writeFile('/durable', 'synced', { flush: true })
    await dev.crash({ seed: 7, keep: 'none' })
    await t.rejects(fs.readFile('/durable'), { code: 'ENXIO', errno: -6, syscall: 'open' })
    const fs2 = toNodeFs(await mount(dev))
    t.equal(await fs2.readFile('/durable', 'utf8'), 'synced')
  })
})

// ------------------------------------------------------------------ 2. random-access-storage

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Done = (err: Error | null, v?: any) => void
function cb<T = void>(fn: (done: Done) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))))
}

t.test('RandomAccessPmem: random-access-storage expectations', async t => {
  const { dev, fs } = await newPmem('16MiB', true)
  const make = (name: string, opts?: RandomAccessPmemOptions): RandomAccessPmem => new RandomAccessPmem(fs, name, opts)

  await t.test('write and read', async t => {
    const s = make('/ras/wr')
    await cb(d => s.write(0, Buffer.from('hello'), d))
    t.equal((await cb<Buffer>(d => s.read(0, 5, d))).toString(), 'hello')
    t.equal((await cb<Buffer>(d => s.read(1, 3, d))).toString(), 'ell')
    t.equal((await cb<Buffer>(d => s.read(5, 0, d))).length, 0, 'empty read at the end')
    await cb(d => s.close(d))
  })

  await t.test('read past the end: EPARTIALREAD', async t => {
    const s = make('/ras/past')
    await cb(d => s.write(0, Buffer.from('abc'), d))
    await t.rejects(cb(d => s.read(1, 10, d)), { code: 'EPARTIALREAD', message: /Could not satisfy length/ })
    await t.rejects(cb(d => s.read(100, 1, d)), { code: 'EPARTIALREAD' })
    t.equal((await cb<Buffer>(d => s.read(0, 3, d))).toString(), 'abc', 'still usable')
    await cb(d => s.close(d))
  })

  await t.test('read of a file never written (not created): ENOENT', async t => {
    const s = make('/ras/never')
    await t.rejects(cb(d => s.read(0, 1, d)), { code: 'ENOENT' })
    t.notOk(await fs.exists('/ras/never'), 'reading does not create the file')
  })

  await t.test('random writes and reads match a Buffer model', async t => {
    const s = make('/ras/random')
    let model = Buffer.alloc(0)
    let x = 12345
    const r = (n: number): number => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % n }
    for (let i = 0; i < 200; i++) {
      const off = r(20000)
      const data = Buffer.alloc(1 + r(5000), r(256))
      await cb(d => s.write(off, data, d))
      if (model.length < off + data.length) model = Buffer.concat([model, Buffer.alloc(off + data.length - model.length)])
      data.copy(model, off)
    }
    t.equal((await cb<{ size: number }>(d => s.stat(d))).size, model.length)
    t.ok((await cb<Buffer>(d => s.read(0, model.length, d))).equals(model))
    await cb(d => s.close(d))
  })

  await t.test('del punches a hole (zeros, size kept); del to Infinity truncates', async t => {
    const s = make('/ras/del')
    await cb(d => s.write(0, Buffer.alloc(10000, 1), d))
    await cb(d => s.del(100, 5000, d))
    const b = await cb<Buffer>(d => s.read(0, 10000, d))
    t.equal(b[99], 1); t.equal(b[100], 0); t.equal(b[5099], 0); t.equal(b[5100], 1)
    t.equal((await cb<{ size: number }>(d => s.stat(d))).size, 10000)
    await cb(d => s.del(20000, 5, d))
    await cb(d => s.del(3000, Infinity, d))
    t.equal((await cb<{ size: number }>(d => s.stat(d))).size, 3000)
    await cb(d => s.close(d))
  })

  await t.test('truncate shrinks and grows', async t => {
    const s = make('/ras/trunc')
    await cb(d => s.write(0, Buffer.from('abcdefgh'), d))
    await cb(d => s.truncate(3, d))
    t.equal((await cb<{ size: number }>(d => s.stat(d))).size, 3)
    await t.rejects(cb(d => s.read(0, 4, d)), { code: 'EPARTIALREAD' })
    await cb(d => s.truncate(6, d))
    t.same([...(await cb<Buffer>(d => s.read(0, 6, d)))], [97, 98, 99, 0, 0, 0])
    await cb(d => s.close(d))
  })

  await t.test('open/close lifecycle: events, Closed after close, reopen sees the data', async t => {
    const s = make('/ras/life')
    const events: string[] = []
    s.on('open', () => events.push('open'))
    s.on('close', () => events.push('close'))
    await t.rejects(cb(d => s.open(d)), { code: 'ENOENT' }, 'an explicit open before any write does not create (as random-access-file)')
    await cb(d => s.write(0, Buffer.from('persist me'), d))
    await cb(d => s.open(d))
    await cb(d => s.close(d))
    t.ok(s.closed)
    await t.rejects(cb(d => s.read(0, 1, d)), { message: 'Closed' })
    await t.rejects(cb(d => s.write(0, Buffer.from('x'), d)), { message: 'Closed' })
    t.same(events, ['open', 'close'])
    const again = make('/ras/life')
    t.equal((await cb<Buffer>(d => again.read(0, 10, d))).toString(), 'persist me')
    await cb(d => again.close(d))
  })

  await t.test('options: size, truncate, directory + unlink with rmdir, lock', async t => {
    const sized = make('/ras/sized', { size: 100 })
    t.equal((await cb<{ size: number }>(d => sized.stat(d))).size, 100)
    await cb(d => sized.close(d))
    const trunc = make('/ras/sized', { truncate: true })
    t.equal((await cb<{ size: number }>(d => trunc.stat(d))).size, 0)
    await cb(d => trunc.close(d))

    const inDir = make('a/b/file', { directory: '/root', rmdir: true })
    t.equal(inDir.filename, '/root/a/b/file')
    await cb(d => inDir.write(0, Buffer.from('x'), d))
    await cb(d => inDir.unlink(d))
    t.ok(inDir.unlinked)
    t.same(await fs.readdir('/root'), [], 'empty parents removed up to the directory')

    const a = make('/ras/locked', { lock: true })
    const b = make('/ras/locked', { lock: true })
    await cb(d => a.write(0, Buffer.from('1'), d))
    await t.rejects(cb(d => b.open(d)), { code: 'ELOCKED' })
    await cb(d => a.close(d))
    await cb(d => b.open(d))
    await cb(d => b.close(d))
  })

  await t.test('durability: close() fsyncs; unsynced overwrites may die in a crash', async t => {
    const s = make('/ras/durable')
    await cb(d => s.write(0, Buffer.alloc(4096, 1), d))
    await cb(d => s.close(d))
    const u = make('/ras/durable')
    await cb(d => u.write(0, Buffer.alloc(4096, 2), d)) // overwrite, not synced
    await dev.crash({ seed: 1, keep: 'none' })
    await t.rejects(cb(d => u.read(0, 1, d)), { code: 'ENXIO' }, 'the old fs is gone')
    const fs2 = await mount(dev)
    const r = new RandomAccessPmem(fs2, '/ras/durable')
    t.same([...(await cb<Buffer>(d => r.read(0, 4, d)))], [1, 1, 1, 1], 'the fsynced content survived, the unsynced overwrite did not')
    await cb(d => r.write(0, Buffer.alloc(4, 3), d))
    await cb(d => r.sync(d))
    await cb(d => r.close(d))
  })
})

// ------------------------------------------------------------------ 3. the WAL examples

// Random-moment seeds per keep mode, and journal crash points per keep mode (spread
// evenly over the ~180 the workload passes; the examples run all of them). ~6 ms a run.
const SEEDS = Number(process.env.PMEMU_COMPAT_SEEDS ?? 20)
const CRASH_POINTS = Number(process.env.PMEMU_COMPAT_CRASH_POINTS ?? 40)

t.test('examples/wal-good: no acknowledged record lost at any crash, seed or keep mode', async t => {
  const r = await runGoodWal({ seeds: SEEDS, maxCrashPoints: CRASH_POINTS })
  t.ok(r.crashPoints >= 20 * 8, `the workload passes ${r.crashPoints} journal crash points`)
  t.equal(r.runs, (Math.min(CRASH_POINTS, r.crashPoints) + SEEDS) * KEEP_MODES.length, 'runs = (crash points + seeds) x keep none/all/random')
  t.same(r.failures.map(f => f.message), [], '0 failed runs: every acknowledged record survived')
  t.ok(r.ok)
})

t.test('examples/wal-bad: the misplaced fsync loses acknowledged records, and replayCrash reproduces it', async t => {
  const r = await runBadWal({ seeds: SEEDS, maxCrashPoints: CRASH_POINTS })
  t.notOk(r.ok)
  t.ok(r.failures.length > 0, `${r.failures.length} of ${r.runs} runs lost acknowledged records`)
  t.ok(r.failures.some(f => f.keep === 'none'), 'keep none loses the last acknowledged record')
  t.notOk(r.failures.some(f => f.keep === 'all'), 'keep all loses nothing (every store was made before the power went)')
  for (const f of r.failures) {
    t.equal(f.phase, 'verify', `${f.point} keep ${f.keep}: found by verify`)
    t.match((f.error as Error).message, /^acknowledged record \d+ of \d+ lost/)
    t.match(f.message, new RegExp(`seed ${f.seed}, point '${f.point}', keep '${f.keep}'`), 'the message names seed, point and keep')
  }
  // every failure is a function of its (seed, point, keep): replay the first and one of each keep mode
  const picks = [r.firstFailure!, ...KEEP_MODES.map(k => r.failures.find(f => f.keep === k)).filter(f => f !== undefined)]
  for (const f of picks) {
    const again = await replayBadWal(f)
    t.ok(again, `replayCrash seed ${f.seed} ${f.point} keep ${f.keep} fails again`)
    t.equal(again?.phase, f.phase)
    t.equal(again?.point, f.point)
    t.equal((again?.error as Error | undefined)?.message, (f.error as Error).message, 'with the same problem')
  }
  // the point can be left out: a random-moment seed picks the same moment again
  const random = r.failures.find(f => !f.point.startsWith('crash-point:'))
  if (random) {
    const bySeed = await replayBadWal({ seed: random.seed, keep: random.keep })
    t.equal((bySeed?.error as Error | undefined)?.message, (random.error as Error).message, `seed ${random.seed} alone reproduces ${random.point}`)
  }
})

t.test('forEachCrash + toNodeFs: EIO after the power loss (a Node-style error) is expected, not a failure', async t => {
  const r = await forEachCrash(async ({ fs }) => {
    const nfs = toNodeFs(fs)
    const fh = await nfs.open('/x', 'w+')
    try {
      for (let i = 0; i < 3; i++) { await fh.write(Buffer.alloc(5000, i), 0, 5000, i * 5000); await fh.sync() }
    } catch { /* code that carries on after a failed write */ }
    await nfs.writeFile('/y', 'after') // EIO (cause: PmemuError EIO) once the power is gone
  }, () => undefined, { seeds: 4, size: '4MiB', maxCrashPoints: 6 })
  t.same(r.failures.map(f => f.message), [])
})

t.test('SPEC §8: RandomAccessPmem argument errors are coded EINVAL', async t => {
  const { fs } = await newPmem('8MiB')
  t.throws(() => new RandomAccessPmem(null as never, '/f'), { code: 'EINVAL', syscall: 'RandomAccessPmem' })
  t.throws(() => new RandomAccessPmem(fs, 5 as never), { code: 'EINVAL', syscall: 'RandomAccessPmem' })
  const r = new RandomAccessPmem(fs, '/ras/bad-write')
  for (const data of ['str', null, [1, 2], {}]) {
    const err = await new Promise<Error | null>(res => r.write(0, data as never, e => res(e)))
    t.match(err, { code: 'EINVAL', errno: -22, syscall: 'write', path: '/ras/bad-write' }, `write(0, ${JSON.stringify(data)})`)
  }
  await new Promise<void>((res, rej) => r.write(0, Buffer.from('ok'), e => (e ? rej(e) : res())))
  const back = await new Promise<Buffer>((res, rej) => r.read(0, 2, (e, b) => (e ? rej(e) : res(b!))))
  t.equal(back.toString(), 'ok', 'good writes still work')
  await new Promise<void>(res => r.close(() => res()))
})
