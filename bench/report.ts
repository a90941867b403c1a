/**
 * The HTML report: self-contained (no script, no network), vega-lite specs
 * compiled to vega and rendered to SVG in-process (`renderer: 'none'`),
 * embedded inline; the results table with missed targets in red; the
 * published figures of SPEC §9 beside ours; skipped paths with the reason.
 */
import type * as vl from 'vega-lite'
import type { BenchReport, BenchResult } from './types.js'
import { fmtNum, fmtRatio, fmtVal, label } from './format.js'
import { PUBLISHED } from './published.js'
import { MODEL_NAMES } from '../src/page/models.js'

type Row = Record<string, string | number>

function esc(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** Render one vega-lite spec to an inline SVG (namespace URLs removed: inline SVG in HTML needs none). */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  // loaded here, not at the top: only a run that writes --html pays for vega
  const [vega, vlc] = await Promise.all([import('vega'), import('vega-lite')])
  const compiled = vlc.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  try {
    const svg = await view.toSVG()
    return svg.replace(/\s+xmlns(:\w+)?="[^"]*"/g, '')
  } finally {
    view.finalize()
  }
}

const IMPL_COLORS = { domain: ['pmemu (JS/wasm)', 'C baseline', 'JS floor'], range: ['#1f77b4', '#2ca02c', '#bbbbbb'] }

function timeRows(results: BenchResult[], unit: string): Row[] {
  const rows: Row[] = []
  for (const r of results) {
    if (r.unit !== unit || r.workers !== undefined) continue
    const model = r.model ?? 'any'
    rows.push({ path: r.path, model, impl: 'pmemu (JS/wasm)', value: r.js })
    if (r.c !== undefined) rows.push({ path: r.path, model, impl: 'C baseline', value: r.c })
    if (r.floor !== undefined) rows.push({ path: r.path, model, impl: 'JS floor', value: r.floor })
  }
  return rows
}

function barChart(rows: Row[], unit: string, title: string): vl.TopLevelSpec {
  return {
    title,
    data: { values: rows },
    facet: { column: { field: 'model', type: 'nominal', title: 'model', sort: [...MODEL_NAMES, 'any'] } },
    spec: {
      width: { step: 14 },
      height: 220,
      mark: { type: 'bar', tooltip: false },
      encoding: {
        x: { field: 'path', type: 'nominal', title: null, axis: { labelAngle: -30 } },
        xOffset: { field: 'impl', type: 'nominal', sort: IMPL_COLORS.domain },
        y: { field: 'value', type: 'quantitative', title: unit },
        color: { field: 'impl', type: 'nominal', title: null, scale: IMPL_COLORS, sort: IMPL_COLORS.domain },
      },
    },
    config: { font: 'sans-serif', legend: { orient: 'bottom' } },
  } as vl.TopLevelSpec
}

function gbsChart(results: BenchResult[]): vl.TopLevelSpec | undefined {
  const rows: Row[] = []
  for (const r of results) {
    if (r.unit !== 'GB/s') continue
    const what = label(r) + (r.model ? ` (${r.model})` : '')
    rows.push({ what, impl: 'pmemu (JS/wasm)', value: r.js })
    if (r.c !== undefined) rows.push({ what, impl: 'C memcpy', value: r.c })
  }
  if (!rows.length) return undefined
  return {
    title: { text: 'Bandwidth vs C memcpy (GB/s, higher is better)', subtitle: 'Uint8Array.set into the region; DMA copies with 1 and 2 workers (wall time submit → done)' },
    data: { values: rows },
    width: 420,
    height: { step: 16 },
    mark: 'bar',
    encoding: {
      y: { field: 'what', type: 'nominal', title: null, axis: { labelLimit: 320 } },
      yOffset: { field: 'impl', type: 'nominal' },
      x: { field: 'value', type: 'quantitative', title: 'GB/s' },
      color: { field: 'impl', type: 'nominal', title: null, scale: { domain: ['pmemu (JS/wasm)', 'C memcpy'], range: ['#1f77b4', '#2ca02c'] } },
    },
    config: { font: 'sans-serif', legend: { orient: 'bottom' } },
  } as vl.TopLevelSpec
}

function contentionChart(results: BenchResult[]): vl.TopLevelSpec | undefined {
  const rows: Row[] = []
  for (const r of results) {
    if (!r.path.startsWith('contention-') || r.workers === undefined) continue
    const where = r.path.replace('contention-', '')
    rows.push({ workers: r.workers, model: r.model ?? 'any', series: `pmemu, ${where}`, value: r.js })
    if (r.c !== undefined) rows.push({ workers: r.workers, model: r.model ?? 'any', series: `C, ${where}`, value: r.c })
  }
  if (!rows.length) return undefined
  return {
    title: 'Contention: get+put per worker (ns/op) vs worker threads',
    data: { values: rows },
    facet: { column: { field: 'model', type: 'nominal', sort: [...MODEL_NAMES] } },
    spec: {
      width: 200,
      height: 180,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'workers', type: 'quantitative', title: 'workers', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: 'ns/op' },
        // one legend for both channels (same field): a null legend on one of
        // them dropped the merged legend and left four unlabelled lines
        color: { field: 'series', type: 'nominal', title: null },
        strokeDash: { field: 'series', type: 'nominal', title: null },
      },
    },
    config: { font: 'sans-serif', legend: { orient: 'bottom' } },
  } as vl.TopLevelSpec
}

function scalarChart(results: BenchResult[], test: (r: BenchResult) => boolean, unit: string, title: string | { text: string; subtitle: string }): vl.TopLevelSpec | undefined {
  const rows = results.filter(r => test(r)).map(r => ({ what: `${r.path} (${r.model ?? 'any'})`, value: r.js, met: r.met === false ? 'missed' : 'met / no target' }))
  if (!rows.length) return undefined
  return {
    title,
    data: { values: rows },
    width: 420,
    height: { step: 18 },
    mark: 'bar',
    encoding: {
      y: { field: 'what', type: 'nominal', title: null, axis: { labelLimit: 320 } },
      x: { field: 'value', type: 'quantitative', title: unit },
      color: { field: 'met', type: 'nominal', title: null, scale: { domain: ['met / no target', 'missed'], range: ['#1f77b4', '#d62728'] } },
    },
    config: { font: 'sans-serif', legend: { orient: 'bottom' } },
  } as vl.TopLevelSpec
}

const MODEL_SORT = [...MODEL_NAMES, 'any']
// One colour per model in table order (enough for more models than there are), grey for 'any'.
const PALETTE = ['#ff7f0e', '#d62728', '#9467bd', '#1f77b4', '#2ca02c', '#8c564b']
const MODEL_COLORS = { domain: MODEL_SORT, range: [...MODEL_NAMES.map((_, i) => PALETTE[i % PALETTE.length]!), '#7f7f7f'] }

/**
 * Bars per path, one per model (grouped), for figures without a C baseline
 * (the DAX, DMA and latency paths). `target` draws a red rule at that value;
 * `log` uses a log scale (figures spanning decades).
 */
function modelBars(results: BenchResult[], paths: readonly string[], unit: string, title: string,
  o: { target?: number; log?: boolean } = {}): vl.TopLevelSpec | undefined {
  const rows: Row[] = results
    .filter(r => paths.includes(r.path) && r.unit === unit && r.workers === undefined)
    .map(r => ({ path: r.path, model: r.model ?? 'any', value: r.js, met: r.met === false ? 'missed' : 'met / no target' }))
  if (!rows.length) return undefined
  const models = MODEL_SORT.filter(m => rows.some(r => r.model === m))
  const colors = { domain: models, range: models.map(m => MODEL_COLORS.range[MODEL_SORT.indexOf(m)]!) }
  const vals = rows.map(r => Number(r.value)).filter(v => v > 0)
  // a log scale needs a domain clear of 0 (bars start at the bottom of the domain)
  const logScale = { type: 'log', domain: [10 ** Math.floor(Math.log10(Math.min(...vals))), 10 ** Math.ceil(Math.log10(Math.max(...vals)))] }
  const bars = {
    mark: { type: 'bar', tooltip: false },
    encoding: {
      x: { field: 'path', type: 'nominal', title: null, sort: [...paths], axis: { labelAngle: -20, labelLimit: 200 } },
      xOffset: { field: 'model', type: 'nominal', sort: models },
      y: { field: 'value', type: 'quantitative', title: unit, ...(o.log ? { scale: logScale } : {}) },
      // a log-scale bar has no zero to grow from: start it at the bottom of the domain
      ...(o.log ? { y2: { datum: logScale.domain[0] } } : {}),
      color: { field: 'model', type: 'nominal', title: 'model', scale: colors, sort: models },
      stroke: { field: 'met', type: 'nominal', title: null, scale: { domain: ['met / no target', 'missed'], range: ['#ffffff00', '#d62728'] }, legend: null },
      strokeWidth: { value: 2 },
    },
  }
  const layer: unknown[] = [bars]
  if (o.target !== undefined) {
    layer.push({
      data: { values: [{}] },
      mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3] },
      encoding: { y: { datum: o.target } },
    }, {
      data: { values: [{}] },
      mark: { type: 'text', color: '#d62728', align: 'right', dy: -6, x: 'width' },
      encoding: { y: { datum: o.target }, text: { value: `target ${o.target} ${unit}` } },
    })
  }
  return {
    title,
    data: { values: rows },
    // with xOffset the step is one bar (one model): keep groups narrow enough for the page
    width: { step: 22 },
    height: 220,
    layer,
    config: { font: 'sans-serif', legend: { orient: 'bottom' } },
  } as unknown as vl.TopLevelSpec
}

/** Wall-time bars (ms) per path and model: truncate, mkfs, mount, fsck. */
function msChart(results: BenchResult[]): vl.TopLevelSpec | undefined {
  return scalarChart(results, r => r.unit === 'ms' && !/^open-\d+[gm]$/.test(r.path), 'ms',
    { text: 'Wall times (ms)', subtitle: 'truncate of an unpinned file per model (mapped and populated; never mapped = the fs part alone); mkfs / mount / fsck of the bench region' })
}

/** The ns/page figures of the refcount range paths (they have a C baseline). */
const RANGE_PATHS = ['pin-sweep', 'folio-pin']
const DAX_PATHS = ['fault', 'fault-folio', 'unmap', 'unmap-folio']
const PIN_PATHS = ['dma-pin-unpin', 'dma-pin-unpin-direct']
const LATENCY_PATHS = ['unpin-to-truncate', 'unpin-to-truncate-dma', 'dma-submit-pinned', 'dma-submit-pinned-fault']

/** Words of s in lines of at most `width` characters. */
function wrap(s: string, width = 84): string[] {
  const lines: string[] = []
  let cur = ''
  for (const w of s.split(/\s+/)) {
    if (cur && cur.length + 1 + w.length > width) { lines.push(cur); cur = w } else cur = cur ? `${cur} ${w}` : w
  }
  if (cur) lines.push(cur)
  return lines
}

type Title = string | { text: string; subtitle?: string | string[] }

/**
 * A title that fits the page: "Main: details" becomes a title and a subtitle
 * wrapped in lines (a one-line title as long as the details made two charts
 * wider than the page and vega cut a third).
 */
export function fitTitle(t: Title): { text: string; subtitle?: string[] } {
  if (typeof t === 'string') {
    const i = t.indexOf(': ')
    if (i < 0 || t.length <= 84) return { text: t }
    t = { text: t.slice(0, i), subtitle: t.slice(i + 2) }
  }
  const sub = t.subtitle === undefined ? undefined : Array.isArray(t.subtitle) ? t.subtitle.flatMap(l => wrap(l)) : wrap(t.subtitle)
  return { text: t.text, ...(sub ? { subtitle: sub } : {}) }
}

/** The vega-lite specs of the report, by title (exported for tests and for people who want the JSON). */
export function chartSpecs(rep: BenchReport): { id: string; spec: vl.TopLevelSpec }[] {
  const out = chartSpecsRaw(rep)
  for (const o of out) {
    const spec = o.spec as { title?: Title }
    if (spec.title !== undefined) spec.title = fitTitle(spec.title)
  }
  return out
}

function chartSpecsRaw(rep: BenchReport): { id: string; spec: vl.TopLevelSpec }[] {
  const out: { id: string; spec: vl.TopLevelSpec }[] = []
  const single = timeRows(rep.results, 'ns/op')
  if (single.length) out.push({ id: 'ns-op', spec: barChart(single, 'ns/op', 'Single-page paths: ns/op per model, next to C and the JS floor (lower is better)') })
  const paged = timeRows(rep.results.filter(r => RANGE_PATHS.includes(r.path)), 'ns/page')
  if (paged.length) out.push({ id: 'ns-page', spec: barChart(paged, 'ns/page', 'Range paths: ns/page per model, next to C (lower is better)') })
  const dax = modelBars(rep.results, DAX_PATHS, 'ns/page', 'DAX fault (order 0 and folio) and unmap: ns/page per model (target: fault ≤ 200 ns/page)', { target: 200 })
  if (dax) out.push({ id: 'dax', spec: dax })
  const pin = modelBars(rep.results, PIN_PATHS, 'ns/page', 'Pin + unpin per page: through the DMA engine vs dev.pages.pinRange direct (ns/page, log scale)', { log: true })
  if (pin) out.push({ id: 'dma-pin', spec: pin })
  const lat = modelBars(rep.results, LATENCY_PATHS, 'µs', 'Latencies (µs, median): last unpin → truncate resumed (direct pin, DMA release); DMA submit → pinned (target ≤ 100 µs for unpin → truncate)', { target: 100 })
  if (lat) out.push({ id: 'latency', spec: lat })
  const g = gbsChart(rep.results)
  if (g) out.push({ id: 'gbs', spec: g })
  const c = contentionChart(rep.results)
  if (c) out.push({ id: 'contention', spec: c })
  const ms = msChart(rep.results)
  if (ms) out.push({ id: 'ms', spec: ms })
  const o = scalarChart(rep.results, r => /^open-\d+[gm]$/.test(r.path), 'ms', 'Open of the sparse region (ms; target ≤ 1000 ms at 64 GiB)')
  if (o) out.push({ id: 'open', spec: o })
  return out
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;white-space:nowrap}.missed{color:#c00;font-weight:600}.met{color:#080}
.note{color:#666;font-size:12px}.warn{background:#fff4e5;border:1px solid #f0b36b;padding:8px;margin:8px 0}
.chart{margin:12px 0;overflow-x:auto}code{background:#f4f4f4;padding:0 3px}
`

/** The whole report as one HTML string. */
export async function renderHtml(rep: BenchReport): Promise<string> {
  const charts: string[] = []
  for (const { id, spec } of chartSpecs(rep)) {
    try {
      charts.push(`<div class="chart" id="chart-${id}">${await renderSvg(spec)}</div>`)
    } catch (e) {
      charts.push(`<p class="missed">chart ${esc(id)} could not be rendered: ${esc((e as Error).message)}</p>`)
    }
  }
  const rows = rep.results.map(r => {
    const cls = r.met === undefined ? '' : r.met ? 'met' : 'missed'
    return `<tr><td>${esc(label(r))}</td><td>${esc(r.model ?? '—')}</td>` +
      `<td class="num">${esc(fmtVal(r.js, r.unit))}</td><td class="num">${esc(fmtVal(r.c, r.unit))}</td>` +
      `<td class="num">${esc(fmtRatio(r))}</td>` +
      `<td class="num">${r.aboveC === undefined ? '—' : esc(`${r.aboveC >= 0 ? '+' : ''}${fmtVal(r.aboveC, r.unit)}`)}</td>` +
      `<td class="num">${esc(fmtVal(r.floor, r.unit))}</td><td class="num">${r.floorRatio === undefined ? '—' : esc(fmtNum(r.floorRatio) + '×')}</td>` +
      `<td class="${cls}">${esc(r.targetText ?? '—')}${r.met === undefined ? '' : r.met ? ' ✓ met' : ' ✗ missed'}</td>` +
      `<td class="note">${esc(r.note ?? '')}</td></tr>`
  }).join('\n')
  const pub = PUBLISHED.map(p => {
    const o = p.ours(rep)
    return `<tr><td>${esc(p.what)}</td><td class="num">${esc(p.published)}</td><td class="note">${esc(p.source)}</td>` +
      `<td class="num">${o ? esc(`${fmtNum(o.value)} ${o.unit}`) : '—'}</td><td class="note">${esc(o?.how ?? 'not measured in this run')}</td></tr>`
  }).join('\n')
  const skippedRows = rep.skipped.map(s => `<tr><td>${esc(s.path)}</td><td>${esc(s.model ?? '—')}</td><td>${esc(s.reason)}</td></tr>`).join('\n')
  const met = rep.results.filter(r => r.met === true).length
  const missedR = rep.results.filter(r => r.met === false)
  const summary = `<p id="summary"><b>${rep.results.length} figures, ${met} targets met, ${missedR.length} missed</b>` +
    (missedR.length ? `: <span class="missed">${missedR.map(r => esc(`${label(r)}${r.model ? ` (${r.model})` : ''}`)).join(', ')}</span>` : '') + '</p>'
  const m = rep.machine
  const caps = Object.entries(rep.capabilities).map(([k, v]) => `${k}: ${String(v)}`).join(', ')
  const warn = /tmpfs|ramfs|memory/.test(rep.fsType) || rep.dax ? '' : `<div class="warn">${esc(rep.fsNote)}</div>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pmemu benchmarks</title><style>${CSS}</style></head>
<body>
<h1>pmemu benchmarks ${esc(rep.quick ? '(quick run)' : '')}</h1>
<p>pmemu ${esc(rep.version)} on Node ${esc(rep.node)} · ${esc(m.cpus)} × ${esc(m.model)} · ${esc((m.memory / 2 ** 30).toFixed(1))} GiB RAM · ${esc(m.platform)} ${esc(m.kernel)} (${esc(m.arch)})<br>
region <code>${esc(rep.file)}</code> on <b>${esc(rep.fsType)}${rep.dax ? ' (DAX)' : ''}</b> · backend ${esc(rep.backend)} · ${esc(caps)}<br>
models ${esc(rep.models.join(', '))} · ${esc(rep.workers)} worker(s) · ${esc(rep.startedAt)} · ${esc((rep.durationMs / 1000).toFixed(1))} s</p>
${warn}
${summary}
<p class="note">"cost vs C" = js / C for times, C / js for GB/s: above 1 means slower than C. Where C and JS were timed paired (alternating blocks in one window), it is the median of the per-round ratios, with their 10th–90th percentile and the number of rounds. "js − C" is the same difference in the figure's unit. Each model's C baseline does the locked operations that model does. The JS floor is the same number of JS→wasm calls doing one atomic add each on the same memory: no path from JavaScript can be cheaper.</p>
<h2>Charts</h2>
${charts.join('\n')}
<h2>Results</h2>
<table><thead><tr><th>path</th><th>model</th><th>js</th><th>C</th><th>cost vs C (p10–p90)</th><th>js − C</th><th>JS floor</th><th>js/floor</th><th>target</th><th>what</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<h2>Beside the published figures (SPEC §9)</h2>
<table><thead><tr><th>what</th><th>published</th><th>source</th><th>this run</th><th>measured as</th></tr></thead>
<tbody>
${pub}
</tbody></table>
${rep.skipped.length ? `<h2>Skipped</h2>
<table><thead><tr><th>path</th><th>model</th><th>why</th></tr></thead><tbody>
${skippedRows}
</tbody></table>` : ''}
</body></html>
`
}
