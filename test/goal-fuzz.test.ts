// Hostile values at every public entry (SPEC §8): Symbols, BigInts, NaN,
// huge numbers, wrong types, NUL in paths, objects whose toString throws.
// Every call ends in a result or an Error with a string `code` — never a bare
// TypeError/RangeError from an argument check or from the message builder.
// Complements test/defects.test.ts with the entries it does not reach
// (mount/fsck/mkfs options, the fs namespace calls, mapping calls, the DMA
// engine's options, toNodeFs, RandomAccessPmem, parseSize).
// CI size: 1 500 calls; PMEMU_GOAL=1: 30 000 (docs/testing-with-pmemu.md).
import t from 'tap'
import fc from 'fast-check'
import {
  openDevice, mkfs, mount, fsck, DmaEngine, toNodeFs, RandomAccessPmem, parseSize,
  type Device, type PmemFs, type PmemFile, type DaxMapping,
} from '../src/index.js'

const RUNS = process.env.PMEMU_GOAL === '1' ? 30000 : 1500
const evil = { toString() { throw new Error('toString') }, valueOf() { throw new Error('valueOf') } }
const hostile = fc.oneof(
  fc.constant(Symbol('s')), fc.bigInt(), fc.constant(NaN), fc.constant(Infinity), fc.constant(-Infinity), fc.constant(-1),
  fc.constant(2 ** 60), fc.constant(2 ** 53 - 1), fc.constant(2 ** 32), fc.constant(null), fc.constant(undefined),
  fc.string(), fc.constant('/a\0b'), fc.constant(''), fc.constant('/'), fc.constant('/f'), fc.constant({}), fc.constant([]),
  fc.constant(() => 1), fc.double(), fc.integer({ min: -5, max: 1 << 20 }), fc.constant('1GiB'), fc.constant(evil),
  fc.constant(new Uint8Array(3)), fc.constant(Object.create(null)), fc.constant(true),
)

interface S { dev: Device; fs: PmemFs; f: PmemFile; map: DaxMapping; dma: DmaEngine; nfs: ReturnType<typeof toNodeFs> }
type Entry = (s: S, a: unknown, b: unknown) => unknown
const A = <T>(v: unknown) => v as T

const entries: Record<string, Entry> = {
  'mkfs options': (s, a, b) => mkfs(s.dev, A({ label: a, force: b, durability: a, breakScope: b })).then(() => 'ok'),
  'mount options': (s, a, b) => mount(s.dev, A({ durability: a, breakScope: b })),
  'fsck options': (s, a) => fsck(s.dev, A({ repair: a })),
  'fs.open': (s, a, b) => s.fs.open(A(a), A(b)).then(h => h.close()),
  'fs.readdir': (s, a) => s.fs.readdir(A(a)),
  'fs.unlink': (s, a) => s.fs.unlink(A(a)),
  'fs.rmdir': (s, a) => s.fs.rmdir(A(a)),
  'fs.rename': (s, a, b) => s.fs.rename(A(a), A(b)),
  'fs.mkdir': (s, a) => s.fs.mkdir(A(a)),
  'file.read(buf, pos)': (s, a, b) => s.f.read(A(a), A(b)),
  'file.write(buf, pos)': (s, a, b) => s.f.write(A(a), A(b)),
  'file.truncate opts': (s, a, b) => s.f.truncate(4096 * 8, A({ signal: a, timeoutMs: b })),
  'file.punchHole opts': (s, a, b) => s.f.punchHole(0, 1, A({ signal: a, timeoutMs: b })),
  'file.mmap opts': (s, a, b) => s.f.mmap(0, 4096, A({ write: a, sync: b })).unmap(),
  'map.views': (s, a, b) => s.map.views(A(a), A(b)),
  'map.persist': (s, a, b) => s.map.persist(A(a), A(b)),
  'map.unmap part': (s, a, b) => { const m = s.f.mmap(0, 4 * 4096); try { m.unmap(A(a), A(b)) } finally { m.unmap() } },
  'dev.view': (s, a, b) => s.dev.view(A(a), A(b)),
  'dev.persist': (s, a, b) => s.dev.persist(A(a), A(b)),
  'dev.unbind opts': async (s, a, b) => {
    // a valid unbind would end the shared device: only hostile option values get here
    if (a === undefined && b === undefined) return
    if ((typeof a === 'undefined' || a instanceof AbortSignal) && (b === undefined || (typeof b === 'number' && b >= 0))) return
    return s.dev.unbind(A({ signal: a, timeoutMs: b }))
  },
  'pages.unpinRange': (s, a, b) => s.dev.pages.unpinRange(A(a), A(b)),
  'pages.maybeDmaPinned': (s, a) => s.dev.pages.maybeDmaPinned(A(a)),
  'new DmaEngine': async (s, a, b) => { const e = new DmaEngine(s.dev, A({ workers: a, latencyNs: b, bandwidth: a })); await e.close() },
  'dma.submit options': (s, a, b) => s.dma.submit(A({ map: s.map, offset: 0, length: 64, direction: a, pin: b, hold: a, longterm: b, buffer: new Uint8Array(64) })).done,
  'dma.submit map': (s, a) => s.dma.submit(A({ map: a, offset: 0, length: 64, direction: 'to-device', buffer: new Uint8Array(64) })).done,
  'nfs.readFile': (s, a, b) => s.nfs.promises.readFile(A(a), A(b)),
  'nfs.writeFile': (s, a, b) => s.nfs.promises.writeFile(A(a), A(b)),
  'nfs.stat': (s, a) => s.nfs.promises.stat(A(a)),
  'nfs.mkdir': (s, a, b) => s.nfs.promises.mkdir(A(a), A(b)),
  'nfs.readdir': (s, a, b) => s.nfs.promises.readdir(A(a), A(b)),
  'nfs.rm': (s, a, b) => s.nfs.promises.rm(A(a), A(b)),
  'nfs.open': (s, a, b) => s.nfs.promises.open(A(a), A(b)).then(h => h.close()),
  'RandomAccessPmem': (s, a, b) => new Promise<void>((resolve, reject) => {
    const st = new RandomAccessPmem(s.fs, A(a), A(b))
    st.open((e: Error | null) => (e ? reject(e) : st.close(() => resolve())))
  }),
  parseSize: (_s, a) => parseSize(A(a)),
}

const typed = (e: unknown): boolean => e instanceof Error && typeof (e as { code?: unknown }).code === 'string'

t.test(`hostile values at ${Object.keys(entries).length} more public entries: every error typed (${RUNS} calls)`, async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  f.write(new Uint8Array(8 * 4096).fill(1), 0)
  const s: S = { dev, fs, f, map: f.mmap(0, 8 * 4096, { write: true }), dma: new DmaEngine(dev, { workers: 1 }), nfs: toNodeFs(fs) }
  const byEntry = new Map<string, { calls: number; errors: number }>()
  const untyped: string[] = []
  await fc.assert(fc.asyncProperty(fc.constantFrom(...Object.keys(entries)), hostile, hostile, async (name, a, b) => {
    const row = byEntry.get(name) ?? { calls: 0, errors: 0 }
    byEntry.set(name, row)
    row.calls++
    try { await entries[name]!(s, a, b) } catch (e) {
      row.errors++
      if (!typed(e)) {
        const what = e instanceof Error ? `${e.constructor.name}: ${e.message}` : typeof e
        // collected, not thrown: one run lists every entry that fails, not just the first
        const at = e instanceof Error ? (e.stack ?? '').split('\n').find(l => l.includes('/src/'))?.trim() ?? '' : ''
        const line = `${name}(${typeof a}, ${typeof b}): ${what} ${at}`
        if (!untyped.includes(line)) untyped.push(line)
      }
    }
  }), { numRuns: RUNS, seed: 4242 })
  if (process.env.PMEMU_FUZZ_DUMP) (await import('node:fs')).writeFileSync(process.env.PMEMU_FUZZ_DUMP, untyped.join('\n'))
  t.same(untyped, [], 'no untyped error')
  t.comment(`${RUNS} calls over ${byEntry.size} entries, ${[...byEntry.values()].reduce((n, r) => n + r.errors, 0)} typed errors, 0 untyped`)
  t.same(dev.check(), [], 'no invariant violated')
  await s.dma.close()
  await dev.close()
})
