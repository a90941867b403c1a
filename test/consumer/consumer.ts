// Type-checked with `tsc --noEmit --strict` against the installed package's
// .d.ts by scripts/consumer-check.sh: the public names and shapes a
// TypeScript user writes against.
import {
  openDevice, mkfs, toNodeFs, DmaEngine, forEachCrash, PmemuError,
  type Device, type PmemNodeFs, type DmaResult, type ErrorCode,
} from 'pmemu'

export async function use(path: string): Promise<number> {
  const dev: Device = await openDevice(path, { size: '16MiB', create: true, model: 'upstream' })
  const pfs = await mkfs(dev)
  const fs: PmemNodeFs = toNodeFs(pfs)
  await fs.promises.writeFile('/x', 'y')
  const file = await pfs.open('/x', 'r+')
  const map = file.mmap(0, 4096, { write: true })
  const v: Uint8Array = map.view(0, 1)
  const dma = new DmaEngine(dev, { workers: 1 })
  const r: DmaResult = await dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer: new Uint8Array(4096) }).done
  await dma.close()
  const res = await forEachCrash(async ({ fs }) => { await fs.open('/z', 'w+') }, async () => {}, { seeds: 1 })
  const code: ErrorCode | undefined = res.ok ? undefined : 'EIO'
  try { await fs.promises.readFile('/missing') } catch (e) { if (e instanceof PmemuError) return e.code.length }
  return v.length + r.bytes + (code ? 1 : 0)
}
