/**
 * Times, permission bits and hard links on the pmemu fs: set through the
 * journal (durable when the call returns, so they survive dev.crash()), kept
 * by fsck, and seen through toNodeFs as node:fs reports them.
 */
import t from 'tap'
import { openDevice } from '../src/region/index.js'
import { mkfs, mount, fsck } from '../src/fs/index.js'
import { toNodeFs } from '../src/adapters/index.js'

async function setup(): Promise<{ dev: Awaited<ReturnType<typeof openDevice>>; fs: Awaited<ReturnType<typeof mkfs>> }> {
  const dev = await openDevice(undefined, { size: '16MiB', crashShadow: true })
  t.teardown(async () => { await dev.close() })
  return { dev, fs: await mkfs(dev) }
}

t.test('utimes, chmod and link survive a crash and pass fsck', async t => {
  const { dev, fs } = await setup()
  const f = await fs.open('/a', 'w')
  f.write(new Uint8Array([1, 2, 3]), 0)
  await f.fsync()
  await f.close()
  await fs.mkdir('/d')
  await fs.utimes('/a', 1_000_000.5, 2_000_000.25)
  await fs.chmod('/a', 0o4755)
  await fs.chmod('/d', 0o700)
  await fs.link('/a', '/d/b')
  await fs.link('/a', '/c')
  await fs.unlink('/c')
  t.equal((await fs.stat('/a')).nlink, 2)
  await dev.crash({ seed: 1, keep: 'none' })
  t.equal((await fsck(dev)).exitCode, 0, 'fsck finds nothing to fix')
  const fs2 = await mount(dev)
  const st = await fs2.stat('/d/b')
  t.equal(st.ino, (await fs2.stat('/a')).ino, 'both names are one inode')
  t.equal(st.nlink, 2)
  t.equal(st.atimeMs, 1_000_000.5)
  t.equal(st.mtimeMs, 2_000_000.25)
  t.equal(st.mode & 0o7777, 0o4755)
  t.equal((await fs2.stat('/d')).mode & 0o7777, 0o700)
  t.equal((await fs2.stat('/d')).mode & 0o170000, 0o040000, 'chmod keeps the file type')
  t.notOk(await fs2.exists('/c'))
  // The data stays until the last name goes.
  await fs2.unlink('/a')
  const g = await fs2.open('/d/b', 'r')
  const buf = new Uint8Array(3)
  t.equal(g.read(buf, 0), 3)
  t.same([...buf], [1, 2, 3])
  t.equal(g.stat().nlink, 1)
  await g.utimes(5000, 6000)
  await g.chmod(0o600)
  t.equal(g.stat().mtimeMs, 6000)
  t.equal(g.stat().mode & 0o7777, 0o600)
  await g.close()
  const free = fs2.statfs().ffree
  await fs2.unlink('/d/b')
  t.equal(fs2.statfs().ffree, free + 1, 'the inode is freed with its last link')
  await fs2.unmount()
  t.equal((await fsck(dev)).exitCode, 0)
})

t.test('link, utimes and chmod errors as Linux', async t => {
  const { fs } = await setup()
  await fs.mkdir('/d')
  await (await fs.open('/f', 'w')).close()
  await t.rejects(fs.link('/d', '/e'), { code: 'EPERM', syscall: 'link' }, 'no hard links to directories')
  await t.rejects(fs.link('/f', '/d'), { code: 'EEXIST' })
  await t.rejects(fs.link('/nope', '/g'), { code: 'ENOENT' })
  await t.rejects(fs.link('/f', '/nope/g'), { code: 'ENOENT' })
  await t.rejects(fs.link('/f', '/g/'), { code: 'ENOENT' })
  await t.rejects(fs.utimes('/nope', 0, 0), { code: 'ENOENT', syscall: 'utime' })
  await t.rejects(fs.utimes('/f', Number.NaN, 0), { code: 'EINVAL' })
  await t.rejects(fs.utimes('/f', 10n as never, 0), { code: 'EINVAL', message: /bigint/ })
  await t.rejects(fs.chmod('/f', -1), { code: 'EINVAL', syscall: 'chmod' })
  await t.rejects(fs.chmod('/f', Symbol('x') as never), { code: 'EINVAL', message: /symbol/ })
  const h = await fs.open('/f', 'r')
  await h.close()
  await t.rejects(h.utimes(0, 0), { code: 'EBADF', syscall: 'futime' })
  await t.rejects(h.chmod(0o600), { code: 'EBADF', syscall: 'fchmod' })
})

t.test('toNodeFs: utimes/futimes/lutimes take Node\'s time forms, kept to the microsecond', async t => {
  const { fs } = await setup()
  const nfs = toNodeFs(fs)
  await nfs.writeFile('/f', 'x')
  await nfs.utimes('/f', 1234567890.123456789, new Date(1_000_000_000_123))
  const big = await nfs.stat('/f', { bigint: true })
  t.equal(big.atimeNs, 1234567890123456000n, 'nanoseconds cut to microseconds, as libuv')
  t.equal(big.mtimeNs, 1000000000123000000n)
  t.equal((await nfs.stat('/f')).atimeMs, 1234567890123.456)
  await nfs.utimes('/f', '42', '43')
  t.equal((await nfs.stat('/f')).mtimeMs, 43000)
  await nfs.lutimes('/f', 7, 8)
  t.equal((await nfs.stat('/f')).mtimeMs, 8000)
  const h = await nfs.open('/f', 'r+')
  await h.utimes(9, 10)
  await h.chmod('640')
  const st = await h.stat()
  t.equal(st.mtimeMs, 10000)
  t.equal(st.mode & 0o777, 0o640)
  await h.close()
  await t.rejects(nfs.utimes('/f', Number.NaN, 0), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.rejects(nfs.chmod('/f', 'rwx'), { code: 'ERR_INVALID_ARG_VALUE' })
  await nfs.link('/f', '/g')
  t.equal((await nfs.stat('/g')).nlink, 2)
  await t.rejects(nfs.link('/f', '/g'), { code: 'EEXIST', syscall: 'link', path: '/f', dest: '/g' })
})
