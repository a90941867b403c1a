/**
 * Goal-scale reliability runs, at CI size by default. `PMEMU_GOAL=1` runs
 * each at the size the project's goals name (docs/testing-with-pmemu.md,
 * "Goal-scale runs", has the figures of the last goal-size run):
 *
 *   (a) forEachCrash over a multi-file workload (create, append, overwrite,
 *       fsync, rename-over, unlink, mkdir, truncate, punch) with a per-step
 *       durable-snapshot oracle                     CI 150 images, goal 10 000
 *   (b) corrupted images: bit flips, byte runs, zero runs, and format-aware
 *       edits with valid checksums (inode, directory, superblock fields,
 *       bitmap bits) through mount, read-all, fsck, repair, second repair,
 *       mount, read-all, with a per-image watchdog  CI 150 images, goal 10 000
 *   (c) DMA × truncate × punch (unaligned too) × write with a byte model:
 *       test/stress.test.ts (PMEMU_STRESS_OPS; goal 100 000)
 *   (d) worker faults: throw, exit, uncaught error, hang after pin, external
 *       terminate, detached and bogus buffers, aborts before / during hold:
 *       0 pins left after each, the engine keeps working
 *   (e) hostile values at every public entry: test/defects.test.ts
 *   (f) a writer process killed with SIGKILL at random moments, reopened by a
 *       fresh process: nothing acknowledged is lost   CI 4 rounds, goal 30
 *
 * Each run prints its figures (tap comments): images or rounds, failures by
 * kind, rate.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { withoutCoverage } from './fixtures/env.js'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  openDevice, mkfs, mount, fsck, toNodeFs, forEachCrash, DmaEngine, crc32c,
  type Device, type PmemFs,
} from '../src/index.js'
import { decodeSuperblock, SB_SIZE, INODE_SIZE, INODE_CRC_OFF, DIR_MAGIC, OVF_MAGIC, SB_CRC_OFF } from '../src/fs/layout.js'

const GOAL = process.env.PMEMU_GOAL === '1'
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-goal-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** A deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

const typed = (e: unknown): boolean => e instanceof Error && typeof (e as { code?: unknown }).code === 'string'

/** Every file under `root` with its bytes (errors reading a file are recorded, typed or not). */
async function readAll(fs: PmemFs): Promise<{ files: Map<string, Buffer>; untyped: unknown[] }> {
  const nfs = toNodeFs(fs).promises
  const files = new Map<string, Buffer>()
  const untyped: unknown[] = []
  const walk = async (d: string): Promise<void> => {
    let ents
    try { ents = await nfs.readdir(d, { withFileTypes: true }) } catch (e) { if (!typed(e)) untyped.push(e); return }
    for (const e of ents) {
      const p = d === '/' ? `/${e.name}` : `${d}/${e.name}`
      if (e.isDirectory()) await walk(p)
      else {
        try { files.set(p, await nfs.readFile(p)) } catch (err) { if (!typed(err)) untyped.push(err) }
      }
    }
  }
  await walk('/')
  return { files, untyped }
}

// ------------------------------------------------------------------------------------------- (a)

type Step =
  | { op: 'create'; path: string; bytes: number; fill: number }
  | { op: 'append'; path: string; bytes: number; fill: number }
  | { op: 'overwrite'; path: string; at: number; bytes: number; fill: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'punch'; path: string; at: number; bytes: number }

type Snap = Map<string, Uint8Array | 'dir'>

/** A fixed workload of `n` steps over a handful of files, and the state after each step. */
function makeSteps(seed: number, n: number): { steps: Step[]; snaps: Snap[] } {
  const r = rng(seed)
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
  const snaps: Snap[] = [new Map()]
  const steps: Step[] = []
  let cur: Snap = new Map()
  const files = () => [...cur].filter(([, v]) => v !== 'dir').map(([k]) => k)
  for (let i = 0; i < n; i++) {
    const next: Snap = new Map([...cur].map(([k, v]) => [k, v === 'dir' ? v : v.slice()]))
    const fs = files()
    const pick = r()
    let s: Step
    if (fs.length === 0 || pick < 0.2) {
      const parent = [...cur].filter(([, v]) => v === 'dir').map(([k]) => k)
      const base = parent.length && r() < 0.5 ? parent[int(0, parent.length - 1)]! : ''
      const path = `${base}/f${i}`
      s = { op: 'create', path, bytes: int(1, 9000), fill: int(1, 250) }
      next.set(path, new Uint8Array(s.bytes).fill(s.fill))
    } else if (pick < 0.3 && cur.size < 12) {
      s = { op: 'mkdir', path: `/d${i}` }
      next.set(s.path, 'dir')
    } else {
      const path = fs[int(0, fs.length - 1)]!
      const old = cur.get(path) as Uint8Array
      const k = r()
      if (k < 0.25) {
        s = { op: 'append', path, bytes: int(1, 6000), fill: int(1, 250) }
        const b = new Uint8Array(old.length + s.bytes); b.set(old); b.fill(s.fill, old.length); next.set(path, b)
      } else if (k < 0.45) {
        const at = int(0, old.length); const bytes = int(1, 5000)
        s = { op: 'overwrite', path, at, bytes, fill: int(1, 250) }
        const b = new Uint8Array(Math.max(old.length, at + bytes)); b.set(old); b.fill(s.fill, at, at + bytes); next.set(path, b)
      } else if (k < 0.6) {
        const others = fs.filter(f => f !== path)
        const to = others.length && r() < 0.5 ? others[int(0, others.length - 1)]! : `${path}.r${i}`
        s = { op: 'rename', from: path, to }
        next.delete(path); next.set(to, old.slice())
      } else if (k < 0.7) {
        s = { op: 'unlink', path }
        next.delete(path)
      } else if (k < 0.85) {
        const size = int(0, old.length + 3000)
        s = { op: 'truncate', path, size }
        const b = new Uint8Array(size); b.set(old.subarray(0, Math.min(size, old.length))); next.set(path, b)
      } else {
        const at = int(0, Math.max(0, old.length - 1)); const bytes = int(1, 9000)
        s = { op: 'punch', path, at, bytes }
        const b = old.slice(); b.fill(0, at, Math.min(old.length, at + bytes)); next.set(path, b)
      }
    }
    steps.push(s)
    snaps.push(next)
    cur = next
  }
  return { steps, snaps }
}

async function runStep(fs: PmemFs, s: Step): Promise<void> {
  switch (s.op) {
    case 'create': { const f = await fs.open(s.path, 'w+'); f.write(new Uint8Array(s.bytes).fill(s.fill), 0); await f.fsync(); await f.close(); return }
    case 'append': { const f = await fs.open(s.path, 'r+'); f.write(new Uint8Array(s.bytes).fill(s.fill), f.stat().size); await f.fsync(); await f.close(); return }
    case 'overwrite': { const f = await fs.open(s.path, 'r+'); f.write(new Uint8Array(s.bytes).fill(s.fill), s.at); await f.fsync(); await f.close(); return }
    case 'rename': await fs.rename(s.from, s.to); return
    case 'unlink': await fs.unlink(s.path); return
    case 'mkdir': await fs.mkdir(s.path); return
    case 'truncate': { const f = await fs.open(s.path, 'r+'); await f.truncate(s.size); await f.fsync(); await f.close(); return }
    case 'punch': { const f = await fs.open(s.path, 'r+'); await f.punchHole(s.at, s.bytes); await f.fsync(); await f.close(); return }
  }
}

/** Paths a step changes (their content may be old, new or torn if the crash hit that step). */
function touched(s: Step): string[] {
  return s.op === 'rename' ? [s.from, s.to] : [s.path]
}

/** Does what was read match snapshot `snap`, ignoring `loose` paths (present or not, any bytes)? */
function matches(read: Map<string, Buffer>, dirs: Set<string>, snap: Snap, loose: Set<string>): string | undefined {
  for (const [p, v] of snap) {
    if (loose.has(p)) continue
    if (v === 'dir') { if (!dirs.has(p)) return `directory ${p} missing`; continue }
    const got = read.get(p)
    if (!got) return `${p} missing`
    if (got.length !== v.length) return `${p}: ${got.length} bytes, expected ${v.length}`
    if (!got.equals(Buffer.from(v.buffer, v.byteOffset, v.length))) return `${p}: bytes differ`
  }
  for (const p of read.keys()) if (!snap.has(p) && !loose.has(p)) return `${p} present, expected absent`
  return undefined
}

t.test(`(a) forEachCrash over a multi-file workload with a durable-snapshot oracle (${GOAL ? 'goal' : 'CI'} size)`, async t => {
  const seeds = GOAL ? 40 : 3
  const stepsPer = GOAL ? 24 : 14
  let images = 0
  const fails: string[] = []
  const t0 = performance.now()
  for (let w = 0; w < seeds; w++) {
    const { steps, snaps } = makeSteps(1000 + w, stepsPer)
    const res = await forEachCrash(async ({ fs, state }) => {
      state.acked = 0
      for (let i = 0; i < steps.length; i++) {
        await runStep(fs, steps[i]!)
        state.acked = i + 1
      }
    }, async ({ fs, state }) => {
      const acked = (state.acked as number | undefined) ?? 0
      const { files, untyped } = await readAll(fs)
      if (untyped.length) throw new Error(`untyped error reading back: ${String(untyped[0])}`)
      const dirs = new Set<string>()
      const nfs = toNodeFs(fs).promises
      for (const [p, v] of snaps[Math.min(acked + 1, snaps.length - 1)]!) if (v === 'dir' && (await nfs.stat(p).then(s => s.isDirectory(), () => false))) dirs.add(p)
      for (const [p, v] of snaps[acked]!) if (v === 'dir' && (await nfs.stat(p).then(s => s.isDirectory(), () => false))) dirs.add(p)
      // every acknowledged step is durable: the state is the one after step `acked`,
      // or after the step in flight, whose own paths may be old, new or torn
      const inflight = acked < steps.length ? new Set(touched(steps[acked]!)) : new Set<string>()
      const why = matches(files, dirs, snaps[acked]!, inflight)
      const why2 = acked < steps.length ? matches(files, dirs, snaps[acked + 1]!, inflight) : why
      if (why && why2) throw new Error(`after ${acked} acknowledged steps: ${why}`)
    }, { seeds: GOAL ? 60 : 10, seed: 77 + w, maxCrashPoints: GOAL ? undefined : 40, maxFailures: 3, keep: ['random'] } as Parameters<typeof forEachCrash>[2])
    images += res.runs
    for (const f of res.failures) fails.push(f.message)
  }
  const secs = (performance.now() - t0) / 1000
  t.comment(`(a) ${images} crash images over ${seeds} workloads of ${stepsPer} steps: ${fails.length} failures, ${(images / secs).toFixed(0)} images/s`)
  t.same(fails.slice(0, 3), [], 'no acknowledged step lost, no untyped error, fsck clean after every crash')
  t.ok(images >= (GOAL ? 10_000 : 150), `${images} images`)
})

// ------------------------------------------------------------------------------------------- (b)

type Corruption = 'bitflip' | 'byterun' | 'zerorun' | 'inode-field' | 'dir-field' | 'sb-field' | 'bitmap-bits' | 'overflow-field'

async function baseImage(): Promise<{ dev: Device; image: Uint8Array; sb: ReturnType<typeof decodeSuperblock> }> {
  const dev = await openDevice(undefined, { size: '4MiB' })
  const fs = await mkfs(dev)
  const r = rng(9)
  for (let d = 0; d < 4; d++) {
    await fs.mkdir(`/d${d}`)
    for (let i = 0; i < 6; i++) {
      const f = await fs.open(`/d${d}/f${i}`, 'w+')
      // many extents for some files: written in pieces with holes
      for (let k = 0; k < 1 + (i % 4) * 4; k++) f.write(new Uint8Array(1 + Math.floor(r() * 5000)).fill(d * 16 + i), k * 12288)
      await f.close()
    }
  }
  await fs.unmount()
  const image = new Uint8Array(dev.capacity)
  dev.read(0, image)
  const sb = decodeSuperblock(image.subarray(0, SB_SIZE), dev)
  return { dev, image, sb }
}

/** Rewrite the u32 at `off` in a record [start, start+len) and fix its crc at `crcOff` (relative). */
function editField(img: Uint8Array, start: number, crcOff: number, off: number, value: number): void {
  const v = new DataView(img.buffer, img.byteOffset)
  v.setUint32(start + off, value >>> 0, true)
  v.setUint32(start + crcOff, crc32c(img.subarray(start, start + crcOff)), true)
}

function corrupt(img: Uint8Array, kind: Corruption, r: () => number, sb: Exclude<ReturnType<typeof decodeSuperblock>, string>): string {
  const int = (n: number) => Math.floor(r() * n)
  const bs = sb.blockSize
  const meta = sb.dataStart * bs // metadata lives below the data area
  const nasty = () => [0, 1, 2, 0xffffffff, 0x7fffffff, sb.blockCount, sb.blockCount + 1, sb.inodeCount, int(2 ** 32)][int(9)]!
  switch (kind) {
    case 'bitflip': { const o = int(meta); img[o]! ^= 1 << int(8); return `bit flip at ${o}` }
    case 'byterun': { const o = int(meta); const n = 1 + int(64); for (let i = 0; i < n && o + i < img.length; i++) img[o + i] = int(256); return `random run of ${n} at ${o}` }
    case 'zerorun': { const o = int(meta); const n = 1 + int(bs); img.fill(0, o, Math.min(img.length, o + n)); return `zero run of ${n} at ${o}` }
    case 'sb-field': { editField(img, 0, SB_CRC_OFF, 4 * int(SB_CRC_OFF / 4), nasty()); return 'superblock field, crc valid' }
    case 'inode-field': {
      const k = 2 + int(30)
      const start = sb.inodeTableStart * bs + k * INODE_SIZE
      const off = 4 * int(INODE_CRC_OFF / 4)
      const val = nasty()
      editField(img, start, INODE_CRC_OFF, off, val)
      return `inode ${k} field at ${off} = ${val}, crc valid`
    }
    case 'dir-field': case 'overflow-field': {
      const magic = kind === 'dir-field' ? DIR_MAGIC : OVF_MAGIC
      const blocks: number[] = []
      for (let b = sb.dataStart; b < sb.blockCount; b++) if (new DataView(img.buffer, img.byteOffset + b * bs, 4).getUint32(0, true) === magic) blocks.push(b)
      if (!blocks.length) { img[int(meta)]! ^= 0x80; return `no ${kind} block: bit flip instead` }
      const b = blocks[int(blocks.length)]!
      editField(img, b * bs, bs - 4, 4 * int((bs - 4) / 4), nasty())
      return `${kind} in block ${b}, crc valid`
    }
    case 'bitmap-bits': {
      const start = sb.bitmapStart * bs
      for (let i = 0; i < 1 + int(16); i++) img[start + int(Math.ceil(sb.blockCount / 8))]! ^= 1 << int(8)
      return 'bitmap bits'
    }
  }
}

function watchdog<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const dog = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`HANG: ${what} took over ${ms} ms`)), ms); timer.unref() })
  return Promise.race([p, dog]).finally(() => clearTimeout(timer))
}

t.test(`(b) corrupted images through mount, read-all, fsck, repair ×2, mount, read-all (${GOAL ? 'goal' : 'CI'} size)`, async t => {
  const N = GOAL ? 10_000 : 150
  const { dev, image, sb } = await baseImage()
  if (typeof sb === 'string') throw new Error(sb)
  const kinds: Corruption[] = ['bitflip', 'byterun', 'zerorun', 'inode-field', 'dir-field', 'sb-field', 'bitmap-bits', 'overflow-field']
  const fails = new Map<string, string[]>()
  const fail = (kind: string, msg: string) => { if (!fails.has(kind)) fails.set(kind, []); fails.get(kind)!.push(msg) }
  const r = rng(4242)
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const img = image.slice()
    const kind = kinds[i % kinds.length]!
    const what = corrupt(img, kind, r, sb)
    dev.write(0, img)
    const label = `image ${i} (${what})`
    if (process.env.PMEMU_GOAL_TRACE) process.stderr.write(`${label} rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB\n`)
    try {
      await watchdog((async () => {
        try {
          const fs = await mount(dev)
          const a = await readAll(fs)
          if (a.untyped.length) fail('untyped', `${label}: read-all: ${String(a.untyped[0])}`)
          await fs.unmount()
        } catch (e) { if (!typed(e)) fail('untyped', `${label}: mount: ${String(e)}`) }
        const ck = await fsck(dev)
        if (![0, 1, 4].includes(ck.exitCode)) fail('fsck', `${label}: fsck exit ${ck.exitCode}: ${ck.problems[0]}`)
        const r1 = await fsck(dev, { repair: true })
        const r2 = await fsck(dev, { repair: true })
        if (r1.exitCode !== 4 && r2.exitCode !== 0) fail('not-idempotent', `${label}: second repair exit ${r2.exitCode}: ${r2.problems[0]}`)
        if (r1.exitCode !== 4) {
          try {
            const fs = await mount(dev)
            const a = await readAll(fs)
            if (a.untyped.length) fail('untyped', `${label}: read-all after repair: ${String(a.untyped[0])}`)
            await fs.unmount()
          } catch (e) { fail(typed(e) ? 'mount-after-repair' : 'untyped', `${label}: mount after repair: ${String(e)}`) }
        }
      })(), 10_000, label)
    } catch (e) {
      fail(/^Error: HANG/.test(String(e)) ? 'hang' : typed(e) ? 'typed-throw' : 'untyped', `${label}: ${String(e)}`)
    }
  }
  const secs = (performance.now() - t0) / 1000
  const byKind = [...fails].map(([k, v]) => `${k} ${v.length}`).join(', ') || 'none'
  t.comment(`(b) ${N} corrupted images (${kinds.join(', ')}): failures ${byKind}; ${(N / secs).toFixed(0)} images/s`)
  t.same([...fails].map(([k, v]) => `${k}: ${v[0]}`), [], 'no untyped error, no hang, fsck exits 0/1/4, repair idempotent, mountable after repair')
  await dev.close()
})

// ------------------------------------------------------------------------------------------- (d)

t.test('(d) worker faults leave no pin and the engine keeps working', async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  f.write(new Uint8Array(16 * 4096).fill(7), 0)
  const map = f.mmap(0, 16 * 4096, { write: true })
  map.populate?.()
  const pfns = Array.from({ length: 16 }, (_, i) => map.pfn(i * 4096))
  const idle = pfns.map(p => dev.page(p).refcount)
  const pinsLeft = () => pfns.filter((p, i) => dev.page(p).refcount !== idle[i]).length
  const dma = new DmaEngine(dev, { workers: 2 })
  const ok = async (what: string) => {
    const r = await dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer: new Uint8Array(4096) }).done
    t.equal(r.bytes, 4096, `${what}: the engine still works`)
    t.equal(pinsLeft(), 0, `${what}: no pin left`)
  }
  for (const fail of ['throw-after-pin', 'exit-after-pin', 'uncaught-after-pin'] as const) {
    await t.rejects(dma.submit({ map, offset: 4096, length: 8192, direction: 'to-device', buffer: new Uint8Array(8192), fail }).done, Error, fail)
    await ok(fail)
  }
  {
    const tr = dma.submit({ map, offset: 4096, length: 8192, direction: 'to-device', buffer: new Uint8Array(8192), fail: 'hang-after-pin' })
    await tr.pinned
    tr.abort()
    await t.rejects(tr.done, Error, "hang-after-pin, then abort")
    await ok('hang-after-pin + abort')
    // from-device: the hang is after the pin and before the copy, so an abort moves no byte
    const fd = dma.submit({ map, offset: 4096, length: 8192, direction: 'from-device', buffer: new Uint8Array(8192).fill(0x55), fail: 'hang-after-pin' })
    await fd.pinned
    fd.abort()
    await t.rejects(fd.done, { code: 'ABORT_ERR' }, 'from-device hang-after-pin, then abort')
    const back = new Uint8Array(8192)
    f.read(back, 4096)
    t.ok(back.every(b => b === 7), 'no byte of the aborted from-device transfer landed')
    await ok('from-device hang-after-pin + abort')
  }
  {
    const ac = new AbortController()
    ac.abort()
    await t.rejects(dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer: new Uint8Array(4096), signal: ac.signal } as never).done, Error, "aborted before submit")
    await ok('abort before')
    const tr = dma.submit({ map, offset: 0, length: 8192, direction: 'from-device', buffer: new Uint8Array(8192), hold: 'until-release' })
    await tr.pinned
    tr.abort()
    await t.rejects(tr.done, { code: 'ABORT_ERR' }, 'aborted during hold')
    await ok('abort during hold')
  }
  {
    const buffer = new Uint8Array(4096)
    const tr = dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer, hold: 'until-release' })
    await tr.pinned
    structuredClone(buffer.buffer, { transfer: [buffer.buffer] })
    tr.release()
    await t.rejects(tr.done, { code: 'EFAULT' }, 'detached buffer')
    await ok('detached buffer')
    for (const bogus of [null, 42, 'x', new Uint16Array(4), new Uint8Array(10)]) {
      let err: unknown
      try { await dma.submit({ map, offset: 0, length: 4096, direction: 'to-device', buffer: bogus as Uint8Array }).done } catch (e) { err = e }
      t.ok(typed(err), `bogus buffer ${Object.prototype.toString.call(bogus)}: a typed error`)
    }
    await ok('bogus buffers')
  }
  await dma.close()
  map.unmap()
  t.ok(pfns.every((p, i) => dev.page(p).refcount <= idle[i]!), 'unmapped: nothing above the refs the mapping held')
  t.same(dev.check(), [])
  await dev.close()
})

// ------------------------------------------------------------------------------------------- (f)

t.test(`(f) a writer killed with SIGKILL loses nothing it acknowledged (${GOAL ? 'goal' : 'CI'} size)`, async t => {
  const rounds = GOAL ? 30 : 4
  const file = join(dir, 'kill.pmem')
  const dev = await openDevice(file, { size: '16MiB', create: true })
  await (await mkfs(dev)).unmount()
  await dev.close()
  const src = new URL('../src/index.ts', import.meta.url).href
  // The writer appends numbered 512-byte records, fsyncs, then prints the count it committed.
  const writer = `
    import { openDevice, mount } from ${JSON.stringify(src)}
    const dev = await openDevice(${JSON.stringify(file)})
    const fs = await mount(dev)
    const f = await fs.open('/log', 'a+')
    let n = f.stat().size / 512
    for (;;) {
      f.write(new Uint8Array(512).fill((n % 250) + 1), n * 512)
      await f.fsync()
      n++
      process.stdout.write(n + '\\n')
      if (n % 50 === 0) await new Promise(r => setImmediate(r))
    }`
  let acked = 0
  let lost = 0
  const r = rng(31)
  for (let i = 0; i < rounds; i++) {
    // no coverage from the writer: it loads src through tsx
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer], { stdio: ['ignore', 'pipe', 'pipe'], env: withoutCoverage() })
    let errText = ''
    child.stderr.on('data', d => { errText += d })
    let lastAck = acked
    const target = acked + 20 + Math.floor(r() * 200)
    await new Promise<void>(res => {
      let buf = ''
      child.stdout.on('data', d => {
        buf += d
        const lines = buf.split('\n')
        buf = lines.pop()!
        for (const l of lines) lastAck = Math.max(lastAck, Number(l))
        if (lastAck >= target && !child.killed) { child.kill('SIGKILL'); res() }
      })
      child.once('exit', () => res())
    })
    await new Promise(res => child.exitCode !== null || child.signalCode !== null ? res(undefined) : child.once('exit', res))
    if (child.signalCode !== 'SIGKILL') t.fail(`writer ended without the kill: ${errText.slice(0, 300)}`)
    acked = lastAck
    const d = await openDevice(file)
    const fs = await mount(d)
    const log = await fs.open('/log', 'r')
    const n = Math.floor(log.stat().size / 512)
    const rec = new Uint8Array(512)
    for (let k = 0; k < Math.min(n, acked); k++) {
      log.read(rec, k * 512)
      if (!rec.every(b => b === (k % 250) + 1)) { lost++; break }
    }
    if (n < acked) lost += acked - n
    await log.close()
    await fs.unmount()
    await d.close()
  }
  t.comment(`(f) ${rounds} SIGKILL rounds, ${acked} records acknowledged, ${lost} lost`)
  t.equal(lost, 0, 'nothing acknowledged was lost')
})
