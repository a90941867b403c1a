/**
 * The inode high-water mark (docs/format.md §Inode high-water mark): mount and
 * fsck read the inode table only up to the mark, mkfs does not write the
 * table, older images without the mark stay readable, and a damaged mark is
 * refused by mount and repaired by fsck.
 */
import t, { type Test } from 'tap'
import { openDevice } from '../src/region/index.js'
import { crc32c, fsck, fsInfo, mkfs, mount, type FsDevice, type PmemFs } from '../src/fs/index.js'
import { decodeSuperblock, encodeInode, FEATURE_INODE_HIGH, HWM_OFF, HWM_SIZE, INODE_SIZE, SB_CRC_OFF, SB_SIZE, S_IFREG } from '../src/fs/layout.js'

type Dev = Awaited<ReturnType<typeof openDevice>>

async function newDev(t: Test, size = '64MiB'): Promise<Dev> {
  const d = await openDevice(undefined, { size })
  t.teardown(async () => { await d.close() })
  return d
}

function sbOf(dev: FsDevice) {
  const raw = new Uint8Array(SB_SIZE)
  dev.read(0, raw)
  const sb = decodeSuperblock(raw, dev)
  if (typeof sb === 'string') throw new Error(sb)
  return sb
}

/** The device with every byte read through it counted, in inode-table bytes and in all. */
function counting(dev: Dev): { view: FsDevice; table: () => number; reset: () => void } {
  let table = 0
  const sb = sbOf(dev)
  const t0 = sb.inodeTableStart * sb.blockSize
  const t1 = sb.dataStart * sb.blockSize
  const view: FsDevice = {
    pageSize: dev.pageSize, pageCount: dev.pageCount, readOnly: false,
    read: (o, b) => { table += Math.max(0, Math.min(o + b.length, t1) - Math.max(o, t0)); dev.read(o, b) },
    write: (o, b) => dev.write(o, b), zero: (o, n) => dev.zero(o, n), persist: (o, n) => dev.persist(o, n),
    onCrash: fn => dev.onCrash(fn),
  }
  return { view, table: () => table, reset: () => { table = 0 } }
}

async function fill(fs: PmemFs, n: number, dir = '/d'): Promise<void> {
  await fs.mkdir(dir)
  for (let i = 0; i < n; i++) {
    const f = await fs.open(`${dir}/f${i}`, 'w')
    f.write(new Uint8Array([i & 0xff, 1, 2, 3]), 0)
    await f.close()
  }
}

async function names(fs: PmemFs, dir = '/d'): Promise<number> {
  return (await fs.readdir(dir)).length
}

t.test('mount and fsck read the inode table up to the mark, not all of it', async t => {
  const dev = await newDev(t, '256MiB') // 16 384 inodes: a 4 MiB table
  const sb0 = (await mkfs(dev)).unmount()
  await sb0
  const sb = sbOf(dev)
  t.ok(sb.features & FEATURE_INODE_HIGH, 'mkfs sets the feature')
  const tableBytes = sb.inodeCount * INODE_SIZE
  const c = counting(dev)
  const fs = await mount(c.view)
  t.ok(c.table() <= 4096, `empty fs: mount read ${c.table()} inode-table bytes of ${tableBytes}`)
  await fill(fs, 200)
  await fs.unmount()
  c.reset()
  const fs2 = await mount(c.view)
  t.equal(await names(fs2), 200)
  await fs2.unmount()
  // 203 inodes in use: the mark is at most an eighth more, rounded up to a 16-inode block
  t.ok(c.table() <= 240 * INODE_SIZE, `200 files: mount read ${c.table()} bytes (${c.table() / INODE_SIZE} slots)`)
  c.reset()
  const r = await fsck(c.view)
  t.equal(r.exitCode, 0, r.problems.join('; '))
  t.equal(r.summary?.usedInodes, 203)
  t.equal(r.summary?.inodes, sb.inodeCount - 1, 'the summary still counts every inode')
  t.ok(c.table() <= 240 * INODE_SIZE, `fsck read ${c.table()} inode-table bytes`)
  t.equal(fsInfo(dev).usedInodes, 203)
})

t.test('mkfs does not write the inode table: a slot past the mark is never read, and is zeroed when the mark reaches it', async t => {
  const dev = await newDev(t)
  await (await mkfs(dev)).unmount()
  const sb = sbOf(dev)
  // A stale but valid inode far past the mark (as an earlier fs on the device would leave).
  const stale = encodeInode({ ino: 40, mode: S_IFREG | 0o644, nlink: 1, size: 5, atime: 0, mtime: 0, ctime: 0, birthtime: 0, parent: 0, flags: 0, generation: 1, extents: [], overflow: [] })
  const garbage = new Uint8Array(INODE_SIZE).fill(0xa5)
  dev.write(sb.inodeTableStart * sb.blockSize + 40 * INODE_SIZE, stale)
  dev.write(sb.inodeTableStart * sb.blockSize + 41 * INODE_SIZE, garbage)
  const r0 = await fsck(dev)
  t.equal(r0.exitCode, 0, 'fsck does not read past the mark')
  t.equal(r0.summary?.usedInodes, 2)
  const fs = await mount(dev)
  await fill(fs, 60) // the mark passes slots 40 and 41
  t.equal(fs.statfs().files - fs.statfs().ffree, 63)
  await fs.unmount()
  const r = await fsck(dev)
  t.equal(r.exitCode, 0, r.problems.join('; '))
  t.equal(r.summary?.usedInodes, 63, 'the stale inode did not come back')
  const fs2 = await mount(dev)
  t.equal(await names(fs2), 60)
  await fs2.unmount()
})

t.test('inode numbers stay dense: freed ones are reused before the mark moves', async t => {
  const dev = await newDev(t)
  const fs = await mkfs(dev)
  await fill(fs, 40)
  for (let i = 0; i < 40; i++) await fs.unlink(`/d/f${i}`)
  for (let i = 0; i < 40; i++) await (await fs.open(`/d/g${i}`, 'w')).close()
  await fs.unmount()
  const c = counting(dev)
  await (await mount(c.view)).unmount()
  t.ok(c.table() <= 64 * INODE_SIZE, `mount read ${c.table() / INODE_SIZE} slots for 43 inodes after 80 creates`)
})

/** Rewrite both superblocks as an older pmemu wrote them: no feature flag, no mark record. */
function makeOld(dev: Dev): void {
  const sb = sbOf(dev)
  for (const at of [0, sb.backupBlock * sb.blockSize]) {
    const raw = new Uint8Array(SB_SIZE)
    dev.read(at, raw)
    const v = new DataView(raw.buffer)
    v.setUint32(12, 0, true)
    v.setUint32(SB_CRC_OFF, crc32c(raw.subarray(0, SB_CRC_OFF)), true)
    dev.write(at, raw)
    dev.write(at + HWM_OFF, new Uint8Array(HWM_SIZE))
    dev.persist(at, dev.pageSize)
  }
}

t.test('an image without the mark (older mkfs) is read whole and keeps working', async t => {
  const dev = await newDev(t)
  const fs = await mkfs(dev)
  await fill(fs, 30)
  await fs.unmount()
  // The older mkfs zeroed the whole table: on this fresh device every slot past the mark is zero too.
  const sb = sbOf(dev)
  makeOld(dev)
  t.equal(sbOf(dev).features, 0)
  const c = counting(dev)
  const fs2 = await mount(c.view)
  t.equal(c.table(), sb.inodeCount * INODE_SIZE, 'the whole table is read')
  t.equal(await names(fs2), 30)
  await fill(fs2, 30, '/e')
  await fs2.unmount()
  t.equal(sbOf(dev).features, 0, 'mount does not change the format')
  const r = await fsck(dev)
  t.equal(r.exitCode, 0, r.problems.join('; '))
  t.equal(r.summary?.usedInodes, 64)
})

t.test('unknown feature flags are refused with a typed error', async t => {
  const dev = await newDev(t)
  await (await mkfs(dev)).unmount()
  const raw = new Uint8Array(SB_SIZE)
  dev.read(0, raw)
  const v = new DataView(raw.buffer)
  v.setUint32(12, FEATURE_INODE_HIGH | 0x80, true)
  v.setUint32(SB_CRC_OFF, crc32c(raw.subarray(0, SB_CRC_OFF)), true)
  dev.write(0, raw)
  await t.rejects(mount(dev), { code: 'EFSCORRUPTED', message: /unknown feature flags 0x80/ })
})

t.test('a damaged mark: one copy left, mount uses it; both gone, mount refuses and fsck repairs', async t => {
  const dev = await newDev(t)
  const fs = await mkfs(dev)
  await fill(fs, 20)
  await fs.unmount()
  const sb = sbOf(dev)
  dev.write(HWM_OFF + 5, new Uint8Array([0x77]))
  const fs1 = await mount(dev)
  t.equal(await names(fs1), 20, 'the backup copy serves')
  await fs1.unmount()
  const r1 = await fsck(dev)
  t.equal(r1.exitCode, 4)
  t.match(r1.problems.join('\n'), /primary inode high-water mark record: checksum mismatch/)
  dev.write(sb.backupBlock * sb.blockSize + HWM_OFF, new Uint8Array(4))
  await t.rejects(mount(dev), { code: 'EFSCORRUPTED', message: /inode high-water mark record.*run fsck with repair/ })
  const r2 = await fsck(dev, { repair: true })
  t.equal(r2.exitCode, 1, r2.problems.join('; '))
  t.equal((await fsck(dev)).exitCode, 0)
  const fs2 = await mount(dev)
  t.equal(await names(fs2), 20)
  await fs2.unmount()
})
