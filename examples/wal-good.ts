/**
 * Example: a write-ahead log that survives power loss.
 *
 * `GoodWal` (the `Wal` of wal.ts) acknowledges an append only after the
 * record is written and fsynced. `forEachCrash` runs the workload of wal.ts
 * (20 appends through `toNodeFs`) and cuts the power at every journal crash
 * point it passes and at seeded random moments, under every `keep` mode; after
 * each crash it remounts, and `walVerify` recovers the log: no acknowledged
 * record is ever lost.
 *
 *     npx tsx examples/wal-good.ts [seeds]      # from source
 *     node dist/examples/wal-good.js [seeds]    # after npm run build
 */
import { pathToFileURL } from 'node:url'
import { forEachCrash, type ForEachCrashOptions, type ForEachCrashResult } from '../src/index.js'
import { KEEP_MODES, WAL_CRASH_OPTIONS, WAL_RECORDS, Wal, walVerify, walWorkload } from './wal.js'

/** The correct log: append = write + fsync, then acknowledge. */
export class GoodWal extends Wal {}

export const goodWorkload = walWorkload(GoodWal)
export const goodVerify = walVerify(GoodWal)

/** Run the good log under forEachCrash (every keep mode unless `opts.keep` says otherwise). Expect `ok`. */
export async function runGoodWal(opts: ForEachCrashOptions = {}): Promise<ForEachCrashResult> {
  return forEachCrash(goodWorkload, goodVerify, { ...WAL_CRASH_OPTIONS, ...opts })
}

async function main(): Promise<void> {
  const seeds = Number(process.argv[2] ?? 50)
  const started = performance.now()
  const r = await runGoodWal({ seeds })
  const ms = Math.round(performance.now() - started)
  console.log(`wal-good: workload appends ${WAL_RECORDS} records (${r.persists} persists, ${r.crashPoints} journal crash points)`)
  console.log(`wal-good: ${r.runs} crash runs = (${r.crashPoints} crash points + ${seeds} seeds) x ${KEEP_MODES.length} keep modes (${KEEP_MODES.join('/')}), ${ms} ms`)
  if (r.ok) {
    console.log(`wal-good: 0 failed runs: every acknowledged record survived every crash`)
  } else {
    console.log(`wal-good: ${r.failures.length} failed runs`)
    for (const f of r.failures.slice(0, 10)) console.log(`  ${f.message}`)
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
