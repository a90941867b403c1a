/**
 * The benchmark suite (`pmemu bench`, `npm start`): see docs/benchmarks.md.
 */
export { runBenchmarks, resolveModels, defaultBase, ALL_MODELS, DEFAULT_SIZE, type RunOptions } from './runner.js'
export { BENCHMARKS } from './registry.js'
export { renderHtml, renderSvg, chartSpecs } from './report.js'
export { compareReports, compareLines, resultsTable, skippedLines, fmtNum, fmtVal } from './format.js'
export { detectFs, parseMountinfo, describeFs, type FsInfo } from './fstype.js'
export { result, ratioOf, median, timeJs, timeC, QUICK_BUDGET, FULL_BUDGET, TINY_BUDGET } from './measure.js'
export { loadLayer, needLayers } from './layers.js'
export { PUBLISHED } from './published.js'
export type * from './types.js'
