import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice, type Device } from '../src/region/index.js'
import { MODELS, PIN_BIAS, FOLIO_PAGES, MODEL_NAMES, type ModelName } from '../src/page/index.js'
import { PmemuError, pmemError } from '../src/errors.js'
import { PTE_NONE, type DaxMappingLike, type MappingShare } from '../src/dax/types.js'
import { DmaEngine, type DmaTransfer } from '../src/dma/index.js'
import { mkfs, mmap } from '../src/dax/index.js'

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-dma-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let fileNo = 0
const file = (): string => join(dir, `d${fileNo++}.pmem`)

/**
 * A stand-in for src/dax's mapping: file page i is device page base + i
 * (identity pfns), ptes in a SharedArrayBuffer, fault() runs the model's
 * insert path (entryInsert once per page, mapInsert per mapping), a folio
 * option maps 2 MiB-aligned chunks as one PMD (upstream: one order-9 folio),
 * truncate() zaps, waits per the model (layout break), deletes and frees.
 */
class FakeMapping extends EventEmitter implements DaxMappingLike {
  static nextId = 1
  readonly id = FakeMapping.nextId++
  readonly offset = 0
  readonly length: number
  readonly writable: boolean
  readonly ptes: Int32Array
  readonly state: Int32Array
  readonly generation: number
  eof: number
  readonly entries = new Set<number>()
  folioHeads = new Set<number>()
  hazards = 0

  constructor(readonly dev: Device, readonly base: number, length: number, opts: { write?: boolean; folio?: boolean } = {}) {
    super()
    this.length = length
    this.eof = length
    this.writable = opts.write ?? true
    this.folio = opts.folio === true
    this.ptes = new Int32Array(new SharedArrayBuffer(4 * Math.ceil(length / dev.pageSize))).fill(PTE_NONE)
    this.state = new Int32Array(new SharedArrayBuffer(4))
    this.generation = dev.generation
  }

  readonly folio: boolean
  get live(): boolean { return this.state[0] === 0 }
  get ps(): number { return this.dev.pageSize }

  fault(offset: number, length: number, _write: boolean): void {
    if (!this.live) throw pmemError('SIGBUS', 'fault', 'mapping is unmapped', { offset })
    const table = this.dev.table
    for (let p = Math.floor(offset / this.ps); p * this.ps < offset + length; p++) {
      if (this.ptes[p] !== PTE_NONE) continue
      if (p * this.ps >= this.eof) throw pmemError('SIGBUS', 'fault', 'past EOF', { offset: p * this.ps })
      if (this.folio) {
        const h = p - (p % FOLIO_PAGES)
        if (!this.folioHeads.has(h)) {
          if (this.dev.model === 'upstream') table.makeFolio(this.base + h)
          if (this.dev.model === 'upstream') { table.entryInsert(this.base + h); table.mapInsert(this.base + h) } else {
            table.entryInsert(this.base + h, FOLIO_PAGES); table.mapInsert(this.base + h, FOLIO_PAGES)
          }
          for (let k = 0; k < FOLIO_PAGES; k++) { this.entries.add(h + k); Atomics.store(this.ptes, h + k, this.base + h + k) }
          this.folioHeads.add(h)
        }
        continue
      }
      const pfn = this.base + p
      if (!this.entries.has(p)) { table.entryInsert(pfn); this.entries.add(p) }
      table.mapInsert(pfn)
      table.bump('faults')
      Atomics.store(this.ptes, p, pfn)
    }
  }

  view(offset: number, length: number): Uint8Array {
    this.fault(offset, length, this.writable)
    return this.dev.view(this.base * this.ps + offset, length)
  }
  populate(): void { this.fault(0, this.length, this.writable) }
  persist(): void {}
  pfn(offset: number): number { return this.base + Math.floor(offset / this.ps) }

  #zap(fromPage: number): void {
    const table = this.dev.table
    for (let p = fromPage; p < this.ptes.length; p++) {
      const pfn = Atomics.exchange(this.ptes, p, PTE_NONE)
      if (pfn === PTE_NONE) continue
      if (this.folio && this.dev.model === 'upstream') { if (p % FOLIO_PAGES === 0) table.zap(pfn) } else table.zap(pfn)
    }
  }

  unmap(): void {
    if (!this.live) return
    Atomics.store(this.state, 0, 1)
    this.#zap(0)
  }

  /** truncate(newLen): unmap past EOF, break the layout (wait per model), delete the entries, free. */
  async truncate(newLen: number, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    const from = Math.ceil(newLen / this.ps)
    const pages = Math.ceil(this.length / this.ps)
    this.eof = newLen
    this.#zap(from)
    const table = this.dev.table
    // the model's breakEntries: the reworked dax-gup drops the entries' refs before it waits
    const before = MODELS[this.dev.model].breakEntries === 'scope-before-wait'
    const dropped = new Set<number>()
    if (before) for (let p = from; p < pages; p++) if (this.entries.delete(p)) { table.entryDelete(this.base + p); dropped.add(p) }
    if (pages > from) await table.waitIdle(this.base + from, pages - from, opts)
    for (let p = from; p < pages; p++) {
      if (!before && !this.entries.delete(p)) continue
      if (before && !dropped.has(p)) continue
      if (!before) table.entryDelete(this.base + p)
      if (!table.free(this.base + p)) this.hazards++
    }
  }

  share(): MappingShare {
    return {
      id: this.id, generation: this.generation, offset: this.offset, length: this.length, writable: this.writable,
      pageSize: this.ps, ptes: this.ptes.buffer as SharedArrayBuffer, state: this.state.buffer as SharedArrayBuffer,
    }
  }
}

const mem = (model: ModelName = 'upstream', extra: Record<string, unknown> = {}): Promise<Device> =>
  openDevice(undefined, { size: '8MiB', model, ...extra })

/** refcount of a page at rest with one mapping faulted in, per model. */
function mappedRef(model: ModelName): number {
  const m = MODELS[model]
  return m.idleRefcount + m.entryRefs + m.mapRefs // legacy, dax-gup-v1 idle 1; dax-gup entry ref 1; upstream map ref 1
}

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff }
  return b
}

async function rejects(t: Test, p: Promise<unknown>, code: string, msg?: string): Promise<PmemuError> {
  try {
    await p
  } catch (e) {
    t.ok(e instanceof PmemuError, `${msg ?? code}: a PmemuError`)
    t.equal((e as PmemuError).code, code, msg ?? code)
    return e as PmemuError
  }
  t.fail(`${msg ?? code}: expected a rejection`)
  return undefined as never
}


function pinsOf(dev: Device): number {
  const s = dev.stats()
  return (s.pins ?? 0) - (s.unpins ?? 0)
}

function checkClean(t: Test, dev: Device, what: string): void {
  t.same(dev.check().map(v => v.message), [], `${what}: no invariant violation`)
}

// ---------------------------------------------------------------------------------------------------

for (const model of MODEL_NAMES) {
  t.test(`${model}, fake mapping`, async t => {
  const dev = await mem(model)
  const dma = new DmaEngine(dev, { workers: 2 })
  t.teardown(async () => { await dma.close(); await dev.close() })

  t.test(`${model}: bytes both directions, several workers, pinned then done`, async t => {
    t.equal(dma.mode, 'workers')
    const base = 64
    const map = new FakeMapping(dev, base, 64 * 4096)
    // from-device writes the region (unaligned range, slow path faults the pages)
    const src = pattern(5 * 4096 + 123, 7)
    const off = 4096 + 77
    const w = dma.submit({ map, offset: off, length: src.length, direction: 'from-device', buffer: src })
    await w.pinned
    const r1 = await w.done
    t.equal(r1.bytes, src.length)
    t.ok(r1.ns >= 0)
    t.same(dev.view(base * 4096 + off, src.length), src, 'region holds what the device wrote')
    // to-device reads it back into the default (shared) buffer
    const r = dma.submit({ map, offset: off, length: src.length, direction: 'to-device' })
    t.ok(r.buffer.buffer instanceof SharedArrayBuffer, 'default buffer is shared')
    await r.done
    t.same(r.buffer, src)
    // and into a caller's non-shared buffer (staged), at a byteOffset
    const big = new Uint8Array(src.length + 16)
    const dst = big.subarray(16)
    await dma.submit({ map, offset: off, length: src.length, direction: 'to-device', buffer: dst }).done
    t.same(dst, src, 'staged copy out')
    t.same(Array.from(big.subarray(0, 16)), new Array(16).fill(0), 'bytes before the view untouched')
    // many transfers at once, spread over both workers
    const ts: DmaTransfer[] = []
    for (let i = 0; i < 16; i++) {
      const b = pattern(4096, 100 + i)
      ts.push(dma.submit({ map, offset: (8 + i) * 4096, length: 4096, direction: 'from-device', buffer: b }))
    }
    await Promise.all(ts.map(x => x.done))
    for (let i = 0; i < 16; i++) t.same(dev.view((base + 8 + i) * 4096, 4096), pattern(4096, 100 + i), `page ${i}`)
    // every page back to its mapped resting count, no pin left
    for (let p = 0; p < 24; p++) t.equal(dev.page(base + p).refcount, p >= 1 && p <= 6 || p >= 8 ? mappedRef(model) : MODELS[model].idleRefcount)
    t.equal(pinsOf(dev), 0)
    t.equal(dev.stats().dmaTransfers, 19)
    t.equal(dev.stats().dmaBytes, 3 * src.length + 16 * 4096)
    const st = dma.stats()
    t.equal(st.completed, 19)
    t.ok(st.faults > 0, 'slow path used')
    checkClean(t, dev, model)
  })

  t.test(`${model}: hold until-release keeps the pins; 'get' keeps a plain ref`, async t => {
    const map = new FakeMapping(dev, 10, 8 * 4096)
    map.populate()
    const rest = mappedRef(model)
    const h = dma.submit({ map, offset: 0, length: 3 * 4096, direction: 'to-device', hold: 'until-release' })
    await h.pinned
    for (let p = 10; p < 13; p++) {
      t.equal(dev.page(p).refcount, rest + PIN_BIAS, `pfn ${p} pinned (bias)`)
      t.ok(dev.table.maybeDmaPinned(p))
    }
    t.equal(dev.page(13).refcount, rest)
    const g = dma.submit({ map, offset: 4 * 4096, length: 4096, direction: 'to-device', pin: 'get', hold: 'until-release' })
    await g.pinned
    t.equal(dev.page(14).refcount, rest + 1, 'FOLL_GET: +1')
    t.notOk(dev.table.maybeDmaPinned(14))
    t.equal(h.state, 'pinned')
    h.release()
    g.release()
    await Promise.all([h.done, g.done])
    for (let p = 10; p < 15; p++) t.equal(dev.page(p).refcount, rest, `pfn ${p} back at rest`)
    // a timed hold
    // long enough that a loaded machine still sees the pin held when pinned resolves
    const timed = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 500 })
    await timed.pinned
    t.equal(dev.page(10).refcount, rest + PIN_BIAS)
    await timed.done
    t.equal(dev.page(10).refcount, rest)
    checkClean(t, dev, model)
  })

  t.test(`${model}: concurrent transfers on one page from 2 workers count exactly`, async t => {
    const map = new FakeMapping(dev, 200, 4 * 4096)
    map.populate()
    const rest = mappedRef(model)
    const N = 12
    const ts = Array.from({ length: N }, (_, i) => dma.submit({
      map, offset: 100 * (i % 3), length: 4096 - 100 * (i % 3), direction: 'to-device', hold: 'until-release',
      pin: i % 4 === 3 ? 'get' : 'pin',
    }))
    await Promise.all(ts.map(x => x.pinned))
    const pins = ts.filter((_, i) => i % 4 !== 3).length
    const gets = N - pins
    t.equal(dev.page(200).refcount, rest + pins * PIN_BIAS + gets, 'sum of every pin and get')
    for (const x of ts) x.release()
    await Promise.all(ts.map(x => x.done))
    t.equal(dev.page(200).refcount, rest, 'back to rest')
    // a burst without holds, many pages, repeated
    const burst = Array.from({ length: 40 }, (_, i) => dma.submit({ map, offset: (i % 4) * 1000, length: 3 * 4096, direction: 'to-device' }))
    await Promise.all(burst.map(x => x.done))
    for (let p = 200; p < 204; p++) t.equal(dev.page(p).refcount, rest)
    t.equal(pinsOf(dev), 0)
    checkClean(t, dev, model)
  })

  t.test(`${model}: truncate waits for a held pin, completes after release; 'get' per model`, async t => {
    const map = new FakeMapping(dev, 300, 8 * 4096)
    map.populate()
    const held = dma.submit({ map, offset: 4 * 4096, length: 4096, direction: 'to-device', hold: 'until-release' })
    await held.pinned
    let truncated = false
    const tr = map.truncate(2 * 4096).then(() => { truncated = true })
    await new Promise(r => setImmediate(r))
    await new Promise(r => setTimeout(r, 5))
    t.equal(truncated, false, 'truncate waits for the pinned page')
    t.equal(dev.stats().layoutWaits, 1)
    held.release()
    await held.done
    await tr
    t.equal(truncated, true, 'truncate completes after release')
    t.equal(map.hazards, 0)
    checkClean(t, dev, model)

    // FOLL_GET: legacy and upstream wait for it; dax-gup does not (the hazard)
    const map2 = new FakeMapping(dev, 400, 8 * 4096)
    map2.populate()
    const g = dma.submit({ map: map2, offset: 4 * 4096, length: 4096, direction: 'to-device', pin: 'get', hold: 'until-release' })
    await g.pinned
    let done2 = false
    const tr2 = map2.truncate(2 * 4096).then(() => { done2 = true })
    await new Promise(r => setTimeout(r, 5))
    if (MODELS[model].busy === 'maybe-dma-pinned') {
      t.equal(done2, true, `${model}: truncate does not wait for a plain get`)
      t.equal(map2.hazards, 1, 'the page was freed while the get still holds it')
      t.ok(dev.check().some(v => v.kind === 'use-after-free hazard'), 'checker reports the use-after-free hazard')
      g.release()
      await g.done
      dev.table.clearViolations()
    } else {
      t.equal(done2, false, `${model}: truncate waits for the get`)
      g.release()
      await g.done
      await tr2
      t.equal(map2.hazards, 0)
      checkClean(t, dev, model)
    }
    await tr2
  })
  })
}

t.test('upstream: a 2 MiB folio is pinned on its head (exact pincount)', async t => {
  const dev = await mem('upstream')
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 512, 2 * 1024 * 1024, { folio: true })
  const h = dma.submit({ map, offset: 4096, length: 10 * 4096, direction: 'from-device', buffer: pattern(10 * 4096, 3), hold: 'until-release' })
  await h.pinned
  const head = dev.page(512)
  t.equal(head.order, 9)
  t.equal(head.pincount, 10, 'one pincount per page pinned')
  t.equal(head.refcount, 1 + 10, 'PMD mapping ref + one per pinned page')
  t.equal(dev.page(515).pincount, 10, 'a tail reports its head')
  h.release()
  await h.done
  t.equal(dev.page(512).pincount, 0)
  t.equal(dev.page(512).refcount, 1)
  t.same(dev.view((512 + 1) * 4096, 10 * 4096), pattern(10 * 4096, 3))
  // the whole folio, both directions
  const all = pattern(2 * 1024 * 1024, 9)
  await dma.submit({ map, offset: 0, length: all.length, direction: 'from-device', buffer: all }).done
  const back = dma.submit({ map, offset: 0, length: all.length, direction: 'to-device' })
  await back.done
  t.ok(Buffer.compare(back.buffer, all) === 0, 'folio round trip')
  checkClean(t, dev, 'folio')
  await dma.close()
  await dev.close()
})

t.test('longterm is refused with EOPNOTSUPP and pins nothing', async t => {
  const dev = await mem()
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 0, 4 * 4096)
  map.populate()
  const x = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', longterm: true })
  await rejects(t, x.pinned, 'EOPNOTSUPP')
  await rejects(t, x.done, 'EOPNOTSUPP')
  t.equal(dev.stats().pins, 0)
  t.equal(dev.page(0).refcount, 1)
  await dma.close()
  await dev.close()
})

t.test('a poisoned page fails with EHWPOISON and leaves no pin', async t => {
  const dev = await mem('upstream')
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 20, 8 * 4096)
  map.populate()
  dev.poison((20 + 5) * 4096 + 512, 512)
  const x = dma.submit({ map, offset: 2 * 4096, length: 6 * 4096, direction: 'to-device' })
  const e = await rejects(t, x.done, 'EHWPOISON')
  t.equal(e.errno, 133)
  t.equal(e.pfn, 25)
  await rejects(t, x.pinned, 'EHWPOISON', 'pinned rejects too')
  for (let p = 20; p < 28; p++) t.equal(dev.page(p).refcount, 1, `pfn ${p} at rest`)
  t.equal(pinsOf(dev), 0)
  // the pages around the poison still work
  await dma.submit({ map, offset: 0, length: 5 * 4096, direction: 'to-device' }).done
  checkClean(t, dev, 'poison')
  await dma.close()
  await dev.close()
})

t.test('worker death or a throwing transfer releases every pin', async t => {
  const dev = await mem('legacy')
  const dma = new DmaEngine(dev, { workers: 2 })
  const map = new FakeMapping(dev, 40, 16 * 4096)
  map.populate()
  for (const fail of ['throw-after-pin', 'exit-after-pin', 'uncaught-after-pin'] as const) {
    const other = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release' })
    await other.pinned
    const x = dma.submit({ map, offset: 0, length: 8 * 4096, direction: 'to-device', fail })
    await x.pinned
    await rejects(t, x.done, 'EIO', fail)
    t.equal(dev.page(40).refcount, 1 + PIN_BIAS, `${fail}: only the other transfer's pin is left`)
    for (let p = 41; p < 48; p++) t.equal(dev.page(p).refcount, 1)
    other.release()
    await other.done
    t.equal(dev.page(40).refcount, 1)
  }
  const st = dma.stats()
  t.equal(st.workerDeaths, 2)
  t.equal(st.pinsReclaimed, 16)
  // the pool is whole again
  const ok = await Promise.all([0, 1, 2, 3].map(i => dma.submit({ map, offset: i * 4096, length: 4096, direction: 'to-device' }).done))
  t.equal(ok.length, 4)
  t.equal(pinsOf(dev), 0)
  checkClean(t, dev, 'crash')
  await dma.close()
  await dev.close()
})

t.test('close waits for in-flight transfers; close with a signal aborts them', async t => {
  const dev = await mem('dax-gup')
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 60, 4 * 4096)
  map.populate()
  const h = dma.submit({ map, offset: 0, length: 2 * 4096, direction: 'to-device', hold: 'until-release' })
  await h.pinned
  let closed = false
  const c = dma.close().then(() => { closed = true })
  await new Promise(r => setTimeout(r, 5))
  t.equal(closed, false, 'close waits for the held transfer')
  await rejects(t, dma.submit({ map, offset: 0, length: 1, direction: 'to-device' }).done, 'ENODEV', 'no submit while closing')
  h.release()
  await h.done
  await c
  t.equal(closed, true)
  t.equal(dma.close(), dma.close(), 'idempotent')

  const dma2 = new DmaEngine(dev, { workers: 2 })
  const ac = new AbortController()
  const held = dma2.submit({ map, offset: 0, length: 4 * 4096, direction: 'to-device', hold: 'until-release' })
  const hung = dma2.submit({ map, offset: 4096, length: 4096, direction: 'to-device', fail: 'hang-after-pin' })
  await Promise.all([held.pinned, hung.pinned])
  t.equal(dev.page(61).refcount, 1 + 2 * PIN_BIAS)
  const c2 = dma2.close({ signal: ac.signal })
  ac.abort()
  const e = await rejects(t, held.done, 'ABORT_ERR')
  t.equal(e.name, 'AbortError')
  await rejects(t, hung.done, 'ABORT_ERR')
  await c2
  for (let p = 60; p < 64; p++) t.equal(dev.page(p).refcount, 1)
  t.equal(dma2.stats().aborted, 2)

  // a per-transfer signal
  const dma3 = new DmaEngine(dev, { workers: 1 })
  const ac3 = new AbortController()
  const x = dma3.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release', signal: ac3.signal })
  await x.pinned
  ac3.abort()
  await rejects(t, x.done, 'ABORT_ERR')
  t.equal(dev.page(60).refcount, 1)
  // an already-aborted close aborts at once
  const y = dma3.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release' })
  await y.pinned
  await dma3.close({ signal: AbortSignal.abort() })
  await rejects(t, y.done, 'ABORT_ERR')
  t.equal(pinsOf(dev), 0)
  checkClean(t, dev, 'close')
  await dev.close()
})

t.test('invalid input is EINVAL before anything is pinned', async t => {
  const dev = await mem()
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 0, 4 * 4096)
  const ro = new FakeMapping(dev, 8, 4 * 4096, { write: false })
  const good = { map, offset: 0, length: 4096, direction: 'to-device' as const }
  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['negative offset', { ...good, offset: -1 }, 'EINVAL'],
    ['fractional offset', { ...good, offset: 1.5 }, 'EINVAL'],
    ['NaN length', { ...good, length: NaN }, 'EINVAL'],
    ['negative length', { ...good, length: -4 }, 'EINVAL'],
    ['past the mapping', { ...good, offset: 3 * 4096, length: 4097 }, 'EINVAL'],
    ['string length', { ...good, length: '4096' }, 'EINVAL'],
    ['unknown direction', { ...good, direction: 'sideways' }, 'EINVAL'],
    ['buffer too small', { ...good, buffer: new Uint8Array(10) }, 'EINVAL'],
    ['buffer not bytes', { ...good, buffer: new Uint16Array(4096) }, 'EINVAL'],
    ['bad pin', { ...good, pin: 'grab' }, 'EINVAL'],
    ['bad hold', { ...good, hold: -3 }, 'EINVAL'],
    ['bad hold string', { ...good, hold: 'forever' }, 'EINVAL'],
    ['no map', { ...good, map: undefined }, 'EINVAL'],
    ['not a map', { ...good, map: {} }, 'EINVAL'],
    ['read-only mapping, device writes', { ...good, map: ro, direction: 'from-device' }, 'EFAULT'],
  ]
  for (const [what, o, code] of bad) {
    const x = dma.submit(o as never)
    await rejects(t, x.done, code, what)
    await rejects(t, x.pinned, code, `${what} (pinned)`)
  }
  await rejects(t, dma.submit(undefined as never).done, 'EINVAL', 'no options')
  t.throws(() => new DmaEngine(dev, { workers: -1 }), { code: 'EINVAL' })
  t.throws(() => new DmaEngine(dev, { workers: 1.5 }), { code: 'EINVAL' })
  t.throws(() => new DmaEngine(dev, { latencyNs: -1 }), { code: 'EINVAL' })
  t.throws(() => new DmaEngine(dev, { bandwidth: 0 }), { code: 'EINVAL' })
  t.throws(() => new DmaEngine({} as Device), { code: 'EINVAL' })
  t.equal(dev.stats().pins, 0)
  t.equal(dev.stats().gets, 0)
  t.equal(dev.stats().faults, 0, 'nothing faulted either')
  // a zero-length transfer is fine
  t.equal((await dma.submit({ ...good, length: 0 }).done).bytes, 0)
  await dma.close()
  await dev.close()
})

t.test('dead mappings, truncated ranges, crash and unbind', async t => {
  const dev = await mem('upstream', { crashShadow: true })
  const dma = new DmaEngine(dev)
  const map = new FakeMapping(dev, 100, 8 * 4096)
  map.populate()
  const m2 = new FakeMapping(dev, 120, 8 * 4096)
  m2.unmap()
  await rejects(t, dma.submit({ map: m2, offset: 0, length: 10, direction: 'to-device' }).done, 'EFAULT', 'dead mapping')
  // a truncated range: the slow path's fault is SIGBUS -> EFAULT, nothing pinned
  const m3 = new FakeMapping(dev, 140, 8 * 4096)
  await m3.truncate(4 * 4096)
  const e = await rejects(t, dma.submit({ map: m3, offset: 2 * 4096, length: 4 * 4096, direction: 'to-device' }).done, 'EFAULT', 'past EOF')
  t.equal((e.cause as PmemuError).code, 'SIGBUS')
  for (let p = 140; p < 148; p++) t.equal(dev.page(p).refcount, p === 142 || p === 143 ? 1 : 0, `pfn ${p} not pinned`)
  t.equal(pinsOf(dev), 0)
  // a mapping unmapped while the transfer waits for its slow path: the fault fails, nothing stays pinned
  const m4 = new FakeMapping(dev, 160, 8 * 4096)
  m4.fault(0, 4096, false)
  const origFault = m4.fault.bind(m4)
  m4.fault = (o, l, w) => { m4.unmap(); origFault(o, l, w) }
  await rejects(t, dma.submit({ map: m4, offset: 0, length: 4 * 4096, direction: 'to-device' }).done, 'EFAULT', 'unmapped under the transfer')
  t.equal(dev.page(160).refcount, 0)
  // crash with a held transfer: ENXIO, pins dropped before the table is reset
  const h = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release' })
  await h.pinned
  await dev.crash({ keep: 'all' })
  await rejects(t, h.done, 'ENXIO', 'in flight across a crash')
  await rejects(t, dma.submit({ map, offset: 0, length: 4096, direction: 'to-device' }).done, 'ENXIO', 'mapping of the old life')
  t.same(dev.check(), [])
  // a new mapping after the crash works
  const fresh = new FakeMapping(dev, 100, 8 * 4096)
  await dma.submit({ map: fresh, offset: 0, length: 4096, direction: 'to-device' }).done
  fresh.unmap()
  await dev.unbind()
  await rejects(t, dma.submit({ map: fresh, offset: 0, length: 4096, direction: 'to-device' }).done, 'ENXIO', 'after unbind')
  await dma.close()
  await dev.close()
})

t.test('device model: latency and bandwidth', async t => {
  const dev = await mem()
  const dma = new DmaEngine(dev, { workers: 1, latencyNs: 3e6, bandwidth: '100MiB' })
  const map = new FakeMapping(dev, 0, 1024 * 1024)
  map.populate()
  const r = await dma.submit({ map, offset: 0, length: 1024 * 1024, direction: 'to-device' }).done
  // 3 ms + 1 MiB / 100 MiB/s = 13 ms
  // A lower bound only: the pacing guarantees it; upper bounds are for benchmarks (shared, noisy machines).
  t.ok(r.ns >= 12.9e6, `paced: ${(r.ns / 1e6).toFixed(2)} ms >= 13 ms`)
  t.equal(r.bytes, 1024 * 1024)
  await dma.close()
  const fast = new DmaEngine(dev, { workers: 1 })
  const f = await fast.submit({ map, offset: 0, length: 1024 * 1024, direction: 'to-device' }).done
  t.equal(f.bytes, 1024 * 1024, 'no model: copied at memory speed (timed in the benchmarks, not here)')
  await fast.close()
  await dev.close()
})

t.test('mmap-io backend: the engine runs on the main thread and says so', async t => {
  let dev: Device
  try {
    dev = await openDevice(file(), { size: '8MiB', create: true, backend: 'mmap-io', model: 'legacy' })
  } catch (e) {
    t.pass(`skipped: mmap-io unavailable: ${(e as Error).message}`)
    return
  }
  const dma = new DmaEngine(dev)
  t.equal(dma.mode, 'main-thread')
  t.match(dma.modeReason, /mmap-io.*main thread/)
  const map = new FakeMapping(dev, 30, 8 * 4096)
  const src = pattern(3 * 4096, 5)
  await dma.submit({ map, offset: 100, length: src.length, direction: 'from-device', buffer: src }).done
  const back = new Uint8Array(src.length)
  await dma.submit({ map, offset: 100, length: src.length, direction: 'to-device', buffer: back }).done
  t.same(back, src)
  const h = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', hold: 'until-release' })
  await h.pinned
  t.equal(dev.page(30).refcount, 1 + PIN_BIAS)
  h.release()
  await h.done
  t.equal(dev.page(30).refcount, 1)
  const x = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', fail: 'throw-after-pin' })
  await rejects(t, x.done, 'EIO')
  await rejects(t, dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', fail: 'exit-after-pin' }).done, 'EIO')
  await rejects(t, dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', longterm: true }).done, 'EOPNOTSUPP')
  t.equal(pinsOf(dev), 0)
  t.throws(() => new DmaEngine(dev, { mode: 'workers' }), { code: 'EOPNOTSUPP' })
  await dma.close()
  checkClean(t, dev, 'mmap-io')
  await dev.close()
})

t.test('gup-fast re-check: pins racing zaps never leak (stress)', async t => {
  const dev = await mem('upstream')
  const dma = new DmaEngine(dev, { workers: 2 })
  const map = new FakeMapping(dev, 600, 32 * 4096)
  let submitted = 0
  const ts: DmaTransfer[] = []
  for (let round = 0; round < 30; round++) {
    map.populate()
    for (let k = 0; k < 4; k++) {
      ts.push(dma.submit({ map, offset: ((round * 7 + k * 5) % 24) * 4096, length: 8 * 4096, direction: 'to-device' }))
      submitted++
    }
    // zap everything while the workers pin: they back off and fault again
    await new Promise(r => setImmediate(r))
    for (let p = 0; p < 32; p++) {
      const pfn = Atomics.exchange(map.ptes, p, PTE_NONE)
      if (pfn !== PTE_NONE) dev.table.zap(pfn)
    }
  }
  const res = await Promise.allSettled(ts.map(x => x.done))
  t.equal(res.length, submitted)
  t.equal(res.filter(r => r.status === 'rejected').length, 0, 'all transfers went through the slow path when needed')
  for (let p = 0; p < 32; p++) {
    const pfn = Atomics.exchange(map.ptes, p, PTE_NONE)
    if (pfn !== PTE_NONE) dev.table.zap(pfn)
  }
  for (let p = 600; p < 632; p++) t.equal(dev.page(p).refcount, 0)
  t.equal(pinsOf(dev), 0)
  checkClean(t, dev, 'stress')
  t.comment(`retries ${dma.stats().retries}, faults ${dma.stats().faults}`)
  await dma.close()
  await dev.close()
})

// ---------------------------------------------------------------------------------------------------
// Through the real path: openDevice (memory) + mkfs from src/dax + file.mmap

for (const model of MODEL_NAMES) {
  t.test(`${model}, real DAX mappings`, async t => {
    const dev = await openDevice(undefined, { size: '16MiB', model })
    const fs = await mkfs(dev)
    const dma = new DmaEngine(dev, { workers: 2 })
    t.teardown(async () => { await dma.close(); await fs.unmount().catch(() => {}); await dev.close() })
    const rest = mappedRef(model)
    const idle = MODELS[model].idleRefcount

    t.test('bytes both directions through file.mmap', async t => {
      const f = await fs.open('/bytes', 'w+')
      const data = pattern(64 * 1024, 11)
      await f.write(data, 0)
      const map = mmap(f, 0, 64 * 1024, { write: true })
      const r = dma.submit({ map, offset: 0, length: data.length, direction: 'to-device' })
      await r.done
      t.ok(Buffer.compare(r.buffer, data) === 0, 'the device read what the file holds')
      const upd = pattern(20000, 12)
      await dma.submit({ map, offset: 5000, length: upd.length, direction: 'from-device', buffer: upd }).done
      const back = new Uint8Array(upd.length)
      await f.read(back, 5000)
      t.ok(Buffer.compare(back, upd) === 0, 'the file reads what the device wrote')
      t.equal(pinsOf(dev), 0)
      map.unmap()
      await f.close()
      checkClean(t, dev, 'bytes')
    })

    t.test('the race: truncate waits for a held transfer, completes after release', async t => {
      const f = await fs.open('/race', 'w+')
      await f.write(pattern(8 * 4096, 13), 0)
      const map = mmap(f, 0, 8 * 4096, { write: true })
      const held = dma.submit({ map, offset: 4 * 4096, length: 2 * 4096, direction: 'to-device', hold: 'until-release' })
      await held.pinned
      const pfn = map.pfn(4 * 4096)
      t.equal(dev.page(pfn).refcount, rest + PIN_BIAS, 'pinned: mapping ref + bias')
      const waits0 = dev.stats().layoutWaits ?? 0
      let truncated = false
      const tr = f.truncate(4096).then(() => { truncated = true })
      await new Promise(r => setTimeout(r, 10))
      t.equal(truncated, false, 'truncate is waiting')
      t.equal((dev.stats().layoutWaits ?? 0) - waits0, 1, 'one layout wait')
      t.equal(map.pfn(0), map.pfn(0))
      held.release()
      await held.done
      await tr
      t.equal(truncated, true, 'truncate completed after the release')
      t.equal(dev.page(pfn).refcount, idle, 'the page is idle and freed')
      t.equal((await f.stat()).size, 4096)
      // a transfer over the truncated range now fails and pins nothing
      await rejects(t, dma.submit({ map, offset: 2 * 4096, length: 4096, direction: 'to-device' }).done, 'EFAULT', 'past the new EOF')
      t.equal(pinsOf(dev), 0)
      map.unmap()
      await f.close()
      checkClean(t, dev, 'race')
    })

    t.test(`'get' under truncate: ${MODELS[model].busy === 'maybe-dma-pinned' ? 'not waited for (the hazard)' : 'waited for'}`, async t => {
      const f = await fs.open('/get', 'w+')
      await f.write(pattern(4 * 4096, 14), 0)
      const map = mmap(f, 0, 4 * 4096, { write: true })
      const g = dma.submit({ map, offset: 2 * 4096, length: 4096, direction: 'to-device', pin: 'get', hold: 'until-release' })
      await g.pinned
      let truncated = false
      const tr = f.truncate(0).then(() => { truncated = true })
      await new Promise(r => setTimeout(r, 10))
      if (MODELS[model].busy === 'maybe-dma-pinned') {
        t.equal(truncated, true, `${model}: truncate did not wait for the plain get`)
        t.ok(dev.check().some(v => /hazard/.test(v.kind)), 'the use-after-free hazard is reported')
        g.release()
        await g.done
        dev.table.clearViolations()
      } else {
        t.equal(truncated, false, 'truncate waits for the get')
        g.release()
        await g.done
        await tr
        t.equal(truncated, true)
        checkClean(t, dev, 'get')
      }
      await tr
      t.equal(pinsOf(dev), 0)
      map.unmap()
      await f.close()
    })

    t.test('a read of a hole through a read-only mapping: zeros, nothing pinned', async t => {
      const f = await fs.open('/hole', 'w+')
      await f.truncate(4 * 4096)
      await f.write(pattern(4096, 15), 4096)
      const map = mmap(f, 0, 4 * 4096, { write: false })
      const before = dev.stats()
      const r = dma.submit({ map, offset: 0, length: 4 * 4096, direction: 'to-device' })
      await r.done
      t.same(r.buffer.subarray(0, 4096), new Uint8Array(4096), 'hole reads as zeros')
      t.ok(Buffer.compare(r.buffer.subarray(4096, 8192), pattern(4096, 15)) === 0, 'written page')
      t.equal((dev.stats().pins ?? 0) - (before.pins ?? 0), 1, 'only the allocated page was pinned')
      t.equal(pinsOf(dev), 0)
      map.unmap()
      await f.close()
    })

    t.test('poison under a DAX mapping: EHWPOISON, no pin; punch-hole waits for a pin too', async t => {
      const f = await fs.open('/poison', 'w+')
      await f.write(pattern(8 * 4096, 16), 0)
      const map = mmap(f, 0, 8 * 4096, { write: true })
      map.populate()
      const bad = map.pfn(3 * 4096)
      dev.poison(bad * dev.pageSize, 512)
      const x = dma.submit({ map, offset: 0, length: 8 * 4096, direction: 'to-device' })
      const e = await rejects(t, x.done, 'EHWPOISON')
      t.equal(e.errno, 133)
      t.equal(pinsOf(dev), 0, 'nothing left pinned')
      // punch-hole over a pinned page waits for the release
      const held = dma.submit({ map, offset: 5 * 4096, length: 4096, direction: 'to-device', hold: 'until-release' })
      await held.pinned
      let punched = false
      const ph = f.punchHole(4 * 4096, 4 * 4096).then(() => { punched = true })
      await new Promise(r => setTimeout(r, 10))
      t.equal(punched, false, 'punch-hole waits')
      held.release()
      await held.done
      await ph
      t.equal(punched, true)
      t.equal(pinsOf(dev), 0)
      map.unmap()
      await f.close()
    })

    if (model === 'upstream') {
      t.test('a 2 MiB extent is one folio: pins counted on the head', async t => {
        const f = await fs.open('/folio', 'w+')
        await f.fallocate(0, 4 * 1024 * 1024)
        const map = mmap(f, 0, 4 * 1024 * 1024, { write: true })
        map.populate()
        const off = 2 * 1024 * 1024 - 4096
        const h = dma.submit({ map, offset: off, length: 3 * 4096, direction: 'to-device', hold: 'until-release' })
        await h.pinned
        const tail = map.pfn(off + 4096)
        const s = dev.page(tail)
        if (s.order === 9 || s.flags.includes('tail')) {
          const head = dev.table.headOf(tail)
          t.equal(dev.page(head).pincount, 2, 'two pages of this folio pinned: pincount 2')
        } else {
          t.comment('the allocator did not give a 2 MiB-aligned extent here')
        }
        h.release()
        await h.done
        t.equal(pinsOf(dev), 0)
        map.unmap()
        await f.close()
        checkClean(t, dev, 'folio')
      })
    }
  })
}

t.test('SPEC §8: a bad signal is EINVAL with nothing in flight; close() still resolves; small JSON', async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  const fs = await mkfs(dev)
  const dma = new DmaEngine(dev, { workers: 1 })
  t.teardown(async () => { await fs.unmount().catch(() => {}); await dev.close() })
  const f = await fs.open('/s', 'w+')
  f.write(new Uint8Array(4 * 4096).fill(7), 0)
  const map = mmap(f, 0, 4 * 4096, { write: true })
  for (const signal of [{}, 'abort', 1]) {
    const tr = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', signal: signal as never })
    await t.rejects(tr.pinned, { code: 'EINVAL', syscall: 'dma', message: /signal must be an AbortSignal/ })
    await t.rejects(tr.done, { code: 'EINVAL' })
    t.equal(dma.inFlight, 0, `nothing in flight after signal ${JSON.stringify(signal)}`)
    t.equal(pinsOf(dev), 0, 'nothing pinned')
  }
  const ok = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', signal: new AbortController().signal })
  await ok.done
  const j = JSON.stringify(dma)
  t.ok(j.length < 4096, `JSON.stringify(dma) is ${j.length} bytes`)
  t.match(JSON.parse(j), { type: 'DmaEngine', mode: 'workers', workers: 1, closed: false })
  await t.rejects(dma.close({ signal: {} as AbortSignal }), { code: 'EINVAL', syscall: 'dma' })
  t.notOk(dma.closed, 'a rejected close() leaves the engine open')
  map.unmap()
  await dma.close()
  t.ok(dma.closed, 'close() resolves')
})
