/**
 * The file system's own figures, on a device of its own in the
 * scratch directory (1 GiB in a full run, 256 MiB with --quick):
 *
 *   mkfs          public mkfs of the whole device (format + mount + DAX and   ms, median
 *                 fault injection attached)
 *   mount         public mount of that fs holding N files (journal check,     ms, median
 *                 superblock, bitmap, inode table; DAX attached)
 *   fsck          fsck (read-only) of the fs holding N files: every           ms, median
 *                 structure, bitmap vs extents, reachability, link counts
 *   write-4k, write-1m   file.write of 4 KiB / 1 MiB pieces over an           GB/s, C = memcpy
 *                 allocated file (the data path: no allocation, no journal)
 *   read-4k, read-1m     file.read of the same pieces                         GB/s, C = memcpy
 *
 * N = 10 000 files (1 000 with --quick) in 100 directories, 4–32 KiB each.
 * The C figure of the GB/s paths is the native shim's memcpy between process
 * memory and the file's own blocks in the region's windows, measured in the
 * same run right before the JS rounds: ratio = C GB/s / JS GB/s, as for the
 * other bandwidth results (above 1 = slower than memcpy).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { nativeShim, openDevice, type Device } from '../../src/region/index.js'
import { fsck, type PmemFile, type PmemFs } from '../../src/fs/index.js'
import * as m from '../../src/mount.js'
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { collectGarbage, interleave, median, result } from '../measure.js'


const KiB = 1024
const MiB = 2 ** 20
const GiB = 2 ** 30

/** ms of an async action (hrtime). */
export async function msOf(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - t0) / 1e6
}

function fmtBytes(n: number): string {
  return n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`
}

/**
 * Sizes of this benchmark. Full run: a 1 GiB device and 10 000
 * files. --quick: 256 MiB and 1 000 files (a few seconds). Test budgets
 * (TINY_BUDGET: 8 MiB truncate, 8 samples) shrink both further.
 */
export function fsSizes(ctx: Pick<BenchContext, 'quick' | 'budget'>): { device: number; files: number; ioBytes: number } {
  if (!ctx.quick) return { device: GiB, files: 10_000, ioBytes: Math.max(MiB, ctx.budget.copyBytes) }
  return {
    device: Math.min(256 * MiB, Math.max(32 * MiB, 2 * ctx.budget.truncateBytes)),
    files: Math.min(1000, Math.max(16, 5 * ctx.budget.samples)),
    ioBytes: Math.max(MiB, ctx.budget.copyBytes),
  }
}

/** Create `files` files in 100 directories (fewer for small counts), 4–32 KiB of data each. */
async function populate(fs: PmemFs, files: number): Promise<number> {
  const dirs = Math.max(1, Math.min(100, Math.ceil(files / 100)))
  for (let d = 0; d < dirs; d++) await fs.mkdir(`/d${d}`)
  const data = new Uint8Array(32 * KiB)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff
  let bytes = 0
  for (let i = 0; i < files; i++) {
    const f = await fs.open(`/d${i % dirs}/f${i}`, 'w')
    const n = 4 * KiB * (1 + (i % 8))
    f.write(data.subarray(0, n), 0)
    await f.close()
    bytes += n
  }
  return bytes
}

/** The region memory of device bytes [off, off+len): one piece per window crossed. */
function regionSpans(dev: Device, off: number, len: number): Array<{ sab: SharedArrayBuffer; off: number; len: number }> | undefined {
  const out: Array<{ sab: SharedArrayBuffer; off: number; len: number }> = []
  for (const w of dev.region.windows) {
    const s = Math.max(off, w.offset)
    const e = Math.min(off + len, w.offset + w.length)
    if (s >= e) continue
    if (!w.sab) return undefined // the mmap-io backend: no SharedArrayBuffer to hand to C
    out.push({ sab: w.sab, off: s - w.offset, len: e - s })
  }
  return out
}

/**
 * C memcpy GB/s between `buf` and the file's blocks (every extent, split at
 * window edges), `toRegion` or from it; the fastest of `reps` passes of
 * `rounds` copies each (a C loop has no JIT or GC: its spread is interference).
 */
function memcpyGbs(dev: Device, file: PmemFile, buf: SharedArrayBuffer, toRegion: boolean, reps: number, rounds: number): number | undefined {
  const bs = file.fs.blockSize
  const spans: Array<{ sab: SharedArrayBuffer; off: number; len: number; bufOff: number }> = []
  for (const e of file.node.extents()) {
    const piece = regionSpans(dev, e.p * bs, e.n * bs)
    if (!piece) return undefined
    let bufOff = e.l * bs
    for (const s of piece) {
      const len = Math.min(s.len, buf.byteLength - bufOff)
      if (len > 0) spans.push({ ...s, len, bufOff })
      bufOff += s.len
    }
  }
  const total = spans.reduce((n, s) => n + s.len, 0)
  if (total === 0) return undefined
  const shim = nativeShim()
  const pass = (): number => {
    let ns = 0
    for (const s of spans) {
      ns += toRegion
        ? shim.benchMemcpy(s.sab, s.off, buf, s.bufOff, s.len, rounds)
        : shim.benchMemcpy(buf, s.bufOff, s.sab, s.off, s.len, rounds)
    }
    return ns
  }
  pass() // warm
  let best = Infinity
  for (let i = 0; i < reps; i++) best = Math.min(best, pass())
  return (total * rounds) / best
}

/** GB/s of `rounds` passes of `op(pos)` over [0, bytes) in `piece`-byte steps: the median pass, and every pass (for the spread). */
function ioGbs(bytes: number, piece: number, rounds: number, op: (pos: number) => number): { gbs: number; passes: number[] } {
  const per: number[] = []
  for (let r = 0; r <= rounds; r++) { // pass 0 warms the JIT up and is not kept
    const t0 = process.hrtime.bigint()
    let done = 0
    for (let pos = 0; pos < bytes; pos += piece) done += op(pos)
    const ns = Number(process.hrtime.bigint() - t0)
    if (done !== bytes) throw new Error(`file I/O moved ${done} of ${bytes} bytes`)
    if (r > 0) per.push(bytes / ns)
  }
  return { gbs: median(per), passes: per }
}

export const fsTimes: Benchmark = {
  id: 'fs', title: 'mkfs / mount / fsck; file.write / file.read vs memcpy',
  paths: ['mkfs', 'mount', 'fsck', 'write-4k', 'read-4k', 'write-1m', 'read-1m'], scope: 'global', weight: 2,
  available: async () => null,
  async run(ctx): Promise<BenchResult[]> {
    const sz = fsSizes(ctx)
    const rounds = Math.max(1, Math.min(5, ctx.budget.rounds))
    const ps = ctx.dev.pageSize
    const file = join(ctx.scratch, 'fs.pmem')
    const dev = await openDevice(file, { size: sz.device, create: true, model: 'upstream', pageSize: ps })
    const out: BenchResult[] = []
    try {
      // mkfs: the first round touches every page of the fresh file (tmpfs page faults): not kept
      const mk: number[] = []
      let fs: PmemFs | undefined
      for (let r = 0; r <= rounds; r++) {
        const t = await msOf(async () => { fs = await m.mkfs(dev, { label: 'pmemu-bench' }) })
        if (r > 0) mk.push(t)
        if (r < rounds) await fs!.unmount()
      }
      ctx.log(`fs: ${sz.files} files`)
      const t0 = performance.now()
      const dataBytes = await populate(fs!, sz.files)
      const populateMs = performance.now() - t0

      // file.write / file.read throughput on an allocated file
      const W = Math.min(sz.ioBytes, Math.floor(sz.device / 8 / MiB) * MiB)
      const sab = new SharedArrayBuffer(W)
      const buf = new Uint8Array(sab)
      for (let i = 0; i < W; i += 64) buf[i] = i & 0xff
      const f = await fs!.open('/io', 'w+')
      await f.fallocate(0, W)
      f.write(buf, 0) // every block written once: no first-touch cost in the rounds
      const ioRounds = Math.max(2, rounds)
      const cRounds = Math.max(1, Math.round(256 * MiB / W / (ctx.quick ? 4 : 1)))
      const cReps = Math.max(3, Math.min(9, ctx.budget.cReps))
      const cTo = memcpyGbs(dev, f, sab, true, cReps, cRounds)
      const cFrom = memcpyGbs(dev, f, sab, false, cReps, cRounds)
      const ioNote = (piece: number, dir: 'write' | 'read'): string =>
        `file.${dir} of ${fmtBytes(piece)} pieces over a ${fmtBytes(W)} allocated file (${dir === 'write' ? 'overwrite: no allocation, no journal' : 'every block mapped'}), ` +
        `median of ${ioRounds} passes; C: memcpy ${dir === 'write' ? 'from process memory into' : 'from'} the file's blocks in the region ` +
        `(the same bytes, native shim benchMemcpy, best of ${cReps})` + (cTo === undefined ? '; no C figure: the backend has no SharedArrayBuffer to hand to C' : '')
      for (const piece of [4 * KiB, MiB]) {
        const tag = piece === MiB ? '1m' : '4k'
        const w = ioGbs(W, piece, ioRounds, pos => f.write(buf.subarray(pos, pos + piece), pos))
        const rd = ioGbs(W, piece, ioRounds, pos => f.read(buf.subarray(pos, pos + piece), pos))
        out.push(
          result({ path: `write-${tag}`, model: null, unit: 'GB/s', js: w.gbs, jsSamples: w.passes, ...(cTo !== undefined ? { c: cTo } : {}), note: ioNote(piece, 'write') }),
          result({ path: `read-${tag}`, model: null, unit: 'GB/s', js: rd.gbs, jsSamples: rd.passes, ...(cFrom !== undefined ? { c: cFrom } : {}), note: ioNote(piece, 'read') }),
        )
      }
      await f.close()
      await fs!.unmount()

      // mount and fsck of the populated fs
      const mo: number[] = []
      const ck: number[] = []
      let problems = 0
      for (let r = 0; r < rounds; r++) {
        mo.push(await msOf(async () => { fs = await m.mount(dev) }))
        await fs!.unmount()
        ck.push(await msOf(async () => { const rep = await fsck(dev); problems += rep.problems.length }))
      }
      if (problems) throw new Error(`fsck found ${problems} problem(s) in the benchmark's fs`)
      const where = `${fmtBytes(sz.device)} device of its own (${sz.device / ps} blocks of ${ps} B)`
      const holding = `${sz.files} files in ${Math.max(1, Math.min(100, Math.ceil(sz.files / 100)))} directories, ${(dataBytes / MiB).toFixed(0)} MiB of data (created in ${populateMs.toFixed(0)} ms)`
      out.unshift(
        result({ path: 'mkfs', model: null, unit: 'ms', js: median(mk), jsSamples: mk, note: `public mkfs (format + mount + DAX attached) of a ${where}; median of ${rounds}` }),
        result({ path: 'mount', model: null, unit: 'ms', js: median(mo), jsSamples: mo, note: `public mount (journal check, bitmap, inode table, DAX attached) of a ${where} holding ${holding}; median of ${rounds}` }),
        result({ path: 'fsck', model: null, unit: 'ms', js: median(ck), jsSamples: ck, note: `fsck, read-only check of every structure, of a ${where} holding ${holding}; clean; median of ${rounds}` }),
      )
    } finally {
      await dev.close()
      rmSync(file, { force: true })
      collectGarbage()
    }
    return out
  },
}

/** 'mount-64g' for 64 GiB; 'mount-256m' for the smaller sizes tests use. */
function sizedPath(base: string, bytes: number): string {
  return bytes >= GiB ? `${base}-${Math.round(bytes / GiB)}g` : `${base}-${Math.round(bytes / MiB)}m`
}

/**
 * mkfs, mount and fsck of an empty fs on a 64 GiB sparse device (tests: the
 * budget's openBytes): what they cost should follow what is allocated, not the
 * device (the inode high-water mark; mkfs writes no zeros over the sparse
 * file). Targets: mount ≤ 50 ms, fsck ≤ 200 ms at 64 GiB.
 */
export const fsEmptyBig: Benchmark = {
  id: 'fs-empty-64g', title: 'mkfs / mount / fsck of an empty fs on a 64 GiB sparse device',
  paths: ['mkfs-64g', 'mount-64g', 'fsck-64g'], scope: 'global', weight: 1,
  available: async () => null,
  covers: (declared, produced) => declared.replace(/-64g$/, '') === produced.replace(/-\d+[gm]$/, ''),
  async run(ctx): Promise<BenchResult[]> {
    const bytes = ctx.budget.openBytes
    const rounds = Math.max(3, Math.min(9, ctx.budget.rounds))
    const file = join(ctx.scratch, `fs-empty-${sizedPath('x', bytes).slice(2)}.pmem`)
    const dev = await openDevice(file, { size: bytes, create: true, model: 'upstream', pageSize: ctx.dev.pageSize })
    try {
      const mk: number[] = []
      const mo: number[] = []
      const ck: number[] = []
      let fs: PmemFs | undefined
      let problems = 0
      for (let r = 0; r < rounds; r++) {
        mk.push(await msOf(async () => { fs = await m.mkfs(dev) }))
        await fs!.unmount()
        mo.push(await msOf(async () => { fs = await m.mount(dev) }))
        await fs!.unmount()
        ck.push(await msOf(async () => { problems += (await fsck(dev)).problems.length }))
        collectGarbage()
      }
      if (problems) throw new Error(`fsck found ${problems} problem(s) in the empty fs`)
      const full = bytes >= 64 * GiB
      const where = `an empty fs on a ${fmtBytes(bytes)} sparse device (${dev.pageCount} blocks)`
      const rssMiB = process.memoryUsage.rss() / MiB
      return [
        result({ path: sizedPath('mkfs', bytes), model: null, unit: 'ms', js: median(mk), jsSamples: mk,
          note: `public mkfs (format + mount + DAX attached) of ${where}; writes the bitmap and a few blocks, no zeros over the sparse inode table; median of ${rounds}` }),
        result({ path: sizedPath('mount', bytes), model: null, unit: 'ms', js: median(mo), jsSamples: mo, maxValue: full ? 50 : undefined,
          note: `public mount of ${where}: superblock, journal check, bitmap, the inode table up to its high-water mark; median of ${rounds}` }),
        result({ path: sizedPath('fsck', bytes), model: null, unit: 'ms', js: median(ck), jsSamples: ck, maxValue: full ? 200 : undefined,
          note: `fsck (read-only) of ${where}; median of ${rounds}; process RSS after: ${rssMiB.toFixed(0)} MiB` }),
      ]
    } finally {
      await dev.close()
      rmSync(file, { force: true })
      collectGarbage()
    }
  },
}

/**
 * File creation: openSync(path, 'w') + one 4 KiB write + closeSync per file
 * on a pmemu fs, next to the same loop on node:fs in a directory of the
 * region's own fs (tmpfs /dev/shm by default) — both sides synchronous, timed
 * paired: a block of files on each side per round, in rotating order, the
 * files removed (untimed) after each block. Each side is timed in process CPU
 * time (user + system, process.cpuUsage), not wall time: both loops are
 * synchronous and never wait, and on a shared machine a block's wall time is
 * mostly the time slices other processes took (medians of 20–50× on a 2-core
 * VM at load 30, where CPU time gives a steady figure). The "C" column is
 * node:fs (libuv's open/write/close syscalls into the kernel's tmpfs, their
 * kernel time included). Target ≤ 2.0× node:fs.
 */
export const fsCreate: Benchmark = {
  id: 'fs-create', title: 'file creation (open + 4 KiB write + close) vs node:fs',
  paths: ['create-4k'], scope: 'global', weight: 1,
  available: async () => null,
  async run(ctx): Promise<BenchResult[]> {
    const nodeFs = await import('node:fs')
    const file = join(ctx.scratch, 'fs-create.pmem')
    const dev = await openDevice(file, { size: 64 * MiB, create: true, model: 'upstream', pageSize: ctx.dev.pageSize })
    const dirBase = nodeFs.mkdtempSync(join(ctx.scratch, 'node-create-'))
    const fs = await m.mkfs(dev, { label: 'pmemu-bench' })
    const data = new Uint8Array(4 * KiB).fill(0x5a)
    const per = ctx.quick ? 50 : 100
    const cpuUs = (): number => { const u = process.cpuUsage(); return u.user + u.system }
    let serial = 0
    try {
      fs.mkdirSync('/c')
      const pmemuSide = (): number => {
        const names: string[] = []
        const base = serial++
        const t0 = cpuUs()
        for (let i = 0; i < per; i++) {
          const p = `/c/f${base}-${i}`
          const f = fs.openSync(p, 'w')
          f.write(data, 0)
          f.closeSync()
          names.push(p)
        }
        const us = cpuUs() - t0
        for (const p of names) fs.unlinkSync(p)
        return us / per
      }
      const nodeSide = (): number => {
        const names: string[] = []
        const base = serial++
        const t0 = cpuUs()
        for (let i = 0; i < per; i++) {
          const p = join(dirBase, `f${base}-${i}`)
          const fd = nodeFs.openSync(p, 'w')
          nodeFs.writeSync(fd, data, 0, data.length, 0)
          nodeFs.closeSync(fd)
          names.push(p)
        }
        const us = cpuUs() - t0
        for (const p of names) nodeFs.unlinkSync(p)
        return us / per
      }
      // Warm-up: enough files for the JIT to optimise the create path (a few
      // blocks leave it interpreted: 10× the optimised figure, longer on a loaded machine).
      const warm = Math.max(2, Math.round(3000 / per * Math.min(1, ctx.budget.pairs / 21)))
      for (let w = 0; w < warm; w++) { pmemuSide(); nodeSide() }
      const [js, c] = interleave([pmemuSide, nodeSide], ctx.budget.pairs)
      return [result({
        path: 'create-4k', model: null, unit: 'µs', js: 0, paired: { js: js!, c: c! }, maxRatio: 2,
        note: `openSync(path, 'w') + write of 4 KiB + closeSync, ${per} files per block into one directory, process CPU µs per file (user + system: a shared machine's time slices are not in it), on a pmemu fs (public mount, DAX attached, ` +
          `durability '${fs.durability}') and, as the C column, node:fs openSync/writeSync/closeSync in ${dirBase.replace(/[^/]*$/, '')} ` +
          `(the same fs as the bench region: tmpfs /dev/shm by default); paired, ${ctx.budget.pairs} rounds after ${warm} warm-up blocks per side; files removed after each block (untimed)`,
      })]
    } finally {
      await fs.unmount()
      await dev.close()
      rmSync(file, { force: true })
      rmSync(dirBase, { recursive: true, force: true })
      collectGarbage()
    }
  },
}
