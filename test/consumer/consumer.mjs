// Run by scripts/consumer-check.sh in a scratch project that installed the
// packed tarball: everything here imports 'pmemu' by name, as a user would.
// Exits non-zero (with the step that failed) on any mismatch.
import { openDevice, mkfs, toNodeFs, DmaEngine, forEachCrash, isPmemuError } from 'pmemu'
import assert from 'node:assert/strict'

const path = process.argv[2]
if (!path) throw new Error('usage: node consumer.mjs <device path>')
let step = 'openDevice'
try {
  const dev = await openDevice(path, { size: '16MiB', create: true })
  step = 'mkfs'
  const pfs = await mkfs(dev)
  step = 'toNodeFs write/read'
  const fs = toNodeFs(pfs)
  await fs.promises.mkdir('/data', { recursive: true })
  await fs.promises.writeFile('/data/hello.txt', 'hello from a consumer')
  assert.equal(await fs.promises.readFile('/data/hello.txt', 'utf8'), 'hello from a consumer')
  step = 'mmap view'
  const file = await pfs.open('/data/mapped', 'w+')
  file.write(new Uint8Array(8192).fill(7), 0)
  await file.fsync()
  const map = file.mmap(0, 8192, { write: true })
  const view = map.view(0, 4096)
  assert.equal(view[100], 7)
  view[100] = 9
  map.persist(0, 4096)
  const back = new Uint8Array(1)
  file.read(back, 100)
  assert.equal(back[0], 9)
  step = 'DMA transfer'
  const dma = new DmaEngine(dev, { workers: 1 })
  const buffer = new Uint8Array(4096)
  const t = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer })
  const r = await t.done
  assert.equal(r.bytes, 4096)
  assert.equal(buffer[100], 9)
  await dma.close()
  map.unmap()
  await file.close()
  step = 'typed errors'
  await assert.rejects(fs.promises.readFile('/missing'), e => isPmemuError(e) || e.code === 'ENOENT')
  await pfs.unmount()
  await dev.close()
  step = 'forEachCrash'
  const res = await forEachCrash(async ({ fs }) => {
    const f = await fs.open('/a', 'w+')
    f.write(new Uint8Array(512).fill(1), 0)
    await f.fsync()
    await f.close()
  }, async ({ fs }) => {
    try { await (await fs.open('/a', 'r')).close() } catch (e) { if (e.code !== 'ENOENT') throw e }
  }, { seeds: 3 })
  assert.equal(res.ok, true)
  console.log(`consumer: ok (${res.runs ?? res.images ?? '?'} crash runs)`)
} catch (e) {
  console.error(`consumer: FAILED at ${step}:`, e)
  process.exit(1)
}
