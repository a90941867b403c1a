/**
 * mkfs / mount / fsck wall times on the bench region: the public mkfs and
 * mount (src/mount.ts: the file system with DAX and fault injection
 * attached, what users call) and src/fs's fsck.
 */
import type { Device } from '../../src/region/index.js'
import type { PmemFs } from '../../src/fs/index.js'
import type { Benchmark, BenchResult } from '../types.js'
import { FS_LAYER, MOUNT_LAYER, layer, needLayers } from '../layers.js'
import { median, result } from '../measure.js'

export type MountMod = { mkfs(dev: Device, o?: object): Promise<PmemFs>; mount(dev: Device, o?: object): Promise<PmemFs> }
type FsckMod = { fsck(dev: Device, o?: object): Promise<unknown> }

const MiB = 2 ** 20

/** ms of an async action (hrtime). */
export async function msOf(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

export const fsTimes: Benchmark = {
  id: 'fs', title: 'mkfs / mount / fsck', paths: ['mkfs', 'mount', 'fsck'], scope: 'global',
  available: () => needLayers(FS_LAYER, MOUNT_LAYER),
  async run(ctx): Promise<BenchResult[]> {
    const m = await layer(MOUNT_LAYER) as unknown as MountMod
    const { fsck } = await layer(FS_LAYER) as unknown as FsckMod
    const rounds = Math.max(1, Math.min(5, ctx.budget.rounds))
    const mk: number[] = []
    const mo: number[] = []
    const ck: number[] = []
    for (let r = 0; r < rounds; r++) {
      let fs: PmemFs | undefined
      mk.push(await msOf(async () => { fs = await m.mkfs(ctx.dev, { label: 'pmemu-bench' }) }))
      // a few files, so mount and fsck have inodes, directories and extents to read
      for (let i = 0; i < 16; i++) {
        const f = await fs!.open(`/f${i}`, 'w+')
        await f.fallocate(0, 64 * 1024)
        await f.close()
      }
      await fs!.unmount()
      mo.push(await msOf(async () => { fs = await m.mount(ctx.dev) }))
      await fs!.unmount()
      ck.push(await msOf(() => fsck(ctx.dev)))
    }
    const note = `${(ctx.dev.capacity / MiB).toFixed(0)} MiB region (${ctx.dev.pageCount} blocks), 16 small files; median of ${rounds}`
    return [
      result({ path: 'mkfs', model: null, unit: 'ms', js: median(mk), note: `public mkfs (format + mount + DAX attached); ${note}` }),
      result({ path: 'mount', model: null, unit: 'ms', js: median(mo), note: `public mount of a clean fs (journal check, bitmap, DAX attached); ${note}` }),
      result({ path: 'fsck', model: null, unit: 'ms', js: median(ck), note: `fsck, read-only check of every structure; ${note}` }),
    ]
  },
}
