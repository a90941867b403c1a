import t, { type Test } from 'tap'
import fc from 'fast-check'
import { openDevice } from '../src/region/index.js'
import { PmemuError } from '../src/errors.js'
import {
  mkfs, mount, fsck, fsInfo, crc32c, CRASH_POINTS, PmemFs, type FsDevice, type PmemFile,
  type FsExtension,
} from '../src/fs/index.js'
import { parsePath } from '../src/fs/path.js'
import { decodeSuperblock, SB_SIZE, INODE_SIZE, encodeInode, decodeInode } from '../src/fs/layout.js'

/** Raise for long runs: PMEMU_FS_SEEDS=10 multiplies the randomised test counts. */
const SCALE = Math.max(1, Number(process.env.PMEMU_FS_SEEDS ?? 1) || 1)
/** PMEMU_FS_SEED=n shifts every fast-check seed (explore other cases). */
const SEED = Number(process.env.PMEMU_FS_SEED ?? 0) || 0

type Dev = Awaited<ReturnType<typeof openDevice>>

/** Thrown by a crash-point hook: power loss at that point. */
class CrashNow extends Error {}

async function newDev(t: Test, size: string | number = '8MiB', crashShadow = true): Promise<Dev> {
  const d = await openDevice(undefined, { size, crashShadow })
  t.teardown(async () => { await d.close() })
  return d
}

/** The same device seen read-only (FsDevice is structural). */
function readOnlyView(d: Dev): FsDevice {
  return {
    pageSize: d.pageSize, pageCount: d.pageCount, readOnly: true,
    read: (o, b) => d.read(o, b), write: () => { throw new Error('write on ro') }, zero: () => { throw new Error('zero on ro') },
    persist: () => undefined, onCrash: fn => d.onCrash(fn),
  }
}

function pattern(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < len; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff }
  return b
}

async function readAll(f: PmemFile): Promise<Uint8Array> {
  const st = f.stat()
  const b = new Uint8Array(st.size)
  const n = f.read(b, 0)
  if (n !== st.size) throw new Error(`short read ${n} of ${st.size}`)
  return b
}

async function readFile(fs: PmemFs, path: string): Promise<Uint8Array> {
  const f = await fs.open(path, 'r')
  const st = f.stat()
  const b = new Uint8Array(st.size)
  const n = f.read(b, 0)
  await f.close()
  if (n !== st.size) throw new Error(`short read ${n} of ${st.size}`)
  return b
}

async function writeFile(fs: PmemFs, path: string, data: Uint8Array, flags = 'w'): Promise<void> {
  const f = await fs.open(path, flags)
  if (data.length) f.write(data, 0)
  await f.fsync()
  await f.close()
}

function eqBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    if (!(e instanceof PmemuError)) return `untyped:${(e as Error)?.constructor?.name}:${(e as Error)?.message}`
    return e.code
  }
  return 'ok'
}

// ------------------------------------------------------------------------------------------------

t.test('crc32c and path parsing', async t => {
  t.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283)
  // '.' and '..' stay components: namei resolves them against the directory reached (after symlinks), as Linux.
  t.same(parsePath('/a/./b/../c/', 'x'), { parts: ['a', '.', 'b', '..', 'c'], trailingSlash: true })
  t.same(parsePath('/', 'x').parts, [])
  for (const [p, c] of [['a/b', 'EINVAL'], ['/a//b', 'EINVAL'], [`/${'x'.repeat(256)}`, 'ENAMETOOLONG'], ['/a\0b', 'EINVAL'], [42, 'EINVAL']] as const) {
    t.equal(await code(() => parsePath(p, 'open')), c, String(p).slice(0, 20))
  }
  t.equal(parsePath(`/${'é'.repeat(127)}`, 'x').parts.length, 1) // 254 bytes: fits
  t.equal(await code(() => parsePath(`/${'é'.repeat(128)}`, 'x')), 'ENAMETOOLONG') // 256 bytes
})

t.test('mkfs, statfs, info, remount', async t => {
  const dev = await newDev(t)
  const fs = await mkfs(dev, { label: 'vol1' })
  const s = fs.statfs()
  t.equal(s.bsize, 4096)
  t.equal(s.blocks, dev.pageCount)
  t.equal(s.namemax, 255)
  t.ok(s.free > dev.pageCount * 0.8 && s.free < dev.pageCount, `free ${s.free}`)
  t.equal(s.ffree, s.files - 2, 'quarantine and root inodes in use')
  t.equal(fs.label, 'vol1')
  t.same(await fs.readdir('/'), [])
  await writeFile(fs, '/hello', new TextEncoder().encode('hello world'))
  await fs.mkdir('/dir')
  t.equal(fs.statfs().ffree, s.ffree - 2)
  const rootSt = await fs.stat('/')
  t.ok(rootSt.isDirectory())
  t.equal(rootSt.nlink, 3)
  await fs.unmount()
  const info = fsInfo(dev)
  t.equal(info.present, true)
  t.equal(info.label, 'vol1')
  t.equal(info.state, 'clean')
  t.equal(info.usedInodes, 4)
  const fs2 = await mount(dev)
  t.same(await fs2.readdir('/'), ['dir', 'hello'])
  t.equal(new TextDecoder().decode(await readFile(fs2, '/hello')), 'hello world')
  t.equal(fsInfo(dev).state, 'mounted')
  t.equal(await code(mount(dev)), 'EBUSY')
  t.equal(await code(fsck(dev)), 'EBUSY')
  await fs2.unmount()
  const r = await fsck(dev)
  t.same(r.problems, [])
  t.equal(r.exitCode, 0)
  t.equal(r.summary?.files, 1)
  t.equal(r.summary?.directories, 2)
  // progress callback
  const phases: string[] = []
  await (await mkfs(dev, { progress: p => phases.push(p.phase) })).unmount()
  t.ok(phases.includes('zero') && phases.at(-1) === 'done')
  const phases2: string[] = []
  await fsck(dev, { progress: p => phases2.push(p.phase) })
  t.ok(phases2.includes('inodes') && phases2.includes('bitmap'))
  t.equal(await code(mkfs(dev, { label: 'x'.repeat(64) })), 'EINVAL')
  t.equal(await code(mkfs({} as FsDevice)), 'EINVAL')
  t.equal(await code(mkfs(dev, { progress: 5 as unknown as () => void })), 'EINVAL')
  t.equal(await code(fsck(dev, { progress: 'x' as unknown as () => void })), 'EINVAL')
  t.equal(await code(mkfs(dev, { inodes: -3 })), 'EINVAL')
})

t.test('read/write round trips, sparse files, holes read zero', async t => {
  const dev = await newDev(t, '16MiB')
  const fs = await mkfs(dev)
  const f = await fs.open('/a', 'w+')
  const cases: Array<[number, number]> = [[0, 1], [1, 4095], [4095, 2], [8191, 9000], [100000, 65536], [3 * 1024 * 1024 - 7, 20000]]
  const ref = new Uint8Array(3 * 1024 * 1024 + 20000)
  let size = 0
  for (const [off, len] of cases) {
    const d = pattern(len, off + len)
    t.equal(f.write(d, off), len)
    ref.set(d, off)
    size = Math.max(size, off + len)
    t.equal(f.stat().size, size)
  }
  const all = await readAll(f)
  t.ok(eqBytes(all, ref.subarray(0, size)), 'contents match the reference (holes are zeros)')
  // short read at EOF, zero at/after EOF
  const tail = new Uint8Array(100)
  t.equal(f.read(tail, size - 10), 10)
  t.equal(f.read(tail, size), 0)
  t.equal(f.read(tail, size + 5000), 0)
  // file position semantics
  const g = await fs.open('/pos', 'w+')
  t.equal(g.write(new Uint8Array([1, 2, 3])), 3)
  t.equal(g.write(new Uint8Array([4, 5])), 2)
  g.position = 0
  const five = new Uint8Array(5)
  t.equal(g.read(five), 5)
  t.same([...five], [1, 2, 3, 4, 5])
  await g.close()
  const a = await fs.open('/pos', 'a')
  a.write(new Uint8Array([6]), 0) // append ignores the position
  await a.close()
  t.same([...await readFile(fs, '/pos')], [1, 2, 3, 4, 5, 6])
  // a sparse 1 GiB file on a 16 MiB device
  const s = await fs.open('/sparse', 'w+')
  const freeBefore = fs.statfs().free
  s.write(new Uint8Array([0xaa]), 1024 * 1024 * 1024 - 1)
  t.equal(s.stat().size, 1024 * 1024 * 1024)
  t.equal(s.stat().allocatedBlocks, 1)
  t.equal(fs.statfs().free, freeBefore - 1)
  const mid = new Uint8Array(8192).fill(9)
  t.equal(s.read(mid, 512 * 1024 * 1024), 8192)
  t.ok(mid.every(x => x === 0), 'hole reads zero')
  const last = new Uint8Array(2)
  t.equal(s.read(last, 1024 * 1024 * 1024 - 2), 2)
  t.same([...last], [0, 0xaa])
  await s.close()
  await f.close()
  await fs.unmount()
  const fs2 = await mount(dev)
  t.ok(eqBytes(await readFile(fs2, '/a'), ref.subarray(0, size)), 'survives remount')
  await fs2.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('large files get 2 MiB-aligned extents', async t => {
  const dev = await newDev(t, '32MiB')
  const fs = await mkfs(dev)
  // a small file first, so the allocator cursor is not aligned by luck
  await writeFile(fs, '/small', pattern(5000, 1))
  const f = await fs.open('/big', 'w+')
  const data = pattern(8 * 1024 * 1024, 2)
  for (let off = 0; off < data.length; off += 65536) f.write(data.subarray(off, off + 65536), off)
  t.ok(eqBytes(await readAll(f), data))
  // every 2 MiB-aligned chunk past the first is one aligned physical run
  for (let idx = 512; idx < 2048; idx += 512) {
    const e = f.extentAt(idx)
    t.ok(e && e.pfn % 512 === 0 && e.count >= 512, `chunk at page ${idx}: pfn ${e?.pfn} count ${e?.count}`)
  }
  // DAX write-fault allocation: huge on an aligned hole inside EOF
  const h = await fs.open('/fault', 'w+')
  await h.truncate(6 * 1024 * 1024)
  const r = h.allocateForFault(600, { huge: true })
  t.equal(r.index, 512)
  t.equal(r.count, 512)
  t.equal(r.pfn % 512, 0)
  t.equal(h.pfnAt(600), r.pfn + 88)
  const one = h.allocateForFault(5, { huge: false })
  t.equal(one.count, 1)
  t.same(h.allocateForFault(5), one, 'already allocated: returned as is')
  t.equal(await code(() => h.allocateForFault(6 * 256)), 'SIGBUS')
  const z = new Uint8Array(4096).fill(1)
  t.equal(h.read(z, 600 * 4096), 4096)
  t.ok(z.every(x => x === 0), 'fault-allocated blocks are zeroed')
  await h.close()
  await f.close()
  await fs.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('truncate grow/shrink, fallocate, punch hole', async t => {
  const dev = await newDev(t, '16MiB')
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  const d = pattern(50000, 3)
  f.write(d, 0)
  const free0 = fs.statfs().free
  await f.truncate(100)
  t.equal(f.stat().size, 100)
  t.equal(f.stat().allocatedBlocks, 1)
  t.equal(fs.statfs().free, free0 + 12)
  await f.truncate(9000)
  const b = await readAll(f)
  t.ok(eqBytes(b.subarray(0, 100), d.subarray(0, 100)))
  t.ok(b.subarray(100).every(x => x === 0), 'grown region reads zero (old tail was zeroed)')
  await f.truncate(0)
  t.equal(f.stat().allocatedBlocks, 0)
  t.equal(fs.statfs().free, free0 + 13)
  // fallocate
  await f.fallocate(1000, 20000)
  t.equal(f.stat().size, 21000)
  t.equal(f.stat().allocatedBlocks, 6)
  t.ok((await readAll(f)).every(x => x === 0))
  await f.fallocate(0, 100) // inside: no size change
  t.equal(f.stat().size, 21000)
  t.equal(await code(f.fallocate(0, fs.statfs().free * 4096 + 4096 * 100)), 'ENOSPC')
  t.equal(f.stat().size, 21000, 'failed fallocate changed nothing')
  // punch hole
  const g = await fs.open('/g', 'w+')
  const gd = pattern(40960, 4)
  g.write(gd, 0)
  const free1 = fs.statfs().free
  await g.punchHole(5000, 20000) // frees blocks 2..5 (8192..24575), zeroes 5000..8191 and 24576..24999
  t.equal(g.stat().size, 40960)
  t.equal(fs.statfs().free, free1 + 4)
  const gb = await readAll(g)
  const want = gd.slice()
  want.fill(0, 5000, 25000)
  t.ok(eqBytes(gb, want), 'punched range reads zero, the rest intact')
  await g.punchHole(30000, 1 << 30) // to EOF: frees the tail blocks too
  t.equal(g.stat().size, 40960)
  want.fill(0, 30000)
  t.ok(eqBytes(await readAll(g), want))
  await g.punchHole(100000, 10) // past EOF: nothing
  t.equal(await code(g.punchHole(0, 0)), 'EINVAL')
  t.equal(await code(g.truncate(-1)), 'EINVAL')
  t.equal(await code(g.truncate(2 ** 50)), 'EFBIG')
  t.equal(await code(g.truncate(2 ** 60)), 'EINVAL')
  const r = await fs.open('/g', 'r')
  t.equal(await code(r.truncate(0)), 'EINVAL')
  t.equal(await code(r.punchHole(0, 10)), 'EBADF')
  t.equal(await code(r.fallocate(0, 10)), 'EBADF')
  await r.close()
  await Promise.all([f.close(), g.close()])
  await fs.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('directories, rename, unlink-while-open', async t => {
  const dev = await newDev(t, '8MiB')
  const fs = await mkfs(dev)
  await fs.mkdir('/a')
  await fs.mkdir('/a/b')
  await writeFile(fs, '/a/b/f', pattern(10000, 5))
  await writeFile(fs, '/g', pattern(300, 6))
  t.same(await fs.readdir('/a'), ['b'])
  t.same((await fs.readdir('/a', { withFileTypes: true })).map(e => [e.name, e.type]), [['b', 'directory']])
  t.equal((await fs.stat('/a')).nlink, 3)
  // rename file across directories, replacing
  await fs.rename('/g', '/a/b/f')
  t.same(await fs.readdir('/'), ['a'])
  t.ok(eqBytes(await readFile(fs, '/a/b/f'), pattern(300, 6)), 'target replaced atomically')
  // rename a directory
  await fs.rename('/a/b', '/b')
  t.equal((await fs.stat('/a')).nlink, 2)
  t.equal((await fs.stat('/')).nlink, 4)
  t.same(await fs.readdir('/b'), ['f'])
  // replace an empty directory
  await fs.mkdir('/empty')
  await fs.rename('/b', '/empty')
  t.same(await fs.readdir('/'), ['a', 'empty'])
  t.equal((await fs.stat('/')).nlink, 4)
  // errors
  await fs.mkdir('/c')
  await writeFile(fs, '/c/x', new Uint8Array(1))
  t.equal(await code(fs.rename('/a', '/c')), 'ENOTEMPTY')
  t.equal(await code(fs.rename('/c/x', '/a')), 'EISDIR')
  t.equal(await code(fs.rename('/a', '/c/x')), 'ENOTDIR')
  t.equal(await code(fs.rename('/c', '/c/sub')), 'EINVAL')
  t.equal(await code(fs.rename('/nope', '/x')), 'ENOENT')
  t.equal(await code(fs.rename('/', '/x')), 'EBUSY')
  await fs.rename('/c/x', '/c/x') // same file: no-op
  t.same(await fs.readdir('/c'), ['x'])
  t.equal(await code(fs.rmdir('/c')), 'ENOTEMPTY')
  t.equal(await code(fs.rmdir('/c/x')), 'ENOTDIR')
  t.equal(await code(fs.rmdir('/')), 'EBUSY')
  t.equal(await code(fs.unlink('/c')), 'EISDIR')
  t.equal(await code(fs.mkdir('/c')), 'EEXIST')
  t.equal(await code(fs.mkdir('/')), 'EEXIST')
  t.equal(await code(fs.mkdir('/nope/x')), 'ENOENT')
  t.equal(await code(fs.mkdir('/c/x/y')), 'ENOTDIR')
  t.equal(await code(fs.readdir('/c/x')), 'ENOTDIR')
  t.equal(await code(fs.stat('/c/x/')), 'ENOTDIR')
  // unlink while open
  const free0 = fs.statfs().free
  const big = pattern(100000, 7)
  await writeFile(fs, '/u', big)
  const f = await fs.open('/u', 'r')
  await fs.unlink('/u')
  t.equal(await code(fs.stat('/u')), 'ENOENT')
  t.equal(f.stat().nlink, 0)
  t.ok(eqBytes(await readAll(f), big), 'still readable after unlink')
  t.equal(fs.statfs().free, free0 - 25, 'blocks kept while open')
  await f.close()
  t.equal(fs.statfs().free, free0, 'blocks freed at last close')
  t.equal(await code(f.close()), 'EBADF')
  // many entries: directory grows past one block
  for (let i = 0; i < 300; i++) await writeFile(fs, `/c/file-with-a-longish-name-${i}`, new Uint8Array(0), 'wx')
  t.equal((await fs.readdir('/c')).length, 301)
  for (let i = 0; i < 300; i += 2) await fs.unlink(`/c/file-with-a-longish-name-${i}`)
  await fs.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
  const fs2 = await mount(dev)
  t.equal((await fs2.readdir('/c')).length, 151)
  await fs2.unmount()
})

t.test('every error code', async t => {
  const dev = await newDev(t, '4MiB')
  const fs = await mkfs(dev, { inodes: 16 })
  await writeFile(fs, '/file', new Uint8Array(10))
  await fs.mkdir('/dir')
  t.equal(await code(fs.open('rel', 'r')), 'EINVAL')
  t.equal(await code(fs.open('/x//y', 'r')), 'EINVAL')
  // '..' of the root is the root, as on Linux.
  t.equal(await code(fs.open('/../x', 'r')), 'ENOENT')
  t.equal((await fs.stat('/..')).ino, (await fs.stat('/')).ino)
  t.equal(await code(fs.open('/file', 'bogus')), 'EINVAL')
  t.equal(await code(fs.open(`/${'n'.repeat(256)}`, 'w')), 'ENAMETOOLONG')
  t.equal(await code(fs.open('/missing', 'r')), 'ENOENT')
  t.equal(await code(fs.open('/file', 'wx')), 'EEXIST')
  t.equal(await code(fs.open('/file', 'ax+')), 'EEXIST')
  t.equal(await code(fs.open('/file/x', 'w')), 'ENOTDIR')
  t.equal(await code(fs.open('/dir', 'w')), 'EISDIR')
  t.equal(await code(fs.open('/dir', 'r+')), 'EISDIR')
  t.equal(await code(fs.open('/new/', 'w')), 'EISDIR')
  const dh = await fs.open('/dir', 'r')
  t.equal(await code(() => dh.read(new Uint8Array(1), 0)), 'EISDIR')
  await dh.close()
  const r = await fs.open('/file', 'r')
  t.equal(await code(() => r.write(new Uint8Array(1), 0)), 'EBADF')
  t.equal(await code(() => r.read('x' as unknown as Uint8Array, 0)), 'EINVAL')
  t.equal(await code(() => r.read(new Uint8Array(1), -1)), 'EINVAL')
  t.equal(await code(() => r.mmap(0, 4096)), 'EOPNOTSUPP')
  await r.close()
  t.equal(await code(() => r.read(new Uint8Array(1), 0)), 'EBADF')
  const w = await fs.open('/file', 'a')
  t.equal(await code(() => w.read(new Uint8Array(1), 0)), 'EBADF')
  await w.close()
  const big = await fs.open('/big', 'w')
  t.equal(await code(() => big.write(new Uint8Array(1), fs.maxFileSize)), 'EFBIG')
  t.equal(await code(() => big.write(new Uint8Array(1), 2 ** 53)), 'EINVAL')
  t.equal(big.write(new Uint8Array(2), fs.maxFileSize - 1), 1, 'write up to the limit is short')
  await big.close()
  // inode exhaustion
  let made = 0
  let last = 'ok'
  for (let i = 0; i < 40 && last === 'ok'; i++) { last = await code(fs.open(`/i${i}`, 'w').then(f => f.close())); if (last === 'ok') made++ }
  t.equal(last, 'ENOSPC')
  t.equal(fs.statfs().ffree, 0)
  t.ok(made > 5)
  // shutdown -> EIO
  fs.shutdown('test')
  t.equal(await code(fs.stat('/file')), 'EIO')
  t.equal(await code(() => fs.statfs()), 'EIO')
  await fs.unmount()
  // EROFS on a read-only device
  t.equal(await code(mkfs(readOnlyView(dev))), 'EROFS')
  const ro = await mount(readOnlyView(dev))
  t.equal((await readFile(ro, '/file')).length, 10)
  t.equal(await code(ro.open('/file', 'r+')), 'EROFS')
  t.equal(await code(ro.open('/newfile', 'w')), 'EROFS')
  t.equal(await code(ro.mkdir('/d2')), 'EROFS')
  t.equal(await code(ro.unlink('/file')), 'EROFS')
  t.equal(await code(ro.rename('/file', '/f2')), 'EROFS')
  t.equal(await code(ro.rmdir('/dir')), 'EROFS')
  await ro.unmount()
  t.equal(await code(fsck(readOnlyView(dev), { repair: true })), 'EROFS')
  // EFSCORRUPTED: blank and foreign images
  const blank = await newDev(t, '4MiB', false)
  const e1 = await mount(blank).catch(e => e)
  t.equal(e1.code, 'EFSCORRUPTED')
  t.equal(e1.errno, 117)
  t.match(e1.message, /no file system/)
  blank.write(0, new TextEncoder().encode('\x7fELF this is not a pmemu file system'))
  const e2 = await mount(blank).catch(e => e)
  t.equal(e2.code, 'EFSCORRUPTED')
  t.match(e2.message, /bad magic/)
  const rep = await fsck(blank)
  t.equal(rep.exitCode, 8)
  t.match(rep.problems[0], /no pmemu file system/)
})

t.test('ENOSPC leaves the fs consistent and loses nothing', async t => {
  const dev = await newDev(t, '4MiB')
  const fs = await mkfs(dev)
  const keep = pattern(50000, 8)
  await writeFile(fs, '/keep', keep)
  await fs.mkdir('/d')
  const f = await fs.open('/fill', 'w')
  const chunk = pattern(256 * 1024, 9)
  let total = 0
  let err = 'ok'
  for (;;) {
    try {
      const n = f.write(chunk, total)
      total += n
      if (n < chunk.length) { err = await code(() => f.write(chunk, total)); break }
    } catch (e) { err = (e as PmemuError).code; break }
  }
  t.equal(err, 'ENOSPC')
  t.equal(fs.statfs().free, 0)
  t.ok(total > 3 * 1024 * 1024, `wrote ${total} bytes before ENOSPC`)
  t.equal(f.stat().size, total)
  t.equal(await code(fs.mkdir('/d/e')), 'ENOSPC', 'a directory block cannot be allocated')
  t.same(await fs.readdir('/d'), [])
  await f.fsync()
  await f.close()
  await fs.unmount()
  const r = await fsck(dev)
  t.same(r.problems, [])
  const fs2 = await mount(dev)
  t.ok(eqBytes(await readFile(fs2, '/keep'), keep))
  const filled = await readFile(fs2, '/fill')
  t.equal(filled.length, total)
  let ok = true
  for (let off = 0; off < total; off += chunk.length) if (!eqBytes(filled.subarray(off, Math.min(total, off + chunk.length)), chunk.subarray(0, Math.min(chunk.length, total - off)))) ok = false
  t.ok(ok, 'everything written before ENOSPC is intact')
  await fs2.unlink('/fill')
  await fs2.mkdir('/d/e')
  await fs2.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('DAX seams: layout breaker, onFree quarantine, hold/release, mmap factory, io hooks', async t => {
  const dev = await newDev(t, '8MiB')
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  const data = pattern(40960, 10)
  f.write(data, 0)
  const calls: Array<[number, number, number, string]> = []
  // one test extension at a time, replaced as the old setters were
  let detach: (() => void) | undefined
  const use = (ext?: Omit<FsExtension, 'name'>): void => { detach?.(); detach = ext ? fs.attach({ name: 'test', ...ext }) : undefined }
  use({ breakLayout: async (file, first, end, o) => { calls.push([file.ino, first, end, o.reason]) } })
  await f.truncate(10000)
  // the block holding the new EOF (2: bytes 8192..12287) is zeroed past 10000 in place: it is broken too
  t.same(calls, [[f.ino, 2, 10, 'truncate']])
  await f.punchHole(0, 8192)
  t.same(calls[1], [f.ino, 0, 2, 'punch-hole'])
  // a rejecting breaker: nothing changes
  f.write(data, 0)
  const before = { size: f.stat().size, blocks: f.stat().allocatedBlocks, free: fs.statfs().free }
  use({ breakLayout: async () => { throw Object.assign(new PmemuError('ETIMEDOUT', 'truncate', 'pages busy'), {}) } })
  t.equal(await code(f.truncate(0)), 'ETIMEDOUT')
  t.equal(await code(f.punchHole(0, 40960)), 'ETIMEDOUT')
  t.same({ size: f.stat().size, blocks: f.stat().allocatedBlocks, free: fs.statfs().free }, before)
  t.ok(eqBytes(await readAll(f), data), 'bytes unchanged')
  // abort signal
  use()
  const ac = new AbortController()
  ac.abort()
  const ab = await f.truncate(0, { signal: ac.signal }).catch(e => e)
  t.equal(ab.name, 'AbortError')
  t.equal(f.stat().size, 40960)
  t.equal(await code(f.truncate(0, { timeoutMs: -1 })), 'EINVAL')
  // concurrent truncates of one file serialise; another file is not held up
  const order: string[] = []
  let release!: () => void
  const gate = new Promise<void>(r => { release = r })
  use({
    breakLayout: async (file, first) => {
      order.push(`start ${file.path} ${first}`)
      if (file.path === '/f' && first === 4) await gate
      order.push(`end ${file.path} ${first}`)
    },
  })
  const g = await fs.open('/g', 'w+')
  g.write(data, 0)
  const p1 = f.truncate(20000)
  const p2 = f.truncate(8000)
  await new Promise(r => setImmediate(r))
  await g.truncate(100)
  t.same(order, ['start /f 4', 'start /g 0', 'end /g 0'], 'the other file went ahead; the second truncate waits')
  release()
  await Promise.all([p1, p2])
  t.same(order.slice(3), ['end /f 4', 'start /f 1', 'end /f 1'])
  t.equal(f.stat().size, 8000)
  use()
  // onFree: quarantine odd blocks
  f.write(data, 0)
  const q: number[] = []
  use({ onFree: pfn => { if (pfn % 2) { q.push(pfn); return false } return true } })
  const free0 = fs.statfs().free
  await f.truncate(0)
  t.ok(q.length >= 4)
  t.equal(fs.statfs().quarantined, q.length)
  t.equal(fs.statfs().free, free0 + 10 - q.length)
  t.same(fs.quarantined().flatMap(([p, n]) => Array.from({ length: n }, (_, i) => p + i)), q)
  t.equal(fs.blockOwner(q[0]!).kind, 'quarantine')
  use()
  // quarantined blocks are never handed out
  await writeFile(fs, '/fill', pattern(fs.statfs().free * 4096, 11))
  const fill = await fs.open('/fill', 'r')
  for (let i = 0; i < fill.stat().allocatedBlocks; i++) t.notOk(q.includes(fill.pfnAt(i) ?? -1)) || i
  await fill.close()
  await fs.unlink('/fill')
  await fs.unmount()
  const rq = await fsck(dev)
  t.same(rq.problems, [], 'quarantine is not a problem for fsck')
  t.equal(rq.summary?.quarantinedBlocks, q.length)
  const fs2 = await mount(dev)
  t.equal(fs2.statfs().quarantined, q.length, 'quarantine survives remount')
  fs2.releaseQuarantine(q[0]!)
  t.equal(fs2.statfs().quarantined, q.length - 1)
  t.equal(await code(() => fs2.releaseQuarantine(q[0]!)), 'EINVAL')
  // hold/release keeps an unlinked, closed inode's blocks
  const h = await fs2.open('/h', 'w+')
  h.write(pattern(8192, 12), 0)
  const pfn = h.pfnAt(1)!
  const hf = fs2.statfs().free
  h.hold()
  await fs2.unlink('/h')
  await h.close()
  t.equal(fs2.statfs().free, hf, 'held: blocks kept')
  t.equal(h.node.pfnAt(1), pfn)
  h.release()
  t.equal(fs2.statfs().free, hf + 2, 'released: blocks freed')
  // mmap factory
  const seen: unknown[] = []
  fs2.attach({ name: 'test-mmap', mmap: (file, off, len, o) => { seen.push([file.ino, off, len, o.write]); return { mapping: true } as never } })
  const m = await fs2.open('/m', 'w+')
  t.same(m.mmap(0, 8192, { write: true }), { mapping: true })
  t.same(seen, [[m.ino, 0, 8192, true]])
  t.equal(await code(() => m.mmap(100, 10)), 'EINVAL')
  const mr = await fs2.open('/m', 'r')
  t.equal(await code(() => mr.mmap(0, 4096, { write: true })), 'EACCES')
  // io hooks: a poisoned data read fails typed; a metadata read failure shuts the fs down
  m.write(pattern(4096, 13), 0)
  const bad = m.pfnAt(0)! * 4096
  fs2.attach({
    name: 'test-poison',
    checkDataRead: (off, len) => off < bad + 4096 && off + len > bad ? { readable: 0, error: new PmemuError('EHWPOISON', 'read', 'poisoned', { offset: off }) } : undefined,
    checkMetaRead: () => new PmemuError('EHWPOISON', 'read', 'poisoned metadata'),
  })
  t.equal(await code(() => mr.read(new Uint8Array(10), 0)), 'EHWPOISON')
  await mr.close()
  await fs2.mkdir('/newdir') // no metadata read needed
  t.equal(await code(fs2.readdir('/newdir')), 'ok') // cached
  await fs2.unmount()
  const fs3 = await mount(dev)
  fs3.attach({ name: 'test-poison', checkMetaRead: () => new PmemuError('EHWPOISON', 'read', 'poisoned metadata') })
  t.equal(await code(fs3.readdir('/newdir')), 'EIO')
  t.equal(await code(fs3.stat('/')), 'EIO', 'shut down')
  t.ok(fs3.isDead)
  await fs3.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('extensions compose through fs.attach', async t => {
  const dev = await newDev(t, '8MiB')
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  f.write(pattern(8 * 4096, 21), 0)
  const log: string[] = []
  // two layout breakers run in attach order; every onFree is asked, one false quarantines
  const da = fs.attach({ name: 'a', breakLayout: async (_f, first) => { log.push(`a ${first}`) }, onFree: () => { log.push('free a'); return true } })
  const db = fs.attach({ name: 'b', breakLayout: async (_f, first) => { log.push(`b ${first}`) }, onFree: () => { log.push('free b'); return false } })
  await f.truncate(7 * 4096)
  t.same(log, ['a 7', 'b 7', 'free a', 'free b'])
  t.equal(fs.statfs().quarantined, 1, 'b said no: the block is quarantined')
  // detach is idempotent and removes only its own hooks
  db(); db()
  log.length = 0
  await f.truncate(6 * 4096)
  t.same(log, ['a 6', 'free a'])
  da()
  // one mmap provider at a time; a second one is EBUSY, a bad extension EINVAL, a repeat EEXIST
  const m1 = { name: 'm1', mmap: () => ({ one: true }) as never }
  const dm = fs.attach(m1)
  t.equal(await code(() => fs.attach({ name: 'm2', mmap: () => ({}) as never })), 'EBUSY')
  t.equal(await code(() => fs.attach(m1)), 'EEXIST')
  t.equal(await code(() => fs.attach({ name: '' } as never)), 'EINVAL')
  t.equal(await code(() => fs.attach({ name: 'x', onFree: 5 } as never)), 'EINVAL')
  t.same(f.mmap(0, 4096), { one: true })
  dm()
  t.equal(await code(() => f.mmap(0, 4096)), 'EOPNOTSUPP')
  // the read refusal with the fewest readable bytes wins; those bytes are copied and counted
  const at = f.pfnAt(0)! * 4096
  fs.attach({ name: 'r1', checkDataRead: off => (off === at ? { readable: 100, error: new PmemuError('EHWPOISON', 'read', 'one') } : undefined) })
  fs.attach({ name: 'r2', checkDataRead: off => (off === at ? { readable: 10, error: new PmemuError('EHWPOISON', 'read', 'two') } : undefined) })
  const buf = new Uint8Array(4096)
  const err = await Promise.resolve().then(() => f.read(buf, 0)).catch(e => e as PmemuError & { bytesRead?: number })
  t.match(err, { code: 'EHWPOISON', message: /two/, bytesRead: 10, path: '/f' })
  t.same([...buf.subarray(0, 10)], [...pattern(8 * 4096, 21).subarray(0, 10)])
  t.equal(buf[10], 0, 'nothing past the readable bytes is copied')
  await fs.unmount()
  t.equal(await code(() => fs.attach({ name: 'late' })), 'EIO', 'an unmounted fs takes no extension')
})

t.test('reverse map, info, small helpers', async t => {
  const dev = await newDev(t, '4MiB')
  const fs = await mkfs(dev, { label: 'x' })
  await fs.mkdir('/d')
  await writeFile(fs, '/d/f', pattern(9000, 1))
  const f = await fs.open('/d/f', 'r')
  const dh = await fs.open('/d/', 'r')
  const g = fs.geometry
  t.same(fs.blockOwner(0), { kind: 'superblock' })
  t.same(fs.blockOwner(1), { kind: 'journal' })
  t.same(fs.blockOwner(g.bitmapStart), { kind: 'bitmap' })
  t.same(fs.blockOwner(g.inodeTableStart), { kind: 'inode-table' })
  t.same(fs.blockOwner(dev.pageCount - 1), { kind: 'backup-superblock' })
  t.same(fs.blockOwner(f.pfnAt(2)!), { kind: 'data', ino: f.ino, index: 2 })
  t.same(fs.blockOwner(dh.pfnAt(0)!), { kind: 'directory', ino: dh.ino, index: 0 })
  t.same(fs.blockOwner(dev.pageCount - 2), { kind: 'free' })
  t.equal(fs.isMetadataBlock(dh.pfnAt(0)!), true)
  t.equal(fs.isMetadataBlock(f.pfnAt(0)!), false)
  t.equal(await code(() => fs.blockOwner(dev.pageCount)), 'EINVAL')
  t.equal(f.extentAt(5), null)
  t.same(f.extentAt(1), { index: 1, pfn: f.pfnAt(1), count: 2 })
  t.equal(fs.info().label, 'x')
  t.equal(fs.info().freeInodes, fs.statfs().ffree)
  t.equal(await fs.exists('/d/f'), true)
  t.equal(await fs.exists('/d/nope'), false)
  t.equal(await fs.exists('/d/f/x'), false)
  t.equal((await fs.lstat('/d')).isDirectory(), true)
  t.equal(f.stat().blocks, 24, 'st_blocks in 512-byte units')
  await f.close()
  await dh.close()
  // rmdir of a directory someone has open: gone from the tree, freed at close
  await fs.mkdir('/e')
  const eh = await fs.open('/e', 'r')
  await fs.rmdir('/e')
  t.equal(await code(fs.stat('/e')), 'ENOENT')
  t.equal(eh.stat().nlink, 0)
  await eh.close()
  await fs.unmount()
  t.equal(await code(fs.unmount()), 'EINVAL')
  t.equal(await code(fs.stat('/')), 'EIO')
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('device crash: old fs gets ENXIO', async t => {
  const dev = await newDev(t, '4MiB')
  const fs = await mkfs(dev)
  const f = await fs.open('/a', 'w')
  f.write(pattern(1000, 1), 0)
  await f.fsync()
  await dev.crash({ seed: 1, keep: 'none' })
  t.equal(await code(fs.stat('/a')), 'ENXIO')
  t.equal(await code(() => f.write(new Uint8Array(1), 0)), 'ENXIO')
  t.equal(await code(fs.open('/b', 'w')), 'ENXIO')
  await fs.unmount() // detaching a dead fs is allowed
  const fs2 = await mount(dev)
  t.ok(eqBytes(await readFile(fs2, '/a'), pattern(1000, 1)))
  await fs2.unmount()
})

t.test('fragmented files: overflow chains, chunked frees, crash between chunks', async t => {
  const dev = await newDev(t, '8MiB')
  const build = async (): Promise<{ fs: PmemFs; ino: number }> => {
    const fs = await mkfs(dev)
    const f = await fs.open('/frag', 'w')
    for (let i = 0; i < 600; i++) f.write(pattern(10, i), i * 8192) // every other block: 600 extents
    const ino = f.ino
    await f.close()
    return { fs, ino }
  }
  {
    const { fs } = await build()
    const f = await fs.open('/frag', 'r+')
    t.equal(f.node.extents().length, 600)
    t.equal(f.stat().allocatedBlocks, 600 + 3, '3 overflow extent blocks')
    const free0 = fs.statfs().free
    const txs: number[] = []
    fs.onCrashPoint = (p, i) => { if (p === 'checkpoint-persisted') txs.push(i.seq) }
    await f.truncate(4096) // 599 extents to free: more than one transaction
    t.ok(txs.length >= 3, `${txs.length} transactions`)
    t.equal(fs.statfs().free, free0 + 599 + 3)
    await f.close()
    await fs.unmount()
    t.equal((await fsck(dev)).exitCode, 0)
    const fs2 = await mount(dev)
    await writeFile(fs2, '/frag2', new Uint8Array(0))
    const g = await fs2.open('/frag2', 'w')
    for (let i = 0; i < 600; i++) g.write(pattern(10, i), i * 8192)
    await g.close()
    const free1 = fs2.statfs().free
    await fs2.unlink('/frag2')
    t.equal(fs2.statfs().free, free1 + 603)
    await fs2.unmount()
    t.equal((await fsck(dev)).exitCode, 0)
  }
  // crash after the first chunk of a truncate: extents past EOF remain, mount trims them
  for (const keep of ['none', 'all'] as const) {
    const { fs, ino } = await build()
    let seen = 0
    fs.onCrashPoint = p => { if (p === 'checkpoint-persisted' && ++seen === 1) throw new CrashNow() }
    const f = await fs.open('/frag', 'r+')
    t.equal(await code(f.truncate(4096)), 'untyped:CrashNow:')
    await dev.crash({ seed: 5, keep })
    const r0 = await fsck(dev)
    t.equal(r0.exitCode, 0, `blocks past EOF are legal for fsck: ${r0.problems.join('; ')}`)
    const fs2 = await mount(dev)
    const st = await fs2.stat('/frag')
    t.equal(st.ino, ino)
    t.equal(st.size, 4096)
    t.equal(st.allocatedBlocks, 1, 'mount trimmed the blocks past EOF')
    const b = await readFile(fs2, '/frag')
    t.ok(eqBytes(b.subarray(0, 10), pattern(10, 0)))
    t.ok(b.subarray(10).every(x => x === 0))
    await fs2.unmount()
    t.equal((await fsck(dev)).exitCode, 0)
  }
})

// ----------------------------------------------------------------------------- crash consistency

type Op =
  | { k: 'write'; f: number; off: number; len: number; seed: number }
  | { k: 'trunc'; f: number; len: number }
  | { k: 'punch'; f: number; off: number; len: number }
  | { k: 'unlink'; f: number }
  | { k: 'rename'; f: number; g: number }
  | { k: 'mkdir'; d: number }
  | { k: 'rmdir'; d: number }
  | { k: 'fsync'; f: number }
  | { k: 'fallocate'; f: number; off: number; len: number }

const FILES = ['/f0', '/f1', '/f2', '/d0/f3', '/d1/f4']
const DIRS = ['/d0', '/d1', '/d0/sub']

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('write' as const), f: fc.nat(4), off: fc.oneof(fc.nat(40000), fc.integer({ min: 2 * 1024 * 1024 - 5000, max: 2 * 1024 * 1024 + 5000 })), len: fc.integer({ min: 1, max: 30000 }), seed: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('trunc' as const), f: fc.nat(4), len: fc.nat(60000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('punch' as const), f: fc.nat(4), off: fc.nat(40000), len: fc.integer({ min: 1, max: 30000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unlink' as const), f: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rename' as const), f: fc.nat(4), g: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mkdir' as const), d: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('rmdir' as const), d: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fsync' as const), f: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fallocate' as const), f: fc.nat(4), off: fc.nat(40000), len: fc.integer({ min: 1, max: 20000 }) }) },
)

/** Reference model: path -> bytes; dirs. */
class Ref {
  files = new Map<string, Uint8Array>()
  dirs = new Set<string>(['/'])
  parent(p: string): string { return p.slice(0, p.lastIndexOf('/')) || '/' }
  has(p: string): boolean { return this.files.has(p) || this.dirs.has(p) }
  clone(): Ref { const r = new Ref(); r.files = new Map([...this.files].map(([k, v]) => [k, v.slice()])); r.dirs = new Set(this.dirs); return r }
}

function grow(b: Uint8Array, size: number): Uint8Array {
  const n = new Uint8Array(size)
  n.set(b.subarray(0, Math.min(size, b.length)))
  return n
}

/** Apply an op to fs and ref; returns the expected error code or 'ok'. Both must agree. */
async function applyOp(fs: PmemFs, ref: Ref, op: Op): Promise<{ got: string; want: string }> {
  const run = async (fn: () => Promise<unknown>): Promise<string> => code(fn())
  switch (op.k) {
    case 'write': {
      const p = FILES[op.f]!
      const data = pattern(op.len, op.seed)
      const want = ref.dirs.has(ref.parent(p)) ? 'ok' : 'ENOENT'
      const got = await run(async () => { const f = await fs.open(p, 'r+').catch(async e => { if (e.code === 'ENOENT') return fs.open(p, 'w'); throw e }); try { f.write(data, op.off) } finally { await f.close() } })
      if (want === 'ok') { const cur = ref.files.get(p) ?? new Uint8Array(0); const n = grow(cur, Math.max(cur.length, op.off + op.len)); n.set(data, op.off); ref.files.set(p, n) }
      return { got, want }
    }
    case 'trunc': case 'punch': case 'fallocate': case 'fsync': {
      const p = FILES[op.f]!
      const want = ref.files.has(p) ? 'ok' : ref.dirs.has(ref.parent(p)) ? 'ENOENT' : 'ENOENT'
      const got = await run(async () => {
        const f = await fs.open(p, 'r+')
        try {
          if (op.k === 'trunc') await f.truncate(op.len)
          else if (op.k === 'punch') await f.punchHole(op.off, op.len)
          else if (op.k === 'fallocate') await f.fallocate(op.off, op.len)
          else await f.fsync()
        } finally { await f.close() }
      })
      if (want === 'ok') {
        const cur = ref.files.get(p)!
        if (op.k === 'trunc') ref.files.set(p, grow(cur, op.len))
        else if (op.k === 'punch') { const n = cur.slice(); n.fill(0, Math.min(op.off, n.length), Math.min(op.off + op.len, n.length)); ref.files.set(p, n) }
        else if (op.k === 'fallocate') ref.files.set(p, grow(cur, Math.max(cur.length, op.off + op.len)))
      }
      return { got, want }
    }
    case 'unlink': {
      const p = FILES[op.f]!
      const want = ref.files.has(p) ? 'ok' : 'ENOENT'
      const got = await run(() => fs.unlink(p))
      ref.files.delete(p)
      return { got, want }
    }
    case 'rename': {
      const a = FILES[op.f]!
      const b = FILES[op.g]!
      const want = !ref.files.has(a) ? 'ENOENT' : !ref.dirs.has(ref.parent(b)) ? 'ENOENT' : 'ok'
      const got = await run(() => fs.rename(a, b))
      if (want === 'ok' && a !== b) { ref.files.set(b, ref.files.get(a)!); ref.files.delete(a) }
      return { got, want }
    }
    case 'mkdir': {
      const d = DIRS[op.d]!
      const want = ref.has(d) ? 'EEXIST' : !ref.dirs.has(ref.parent(d)) ? 'ENOENT' : 'ok'
      const got = await run(() => fs.mkdir(d))
      if (want === 'ok') ref.dirs.add(d)
      return { got, want }
    }
    case 'rmdir': {
      const d = DIRS[op.d]!
      const busy = [...ref.files.keys(), ...ref.dirs].some(x => x !== d && x.startsWith(d + '/'))
      const want = !ref.dirs.has(d) ? 'ENOENT' : busy ? 'ENOTEMPTY' : 'ok'
      const got = await run(() => fs.rmdir(d))
      if (want === 'ok') ref.dirs.delete(d)
      return { got, want }
    }
  }
}

async function compare(fs: PmemFs, ref: Ref): Promise<string | undefined> {
  for (const d of ref.dirs) {
    const names = await fs.readdir(d)
    const want = [...ref.files.keys(), ...ref.dirs].filter(x => x !== '/' && x !== d && ref.parent(x) === d).map(x => x.slice(x.lastIndexOf('/') + 1)).sort()
    if (JSON.stringify(names) !== JSON.stringify(want)) return `readdir ${d}: ${names} vs ${want}`
  }
  for (const [p, bytes] of ref.files) {
    const got = await readFile(fs, p)
    if (!eqBytes(got, bytes)) return `contents of ${p}: ${got.length} vs ${bytes.length} bytes`
    const st = await fs.stat(p)
    if (st.size !== bytes.length || st.nlink !== 1 || !st.isFile()) return `stat ${p}`
  }
  return undefined
}

t.test('model-based: random operations vs an in-memory reference, with remounts', async t => {
  const dev = await newDev(t, '24MiB', false)
  const steps = fc.array(fc.oneof({ weight: 12, arbitrary: opArb }, { weight: 1, arbitrary: fc.constant({ k: 'remount' as const }) }), { minLength: 5, maxLength: 40 })
  let runs = 0
  await fc.assert(fc.asyncProperty(steps, async ops => {
    runs++
    let fs = await mkfs(dev)
    const ref = new Ref()
    try {
      for (const op of ops) {
        if (op.k === 'remount') { await fs.unmount(); fs = await mount(dev); continue }
        const { got, want } = await applyOp(fs, ref, op)
        if (got !== want) throw new Error(`${JSON.stringify(op)}: got ${got}, want ${want}`)
        const diff = await compare(fs, ref)
        if (diff) throw new Error(`after ${JSON.stringify(op)}: ${diff}`)
      }
      await fs.unmount()
      const r = await fsck(dev)
      if (r.exitCode !== 0) throw new Error(`fsck: ${r.problems.join('; ')}`)
      fs = await mount(dev)
      const diff = await compare(fs, ref)
      if (diff) throw new Error(`after remount: ${diff}`)
    } finally {
      if (!fs.isUnmounted) await fs.unmount()
    }
  }), { numRuns: 100 * SCALE, seed: 0x5eed + SEED })
  t.equal(runs >= 100 * SCALE, true)
})

/**
 * Run a workload; fsync'ed files that are not touched afterwards are recorded
 * as "must survive". crashAt = the crash point index at which to stop (throw).
 */
function namespaceOf(ref: Ref): string {
  return JSON.stringify([...ref.dirs].filter(d => d !== '/').map(d => d + '/').concat([...ref.files.keys()]).sort())
}

async function namespaceOfFs(fs: PmemFs): Promise<string> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const p = d === '/' ? `/${e.name}` : `${d}/${e.name}`
      if (e.isDirectory()) { out.push(p + '/'); await walk(p) } else out.push(p)
    }
  }
  await walk('/')
  return JSON.stringify(out.sort())
}

interface CrashRun { points: number; durable: Map<string, Uint8Array>; crashed: boolean; fs: PmemFs; namespaces: string[] }

async function crashWorkload(dev: Dev, ops: Op[], crashAt: number): Promise<CrashRun> {
  let n = 0
  const fs = await mkfs(dev)
  const ref = new Ref()
  const durable = new Map<string, Uint8Array>()
  let crashed = false
  let namespaces = [namespaceOf(ref)]
  fs.onCrashPoint = () => { if (n++ === crashAt) { crashed = true; throw new CrashNow() } }
  try {
    for (const op of ops) {
      const before = namespaceOf(ref)
      await applyOp(fs, ref, op) // swallows the CrashNow into a code: check the flag
      namespaces = [before, namespaceOf(ref)]
      // what a touched path may now hold (even if the op was cut short) is no longer pinned
      const touched = op.k === 'rename' ? [FILES[op.f]!, FILES[op.g]!] : op.k !== 'fsync' && 'f' in op ? [FILES[op.f]!] : []
      for (const p of touched) durable.delete(p)
      if (op.k === 'rmdir' || op.k === 'mkdir') for (const p of [...durable.keys()]) if (p.startsWith(DIRS[op.d]! + '/')) durable.delete(p)
      if (crashed) break
      if (op.k === 'fsync' && ref.files.has(FILES[op.f]!)) durable.set(FILES[op.f]!, ref.files.get(FILES[op.f]!)!.slice())
    }
    fs.onCrashPoint = undefined
  } catch (e) {
    if (!(e instanceof CrashNow)) throw e
  }
  return { points: n, durable, crashed, fs, namespaces }
}

const crashOps: Op[] = [
  { k: 'mkdir', d: 0 },
  { k: 'write', f: 0, off: 0, len: 10000, seed: 1 },
  { k: 'fsync', f: 0 },
  { k: 'write', f: 3, off: 5000, len: 9000, seed: 2 },
  { k: 'fsync', f: 3 },
  { k: 'write', f: 1, off: 0, len: 50000, seed: 3 },
  { k: 'write', f: 1, off: 2 * 1024 * 1024, len: 5000, seed: 4 },
  { k: 'fsync', f: 1 },
  { k: 'write', f: 2, off: 100, len: 3000, seed: 5 },
  { k: 'trunc', f: 2, len: 50 },
  { k: 'punch', f: 2, off: 0, len: 10 },
  { k: 'rename', f: 2, g: 4 },
  { k: 'mkdir', d: 1 },
  { k: 'rename', f: 2, g: 4 },
  { k: 'write', f: 4, off: 0, len: 100, seed: 6 },
  { k: 'unlink', f: 1 },
  { k: 'fallocate', f: 4, off: 0, len: 9000 },
  { k: 'rmdir', d: 2 },
]

async function checkAfterCrash(t: Test, dev: Dev, run: CrashRun, label: string): Promise<boolean> {
  const { durable } = run
  const fs = await mount(dev)
  let ok = true
  const ns = await namespaceOfFs(fs)
  if (!run.namespaces.includes(ns)) { ok = false; t.fail(`${label}: tree ${ns} is neither ${run.namespaces.join(' nor ')}`) }
  for (const [p, bytes] of durable) {
    const got = await readFile(fs, p).catch(e => e as Error)
    if (!(got instanceof Uint8Array) || !eqBytes(got, bytes)) { ok = false; t.fail(`${label}: fsynced ${p} not intact`) }
  }
  await fs.unmount()
  const r = await fsck(dev)
  if (r.exitCode !== 0) { ok = false; t.fail(`${label}: fsck ${r.exitCode}: ${r.problems.slice(0, 3).join('; ')}`) }
  return ok
}

t.test('crash at every journal crash point, keep none/all/random', async t => {
  const dev = await newDev(t, '8MiB')
  const dry = await crashWorkload(dev, crashOps, -1)
  const total = dry.points
  await dry.fs.unmount()
  // 18 transactions since close no longer commits the times a write's own transaction already wrote
  t.ok(total >= 16 * CRASH_POINTS.length, `${total} crash points in the workload`)
  let checked = 0
  let bad = 0
  for (let k = 0; k < total; k++) {
    for (const keep of ['none', 'all', 'random'] as const) {
      const run = await crashWorkload(dev, crashOps, k)
      if (!run.crashed) t.fail(`crash point ${k} not reached`)
      await dev.crash({ seed: k * 7 + 1, keep })
      if (!await checkAfterCrash(t, dev, run, `point ${k} (${CRASH_POINTS[k % CRASH_POINTS.length]}) keep ${keep}`)) bad++
      checked++
    }
  }
  t.equal(bad, 0)
  t.equal(checked, total * 3)
})

t.test('crash at random moments of random workloads (fast-check)', async t => {
  const dev = await newDev(t, '8MiB')
  let runs = 0
  await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 25 }), fc.nat(400), fc.constantFrom('none', 'all', 'random'), fc.nat(), async (ops, at, keep, seed) => {
    runs++
    const run = await crashWorkload(dev, ops, at)
    await dev.crash({ seed, keep })
    const fs = await mount(dev)
    const ns = await namespaceOfFs(fs)
    if (!run.namespaces.includes(ns)) throw new Error(`tree ${ns} is neither ${run.namespaces.join(' nor ')}`)
    for (const [p, bytes] of run.durable) {
      const got = await readFile(fs, p)
      if (!eqBytes(got, bytes)) throw new Error(`fsynced ${p} not intact`)
    }
    await fs.unmount()
    const r = await fsck(dev)
    if (r.exitCode !== 0) throw new Error(`fsck: ${r.problems.join('; ')}`)
  }), { numRuns: 150 * SCALE, seed: 42 + SEED })
  t.ok(runs >= 150)
})

t.test('fsck straight after a crash (before mount) recovers the journal', async t => {
  const dev = await newDev(t, '4MiB')
  // crash right after the commit record is durable: the transaction must be replayed
  const idx = CRASH_POINTS.indexOf('commit-persisted')
  const run = await crashWorkload(dev, crashOps.slice(0, 3), 2 * CRASH_POINTS.length + idx)
  await dev.crash({ seed: 3, keep: 'none' })
  t.equal(fsInfo(dev).state, 'needs-recovery')
  const r = await fsck(dev)
  t.equal(r.exitCode, 0)
  t.match(r.recovered.join(), /replayed journal transaction/)
  t.ok(await checkAfterCrash(t, dev, run, 'fsck-first'))
  // orphan: unlinked while open, then crash
  const fs = await mkfs(dev)
  await writeFile(fs, '/o', pattern(20000, 1))
  const f = await fs.open('/o', 'r')
  await fs.unlink('/o')
  const freeOpen = fs.statfs().free
  await dev.crash({ seed: 4, keep: 'none' })
  void f
  const r2 = await fsck(dev)
  t.equal(r2.exitCode, 0)
  t.match(r2.recovered.join(), /released orphan inode/)
  const fs2 = await mount(dev)
  t.equal(fs2.statfs().free, freeOpen + 5)
  await fs2.unmount()
})

// ---------------------------------------------------------------------------------------------- fsck

async function populated(t: Test): Promise<{ dev: Dev; fs: PmemFs }> {
  const dev = await newDev(t, '8MiB', false)
  const fs = await mkfs(dev)
  await fs.mkdir('/d')
  await writeFile(fs, '/d/a', pattern(30000, 1))
  await writeFile(fs, '/b', pattern(5000, 2))
  const frag = await fs.open('/frag', 'w')
  for (let i = 0; i < 30; i++) frag.write(pattern(4096, i), i * 8192) // 30 extents: overflow block
  await frag.close()
  return { dev, fs }
}

function sbOf(dev: Dev) {
  const raw = new Uint8Array(SB_SIZE)
  dev.read(0, raw)
  const sb = decodeSuperblock(raw, dev)
  if (typeof sb === 'string') throw new Error(sb)
  return sb
}

function patchInode(dev: Dev, ino: number, fn: (i: NonNullable<Exclude<ReturnType<typeof decodeInode>, string>>['inode']) => void): void {
  const sb = sbOf(dev)
  const off = sb.inodeTableStart * sb.blockSize + ino * INODE_SIZE
  const raw = new Uint8Array(INODE_SIZE)
  dev.read(off, raw)
  const d = decodeInode(raw, ino)
  if (!d || typeof d === 'string') throw new Error('bad inode')
  fn(d.inode)
  const enc = encodeInode(d.inode)
  // keep the original extent count / overflow pointer (encodeInode would use the inline list only)
  enc.set(raw.subarray(56, 64), 56)
  new DataView(enc.buffer).setUint32(252, crc32c(enc, 0, 252), true)
  dev.write(off, enc)
}

t.test('fsck detects and repairs injected corruptions', async t => {
  const cases: Array<[string, (dev: Dev, fs: PmemFs) => Promise<void> | void, RegExp]> = [
    ['bitmap bit cleared for a used block', (dev, fs) => {
      const sb = sbOf(dev)
      void fs
      const b = new Uint8Array(1)
      const blk = sb.dataStart
      dev.read(sb.bitmapStart * sb.blockSize + (blk >> 3), b)
      b[0]! &= ~(1 << (blk & 7))
      dev.write(sb.bitmapStart * sb.blockSize + (blk >> 3), b)
    }, /in use but marked free/],
    ['leaked bitmap bits', dev => {
      const sb = sbOf(dev)
      const at = sb.bitmapStart * sb.blockSize + Math.floor((sb.blockCount - 100) / 8)
      dev.write(at, new Uint8Array([0xff, 0xff]))
    }, /marked in use but owned by nobody/],
    ['wrong link count', async dev => { patchInode(dev, 3, i => { i.nlink = 5 }) }, /link count 5, should be 2/],
    ['inode checksum', dev => {
      const sb = sbOf(dev)
      dev.write(sb.inodeTableStart * sb.blockSize + 4 * INODE_SIZE + 20, new Uint8Array([1, 2, 3]))
    }, /inode 4: inode checksum mismatch/],
    ['primary superblock', dev => { dev.write(100, new Uint8Array([9, 9, 9])) }, /primary superblock: superblock checksum mismatch/],
    ['directory block checksum', async dev => {
      const fs = await mount(dev)
      const d = await fs.open('/d', 'r')
      const pfn = d.node.pfnAt(0)!
      await d.close()
      await fs.unmount()
      dev.write(pfn * 4096 + 20, new Uint8Array([0x55]))
    }, /directory \/d \(inode \d+\) block 0: directory block: checksum mismatch/],
    ['overlapping extents', async dev => {
      const fs = await mount(dev)
      const a = await fs.open('/d/a', 'r')
      const b = await fs.open('/b', 'r')
      const pa = a.pfnAt(0)!
      const bi = b.ino
      await a.close(); await b.close()
      await fs.unmount()
      patchInode(dev, bi, i => { i.extents[0]!.p = pa })
    }, /overlaps block/],
    ['overflow extent block', async dev => {
      const fs = await mount(dev)
      const f = await fs.open('/frag', 'r')
      const ino = f.ino
      await f.close()
      await fs.unmount()
      const owner = (() => { const x = new Uint8Array(INODE_SIZE); const sb = sbOf(dev); dev.read(sb.inodeTableStart * 4096 + ino * INODE_SIZE, x); return new DataView(x.buffer).getUint32(60, true) })()
      dev.write(owner * 4096 + 40, new Uint8Array([7, 7, 7, 7]))
    }, /overflow extent block \d+: overflow extent block: checksum mismatch/],
  ]
  for (const [name, inject, re] of cases) {
    await t.test(name, async t => {
      const { dev, fs } = await populated(t)
      await fs.unmount()
      await inject(dev, fs)
      const r1 = await fsck(dev)
      t.equal(r1.exitCode, 4, 'found, not fixed')
      t.notOk(r1.clean)
      t.match(r1.problems.join('\n'), re)
      const r2 = await fsck(dev, { repair: true })
      t.equal(r2.exitCode, 1, `fixed: ${r2.problems.join('; ')}`)
      const r3 = await fsck(dev)
      t.equal(r3.exitCode, 0, `clean after repair: ${r3.problems.join('; ')}`)
      const fs2 = await mount(dev)
      t.ok((await fs2.readdir('/')).length >= 2)
      await writeFile(fs2, '/after-repair', pattern(10000, 9))
      await fs2.unmount()
      t.equal((await fsck(dev)).exitCode, 0)
    })
  }
  await t.test('unreachable inode goes to /lost+found', async t => {
    const { dev, fs } = await populated(t)
    const f = await fs.open('/d/a', 'r')
    const ino = f.ino
    await f.close()
    await fs.unmount()
    // zero the directory /d's block: entry gone, inode unreachable but nlink 1
    const fs1 = await mount(dev)
    const d = await fs1.open('/d', 'r')
    const pfn = d.node.pfnAt(0)!
    await d.close()
    await fs1.unmount()
    dev.write(pfn * 4096, new Uint8Array(4096))
    const r1 = await fsck(dev)
    t.equal(r1.exitCode, 4)
    t.match(r1.problems.join('\n'), new RegExp(`inode ${ino} \\(file, 30000 bytes\\) is not reachable`))
    const r2 = await fsck(dev, { repair: true })
    t.equal(r2.exitCode, 1, r2.problems.join('; '))
    t.equal((await fsck(dev)).exitCode, 0)
    const fs2 = await mount(dev)
    t.same(await fs2.readdir('/lost+found'), [`#${ino}`])
    t.ok(eqBytes(await readFile(fs2, `/lost+found/#${ino}`), pattern(30000, 1)), 'data recovered')
    await fs2.unmount()
  })
  await t.test('both superblocks gone: exit 8, mount EFSCORRUPTED', async t => {
    const { dev, fs } = await populated(t)
    await fs.unmount()
    dev.write(9, new Uint8Array([0xee]))
    dev.write((dev.pageCount - 1) * 4096 + 9, new Uint8Array([0xee]))
    const r = await fsck(dev, { repair: true })
    t.equal(r.exitCode, 8)
    t.equal(await code(mount(dev)), 'EFSCORRUPTED')
  })
  await t.test('primary superblock bad: mount says so and points at the backup', async t => {
    const { dev, fs } = await populated(t)
    await fs.unmount()
    dev.write(100, new Uint8Array([9]))
    const e = await mount(dev).catch(x => x)
    t.equal(e.code, 'EFSCORRUPTED')
    t.match(e.message, /checksum mismatch.*backup superblock is valid/)
  })
})

t.test('fuzz: damaged metadata never crashes or hangs mount/fsck', async t => {
  const dev = await newDev(t, '4MiB', false)
  const { dev: _d, fs } = { dev, fs: await mkfs(dev, { inodes: 64, journalBlocks: 16 }) }
  void _d
  await fs.mkdir('/d')
  await fs.mkdir('/d/e')
  await writeFile(fs, '/d/a', pattern(30000, 1))
  await writeFile(fs, '/b', pattern(5000, 2))
  const frag = await fs.open('/d/e/frag', 'w')
  for (let i = 0; i < 25; i++) frag.write(pattern(100, i), i * 8192)
  await frag.close()
  // metadata blocks: superblock, journal head, bitmap, inode table, directory and extent blocks
  const sb = sbOf(dev)
  const meta: number[] = [0, 1, sb.bitmapStart]
  for (let b = sb.inodeTableStart; b < sb.dataStart; b++) meta.push(b)
  for (let b = sb.dataStart; b < sb.dataStart + 40; b++) { const k = fs.blockOwner(b).kind; if (k === 'directory' || k === 'extent-block') meta.push(b) }
  meta.push(dev.pageCount - 1)
  await fs.unmount()
  const image = new Uint8Array(dev.pageCount * 4096)
  dev.read(0, image)
  // a second image: crashed right after a commit record became durable (the journal holds a transaction to replay)
  const fsj = await mount(dev)
  fsj.onCrashPoint = p => { if (p === 'commit-persisted') throw new CrashNow() }
  await code(fsj.rename('/b', '/d/e/b2'))
  t.ok(fsj.isDead)
  await fsj.unmount()
  t.equal(fsInfo(dev).state, 'needs-recovery')
  const journaled = new Uint8Array(dev.pageCount * 4096)
  dev.read(0, journaled)
  const jblocks = [1, 2]
  const stats = { mountOk: 0, mountCorrupt: 0, exit: [0, 0, 0, 0, 0, 0, 0, 0, 0] }
  await fc.assert(fc.asyncProperty(
    fc.boolean(),
    fc.array(fc.record({ blk: fc.constantFrom(...meta, ...jblocks), off: fc.nat(4095), bit: fc.nat(7), byte: fc.option(fc.nat(255)), smash: fc.nat(40) }), { minLength: 1, maxLength: 6 }),
    async (useJournaled, flips) => {
      dev.write(0, useJournaled ? journaled : image)
      for (const f of flips) {
        if (f.smash === 0) { dev.write(f.blk * 4096, pattern(4096, f.off)); continue } // whole block of garbage
        const at = f.blk * 4096 + f.off
        const b = new Uint8Array(1)
        dev.read(at, b)
        b[0] = f.byte === null ? b[0]! ^ (1 << f.bit) : f.byte
        dev.write(at, b)
      }
      // mount: ok or a typed error; if ok, walking the tree gives typed results only
      try {
        const m = await mount(dev)
        stats.mountOk++
        for (const p of ['/', '/d', '/d/e']) {
          const c = await code(m.readdir(p))
          if (c.startsWith('untyped')) throw new Error(`readdir ${p}: ${c}`)
        }
        for (const p of ['/d/a', '/b', '/d/e/frag']) {
          const c = await code(readFile(m, p))
          if (c.startsWith('untyped')) throw new Error(`read ${p}: ${c}`)
        }
        const c = await code(writeFile(m, '/new', pattern(9000, 3)))
        if (c.startsWith('untyped')) throw new Error(`write: ${c}`)
        await m.unmount()
      } catch (e) {
        if (!(e instanceof PmemuError)) throw e
        stats.mountCorrupt++
      }
      const r = await fsck(dev)
      if (![0, 4, 8].includes(r.exitCode)) throw new Error(`fsck exit ${r.exitCode}`)
      if (r.problems.some(p => p.includes('internal error'))) throw new Error(r.problems.join('\n'))
      stats.exit[r.exitCode]!++
      if (r.exitCode === 4) {
        const r2 = await fsck(dev, { repair: true })
        if (r2.problems.some(p => p.includes('internal error'))) throw new Error(r2.problems.join('\n'))
        if (r2.exitCode === 1) {
          const r3 = await fsck(dev)
          if (r3.exitCode !== 0) throw new Error(`after repair: ${r3.problems.join('; ')}`)
          const m = await mount(dev)
          await m.unmount()
        }
      }
    }), { numRuns: 300 * SCALE, seed: 7 + SEED })
  t.ok(stats.mountCorrupt > 0 && stats.exit[4]! > 0, JSON.stringify(stats))
})
