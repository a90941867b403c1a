/**
 * Example: a write-ahead log that survives power loss.
 *
 * `GoodWal` (the `Wal` of wal.ts) acknowledges an append only after the record
 * is written and fsynced. The crash loop runs the workload on a fresh
 * crash-shadowed device for many seeds and every `keep` mode, cuts the power,
 * remounts and recovers: no acknowledged record is ever lost.
 *
 *     node dist/examples/wal-good.js [seeds]
 */
import { pathToFileURL } from 'node:url'
import { crashLoop, type CrashLoopOptions, type CrashLoopReport } from './crash-loop.js'
import { Wal, walVerify, walWorkload } from './wal.js'

/** The correct log: append = write + fsync, then acknowledge. */
export class GoodWal extends Wal {}

/** Run the good log through the crash loop. Expect `failures` to be empty. */
export async function runGoodWal(opts: CrashLoopOptions = {}): Promise<CrashLoopReport> {
  return crashLoop(walWorkload(GoodWal), walVerify(GoodWal), opts)
}

async function main(): Promise<void> {
  const seeds = Number(process.argv[2] ?? 50)
  const report = await runGoodWal({ seeds })
  console.log(`wal-good: ${report.runs} crash runs (${seeds} seeds x keep none/all/random)`)
  if (report.failures.length === 0) {
    console.log('wal-good: every acknowledged record survived every crash')
  } else {
    for (const f of report.failures) console.log(`  seed ${f.seed} keep ${f.keep}: ${f.problem}`)
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
