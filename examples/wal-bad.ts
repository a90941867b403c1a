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
 * `forEachCrash` finds it and names the seed, crash point and keep mode of
 * every failing run; `replayCrash` re-runs one of them and loses the same
 * record again:
 *
 *     npx tsx examples/wal-bad.ts [seeds]      # from source
 *     node dist/examples/wal-bad.js [seeds]    # after npm run build
 */
import { pathToFileURL } from 'node:url'
import {
  forEachCrash, replayCrash, type CrashFailure, type ForEachCrashOptions, type ForEachCrashResult, type Keep,
} from '../src/index.js'
import { KEEP_MODES, WAL_CRASH_OPTIONS, WAL_RECORDS, Wal, walVerify, walWorkload } from './wal.js'

/** The buggy log: sync, then write, then acknowledge — the last record is never persisted before its ack. */
export class BadWal extends Wal {
  override async append(payload: Uint8Array): Promise<void> {
    await this.commit() // BUG: the fsync comes before the write it should cover
    await this.write(payload)
  }
}

export const badWorkload = walWorkload(BadWal)
export const badVerify = walVerify(BadWal)

/** Run the buggy log under forEachCrash (every keep mode unless `opts.keep` says otherwise). Expect failures: acknowledged records lost. */
export async function runBadWal(opts: ForEachCrashOptions = {}): Promise<ForEachCrashResult> {
  return forEachCrash(badWorkload, badVerify, { ...WAL_CRASH_OPTIONS, ...opts })
}

/**
 * Re-run one failing crash from its seed, point and keep mode (a failure
 * object as forEachCrash reported it): resolves with the same failure again,
 * or undefined if it passed. Without `point` the seed picks its random moment.
 */
export async function replayBadWal(failure: { seed: number; point?: string; keep: Keep }): Promise<CrashFailure | undefined> {
  const { seed, point, keep } = failure
  return replayCrash(badWorkload, badVerify, { size: WAL_CRASH_OPTIONS.size, seed, keep, ...(point !== undefined ? { point } : {}) })
}

const problemOf = (f: CrashFailure): string => (f.error instanceof Error ? f.error.message : String(f.error))

async function main(): Promise<void> {
  const seeds = Number(process.argv[2] ?? 20)
  const started = performance.now()
  const r = await runBadWal({ seeds })
  const ms = Math.round(performance.now() - started)
  console.log(`wal-bad: workload appends ${WAL_RECORDS} records (${r.persists} persists, ${r.crashPoints} journal crash points)`)
  console.log(`wal-bad: ${r.runs} crash runs = (${r.crashPoints} crash points + ${seeds} seeds) x ${KEEP_MODES.length} keep modes (${KEEP_MODES.join('/')}), ${ms} ms`)
  const first = r.firstFailure
  if (!first) {
    console.log('wal-bad: 0 failed runs: the bug was not caught — try more seeds')
    process.exitCode = 1
    return
  }
  const byKeep = KEEP_MODES.map(k => `${r.failures.filter(f => f.keep === k).length} with keep '${k}'`).join(', ')
  console.log(`wal-bad: ${r.failures.length} of ${r.runs} crash runs lost acknowledged records (${byKeep})`)
  // a few of each kind: journal crash points, then seeded random moments
  const shown = [
    ...r.failures.filter(f => f.at.kind === 'crash-point').slice(0, 3),
    ...r.failures.filter(f => f.at.kind !== 'crash-point').slice(0, 3),
  ]
  for (const f of shown) console.log(`  ${f.message}`)
  if (r.failures.length > shown.length) console.log(`  ... and ${r.failures.length - shown.length} more failed runs`)
  const again = await replayBadWal(first)
  const same = again !== undefined && problemOf(again) === problemOf(first)
  console.log(`wal-bad: replayCrash({ seed: ${first.seed}, point: '${first.point}', keep: '${first.keep}' }) ${same ? 'reproduces it' : 'did NOT reproduce it'}: ${again ? problemOf(again) : 'passed'}`)
  if (!same) process.exitCode = 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
