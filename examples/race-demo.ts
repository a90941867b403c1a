/**
 * The DMA-vs-truncate race, scripted (docs/dma.md): a device DMA
 * holds pages of a DAX-mapped file, truncate waits for it (the layout
 * break), the DMA releases, truncate completes — with the counters printed
 * at each step, for each refcount model. Then the same with a plain get
 * (FOLL_GET): the seed thread's hazard — under `dax-gup-v1` (the series as
 * posted) truncate waits only for maybe-DMA-pinned pages, so the page is freed
 * while the get still holds it; the other models wait for the get.
 *
 *   npx tsx examples/race-demo.ts [model ...]     (default: every model)
 *
 * No sleeps decide anything: each step awaits the transfer's `pinned` /
 * `done` promises; the short pause before "truncate still waiting?" only
 * gives truncate a chance to (wrongly) finish.
 */
import { pathToFileURL } from 'node:url'
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

/** What one race showed: did truncate wait for the DMA, and what the checker found after it. */
export interface RaceResult { model: ModelName; pin: 'pin' | 'get'; truncateWaited: boolean; violations: string[]; hazards: number }

export async function race(model: ModelName, pin: 'pin' | 'get', log: (line: string) => void = console.log): Promise<RaceResult> {
  const dev = await openDevice(undefined, { size: '16MiB', model })
  const fs = await mkfs(dev)
  const dma = new DmaEngine(dev, { workers: 2 })
  let step = 0
  let truncateWaited = false
  let hazards = 0
  const violations: string[] = []
  const say = (what: string, pfn: number): void => log(`  ${++step}. ${what}\n     ${counters(dev, pfn)}`)
  try {
    log(`\n== ${model}, DMA with pin: '${pin}' (${pin === 'pin' ? 'FOLL_PIN' : 'FOLL_GET'}) — engine mode ${dma.mode}`)
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
    truncateWaited = !truncated
    say(`truncate(${PAGE}) called: ${truncated ? 'it did NOT wait — it already completed' : 'it is waiting (layout break)'}`, pfn)

    t.release()
    const r = await t.done
    say(`DMA released after copying ${r.bytes} bytes in ${(r.ns / 1000).toFixed(1)} µs`, pfn)

    await tr
    say('truncate completed', pfn)
    hazards = dev.stats().hazards ?? 0
    for (const v of dev.check()) violations.push(v.message)
    if (violations.length) for (const v of violations) log(`     checker: ${v}`)
    else log('     checker: no invariant violation')
    map.unmap()
    await f.close()
  } finally {
    await dma.close()
    await fs.unmount().catch(() => {})
    await dev.close()
  }
  return { model, pin, truncateWaited, violations, hazards }
}

/** Every model asked (default: all of MODEL_NAMES), first with a pin, then with a plain get. */
export async function raceDemo(models: readonly ModelName[] = MODEL_NAMES, log?: (line: string) => void): Promise<RaceResult[]> {
  const out: RaceResult[] = []
  for (const pin of ['pin', 'get'] as const) for (const m of models) out.push(await race(m, pin, log))
  return out
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const asked = process.argv.slice(2)
  const bad = asked.filter(m => !isModelName(m))
  if (bad.length) {
    console.error(`unknown model ${bad.join(', ')}: one of ${MODEL_NAMES.join(', ')}`)
    process.exit(2)
  }
  await raceDemo(asked.length ? asked as ModelName[] : MODEL_NAMES)
}
