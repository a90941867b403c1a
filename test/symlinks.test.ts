/**
 * Symbolic links on the pmemu fs: the target in the link's one data block,
 * lookups that follow links as Linux's namei (ELOOP after 40), the operations
 * that act on the link itself, the superblock feature flag that keeps an
 * older pmemu from mounting an image with links, and fsck's checks.
 */
import t from 'tap'
import { openDevice } from '../src/region/index.js'
import { mkfs, mount, fsck, crc32c, type PmemFs } from '../src/fs/index.js'
import { decodeInode, decodeSuperblock, encodeInode, encodeSuperblock, FEAT_SYMLINKS, INODE_SIZE, SB_SIZE } from '../src/fs/layout.js'

type Dev = Awaited<ReturnType<typeof openDevice>>

async function setup(): Promise<{ dev: Dev; fs: PmemFs }> {
  const dev = await openDevice(undefined, { size: '16MiB', crashShadow: true })
  t.teardown(async () => { await dev.close() })
  return { dev, fs: await mkfs(dev) }
}

const code = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
  try { await (typeof p === 'function' ? p() : p); return 'ok' } catch (e) { return (e as { code?: string }).code ?? String(e) }
}

function sbOf(dev: Dev, off = 0) {
  const raw = new Uint8Array(SB_SIZE)
  dev.read(off, raw)
  const sb = decodeSuperblock(raw, dev)
  if (typeof sb === 'string') throw new Error(sb)
  return sb
}

async function writeFile(fs: PmemFs, path: string, s: string): Promise<void> {
  const f = await fs.open(path, 'w')
  f.write(new TextEncoder().encode(s), 0)
  await f.close()
}

async function readFile(fs: PmemFs, path: string): Promise<string> {
  const f = await fs.open(path, 'r')
  const b = new Uint8Array(f.size)
  f.read(b, 0)
  await f.close()
  return new TextDecoder().decode(b)
}

t.test('symlink, readlink, lstat, stat through links, realpath', async t => {
  const { fs } = await setup()
  await fs.mkdir('/d')
  await writeFile(fs, '/d/f', 'hello')
  await fs.symlink('d/f', '/lf')
  await fs.symlink('/d', '/ld')
  t.equal(await fs.readlink('/lf'), 'd/f')
  const l = await fs.lstat('/lf')
  t.ok(l.isSymbolicLink())
  t.equal(l.size, 3, 'a link is as long as its target')
  t.equal(l.mode, 0o120777)
  t.equal((await fs.stat('/lf')).size, 5, 'stat follows')
  t.equal(await readFile(fs, '/ld/f'), 'hello', 'a link in the middle of a path is followed')
  t.equal((await fs.stat('/ld/../d/f')).size, 5, "'..' after a link is the target's parent, not the lexical one")
  t.equal(await fs.realpath('/ld/f'), '/d/f')
  t.equal(await fs.realpath('/lf'), '/d/f')
  t.equal(await fs.realpath('/ld/'), '/d')
  t.same(await fs.readdir('/ld'), ['f'])
  t.same((await fs.readdir('/', { withFileTypes: true })).map(e => `${e.name}:${e.type}`), ['d:directory', 'ld:symlink', 'lf:symlink'])
  t.equal(await code(fs.readlink('/d')), 'EINVAL', 'readlink of a directory')
  t.equal(await code(fs.symlink('', '/e')), 'ENOENT', 'empty target')
  t.equal(await code(fs.symlink('x'.repeat(4096), '/e')), 'ENAMETOOLONG', 'target over 4095 bytes')
  await fs.symlink('x'.repeat(4095), '/e')
  t.equal((await fs.readlink('/e')).length, 4095, 'a 4095-byte target fits')
  t.equal(await code(fs.symlink('x', '/lf')), 'EEXIST')
  t.equal(await code(fs.symlink('x', '/new/')), 'ENOENT', 'a new name with a trailing slash')
  t.equal(await code(fs.symlink('x', '/d/f/x')), 'ENOTDIR')
})

t.test('dangling links, loops (ELOOP after 40 links), O_NOFOLLOW, O_CREAT through a link', async t => {
  const { fs } = await setup()
  await writeFile(fs, '/t', 'T')
  await fs.symlink('nowhere', '/dang')
  await fs.symlink('loop', '/loop')
  t.equal(await code(fs.stat('/dang')), 'ENOENT')
  t.ok((await fs.lstat('/dang')).isSymbolicLink(), 'lstat sees a dangling link')
  t.equal(await code(fs.stat('/loop')), 'ELOOP')
  t.equal(await code(fs.stat('/loop/x')), 'ELOOP')
  // A chain: /c/i -> /c/(i-1) ... /c/0 -> /t. Following 40 links works, the 41st is ELOOP (MAXSYMLINKS).
  await fs.mkdir('/c')
  await fs.symlink('/t', '/c/0')
  for (let i = 1; i <= 40; i++) await fs.symlink(String(i - 1), `/c/${i}`)
  t.equal((await fs.stat('/c/39')).size, 1, '40 links followed')
  t.equal(await code(fs.stat('/c/40')), 'ELOOP', '41 links: ELOOP')
  t.equal(await code(fs.open('/c/0', 0o400000)), 'ELOOP', 'O_NOFOLLOW on a link')
  t.equal(await code(fs.open('/dang', 'wx')), 'EEXIST', 'O_EXCL does not follow: EEXIST even dangling')
  const f = await fs.open('/dang', 'w')
  await f.close()
  t.same(await fs.readdir('/'), ['c', 'dang', 'loop', 'nowhere', 't'], 'O_CREAT through a dangling link creates its target')
})

t.test('operations on the link itself: unlink, rename, link, rmdir, mkdir, lutimes, chmod follows', async t => {
  const { fs } = await setup()
  await fs.mkdir('/d')
  await writeFile(fs, '/d/f', 'x')
  await fs.symlink('d', '/ld')
  t.equal(await code(fs.rmdir('/ld')), 'ENOTDIR')
  t.equal(await code(fs.unlink('/ld/')), 'ENOTDIR', 'a trailing slash walks through the link')
  t.equal(await code(fs.mkdir('/ld')), 'EEXIST')
  await fs.mkdir('/ld/sub')
  t.same(await fs.readdir('/d'), ['f', 'sub'], 'mkdir through a link')
  await fs.link('/ld', '/hl')
  const h = await fs.lstat('/hl')
  t.ok(h.isSymbolicLink(), 'link() of a symlink links the symlink')
  t.equal(h.nlink, 2)
  await fs.rename('/hl', '/d/hl')
  t.equal(await fs.readlink('/d/hl'), 'd', 'rename moves the link, not its target')
  t.equal(await code(fs.stat('/d/hl')), 'ENOENT', 'and a relative target now resolves from its new directory')
  await fs.unlink('/ld')
  t.same(await fs.readdir('/d'), ['f', 'hl', 'sub'], 'unlink removes the link only')
  await fs.symlink('d/f', '/lf')
  await fs.chmod('/lf', 0o600)
  t.equal((await fs.stat('/d/f')).mode & 0o777, 0o600, 'chmod follows')
  t.equal((await fs.lstat('/lf')).mode & 0o777, 0o777)
  await fs.lutimes('/lf', 1000, 2000)
  t.equal((await fs.lstat('/lf')).mtimeMs, 2000, 'lutimes sets the link')
  t.not((await fs.stat('/lf')).mtimeMs, 2000)
  t.equal(await code(fs.rename('/d/f', '/d')), 'ENOTEMPTY', 'a target that holds the source')
  t.equal(await code(fs.rmdir('/d/.')), 'EINVAL')
  t.equal(await code(fs.rmdir('/d/sub/..')), 'ENOTEMPTY')
})

t.test('feature flag: set by the first symlink (both superblocks); an image without links keeps 0', async t => {
  const { dev, fs } = await setup()
  await fs.mkdir('/d')
  t.equal(fs.geometry.features & FEAT_SYMLINKS, 0, 'no links: the symlink bit stays clear, older pmemu still mounts the image')
  await fs.symlink('d', '/l')
  t.equal(fs.geometry.features & FEAT_SYMLINKS, FEAT_SYMLINKS)
  await dev.crash({ seed: 3, keep: 'none' })
  t.equal(sbOf(dev).features & FEAT_SYMLINKS, FEAT_SYMLINKS, 'primary superblock, durable when symlink returns')
  t.equal(sbOf(dev, dev.pageSize * (dev.pageCount - 1)).features & FEAT_SYMLINKS, FEAT_SYMLINKS, 'backup superblock too')
  t.equal((await fsck(dev)).exitCode, 0)
  const fs2 = await mount(dev)
  t.equal(await fs2.readlink('/l'), 'd', 'the link survives a crash')
  await fs2.unmount()
  // A flag this pmemu does not know: mount refuses, saying which.
  const raw = new Uint8Array(SB_SIZE)
  dev.read(0, raw)
  const sb = decodeSuperblock(raw, dev)
  if (typeof sb === 'string') throw new Error(sb)
  dev.write(0, encodeSuperblock({ ...sb, features: sb.features | 0x100 }))
  await t.rejects(mount(dev), { code: 'EFSCORRUPTED', message: /unknown feature flags 0x100/ })
})

t.test('fsck: symlink inodes checked (length, extents, NUL), missing feature flag repaired', async t => {
  const patch = (dev: Dev, ino: number, fn: (i: NonNullable<Exclude<ReturnType<typeof decodeInode>, string>>['inode']) => void): void => {
    const sb = sbOf(dev)
    const off = sb.inodeTableStart * sb.blockSize + ino * INODE_SIZE
    const raw = new Uint8Array(INODE_SIZE)
    dev.read(off, raw)
    const d = decodeInode(raw, ino)
    if (!d || typeof d === 'string') throw new Error('bad inode')
    fn(d.inode)
    const enc = encodeInode(d.inode)
    new DataView(enc.buffer).setUint32(252, crc32c(enc, 0, 252), true)
    dev.write(off, enc)
  }
  const cases: Array<[string, (dev: Dev, ino: number) => void, RegExp]> = [
    ['target length 0', (dev, ino) => patch(dev, ino, i => { i.size = 0 }), /symlink inode \d+: target length 0/],
    ['target longer than a block', (dev, ino) => patch(dev, ino, i => { i.size = 5000 }), /target length 5000/],
    ['an extent past the target', (dev, ino) => patch(dev, ino, i => { i.extents.push({ l: 1, p: i.extents[0]!.p + 1, n: 1 }) }), /not stored in exactly one block/],
    ['NUL in the target', (dev, ino) => patch(dev, ino, i => { dev.write(i.extents[0]!.p * dev.pageSize + 1, new Uint8Array([0])) }), /contains a NUL byte/],
  ]
  for (const [name, hurt, re] of cases) {
    const { dev, fs } = await setup()
    await fs.mkdir('/d')
    await fs.symlink('target', '/d/l')
    const ino = (await fs.lstat('/d/l')).ino
    await fs.unmount()
    hurt(dev, ino)
    const r = await fsck(dev)
    t.equal(r.exitCode, 4, `${name}: found`)
    t.match(r.problems.join('\n'), re, name)
    const fixed = await fsck(dev, { repair: true })
    t.equal(fixed.exitCode, 1, `${name}: repaired`)
    t.equal((await fsck(dev)).exitCode, 0, `${name}: clean after repair`)
    const fs2 = await mount(dev)
    t.same(await fs2.readdir('/d'), [], `${name}: the broken link is gone`)
    await fs2.unmount()
  }
  // An image with a link but without the flag (as an older tool might leave it): fsck says so, repair sets it.
  const { dev, fs } = await setup()
  await fs.symlink('x', '/l')
  await fs.unmount()
  for (const off of [0, dev.pageSize * (dev.pageCount - 1)]) {
    const raw = new Uint8Array(SB_SIZE)
    dev.read(off, raw)
    const sb = decodeSuperblock(raw, dev)
    if (typeof sb === 'string') throw new Error(sb)
    dev.write(off, encodeSuperblock({ ...sb, features: sb.features & ~FEAT_SYMLINKS }))
  }
  const r = await fsck(dev)
  t.match(r.problems.join('\n'), /symlink inode\(s\) on an image without the symlink feature flag/)
  t.equal((await fsck(dev, { repair: true })).exitCode, 1)
  t.equal(sbOf(dev).features & FEAT_SYMLINKS, FEAT_SYMLINKS)
  t.equal((await fsck(dev)).exitCode, 0)
  t.equal((await fsck(dev)).summary?.symlinks, 1)
})

t.test('unlinking a link frees its block; fsck stays clean after a mix of operations', async t => {
  const { dev, fs } = await setup()
  await fs.mkdir('/first') // the root directory's first block
  const free0 = fs.statfs().bfree
  for (let i = 0; i < 20; i++) await fs.symlink(`t${i}`, `/l${i}`)
  t.equal(free0 - fs.statfs().bfree, 20, 'one block per link')
  for (let i = 0; i < 20; i++) await fs.unlink(`/l${i}`)
  t.equal(fs.statfs().bfree, free0, 'all freed')
  await fs.symlink('a', '/x')
  await fs.rename('/x', '/y')
  await fs.symlink('b', '/x')
  await fs.rename('/x', '/y')
  t.equal(await fs.readlink('/y'), 'b', 'rename over a link replaces it')
  await fs.unmount()
  const r = await fsck(dev)
  t.equal(r.exitCode, 0, r.problems.join('; '))
})
