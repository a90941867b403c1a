/**
 * Crash-state exploration throughput (docs/crash-testing.md, "Limits and
 * speed"; issue: ≥ 200 states/s on the 2-core machine):
 *
 *   crash-explore        forEachCrash under 'posix' of a 20-operation workload   states/s, median
 *                        (5 files, each: create, two 3000-byte appends, fsync)
 *                        on a 16 MiB device: every distinct crash state built
 *                        (image write-back, mount, materialise), verified
 *                        (reads every file) and unmounted; fsck off (the
 *                        explorer does not fsck its states yet)
 *
 * One round is one forEachCrash call, its fixed cost included (device, mkfs,
 * the two recordings); states/s = distinct states / wall time of the call.
 */
import type { Benchmark, BenchContext, BenchResult } from '../types.js'
import { forEachCrash } from '../../src/faults/index.js'
import { collectGarbage, median, result } from '../measure.js'

type Ctx = { fs: { open(p: string, f: string): Promise<File>; readdir(p: string): Promise<string[]> }; state: Record<string, unknown> }
type File = { write(b: Uint8Array, pos: number): number; read(b: Uint8Array, pos: number): number; size: number; fsync(): Promise<void>; close(): Promise<void> }

const FILES = 5
const PIECE = 3000

/** 20 traced operations: per file open (create), two appends, fsync. */
async function workload({ fs, state }: Ctx): Promise<void> {
  const piece = new Uint8Array(PIECE)
  for (let i = 0; i < FILES; i++) {
    const f = await fs.open(`/f${i}`, 'w')
    piece.fill(i + 1)
    f.write(piece, 0)
    f.write(piece, PIECE)
    await f.fsync()
    await f.close()
    state.synced = i + 1
  }
}

/** Reads every file (what a real verify costs at least); the fsynced ones must be whole. */
async function verify({ fs, state }: Ctx): Promise<void> {
  const synced = (state.synced as number | undefined) ?? 0
  for (const name of await fs.readdir('/')) {
    const f = await fs.open(`/${name}`, 'r')
    const b = new Uint8Array(f.size)
    f.read(b, 0)
    await f.close()
    const i = Number(name.slice(1))
    if (i < synced && (b.length !== 2 * PIECE || b.some(x => x !== i + 1))) throw new Error(`${name} was fsynced but reads ${b.length} bytes`)
  }
}

export const crashExplore: Benchmark = {
  id: 'crash-explore',
  title: 'crash-state exploration (forEachCrash under posix)',
  paths: ['crash-explore'],
  scope: 'global',
  weight: 2,
  available: async () => null,
  async run(ctx: BenchContext): Promise<BenchResult[]> {
    const rounds = ctx.budget.rounds
    const out: BenchResult[] = []
    for (const [path, fsck] of [['crash-explore', false]] as const) {
      ctx.log(`${path}: ${rounds} rounds`)
      const rates: number[] = []
      let states = 0
      let ops = 0
      if (!fsck) await forEachCrash(workload, verify, { durability: 'posix', size: '16MiB', fsck }) // warm-up (JIT)
      for (let r = 0; r < rounds; r++) {
        collectGarbage()
        const t0 = process.hrtime.bigint()
        const res = await forEachCrash(workload, verify, { durability: 'posix', size: '16MiB', fsck })
        const s = Number(process.hrtime.bigint() - t0) / 1e9
        if (!res.ok) throw new Error(`${path}: the benchmark workload failed a state: ${res.firstFailure?.message ?? '?'}`)
        states = res.runs
        ops = res.operations ?? 0
        rates.push(res.runs / s)
      }
      out.push(result({
        path, model: null, unit: 'states/s', js: median(rates), jsSamples: rates, ...(fsck ? {} : { minValue: 200 }),
        note: `forEachCrash(durability 'posix'${fsck ? ', fsck of every state' : ', fsck off'}) of a ${ops}-operation workload (${FILES} files: create, two ${PIECE}-byte appends, fsync) on a 16 MiB device: ${states} distinct states per call, fixed cost (device, mkfs, two recordings) included; median of ${rounds} calls${fsck ? '' : ' after one warm-up'}`,
      }))
    }
    return out
  },
}
