/**
 * A small crash loop for the examples: run a workload on a fresh crash-shadowed
 * in-memory device, cut the power with a seeded `dev.crash()`, remount and
 * verify — for every seed and every `keep` mode.
 *
 * Its signature follows the `forEachCrash(workload, verify, { seeds, keep })`
 * helper planned for src/faults; once that exists, `crashLoop` can forward
 * to it unchanged.
 */
import { openDevice, type Device } from '../src/region/index.js'
import { fsck, mkfs, mount, type PmemFs } from '../src/fs/index.js'

export type KeepMode = 'none' | 'all' | 'random'

/** What the workload gets: a freshly formatted file system on a crash-shadowed device. */
export interface WorkloadContext { dev: Device; fs: PmemFs; seed: number; keep: KeepMode }
/** What verify gets: the same device after the crash, the file system mounted again, and the workload's result. */
export interface VerifyContext<S> extends WorkloadContext { state: S; fsckClean: boolean; fsckProblems: string[] }

export interface CrashLoopOptions {
  /** Seeds to run (a number n means 1..n). Default 20. */
  seeds?: number | number[]
  /** Which lines not yet persisted survive the crash (default all three modes). */
  keep?: KeepMode | KeepMode[]
  /** Device size (default '4MiB'). */
  size?: string | number
}

/** One failed verification: enough to reproduce it (`seed`, `keep`). */
export interface CrashFailure { seed: number; keep: KeepMode; problem: string }
export interface CrashLoopReport { runs: number; failures: CrashFailure[] }

/**
 * For each keep mode and seed: open an in-memory device with `crashShadow`,
 * mkfs, `workload(ctx)` (its return value is the state to check), crash with
 * `{ seed, keep }`, fsck, mount, `verify(ctx)`. verify returns a list of
 * problems (empty = the run survived) or throws.
 */
export async function crashLoop<S>(
  workload: (ctx: WorkloadContext) => Promise<S>,
  verify: (ctx: VerifyContext<S>) => Promise<string[]>,
  opts: CrashLoopOptions = {},
): Promise<CrashLoopReport> {
  const seeds = typeof opts.seeds === 'number' || opts.seeds === undefined
    ? Array.from({ length: opts.seeds ?? 20 }, (_, i) => i + 1) : opts.seeds
  const keeps: KeepMode[] = opts.keep === undefined ? ['none', 'all', 'random'] : Array.isArray(opts.keep) ? opts.keep : [opts.keep]
  const failures: CrashFailure[] = []
  let runs = 0
  for (const keep of keeps) {
    for (const seed of seeds) {
      const dev = await openDevice(undefined, { size: opts.size ?? '4MiB', crashShadow: true })
      try {
        const fs = await mkfs(dev)
        const state = await workload({ dev, fs, seed, keep })
        await dev.crash({ seed, keep })
        const report = await fsck(dev)
        const fs2 = await mount(dev)
        let problems: string[]
        try {
          problems = await verify({ dev, fs: fs2, seed, keep, state, fsckClean: report.clean, fsckProblems: report.problems })
        } catch (e) {
          problems = [`verify threw: ${(e as Error).message}`]
        }
        for (const problem of problems) failures.push({ seed, keep, problem })
        await fs2.unmount()
        runs++
      } finally {
        await dev.close()
      }
    }
  }
  return { runs, failures }
}

/** A small seeded PRNG (xorshift32) so a seed reproduces the same workload. */
export function rng(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    return x / 0x1_0000_0000
  }
}
