/**
 * Example: a write-ahead log that loses acknowledged data on power loss.
 *
 * `BadWal` has a classic ordering bug: it fsyncs *before* writing the record
 * ("make sure what is there is durable, then add ours") and acknowledges as
 * soon as the write returns. The record's bytes sit in the CPU cache, not yet
 * persisted, while the caller believes them durable. After a crash that drops
 * those cache lines the preallocated segment still holds zeros there: recovery
 * sees the end of the log and the last acknowledged record is gone.
 *
 * The crash loop finds it, and prints the seed and keep mode that reproduce it:
 *
 *     node dist/examples/wal-bad.js [seeds]
 */
import { pathToFileURL } from 'node:url'
import { crashLoop, type CrashLoopOptions, type CrashLoopReport } from './crash-loop.js'
import { Wal, walVerify, walWorkload } from './wal.js'

/** The buggy log: sync, then write, then acknowledge — the last record is never persisted before its ack. */
export class BadWal extends Wal {
  override async append(payload: Uint8Array): Promise<void> {
    await this.commit() // BUG: the fsync comes before the write it should cover
    await this.write(payload)
  }
}

/** Run the buggy log through the crash loop. Expect failures: acknowledged records lost. */
export async function runBadWal(opts: CrashLoopOptions = {}): Promise<CrashLoopReport> {
  return crashLoop(walWorkload(BadWal), walVerify(BadWal), opts)
}

async function main(): Promise<void> {
  const seeds = Number(process.argv[2] ?? 20)
  const report = await runBadWal({ seeds })
  const bySeed = new Map<string, string>()
  for (const f of report.failures) bySeed.set(`seed ${f.seed} keep ${f.keep}`, f.problem)
  console.log(`wal-bad: ${report.runs} crash runs, ${bySeed.size} lost acknowledged data`)
  for (const [where, problem] of [...bySeed].slice(0, 10)) console.log(`  ${where}: ${problem}`)
  const first = report.failures[0]
  if (first) {
    console.log(`reproduce: crashLoop(walWorkload(BadWal), walVerify(BadWal), { seeds: [${first.seed}], keep: '${first.keep}' })`)
  } else {
    console.log('wal-bad: the bug was not caught — try more seeds')
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
