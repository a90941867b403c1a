/**
 * The README's tour, runnable: `npx tsx examples/tour.ts`. Opens a device,
 * makes a file system, writes and maps a file, starts a DMA that holds a
 * page, shows truncate waiting for it, and prints the counters.
 * (README imports from 'pmemu'; this file imports the same names from src.)
 */
import { openDevice, mkfs, DmaEngine } from '../src/index.js'

export async function tour(log: (line: string) => void = console.log): Promise<void> {
  const dev = await openDevice(undefined, { size: '64MiB', model: 'upstream' }) // or a file path + create: true
  const fs = await mkfs(dev)
  const file = await fs.open('/data', 'w+')
  file.write(new Uint8Array(16384).fill(0x5a), 0)
  await file.fsync()
  const map = file.mmap(0, 16384, { write: true })
  const pfn = map.pfn(4096) // faults page 1 in: +1 ref, +1 mapcount (upstream)
  log(`after fault: ${JSON.stringify(dev.page(pfn))}`)

  const dma = new DmaEngine(dev, { workers: 2 })
  const t = dma.submit({ map, offset: 4096, length: 4096, direction: 'to-device', hold: 'until-release' })
  await t.pinned
  log(`pinned by DMA: refcount ${dev.page(pfn).refcount}, maybe DMA pinned: ${dev.pages.maybeDmaPinned(pfn)}`)

  let done = false
  const truncating = file.truncate(0).then(() => { done = true }) // unmaps, then waits for the pin
  await new Promise(r => setImmediate(r))
  log(`truncate waiting: ${!done}`)
  t.release()
  log(`DMA copied ${(await t.done).bytes} bytes`)
  await truncating
  log(`truncate done; page idle: refcount ${dev.page(pfn).refcount}; layout waits ${dev.stats().layoutWaits}; violations ${dev.check().length}`)
  await dma.close()
  await fs.unmount()
  await dev.close()
}

if (import.meta.url === `file://${process.argv[1]}`) await tour()
