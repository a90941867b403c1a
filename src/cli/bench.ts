/**
 * `pmemu bench`: run the benchmark suite (bench/), show progress, print the
 * results table, write --json / --html, compare with an earlier --json run.
 * Progress and warnings go to stderr; the table, the comparison and the
 * report paths go to stdout.
 */
import { accessSync, constants as fsc, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import cliProgress from 'cli-progress'
import { isErrorCode, pmemError, wrapSystemError } from '../errors.js'
import { bytesWithUnit } from './format.js'
import { whatItHolds } from './holds.js'
import type { ModelName } from '../region/types.js'
import {
  runBenchmarks, renderHtml, compareLines, resultsTable, skippedLines, detectFs, defaultBase, resolveModels,
  type BenchReport, type ProgressEvent, type RunOptions,
} from '../../bench/index.js'

export interface BenchCommandOptions {
  file?: string
  size?: string | number
  model?: ModelName | 'all'
  workers?: string | number
  quick?: boolean
  json?: string
  html?: string
  compare?: string
  /** Run on a --file that already holds a device or other data (it is reformatted). */
  force?: boolean
  /** Where lines go (tests capture them). */
  out?: (line: string) => void
  err?: (line: string) => void
  /** Force plain progress lines (default: a live bar when stderr is a TTY). */
  plain?: boolean
  /** Passed through to runBenchmarks (tests: a tiny budget, a subset of benchmarks). */
  run?: Partial<RunOptions>
}

function readReport(path: string): BenchReport {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw pmemError('ENOENT', 'bench', `cannot read the earlier run to compare with: ${(e as Error).message}`, { path })
  }
  try {
    const j = JSON.parse(text) as BenchReport
    if (!j || !Array.isArray(j.results)) throw new Error('no results array')
    return j
  } catch (e) {
    throw pmemError('EINVAL', 'bench', `${path} is not a pmemu bench JSON file (${(e as Error).message})`, { path })
  }
}

/**
 * Check up front (before a run that can take minutes) that `path` can be
 * created: its directory must exist, be a directory and be writable. Missing
 * directories are NOT created: a typo'd path is an error naming it.
 */
export function checkWritableDir(path: string, flag: string): void {
  const abs = resolve(path)
  const dir = dirname(abs)
  let st
  try {
    st = statSync(dir)
  } catch (e) {
    const c = (e as { code?: unknown }).code ?? 'ENOENT'
    const code = isErrorCode(c) ? c : 'EIO'
    throw pmemError(code, 'bench', code === 'ENOENT' ? `${flag}: directory ${dir} does not exist` : `${flag}: cannot use directory ${dir}`, { path: abs, cause: e })
  }
  if (!st.isDirectory()) throw pmemError('ENOTDIR', 'bench', `${flag}: ${dir} is not a directory`, { path: abs })
  try {
    accessSync(dir, fsc.W_OK)
  } catch (e) {
    throw wrapSystemError(e, 'bench', { path: abs })
  }
  try {
    if (statSync(abs).isDirectory()) throw pmemError('EISDIR', 'bench', `${flag}: ${abs} is a directory`, { path: abs })
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e
  }
}

function writeOut(path: string, text: string): string {
  const abs = resolve(path)
  try {
    writeFileSync(abs, text)
  } catch (e) {
    throw wrapSystemError(e, 'bench', { path: abs })
  }
  return abs
}

/** The progress display: a live bar on a terminal, plain lines otherwise. */
function progress(tty: boolean, err: (l: string) => void): (e: ProgressEvent) => void {
  if (tty) {
    const bar = new cliProgress.SingleBar({
      format: 'pmemu bench [{bar}] {percentage}% | {value}/{total} | {label}',
      hideCursor: true, clearOnComplete: true, stream: process.stderr,
    }, cliProgress.Presets.shades_classic)
    let started = false
    return e => {
      if (e.kind === 'start') { bar.start(Math.max(1, e.total), 0, { label: '' }); started = true }
      else if (e.kind === 'step' && started) bar.update(e.done, { label: e.label })
      else if (e.kind === 'end' && started) { bar.update(bar.getTotal()); bar.stop(); started = false }
    }
  }
  let last = ''
  return e => {
    if (e.kind === 'start') err(`pmemu bench: ${e.steps} steps`)
    else if (e.kind === 'step' && e.label !== last) {
      last = e.label
      err(e.detail ? `          ${e.label}` : `  [${e.step}/${e.steps}] ${e.label}`)
    }
  }
}

/** Run `pmemu bench` with commander's options. Returns the report (for tests). */
export async function runBenchCommand(o: BenchCommandOptions | Record<string, unknown>): Promise<BenchReport> {
  const opts = o as BenchCommandOptions
  const out = opts.out ?? ((l: string) => process.stdout.write(l + '\n'))
  const err = opts.err ?? ((l: string) => process.stderr.write(l + '\n'))
  const workers = opts.workers === undefined ? 2 : Number(opts.workers)
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 64) {
    throw pmemError('EINVAL', 'bench', `--workers must be a whole number from 1 to 64, got ${String(opts.workers)}`)
  }
  let models: ModelName[]
  try {
    models = resolveModels(opts.model ?? 'all')
  } catch (e) {
    throw pmemError('EINVAL', 'bench', (e as Error).message)
  }
  const old = opts.compare ? readReport(opts.compare) : undefined
  if (opts.file !== undefined) {
    checkWritableDir(opts.file, '--file')
    // The benchmarks format the region: never over something a user keeps unless told to.
    let holds = await whatItHolds(opts.file)
    // mkfs may format a device with no file system (as mkfs.xfs), but its
    // region may hold data written through the API: bench asks first too
    if (holds === undefined) {
      let size = 0
      try { size = statSync(opts.file).size } catch { /* absent: a new device */ }
      if (size > 0) holds = `a pmemu device (${bytesWithUnit(size)}, no file system; its region may hold data)`
    }
    if (holds !== undefined) {
      if (!opts.force) {
        throw pmemError('EEXIST', 'bench', `${opts.file} holds ${holds}; the benchmarks would reformat it. Use --force to run on it anyway, or name a new file (or none: a scratch file is used and removed)`, { path: opts.file })
      }
      if (/not a pmemu device/.test(holds)) rmSync(opts.file, { force: true })
    }
  }
  if (opts.json) checkWritableDir(opts.json, '--json')
  if (opts.html) checkWritableDir(opts.html, '--html')

  // Warn when the numbers will not mean much for pmem.
  const fs = detectFs(opts.file ?? `${defaultBase()}/pmemu-bench`)
  if (!fs.suitable) err(`pmemu bench: warning: ${fs.note}`)

  const tty = opts.plain !== true && process.stderr.isTTY === true
  const rep = await runBenchmarks({
    ...(opts.file !== undefined ? { file: opts.file } : {}),
    ...(opts.size !== undefined ? { size: opts.size } : {}),
    models, workers, quick: opts.quick === true,
    onProgress: progress(tty, err),
    ...opts.run,
  })

  out('')
  out(`pmemu bench ${rep.version} · Node ${rep.node} · ${rep.machine.cpus} × ${rep.machine.model} · region on ${rep.fsType}${rep.dax ? ' (DAX)' : ''} (${rep.backend}) · ${(rep.durationMs / 1000).toFixed(1)} s${rep.quick ? ' · quick' : ''}`)
  for (const l of resultsTable(rep)) out(l)
  const missed = rep.results.filter(r => r.met === false)
  out('')
  out(`${rep.results.length} figures, ${rep.results.filter(r => r.met === true).length} targets met, ${missed.length} missed${missed.length ? ': ' + missed.map(r => `${r.path}${r.model ? ' (' + r.model + ')' : ''}`).join(', ') : ''}`)
  for (const l of skippedLines(rep.skipped)) out(l)
  if (old) {
    out('')
    out(`compared with ${resolve(opts.compare!)} (${old.startedAt ?? 'unknown date'}):`)
    for (const l of compareLines(old, rep)) out(l)
  }
  if (opts.json) out(`JSON written to ${writeOut(opts.json, JSON.stringify(rep, null, 2) + '\n')}`)
  if (opts.html) out(`report written to ${writeOut(opts.html, await renderHtml(rep))}`)
  return rep
}
