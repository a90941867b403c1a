/**
 * The DMA-vs-truncate race, scripted (docs/dma.md): a device DMA
 * holds pages of a DAX-mapped file, truncate waits for it (the layout
 * break), the DMA releases, truncate completes — with the counters printed
 * at each step, for each refcount model. Then the hazard of the seed
 * thread: under `dax-gup` a plain get (FOLL_GET) does not hold truncate back,
 * and the page is freed while the get still holds it.
 *
 *   npx tsx examples/race-demo.ts [legacy|dax-gup|upstream ...]
 *
 * No sleeps decide anything: each step awaits the transfer's `pinned` /
 * `done` promises; the short pause before "truncate still waiting?" only
 * gives truncate a chance to (wrongly) finish.
 */
import { openDevice, type Device } from '../src/region/index.js'
import { MODEL_NAMES, isModelName, type ModelName } from '../src/page/index.js'
import { mkfs, mmap } from '../src/dax/index.js'
import { DmaEngine } from '../src/dma/index.js'

const PAGE = 4096

function counters(dev: Device, pfn: number): string {
  const p = dev.page(pfn)
  const s = dev.stats()
  const flags = p.flags.length ? p.flags.join(',') : '-'
  return `pfn ${pfn}: refcount ${p.refcount}, mapcount ${p.mapcount}, pincount ${p.pincount}, flags ${flags}` +
    ` | pins ${s.pins} unpins ${s.unpins} gets ${s.gets} puts ${s.puts} layoutWaits ${s.layoutWaits} waiters ${s.waiters}` +
    ` hazards ${s.hazards} pgmapRefs ${dev.pgmapRefs()}`
}

const tick = (ms = 20): Promise<void> => new Promise(r => setTimeout(r, ms))

async function race(model: ModelName, pin: 'pin' | 'get'): Promise<void> {
  const dev = await openDevice(undefined, { size: '16MiB', model })
  const fs = await mkfs(dev)
  const dma = new DmaEngine(dev, { workers: 2 })
  let step = 0
  const say = (what: string, pfn: number): void => console.log(`  ${++step}. ${what}\n     ${counters(dev, pfn)}`)
  try {
    console.log(`\n== ${model}, DMA with pin: '${pin}' (${pin === 'pin' ? 'FOLL_PIN' : 'FOLL_GET'}) — engine mode ${dma.mode}`)
    const f = await fs.open('/data', 'w+')
    await f.write(new Uint8Array(4 * PAGE).fill(0xab), 0)
    const map = mmap(f, 0, 4 * PAGE, { write: true })
    map.populate()
    const pfn = map.pfn(2 * PAGE)
    say('file written and mapped (page 2 of the file)', pfn)

    const t = dma.submit({ map, offset: 2 * PAGE, length: PAGE, direction: 'to-device', pin, hold: 'until-release' })
    await t.pinned
    say(`DMA ${pin === 'pin' ? 'pinned' : 'got'} the page and holds it (hold: 'until-release')`, pfn)

    let truncated = false
    const tr = f.truncate(PAGE).then(() => { truncated = true })
    await tick()
    say(`truncate(${PAGE}) called: ${truncated ? 'it did NOT wait — it already completed' : 'it is waiting (layout break)'}`, pfn)

    t.release()
    const r = await t.done
    say(`DMA released after copying ${r.bytes} bytes in ${(r.ns / 1000).toFixed(1)} µs`, pfn)

    await tr
    say('truncate completed', pfn)
    const bad = dev.check()
    if (bad.length) {
      for (const v of bad) console.log(`     checker: ${v.message}`)
    } else {
      console.log('     checker: no invariant violation')
    }
    map.unmap()
    await f.close()
  } finally {
    await dma.close()
    await fs.unmount().catch(() => {})
    await dev.close()
  }
}

const asked = process.argv.slice(2)
const models = asked.length ? asked : MODEL_NAMES
for (const m of models) {
  if (!isModelName(m)) {
    console.error(`unknown model ${m}: one of ${MODEL_NAMES.join(', ')}`)
    process.exit(2)
  }
}
for (const m of models as ModelName[]) await race(m, 'pin')
// The hazard: dax-gup waits only for maybe-DMA-pinned pages, not for plain gets.
for (const m of models as ModelName[]) if (m === 'dax-gup') await race(m, 'get')
