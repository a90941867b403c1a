/**
 * Conformance vectors, one file per refcount model (test/vectors/<model>.json,
 * SPEC §3): every scenario replayed on its model through the public API
 * (openDevice, dev.pages, the fs, DAX mappings), counters asserted after every
 * step. Each step's `cite` names the kernel function or posted patch it follows
 * (docs/models-sources.md).
 *
 * Scenarios marked `revised` follow the 2026-12 revision of the table (they ran
 * as tap todo until every model had landed; they are plain tests now).
 */
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { setImmediate as macrotask } from 'node:timers/promises'
import { openDevice, type Device } from '../src/region/index.js'
import { mkfs, PTE_NONE, type DaxMapping } from '../src/dax/index.js'
import type { BreakScope, PmemFile } from '../src/fs/index.js'
import { MODEL_NAMES, type ModelName } from '../src/page/index.js'
import { isPmemuError } from '../src/errors.js'

const PS = 4096
const MiB = 1 << 20
/** The four models of the revised table, in the order the docs use. */
const VECTOR_MODELS: readonly ModelName[] = ['legacy', 'dax-gup-v1', 'dax-gup', 'upstream']

type PgmapExpect = number | 'all' | 'base' | `all+${number}` | `base+${number}`
interface Expect {
  refcount?: number; mapcount?: number; pincount?: number; order?: number
  pgmap?: PgmapExpect; maybeDmaPinned?: boolean; violations?: 0 | '>0'; hazards?: 0 | '>0'
  error?: string; pending?: string; mapped?: boolean; allocated?: boolean; entry?: boolean
}
interface Step {
  op: string; cite: string; pfn?: number; page?: number; at?: number; times?: number; longterm?: boolean
  map?: string; count?: number; pages?: number; timeoutMs?: number; async?: boolean; expectError?: string
  expect?: Expect
}
interface Scenario { name: string; fs: boolean; fileBytes?: number; revised?: boolean; needs?: string; mount?: { breakScope?: BreakScope }; steps: Step[] }
interface VectorFile { model: string; scenarios: Scenario[] }

const load = (m: ModelName): VectorFile =>
  JSON.parse(readFileSync(new URL(`./vectors/${m}.json`, import.meta.url), 'utf8')) as VectorFile

async function fsDevice(model: ModelName, fileBytes: number, mount: { breakScope?: BreakScope } = {}): Promise<{ dev: Device; f: PmemFile }> {
  const dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PS, map: 'mem' })
  const fs = await mkfs(dev, mount)
  const f = await fs.open('/f', 'w+')
  if (fileBytes >= 2 * MiB) await f.fallocate(0, fileBytes)
  f.write(new Uint8Array(fileBytes).fill(0x5a), 0)
  await f.fsync()
  return { dev, f }
}

function pgmapWanted(e: PgmapExpect, dev: Device, base: number): number {
  if (typeof e === 'number') return e
  const [what, plus] = e.split('+') as [string, string | undefined]
  return (what === 'all' ? dev.pageCount : base) + (plus === undefined ? 0 : Number(plus))
}

/** A promise's settled state without sleeping: read after two macrotasks. */
function track(p: Promise<unknown>): { p: Promise<unknown>; state: () => string } {
  let s = 'waiting'
  p.then(() => { s = 'resolved' }, (e: unknown) => { s = `rejected:${isPmemuError(e) ? e.code : String(e)}` })
  return { p, state: () => s }
}

/** Replays one scenario on a fresh device of its model. */
async function replay(t: Test, model: ModelName, sc: Scenario, strict: boolean): Promise<void> {
  const fileBytes = sc.fileBytes ?? 8 * PS
  let dev: Device
  let f: PmemFile | undefined
  if (sc.fs) ({ dev, f } = await fsDevice(model, fileBytes, sc.mount))
  else dev = await openDevice(undefined, { size: '64MiB', model, pageSize: PS, map: 'mem', strict })
  const base = dev.pgmapRefs()
  const maps = new Map<string, DaxMapping>()
  let lastMap: DaxMapping | undefined
  let unbound = false
  const known = new Map<number, number>() // file page -> last pfn seen behind it
  const pfnOfPage = (page: number): number => {
    const p = unbound ? null : f!.pfnAt(page)
    if (p !== null) known.set(page, p)
    const k = known.get(page)
    if (k === undefined) throw new Error(`file page ${page} has no block`)
    return k
  }
  let lastPage = 0
  let pending: ReturnType<typeof track> | undefined
  try {
    for (const [i, step] of sc.steps.entries()) {
      const label = `step ${i} ${step.op}${step.times ? ' x' + step.times : ''}${step.page !== undefined ? ' page ' + step.page : ''}`
      const exp = step.expect ?? {}
      if (step.page !== undefined) lastPage = step.page
      const target = step.pfn ?? (sc.fs && ['get', 'put', 'pin', 'unpin'].includes(step.op) ? pfnOfPage(lastPage) : 5)
      const run = async (): Promise<void> => {
        for (let n = 0; n < (step.times ?? 1); n++) {
          switch (step.op) {
            case 'none': break
            case 'get': dev.pages.get(target); break
            case 'put': dev.pages.put(target); break
            case 'pin': dev.pages.pin(target, { longterm: step.longterm }); break
            case 'unpin': dev.pages.unpin(target); break
            case 'map': maps.set(step.map!, f!.mmap(0, fileBytes, { write: true }) as DaxMapping); break
            case 'fault': {
              lastMap = maps.get(step.map!)!
              lastMap.view((step.page ?? 0) * PS, (step.count ?? 1) * PS)
              for (let k = 0; k < (step.count ?? 1); k++) pfnOfPage((step.page ?? 0) + k)
              break
            }
            case 'unmap': maps.get(step.map!)!.unmap(); break
            case 'truncate': case 'punch': case 'unbind': {
              const o = step.timeoutMs !== undefined ? { timeoutMs: step.timeoutMs } : {}
              const p = step.op === 'truncate' ? f!.truncate(step.pages! * PS, o)
                : step.op === 'punch' ? f!.punchHole(step.page! * PS, (step.count ?? 1) * PS, o)
                  : dev.unbind(o)
              if (step.async) { pending = track(p); break }
              await p
              break
            }
            default: throw new Error(`unknown op ${step.op}`)
          }
        }
      }
      let err: string | undefined
      const before = sc.fs || unbound || step.op === 'unbind' ? undefined : dev.page(target)
      try { await run() } catch (e) { err = isPmemuError(e) ? e.code : String(e) }
      const strictThrows = step.expectError === 'strict mode throws here' && strict
      if (strictThrows) {
        t.equal(err, 'EINVAL', `${label}: strict mode throws EINVAL (${step.cite})`)
        t.same(dev.page(target), before, `${label}: strict left the counters as they were`)
      } else if (exp.error) {
        t.equal(err, exp.error, `${label}: ${exp.error} (${step.cite})`)
      } else {
        t.equal(err, undefined, `${label}: no error`)
      }
      if (exp.pending !== undefined) {
        if (!pending) t.fail(`${label}: no async operation to check`)
        else {
          if (exp.pending === 'waiting') { await macrotask(); await macrotask() } else await pending.p.catch(() => {})
          t.equal(pending.state(), exp.pending, `${label}: pending operation ${exp.pending} (${step.cite})`)
          if (exp.pending !== 'waiting') pending = undefined
        }
      }
      if (sc.fs && step.at !== undefined) lastPage = step.at
      const pfn = step.pfn ?? (sc.fs ? pfnOfPage(lastPage) : target)
      const why = ` — ${step.cite}`
      if (step.op === 'unbind' && err === undefined) unbound = true
      const live = !unbound
      if (live && (exp.refcount ?? exp.mapcount ?? exp.pincount ?? exp.order ?? exp.entry) !== undefined) {
        const s = dev.page(pfn)
        if (exp.refcount !== undefined) t.equal(s.refcount, exp.refcount, `${label}: refcount${why}`)
        if (exp.mapcount !== undefined) t.equal(s.mapcount, exp.mapcount, `${label}: mapcount${why}`)
        if (exp.pincount !== undefined) t.equal(s.pincount, exp.pincount, `${label}: pincount${why}`)
        if (exp.order !== undefined) t.equal(s.order, exp.order, `${label}: order${why}`)
        if (exp.entry !== undefined) t.equal(s.flags.includes('entry'), exp.entry, `${label}: page-cache entry${why}`)
      }
      if (exp.pgmap !== undefined) t.equal(dev.pgmapRefs(), pgmapWanted(exp.pgmap, dev, base), `${label}: pgmap refs (${exp.pgmap})${why}`)
      if (exp.maybeDmaPinned !== undefined) t.equal(dev.pages.maybeDmaPinned(pfn), exp.maybeDmaPinned, `${label}: maybeDmaPinned${why}`)
      if (exp.mapped !== undefined) t.equal(lastMap!.pte(lastPage * PS) !== PTE_NONE, exp.mapped, `${label}: mapped${why}`)
      if (exp.allocated !== undefined) t.equal(f!.pfnAt(lastPage) !== null, exp.allocated, `${label}: block allocated${why}`)
      if (exp.hazards === '>0') t.ok(((dev.stats() as Record<string, number | undefined>).hazards ?? 0) > 0, `${label}: hazard counted${why}`)
      if (exp.violations === '>0') t.ok(dev.check().length > 0, `${label}: violations > 0${why}`)
      else if (exp.violations !== undefined) t.same(dev.check(), [], `${label}: no violations${why}`)
    }
    t.equal(pending, undefined, 'no operation left pending')
  } finally {
    if (pending) await pending.p.catch(() => {})
    await dev.close()
  }
}

t.test('conformance vectors: one file per model, every step cited', async t => {
  for (const model of VECTOR_MODELS) {
    const file = load(model)
    t.equal(file.model, model, `${model}.json is for ${model}`)
    for (const sc of file.scenarios) for (const st of sc.steps) {
      if (typeof st.cite !== 'string' || st.cite.length < 8) t.fail(`${model} / ${sc.name}: step ${st.op} has no cite`)
    }
  }
  const names = VECTOR_MODELS.map(m => load(m).scenarios.map(s => s.name).join('\n'))
  t.ok(names.every(n => n === names[0]), 'the four files run the same scenarios')
})

t.test('the vector models are the table\'s models', async t => {
  t.same([...MODEL_NAMES].sort(), [...VECTOR_MODELS].sort(), 'one vector file per model of MODEL_NAMES')
})

for (const model of VECTOR_MODELS) {
  t.test(`vectors: ${model}`, async t => {
    for (const sc of load(model).scenarios) {
      for (const strict of sc.fs ? [false] : [false, true]) {
        await t.test(`${sc.name}${strict ? ' [strict]' : ''}`, async t => {
          await replay(t, model, sc, strict)
        })
      }
    }
  })
}
