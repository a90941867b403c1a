/**
 * runBenchmarks(): opens the bench region once per model, runs every
 * registered benchmark that is available, and returns the Benchmark JSON of
 * docs/api-contract.md. Benchmarks that cannot run (a layer is missing) or that fail are
 * listed in `skipped` with the reason; the run itself never fails for them.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { openDevice, type Device } from '../src/region/index.js'
import { MODEL_NAMES } from '../src/page/index.js'
import type { ModelName } from '../src/region/types.js'
import { pmemError, wrapSystemError } from '../src/errors.js'
import { packageRoot } from '../src/util/root.js'
import { parseSize, type Size } from '../src/util/size.js'
import { detectFs } from './fstype.js'
import { FULL_BUDGET, QUICK_BUDGET, collectGarbage } from './measure.js'
import { BENCHMARKS } from './registry.js'
import type { Benchmark, BenchContext, BenchReport, BenchResult, Budget, ProgressEvent, SkippedPath } from './types.js'

/** Every model, in the seed thread's order (src/page/models.ts). */
export const ALL_MODELS: readonly ModelName[] = MODEL_NAMES
export const DEFAULT_SIZE = '256MiB'

export interface RunOptions {
  /** Region file (default: a fresh file in /dev/shm, else the OS temp dir, removed afterwards). */
  file?: string
  /** Region size when the file is created (default 256 MiB). An existing file keeps its size. */
  size?: Size
  models?: ModelName | 'all' | readonly ModelName[]
  /** Worker threads for the contention and DMA paths (default 2). */
  workers?: number
  quick?: boolean
  /** Override timing knobs (tests use TINY_BUDGET). */
  budget?: Partial<Budget>
  /** Run only these benchmark ids (default: all registered). */
  only?: readonly string[]
  /** Use this list instead of the registry (tests). */
  benchmarks?: readonly Benchmark[]
  onProgress?: (e: ProgressEvent) => void
}

export function resolveModels(m: RunOptions['models']): ModelName[] {
  if (m === undefined || m === 'all') return [...ALL_MODELS]
  const list = typeof m === 'string' ? [m] : [...m]
  for (const x of list) {
    if (!ALL_MODELS.includes(x)) throw new Error(`unknown model '${String(x)}' (one of ${ALL_MODELS.join(', ')}, all)`)
  }
  return list
}

function pkgVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

/** Where a default region goes: /dev/shm when it exists (tmpfs), else the OS temp dir. */
export function defaultBase(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir()
}

export async function runBenchmarks(o: RunOptions = {}): Promise<BenchReport> {
  const started = Date.now()
  const quick = o.quick === true
  const budget: Budget = { ...(quick ? QUICK_BUDGET : FULL_BUDGET), ...o.budget }
  const models = resolveModels(o.models)
  const workers = o.workers ?? 2
  if (!Number.isSafeInteger(workers) || workers < 1) throw new Error(`workers must be a whole number ≥ 1, got ${String(o.workers)}`)
  const emit = o.onProgress ?? (() => {})
  const ownFile = o.file === undefined
  // Validate everything that can fail before the scratch directory exists, so a failure leaves nothing behind.
  const size = parseSize(o.size ?? DEFAULT_SIZE, 'size', 'bench')
  const base = ownFile ? defaultBase() : dirname(resolve(o.file!))
  try {
    if (!statSync(base).isDirectory()) throw pmemError('ENOTDIR', 'bench', `${base} is not a directory`, { path: base })
  } catch (e) {
    throw wrapSystemError(e, 'bench', { path: ownFile ? base : resolve(o.file!) })
  }
  const fs = detectFs(ownFile ? join(base, 'pmemu-bench') : resolve(o.file!))
  const list = (o.benchmarks ?? BENCHMARKS).filter(b => !o.only || o.only.includes(b.id))
  let scratch: string
  try {
    scratch = mkdtempSync(join(base, ownFile ? 'pmemu-bench-' : '.pmemu-bench-'))
  } catch (e) {
    throw wrapSystemError(e, 'bench', { path: ownFile ? base : resolve(o.file!) })
  }
  // The scratch directory (and a default region in it) goes away however the run ends, Ctrl-C included.
  const cleanup = (): void => { rmSync(scratch, { recursive: true, force: true }) }
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    process.kill(process.pid, sig)
  }
  process.on('exit', cleanup)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const file = ownFile ? join(scratch, 'region.pmem') : resolve(o.file!)

  const results: BenchResult[] = []
  const skipped: SkippedPath[] = []
  const skip = (b: Benchmark, model: ModelName | null, reason: string, paths = b.paths): void => {
    for (const path of paths) {
      const s = { path, model, reason }
      skipped.push(s)
      emit({ kind: 'skip', skipped: s })
    }
  }

  const runnable: Benchmark[] = []
  let backend = 'native'
  let capabilities: Record<string, unknown> = {}
  try {
    // which benchmarks can run
    for (const b of list) {
      let why: string | null
      try {
        why = await b.available()
      } catch (e) {
        why = `not available: ${(e as Error).message}`
      }
      if (why === null) runnable.push(b)
      else if (b.scope === 'global') skip(b, null, why)
      else for (const m of models) skip(b, m, why)
    }
    const globals = runnable.filter(b => b.scope === 'global')
    const perModel = runnable.filter(b => b.scope === 'model')
    const total = globals.reduce((n, b) => n + (b.weight ?? 1), 0) + models.length * perModel.reduce((n, b) => n + (b.weight ?? 1), 0)
    const steps = globals.length + models.length * perModel.length
    let done = 0
    let stepNo = 0
    emit({ kind: 'start', total, steps })

    const open = async (model: ModelName): Promise<Device> => {
      const exists = existsSync(file)
      const dev = await openDevice(file, exists ? { model } : { size, create: true, model })
      backend = dev.backend
      capabilities = dev.capabilities as unknown as Record<string, unknown>
      return dev
    }

    const step = async (b: Benchmark, model: ModelName | null, dev: Device): Promise<void> => {
      const n = ++stepNo
      emit({ kind: 'step', done, total, step: n, steps, label: `${b.id}${model ? ' · ' + model : ''}` })
      const ctx: BenchContext = {
        file, size: dev.capacity, quick, workers, budget, scratch, model, dev,
        log: msg => emit({ kind: 'step', done, total, step: n, steps, label: msg, detail: true }),
      }
      try {
        const rs = await b.run(ctx)
        for (const r of rs) {
          results.push(r)
          emit({ kind: 'result', result: r })
        }
        const got = new Set(rs.map(r => r.path))
        const covers = b.covers ?? ((p: string, g: string) => g === p || g.startsWith(p))
        const missing = b.paths.filter(p => ![...got].some(g => covers(p, g)))
        if (missing.length) skip(b, model, 'did not apply on this run', missing)
      } catch (e) {
        skip(b, model, `failed: ${(e as Error)?.message ?? String(e)}`)
      }
      done += b.weight ?? 1
      collectGarbage()
    }

    try {
      if (globals.length) {
        const dev = await open(models.includes('upstream') ? 'upstream' : models[0]!)
        try {
          for (const b of globals) await step(b, null, dev)
        } finally {
          await dev.close()
        }
      }
      for (const m of models) {
        if (!perModel.length) break
        const dev = await open(m)
        try {
          for (const b of perModel) await step(b, m, dev)
          const v = dev.check()
          if (v.length) {
            skipped.push({ path: 'check', model: m, reason: `the side table broke ${v.length} invariant(s) during the run: ${v[0]!.message}` })
          }
        } finally {
          await dev.close()
        }
      }
      if (!globals.length && !perModel.length && !existsSync(file)) {
        // nothing ran: still report what the region would be
        const dev = await open(models[0]!)
        await dev.close()
      }
    } finally {
      emit({ kind: 'end' })
    }
  } finally {
    process.removeListener('exit', cleanup)
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    cleanup()
  }

  const cpus = os.cpus()
  return {
    version: pkgVersion(),
    node: process.version,
    machine: {
      cpus: cpus.length, model: cpus[0]?.model?.trim() ?? 'unknown', memory: os.totalmem(),
      arch: process.arch, platform: process.platform, kernel: os.release(),
    },
    file, fsType: fs.fsType, dax: fs.dax, fsNote: fs.note, backend, capabilities,
    quick, models, workers, startedAt: new Date(started).toISOString(), durationMs: Date.now() - started,
    results, skipped,
  }
}
