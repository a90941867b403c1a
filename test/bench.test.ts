// The benchmark suite: shapes, not timings (machines are noisy).
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  runBenchmarks, renderHtml, compareReports, compareLines, parseMountinfo, describeFs, detectFs, result,
  ratioOf, TINY_BUDGET, BENCHMARKS, type BenchReport, type Benchmark,
  timePaired, interleave, spreadOf, floorOf, pgmapEdgeOps, chartSpecs, fitTitle,
} from '../bench/index.js'
import { runBenchCommand } from '../src/cli/bench.js'
import { MODEL_NAMES } from '../src/page/index.js'

const UNITS = new Set(['ns/op', 'ns/page', 'GB/s', 'ms', 'B/page', 'MiB', 'µs', 'states/s'])
const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pmemu-bench-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// A benchmark whose layer is missing, and one that throws: both must end up in `skipped`.
const missing: Benchmark = {
  id: 'missing', title: 'needs a layer that is not there', paths: ['needs-layer'], scope: 'model',
  available: async () => 'not available yet: src/nothing has nothing', run: async () => [],
}
const broken: Benchmark = {
  id: 'broken', title: 'throws', paths: ['broken'], scope: 'global',
  available: async () => null, run: async () => { throw new Error('boom') },
}

let report: BenchReport
t.before(async () => {
  report = await runBenchmarks({
    file: join(dir, 'tiny.pmem'), size: '32MiB', models: ['legacy', 'upstream'], workers: 1, quick: true,
    budget: TINY_BUDGET, benchmarks: [...BENCHMARKS.filter(b => b.id !== 'contention'), missing, broken],
  })
})

t.test('the report is well formed', async t => {
  t.match(report, {
    version: String, node: process.version, machine: { cpus: Number, model: String, memory: Number },
    file: String, fsType: String, backend: 'native', capabilities: Object, quick: true, results: Array, skipped: Array,
  })
  t.ok(report.results.length > 0)
  for (const r of report.results) {
    t.ok(UNITS.has(r.unit), `${r.path}: unit ${r.unit}`)
    t.ok(Number.isFinite(r.js) && r.js >= 0, `${r.path}: js is a number`)
    t.ok(r.model === null || (MODEL_NAMES as readonly string[]).includes(r.model), `${r.path}: model`)
    if (r.c !== undefined) {
      t.ok(r.ratio !== undefined, `${r.path}: a C figure comes with a ratio`)
      if (r.spread) {
        // paired: the median of per-round ratios, inside their spread
        t.ok(r.spread.min <= r.ratio! && r.ratio! <= r.spread.max, `${r.path}: ratio ${r.ratio} within ${r.spread.min}..${r.spread.max}`)
        t.ok(r.spread.min <= r.spread.p10 && r.spread.p10 <= r.spread.p90 && r.spread.p90 <= r.spread.max, `${r.path}: spread ordered`)
        t.equal(r.samples, TINY_BUDGET.pairs, `${r.path}: rounds behind the ratio`)
        t.equal(r.spread.n, TINY_BUDGET.pairs, `${r.path}: spread.n as the Benchmark JSON has it`)
        t.ok(r.jsSpread, `${r.path}: the js figure has its spread`)
      } else {
        const expect = r.unit === 'GB/s' ? r.c / r.js : r.js / r.c
        t.ok(Math.abs(r.ratio! - expect) / expect < 0.01, `${r.path}: ratio ${r.ratio} ≈ ${expect}`)
      }
      if (r.unit !== 'GB/s') t.ok(Math.abs(r.aboveC! - (r.js - r.c)) <= Math.max(r.js, r.c) * 0.01, `${r.path}: js − C`)
    }
    if (r.target !== undefined) t.type(r.met, 'boolean', `${r.path}: a target comes with met`)
  }
  // every refcount path, for each model, with C, ratio and floor
  for (const model of ['legacy', 'upstream']) {
    for (const path of ['get-put', 'pin-unpin', 'pin-sweep', 'folio-pin']) {
      const r = report.results.find(x => x.path === path && x.model === model)
      t.ok(r, `${path} ${model} present`)
      t.ok(r?.c !== undefined && r.ratio !== undefined && r.floor !== undefined && r.floorRatio !== undefined, `${path} ${model}: c, ratio, floor`)
      t.ok(r?.spread !== undefined, `${path} ${model}: timed paired with C`)
    }
    // figures measured in rounds carry their spread, so --compare can tell noise from change
    for (const path of ['fault', 'unmap', 'truncate', 'dma-copy-to-device', 'unpin-to-truncate']) {
      const r = report.results.find(x => x.path === path && x.model === model)
      t.ok(r?.jsSpread && (r.samples ?? 0) > 1, `${path} ${model}: spread over ${r?.samples} samples`)
    }
    t.ok(report.results.find(x => x.path === 'open-256m' && x.model === model && x.unit === 'ms'), `open ${model}`)
  }
  for (const path of ['persist-64', 'persist-4k', 'persist-64k']) {
    const r = report.results.find(x => x.path === path)
    t.ok(r && r.c !== undefined && r.spread !== undefined && r.unit === 'ns/op', `${path}: dev.persist paired with a C flush loop`)
  }
  const side = report.results.find(x => x.path === 'side-table')
  t.equal(side?.unit, 'B/page')
  t.equal(side?.js, 32, 'one 32-byte record per page')
  const mc = report.results.find(x => x.path === 'memcpy')
  t.equal(mc?.unit, 'GB/s')
  t.ok(mc?.c, 'memcpy has a C figure')
  for (const path of ['mkfs', 'mount', 'fsck']) {
    t.match(report.results.find(x => x.path === path), { model: null, unit: 'ms' }, `${path} in ms`)
  }
  for (const path of ['write-4k', 'read-4k', 'write-1m', 'read-1m']) {
    t.match(report.results.find(x => x.path === path), { model: null, unit: 'GB/s', c: Number, ratio: Number }, `${path}: GB/s next to memcpy`)
  }
})

t.test('the DAX and DMA paths run for every model, with units and targets', async t => {
  const one = (path: string, model: string, workers?: number) =>
    report.results.filter(x => x.path === path && x.model === model && x.workers === workers)
  for (const model of ['legacy', 'upstream']) {
    for (const path of ['fault', 'fault-folio']) {
      const rs = one(path, model)
      t.equal(rs.length, 1, `${path} ${model}: one figure`)
      t.match(rs[0], { unit: 'ns/page', target: 200, targetOn: 'js', targetText: '≤ 200 ns/page', met: Boolean }, `${path} ${model}`)
    }
    t.match(one('fault-folio', model)[0]?.note, /PMD faults of 512 pages/, `${model}: the folio figure is made of PMD faults`)
    for (const path of ['unmap', 'unmap-folio', 'dma-pin-unpin', 'dma-pin-unpin-direct']) {
      t.match(one(path, model)[0], { unit: 'ns/page' }, `${path} ${model}`)
    }
    t.match(one('truncate', model)[0], { unit: 'ms' }, `truncate ${model}`)
    t.match(one('truncate-unmapped', model)[0], { unit: 'ms' }, `truncate-unmapped ${model}`)
    for (const path of ['unpin-to-truncate', 'unpin-to-truncate-dma']) {
      t.match(one(path, model)[0], { unit: 'µs', target: 100, targetText: '≤ 100 µs', met: Boolean }, `${path} ${model}`)
    }
    for (const path of ['dma-submit-pinned', 'dma-submit-pinned-fault']) t.match(one(path, model)[0], { unit: 'µs' }, `${path} ${model}`)
    for (const dir of ['to-device', 'from-device']) {
      for (const workers of [1, 2]) {
        const r = one(`dma-copy-${dir}`, model, workers)[0]
        t.match(r, { unit: 'GB/s', c: Number, ratio: Number, targetOn: 'ratio', target: 1.25, targetText: '≥ 80 % of C', met: Boolean },
          `dma-copy-${dir} ×${workers} ${model}: GB/s next to memcpy`)
        if (r?.c !== undefined) t.equal(r.met, r.ratio! <= 1.25, 'met = at least 80 % of memcpy')
      }
    }
  }
})

t.test('skipped paths are marked with the reason', async t => {
  const f = report.skipped.filter(s => s.path === 'needs-layer' && s.reason.includes('not available yet: src/nothing has nothing'))
  t.same(f.map(s => s.model).sort(), ['legacy', 'upstream'], 'once per model')
  t.ok(report.skipped.some(s => s.path === 'broken' && s.model === null && /failed: boom/.test(s.reason)), 'a failing benchmark is skipped, not fatal')
  t.notOk(report.results.some(r => r.path === 'needs-layer'))
  // the real registry: every layer exists, so nothing of it is skipped (and no invariant broke: no 'check' entry)
  t.same(report.skipped.filter(s => s.path !== 'needs-layer' && s.path !== 'broken'), [], 'nothing of the registry skipped')
})

t.test('ratios and targets', async t => {
  t.equal(ratioOf('ns/op', 8, 4), 2)
  t.equal(ratioOf('GB/s', 10, 20), 2)
  const a = result({ path: 'get-put', model: 'upstream', unit: 'ns/op', js: 8, c: 4, floor: 16, maxRatio: 2 })
  t.match(a, { ratio: 2, floor: 16, floorRatio: 0.5, target: 2, targetOn: 'ratio', met: true, targetText: '≤ 2.0× C' })
  const b = result({ path: 'folio-pin', model: 'upstream', unit: 'ns/page', js: 0.2, c: 0.02, maxValue: 0.1 })
  t.match(b, { ratio: 10, target: 0.1, targetOn: 'js', met: false })
  const c = result({ path: 'dma-copy', model: 'upstream', unit: 'GB/s', js: 10, c: 20, maxRatio: 1.25 })
  t.match(c, { ratio: 2, met: false })
  const d = result({ path: 'dma-copy-to-device', model: 'upstream', workers: 2, unit: 'GB/s', js: 10, c: 20, minOfC: 0.8 })
  t.match(d, { workers: 2, ratio: 2, target: 1.25, targetOn: 'ratio', targetText: '≥ 80 % of C', met: false })
  t.match(result({ path: 'x', model: null, unit: 'GB/s', js: 17, c: 20, minOfC: 0.8 }), { met: true }, '85 % of C meets ≥ 80 %')
  t.notOk('met' in result({ path: 'x', model: null, unit: 'GB/s', js: 17, minOfC: 0.8 }), 'no C figure: no target to meet')
})

t.test('the HTML report is self-contained', async t => {
  const html = await renderHtml(report)
  t.match(html, /^<!doctype html>/)
  t.notMatch(html, /https?:\/\//, 'no http(s) URL anywhere')
  t.notMatch(html, /<script/i, 'no script')
  for (const id of ['ns-op', 'ns-page', 'dax', 'dma-pin', 'latency', 'gbs', 'ms', 'open']) {
    t.match(html, new RegExp(`<div class="chart" id="chart-${id}"><svg`), `chart ${id} rendered to SVG`)
  }
  t.notMatch(html, /could not be rendered/)
  t.match(html, /dma-copy-to-device ×2/, 'DMA bandwidth rows')
  t.match(html, /target 200 ns\/page/, 'the fault target drawn on its chart')
  t.match(html, /SPEC §9/)
  t.match(html, /not available yet/, 'skipped paths listed')
})

t.test('--compare prints per-path change', async t => {
  const old = { results: [
    { path: 'get-put', model: 'upstream' as const, unit: 'ns/op' as const, js: 10 },
    { path: 'memcpy', model: null, unit: 'GB/s' as const, js: 20 },
    { path: 'gone', model: null, unit: 'ms' as const, js: 1 },
  ] }
  const cur = { results: [
    { path: 'get-put', model: 'upstream' as const, unit: 'ns/op' as const, js: 12 },
    { path: 'memcpy', model: null, unit: 'GB/s' as const, js: 10 },
    { path: 'new', model: null, unit: 'ms' as const, js: 1 },
  ] }
  const r = compareReports(old, cur)
  t.equal(r.changes.length, 2)
  t.match(r.changes.find(c => c.path === 'get-put'), { old: 10, new: 12, worse: true })
  t.ok(Math.abs(r.changes.find(c => c.path === 'get-put')!.change - 0.2) < 1e-9)
  t.match(r.changes.find(c => c.path === 'memcpy'), { change: -0.5, worse: true })
  t.same(r.added.map(x => x.path), ['new'])
  t.same(r.removed.map(x => x.path), ['gone'])
  const text = compareLines(old, cur).join('\n')
  t.match(text, /get-put.*10\.0 ns\/op.*12\.0 ns\/op.*\+20\.0 %.*WORSE/)
  t.match(text, /gone/)
})

t.test('--compare calls a change only beyond both runs\' spread', async t => {
  const sp = (p10: number, p90: number) => ({ min: p10 * 0.9, p10, p90, max: p90 * 1.1, n: 21 })
  const old = { results: [
    { path: 'get-put', model: 'upstream' as const, unit: 'ns/op' as const, js: 10, jsSpread: sp(6, 16), samples: 21 },
    { path: 'pin-unpin', model: 'upstream' as const, unit: 'ns/op' as const, js: 10, jsSpread: sp(9.8, 10.2), samples: 21 },
  ] }
  const cur = { results: [
    // -35 %, but inside the old run's wide spread: two identical runs on a noisy machine
    { path: 'get-put', model: 'upstream' as const, unit: 'ns/op' as const, js: 6.5, jsSpread: sp(4, 15), samples: 21 },
    // +30 % with tight spreads on both sides: a real change
    { path: 'pin-unpin', model: 'upstream' as const, unit: 'ns/op' as const, js: 13, jsSpread: sp(12.8, 13.2), samples: 21 },
  ] }
  const r = compareReports(old, cur)
  t.match(r.changes.find(c => c.path === 'get-put'), { noise: 'noise', samples: [21, 21] })
  t.match(r.changes.find(c => c.path === 'pin-unpin'), { noise: 'outside', worse: true })
  const text = compareLines(old, cur).join('\n')
  t.match(text, /get-put.*-35\.0 %.*21 \/ 21.*within noise/)
  t.notMatch(text, /get-put.*(WORSE|better)/)
  t.match(text, /pin-unpin.*\+30\.0 %.*21 \/ 21.*WORSE/)
})

t.test('paired timing: the sides alternate, each round gives one sample per side', async t => {
  const order: string[] = []
  const s = interleave([() => { order.push('a'); return 1 }, () => { order.push('b'); return 2 }], 4)
  t.same(s, [[1, 1, 1, 1], [2, 2, 2, 2]])
  t.same(order, ['a', 'b', 'a', 'b', 'b', 'a', 'a', 'b', 'b', 'a'], 'one warm-up each, then the order rotates')
  const p = timePaired(() => { let x = 0; for (let i = 0; i < 100; i++) x += i; if (x < 0) throw new Error() }, 100, () => 5000, 1000, TINY_BUDGET)
  t.equal(p.js.length, TINY_BUDGET.pairs)
  t.equal(p.c.length, TINY_BUDGET.pairs)
  t.same(p.c, new Array(TINY_BUDGET.pairs).fill(5), 'C side: its own ns / ops')
  t.same(spreadOf([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), { min: 1, p10: 2, p90: 10, max: 11, n: 11 })
  const rr = result({ path: 'x', model: null, unit: 'ns/op', js: 0, paired: { js: [2, 4, 30], c: [1, 2, 3] } })
  t.match(rr, { js: 4, c: 2, ratio: 2, samples: 3, aboveC: 2 }, 'medians per side; the ratio is the median of the per-round ratios (2, 2, 10)')
})

t.test('like-for-like C and the JS floor', async t => {
  t.equal(pgmapEdgeOps('dax-gup'), 1, 'dax-gup: get of an idle page takes the pgmap ref (four locked ops per pair)')
  t.equal(pgmapEdgeOps('legacy'), 0)
  t.equal(pgmapEdgeOps('upstream'), 0)
  const mem = new (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => { buffer: SharedArrayBuffer } } }).WebAssembly.Memory({ initial: 1, maximum: 16, shared: true })
  const f = floorOf(mem)
  const i32 = new Int32Array(mem.buffer)
  t.equal(f.add(8, 5), 0)
  t.equal(f.add(8, -2), 5)
  f.sweep(64, 32, 3, 1024)
  t.same([i32[2], i32[16], i32[24], i32[32], i32[40]], [3, 1024, 1024, 1024, 0], 'sweep: count adds, stride bytes apart')
})

t.test('the report fits the page; multi-series charts have legends; the summary says what was missed', async t => {
  const html = await renderHtml(report)
  // the page's content box is 1200 px minus 2 × 16 px of padding (CSS above)
  const widths = [...html.matchAll(/<div class="chart" id="chart-([\w-]+)"><svg[^>]*?width="([\d.]+)"/g)]
  t.ok(widths.length >= 8)
  for (const [, id, w] of widths) t.ok(Number(w) <= 1168, `chart ${id}: ${w} px wide fits 1168 px`)
  for (const m of html.matchAll(/<div class="chart" id="chart-([\w-]+)">([\s\S]*?)<\/svg>/g)) {
    t.match(m[2], /role-legend/, `chart ${m[1]} has a legend`)
  }
  t.match(html, /<p id="summary"><b>\d+ figures, \d+ targets met, \d+ missed<\/b>/)
  for (const { id, spec } of chartSpecs(report)) {
    const title = (spec as { title?: { text: string; subtitle?: string[] } }).title
    if (title) for (const l of [title.text, ...(title.subtitle ?? [])]) t.ok(l.length <= 90, `chart ${id}: title line of ${l.length} chars`)
  }
  t.same(fitTitle('Short'), { text: 'Short' })
  t.match(fitTitle('Main title: ' + 'word '.repeat(40)), { text: 'Main title', subtitle: Array })
})

t.test('fs type detection', async t => {
  const mi = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard',
    '30 24 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684096k',
    '40 27 259:1 / /mnt/pmem rw,relatime - xfs /dev/pmem0 rw,attr2,dax=always',
    '41 27 259:2 / /mnt/my\\040disk rw,relatime - ext4 /dev/sdb1 rw',
  ].join('\n')
  t.match(parseMountinfo(mi, '/dev/shm/x.pmem'), { fsType: 'tmpfs', dax: false, suitable: true, mountPoint: '/dev/shm' })
  t.match(parseMountinfo(mi, '/mnt/pmem/a/b'), { fsType: 'xfs', dax: true, suitable: true })
  t.match(parseMountinfo(mi, '/home/me/r.pmem'), { fsType: 'ext4', dax: false, suitable: false, mountPoint: '/' })
  t.match(parseMountinfo(mi, '/mnt/my disk/r'), { fsType: 'ext4', mountPoint: '/mnt/my disk' })
  t.match(parseMountinfo(mi, '/dev/shmx/r'), { mountPoint: '/' }, 'a prefix must end at a path separator')
  t.match(describeFs('ext4', ['rw'], '/', '/dev/vda').note, /neither a DAX nor a tmpfs mount/)
  t.equal(detectFs(undefined).fsType, 'memory')
  if (existsSync('/dev/shm')) t.equal(detectFs('/dev/shm/does-not-exist-yet').fsType, 'tmpfs')
})

t.test('pmemu bench: --json, --html, --compare, warnings, table', async t => {
  const lines: string[] = []
  const errs: string[] = []
  const json = join(dir, 'run.json')
  const html = join(dir, 'run.html')
  const old = join(dir, 'old.json')
  writeFileSync(old, JSON.stringify({ startedAt: 'earlier', results: [{ path: 'side-table', model: null, unit: 'B/page', js: 64 }] }))
  const file = join(dir, 'cli.pmem')
  const rep = await runBenchCommand({
    file, size: '32MiB', model: 'upstream', workers: '1', quick: true, json, html, compare: old,
    out: l => lines.push(l), err: l => errs.push(l), plain: true,
    run: { budget: TINY_BUDGET, only: ['side-table', 'get-put', 'dma', 'contention'] },
  })
  const text = lines.join('\n')
  t.match(text, /side-table\s+—\s+32\.0 B\/page/, 'table with units')
  t.match(text, /get-put\s+upstream\s+[\d.]+ ns\/op\s+[\d.]+ ns\/op\s+[\d.]+× C/)
  t.match(text, /dma-copy-to-device ×1\s+upstream\s+[\d.]+ GB\/s\s+[\d.]+ GB\/s\s+[\d.]+× C.*≥ 80 % of C/, 'DMA copy next to memcpy')
  t.match(text, /unpin-to-truncate-dma\s+upstream\s+[\d.]+ µs.*≤ 100 µs/)
  t.notMatch(text, /skipped/, 'nothing skipped')
  t.match(text, /side-table.*64\.0 B\/page.*32\.0 B\/page.*-50\.0 %.*better/, 'compare line')
  t.match(text, new RegExp(`report written to ${html.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  t.ok(existsSync(file), 'a given --file is kept')
  const j = JSON.parse(readFileSync(json, 'utf8')) as BenchReport
  t.same(j.results, rep.results)
  t.match(readFileSync(html, 'utf8'), /<svg/)
  t.match(errs.join('\n'), /\[\d+\/\d+\] get-put · upstream/, 'plain progress lines')
  const nums = errs.map(l => /^\s+\[(\d+)\/(\d+)\]/.exec(l)).filter(m => m !== null).map(m => [Number(m![1]), Number(m![2])])
  t.same(nums.map(n => n[0]), nums.map((_, i) => i + 1), 'step numbers count 1, 2, 3 … with no skip or repeat')
  t.ok(nums.every(n => n[1] === nums.length), 'and end at the announced count')
  t.ok(rep.results.some(r => r.path === 'contention-same-page' && r.workers === 1 && r.c !== undefined), 'contention from a worker thread')
  await t.rejects(runBenchCommand({ model: 'nope' as 'all', out: () => {}, err: () => {} }), { code: 'EINVAL' })
  await t.rejects(runBenchCommand({ compare: join(dir, 'missing.json'), out: () => {}, err: () => {} }), { code: 'ENOENT' })
})

t.test('the default region is removed afterwards', async t => {
  const rep = await runBenchmarks({ size: '8MiB', models: 'upstream', budget: TINY_BUDGET, only: ['side-table'] })
  t.notOk(existsSync(rep.file), `${rep.file} removed`)
})

t.test('a region on an ordinary disk gets a warning naming its fs', async t => {
  const base = mkdtempSync(join(tmpdir(), 'pmemu-bench-warn-'))
  t.teardown(() => rmSync(base, { recursive: true, force: true }))
  const fs = detectFs(join(base, 'r.pmem'))
  if (fs.suitable) { t.pass(`the temp dir is on ${fs.fsType}: nothing to warn about`); return }
  const errs: string[] = []
  await runBenchCommand({ file: join(base, 'r.pmem'), size: '8MiB', model: 'upstream', out: () => {}, err: l => errs.push(l), plain: true,
    run: { budget: TINY_BUDGET, only: ['side-table'] } })
  t.match(errs.join('\n'), new RegExp(`warning: ${fs.fsType} at .* neither a DAX nor a tmpfs mount`))
})

t.test('the scratch directory is removed however the run ends; fs errors are PmemuErrors naming the path', async t => {
  const { readdirSync } = await import('node:fs')
  const { defaultBase } = await import('../bench/index.js')
  const scratchDirs = () => readdirSync(defaultBase()).filter(n => /^pmemu-bench-(?!test-)/.test(n)).sort()
  const before = scratchDirs()
  const sigint = process.listenerCount('SIGINT')
  await t.rejects(runBenchmarks({ size: 'x', models: 'upstream', budget: TINY_BUDGET, only: ['side-table'] }), { code: 'EINVAL', syscall: 'bench' })
  await t.rejects(runBenchmarks({
    size: '8MiB', models: 'upstream', budget: TINY_BUDGET, only: ['side-table'],
    onProgress: e => { if (e.kind === 'step') throw new Error('progress display died') },
  }), /progress display died/)
  await runBenchmarks({ size: '8MiB', models: 'upstream', budget: TINY_BUDGET, only: ['side-table'] })
  t.same(scratchDirs(), before, 'no pmemu-bench-XXXXXX left behind')
  t.equal(process.listenerCount('SIGINT'), sigint, 'signal handlers removed after the run')
  const nope = join(dir, 'nope', 'x.pmem')
  await t.rejects(runBenchmarks({ file: nope, size: '8MiB', models: 'upstream', budget: TINY_BUDGET, only: ['side-table'] }),
    { name: 'PmemuError', code: 'ENOENT', path: nope })
  await t.rejects(runBenchCommand({ file: nope, out: () => {}, err: () => {} }), { name: 'PmemuError', code: 'ENOENT', path: nope, message: /directory .*nope does not exist/ })
  const json = join(dir, 'nope', 'out.json')
  await t.rejects(runBenchCommand({ json, out: () => {}, err: () => {} }), { code: 'ENOENT', path: json })
  t.notOk(existsSync(join(dir, 'nope')), '--json does not create directories')
})
