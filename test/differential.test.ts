/**
 * Seeded differential test: the same random operation sequence runs on real
 * node:fs/promises in a temp dir and on toNodeFs over a pmemu fs; after every
 * step the result (or the error's code, errno, syscall, path, dest) must
 * agree, and the whole tree must agree at the end of each sequence. A failure
 * names the seed and step, so it replays. A host sentinel directory is
 * checked before and after: toNodeFs never reaches the host.
 */
import t from 'tap'
import { snapshot } from './fixtures/sentinel.js'
import { Buffer } from 'node:buffer'
import * as realFs from 'node:fs/promises'
import * as realFsModule from 'node:fs'
import { readdirSync, readFileSync, statSync, mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDevice, prng } from '../src/region/index.js'
import { mkfs, type PmemFs } from '../src/fs/index.js'
import { toNodeFs } from '../src/adapters/index.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFs = any

const SEEDS = Number(process.env.PMEMU_DIFF_SEEDS ?? 40)
const STEPS = Number(process.env.PMEMU_DIFF_STEPS ?? 150)

// ------------------------------------------------------------------ host sentinel

const sentinel = mkdtempSync(join(tmpdir(), 'pmemu-diff-sentinel-'))
writeFileSync(join(sentinel, 'f'), 'sentinel')
mkdirSync(join(sentinel, 'd'))
writeFileSync(join(sentinel, 'd', 'g'), 'inner')
const before = snapshot(sentinel)
t.teardown(() => rmSync(sentinel, { recursive: true, force: true }))

// ------------------------------------------------------------------ the op generator

// A small name space so operations collide: same files, parents that are files, trailing slashes, dot segments.
const PATHS = ['/a', '/b', '/d', '/d/a', '/d/e', '/d/e/f', '/a/x', '/d/', '/a/', '/d/.', '/d/e/..', '/nope/x']
// Times as Node takes them: seconds (fractional), numeric strings, Dates.
const TIMES: unknown[] = [0, 1.5, 1234567890.123456789, '42', '1700000000.25', new Date(1e12 + 0.5), new Date(86_400_000)]
const MODES: unknown[] = [0o600, 0o755, '644', 0o4777, 0o1777, 0o100644]
const FLAGS = ['r', 'r+', 'w', 'w+', 'a', 'a+', 'wx', 'ax', 'wx+']

interface Op { desc: string; run: (fs: AnyFs, p: (rel: string) => string, handles: unknown[]) => Promise<unknown> }

function generate(seed: number, steps: number): Op[] {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const int = (n: number): number => Math.floor(rnd() * n)
  const data = (): string => 'xyzw0123'.slice(0, int(9)).repeat(1 + int(3))
  const ops: Op[] = []
  for (let i = 0; i < steps; i++) {
    const a = pick(PATHS)
    const b = pick(PATHS)
    const k = int(25)
    switch (k) {
      case 0: { const d = data(); ops.push({ desc: `writeFile ${a} ${JSON.stringify(d)}`, run: (fs, p) => fs.writeFile(p(a), d) }); break }
      case 1: { const d = data(); ops.push({ desc: `appendFile ${a} ${JSON.stringify(d)}`, run: (fs, p) => fs.appendFile(p(a), d) }); break }
      case 2: ops.push({ desc: `readFile ${a}`, run: (fs, p) => fs.readFile(p(a), 'utf8') }); break
      case 3: { const rec = rnd() < 0.5; ops.push({ desc: `mkdir ${a} recursive=${rec}`, run: (fs, p) => fs.mkdir(p(a), { recursive: rec }) }); break }
      case 4: ops.push({ desc: `rmdir ${a}`, run: (fs, p) => fs.rmdir(p(a)) }); break
      case 5: ops.push({ desc: `unlink ${a}`, run: (fs, p) => fs.unlink(p(a)) }); break
      case 6: ops.push({ desc: `rename ${a} ${b}`, run: (fs, p) => fs.rename(p(a), p(b)) }); break
      case 7: ops.push({ desc: `stat ${a}`, run: async (fs, p) => stats(await fs.stat(p(a))) }); break
      case 8: ops.push({ desc: `readdir ${a}`, run: async (fs, p) => (await fs.readdir(p(a))).sort() }); break
      case 9: { const n = int(12) - 2; ops.push({ desc: `truncate ${a} ${n}`, run: (fs, p) => fs.truncate(p(a), n) }); break }
      case 10: ops.push({ desc: `copyFile ${a} ${b}`, run: (fs, p) => fs.copyFile(p(a), p(b)) }); break
      case 11: { const f = rnd() < 0.5; ops.push({ desc: `rm ${a} recursive force=${f}`, run: (fs, p) => fs.rm(p(a), { recursive: true, force: f }) }); break }
      case 12: ops.push({ desc: `access ${a}`, run: (fs, p) => fs.access(p(a)) }); break
      case 22: {
        const at = pick(TIMES)
        const mt = pick(TIMES)
        ops.push({ desc: `utimes ${a} ${String(at)} ${String(mt)}`, run: async (fs, p) => {
          await fs.utimes(p(a), at, mt)
          const st = await fs.stat(p(a))
          const big = await fs.stat(p(a), { bigint: true })
          return [st.atimeMs, st.mtimeMs, st.mtime.getTime(), String(big.atimeNs), String(big.mtimeNs), String(big.mtimeMs)]
        } })
        break
      }
      case 23: {
        const mode = pick(MODES)
        ops.push({ desc: `chmod ${a} ${String(mode)}`, run: async (fs, p) => { await fs.chmod(p(a), mode); return (await fs.stat(p(a))).mode & 0o7777 } })
        break
      }
      case 24: ops.push({ desc: `link ${a} ${b}`, run: async (fs, p) => { await fs.link(p(a), p(b)); return (await fs.stat(p(b))).nlink } }); break
      case 13: case 14: {
        const fl = pick(FLAGS)
        ops.push({ desc: `open ${a} ${fl}`, run: async (fs, p, hs) => { hs.push(await fs.open(p(a), fl)); return hs.length - 1 } })
        break
      }
      default: {
        // A handle operation on handle #h (possibly closed already, possibly never opened).
        const h = int(4)
        const pos = rnd() < 0.5 ? null : int(10)
        const d = data()
        const n = int(8)
        const len = int(12) - 2
        const which = int(6)
        const with_ = async (hs: unknown[], fn: (fh: AnyFs) => Promise<unknown>): Promise<unknown> => (h < hs.length ? fn(hs[h]) : 'no handle')
        if (which === 0) ops.push({ desc: `h${h}.write ${JSON.stringify(d)} at ${pos}`, run: (_fs, _p, hs) => with_(hs, async fh => (await fh.write(Buffer.from(d), 0, d.length, pos)).bytesWritten) })
        else if (which === 1) ops.push({ desc: `h${h}.read ${n} at ${pos}`, run: (_fs, _p, hs) => with_(hs, async fh => {
          const buf = Buffer.alloc(n)
          const r = await fh.read(buf, 0, n, pos)
          return [r.bytesRead, buf.subarray(0, r.bytesRead).toString()]
        }) })
        else if (which === 2) ops.push({ desc: `h${h}.truncate ${len}`, run: (_fs, _p, hs) => with_(hs, fh => fh.truncate(len)) })
        else if (which === 3) ops.push({ desc: `h${h}.stat`, run: (_fs, _p, hs) => with_(hs, async fh => stats(await fh.stat())) })
        else if (which === 4) ops.push({ desc: `h${h}.sync`, run: (_fs, _p, hs) => with_(hs, fh => fh.sync()) })
        else ops.push({ desc: `h${h}.close`, run: (_fs, _p, hs) => with_(hs, fh => fh.close()) })
      }
    }
  }
  return ops
}

function stats(s: { size: number; nlink: number; isFile(): boolean; isDirectory(): boolean }): unknown {
  return { size: s.isDirectory() ? 'dir' : s.size, nlink: s.nlink, file: s.isFile(), dir: s.isDirectory() }
}

async function outcome(op: Op, fs: AnyFs, root: string, handles: unknown[]): Promise<unknown> {
  const strip = (s: unknown): unknown => (typeof s === 'string' && root !== '' ? s.split(root).join('') : s)
  try {
    const v = await op.run(fs, rel => root + rel, handles)
    return { ok: v === undefined ? 'undefined' : strip(v) }
  } catch (e) {
    const err = e as { code?: string; syscall?: string; path?: string; dest?: string; errno?: number }
    return { error: { code: err.code, errno: err.errno, syscall: err.syscall, path: strip(err.path), dest: strip(err.dest) } }
  }
}

/** The whole tree: paths, types, contents. */
async function tree(fs: AnyFs, root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const name of (await fs.readdir(root + d)).sort()) {
      const p = `${d}/${name}`
      const st = await fs.stat(root + p)
      if (st.isDirectory()) { out.push(`${p}/`); await walk(p) } else out.push(`${p} ${await fs.readFile(root + p, 'utf8')}`)
    }
  }
  await walk('')
  return out
}

t.test(`seeded random operations agree with node:fs step by step (${SEEDS} seeds x ${STEPS} steps)`, async t => {
  const base = await realFs.mkdtemp(join(tmpdir(), 'pmemu-diff-'))
  t.teardown(() => realFs.rm(base, { recursive: true, force: true }))
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  const pfs: PmemFs = await mkfs(dev)
  const pm = toNodeFs(pfs)
  let steps = 0
  for (let seed = 1; seed <= SEEDS; seed++) {
    const dir = `/s${seed}`
    await realFs.mkdir(base + dir)
    await pm.mkdir(dir)
    const hostHandles: AnyFs[] = []
    const pmHandles: AnyFs[] = []
    let bad: string | null = null
    for (const [i, op] of generate(seed, STEPS).entries()) {
      const want = await outcome(op, realFs, base + dir, hostHandles)
      const got = await outcome(op, pm, dir, pmHandles)
      steps++
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        bad = `seed ${seed} step ${i}: ${op.desc}\n  node:fs:  ${JSON.stringify(want)}\n  toNodeFs: ${JSON.stringify(got)}`
        t.same(got, want, bad)
        break
      }
    }
    for (const h of hostHandles) await h.close().catch(() => undefined)
    for (const h of pmHandles) await h.close().catch(() => undefined)
    if (bad !== null) continue
    t.same(await tree(pm, dir), await tree(realFs, base + dir), `seed ${seed}: the trees agree`)
    // Removing each sequence's tree also checks that space comes back (else a long run hits ENOSPC).
    await pm.rm(dir, { recursive: true })
    await realFs.rm(base + dir, { recursive: true })
  }
  t.ok(steps >= SEEDS * STEPS * 0.5, `${steps} steps compared`)
})

/**
 * The same operations through the *Sync forms (node:fs's against toNodeFs's), as a
 * promise-shaped view so the generator serves both. Where pmemu answers EAGAIN (a
 * shrink that may wait for pins: documented), that step runs through the async
 * forms on both sides instead.
 */
const fallback = { on: false }
function syncView(mod: AnyFs): AnyFs {
  const v = (fn: (...a: unknown[]) => unknown) => async (...a: unknown[]): Promise<unknown> => fn(...a)
  const closedError = (syscall: string): Error => Object.assign(new Error(`EBADF: bad file descriptor, ${syscall}`), { code: 'EBADF', errno: -9, syscall })
  return {
    writeFile: v((p, d) => mod.writeFileSync(p, d)),
    appendFile: v((p, d) => mod.appendFileSync(p, d)),
    readFile: v((p, e) => mod.readFileSync(p, e)),
    mkdir: v((p, o) => mod.mkdirSync(p, o)),
    rmdir: v(p => mod.rmdirSync(p)),
    unlink: v(p => mod.unlinkSync(p)),
    rename: v((a, b) => mod.renameSync(a, b)),
    stat: v((p, o) => mod.statSync(p, o)),
    readdir: v(p => mod.readdirSync(p)),
    truncate: v((p, n) => mod.truncateSync(p, n)),
    copyFile: (a: unknown, b: unknown) => mod.promises.copyFile(a, b),
    rm: v((p, o) => mod.rmSync(p, o)),
    access: v(p => mod.accessSync(p)),
    utimes: v((p, a, m) => mod.utimesSync(p, a, m)),
    chmod: v((p, m) => mod.chmodSync(p, m)),
    link: v((a, b) => mod.linkSync(a, b)),
    open: v((p, fl) => {
      const fd = mod.openSync(p, fl)
      let closed = false
      const live = (syscall: string): number => { if (closed) throw closedError(syscall); return fd }
      return {
        write: v((buf, off, len, pos) => ({ bytesWritten: mod.writeSync(live('write'), buf, off, len, pos) })),
        read: v((buf, off, len, pos) => ({ bytesRead: mod.readSync(live('read'), buf, off, len, pos) })),
        // A shrink answers EAGAIN on pmemu; the fallback step then uses the callback form on both sides.
        truncate: (len: unknown) => (fallback.on
          ? new Promise<void>((resolve, reject) => mod.ftruncate(live('ftruncate'), len, (e: unknown) => (e ? reject(e) : resolve())))
          : v(() => mod.ftruncateSync(live('ftruncate'), len))()),
        stat: v(() => mod.fstatSync(live('fstat'))),
        sync: v(() => mod.fsyncSync(live('fsync'))),
        close: v(() => { mod.closeSync(live('close')); closed = true }),
      }
    }),
  }
}

t.test(`the *Sync forms agree with node:fs's step by step (${Math.ceil(SEEDS / 2)} seeds x ${STEPS} steps)`, async t => {
  const base = await realFs.mkdtemp(join(tmpdir(), 'pmemu-diff-sync-'))
  t.teardown(() => realFs.rm(base, { recursive: true, force: true }))
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  const pmMod = toNodeFs(await mkfs(dev)) as AnyFs
  const hostSync = syncView(realFsModule)
  const pmSync = syncView(pmMod)
  let fallbacks = 0
  for (let seed = 1001; seed <= 1000 + Math.ceil(SEEDS / 2); seed++) {
    const dir = `/s${seed}`
    await realFs.mkdir(base + dir)
    await pmMod.promises.mkdir(dir)
    // Handles are shared between the two views of a side, so a fallback step can use them.
    const hostHandles: AnyFs[] = []
    const pmHandles: AnyFs[] = []
    let bad = false
    for (const [i, op] of generate(seed, STEPS).entries()) {
      let got = await outcome(op, pmSync, dir, pmHandles)
      let want: unknown
      if ((got as { error?: { code?: string } }).error?.code === 'EAGAIN') {
        fallbacks++
        fallback.on = true
        got = await outcome(op, pmMod.promises, dir, pmHandles)
        want = await outcome(op, realFs, base + dir, hostHandles)
        fallback.on = false
      } else {
        want = await outcome(op, hostSync, base + dir, hostHandles)
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.same(got, want, `seed ${seed} step ${i}: ${op.desc}\n  node:fs:  ${JSON.stringify(want)}\n  toNodeFs: ${JSON.stringify(got)}`)
        bad = true
        break
      }
    }
    for (const h of [...hostHandles, ...pmHandles]) await h.close().catch(() => undefined)
    if (!bad) t.same(await tree(pmMod.promises, dir), await tree(realFs, base + dir), `seed ${seed}: the trees agree`)
    await pmMod.promises.rm(dir, { recursive: true })
    await realFs.rm(base + dir, { recursive: true })
  }
  t.ok(fallbacks > 0, `${fallbacks} shrinking steps answered EAGAIN and ran async instead`)
})

t.test('the host sentinel directory is untouched', async t => {
  t.equal(snapshot(sentinel), before)
})
