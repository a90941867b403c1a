/**
 * The benchmark suite (`pmemu bench`, `npm start`): see docs/benchmarks.md.
 */
export { runBenchmarks, resolveModels, defaultBase, ALL_MODELS, DEFAULT_SIZE, type RunOptions } from './runner.js'
export { BENCHMARKS } from './registry.js'
export { renderHtml, renderSvg, chartSpecs, fitTitle } from './report.js'
export { compareReports, compareLines, beyondNoise, resultsTable, skippedLines, fmtNum, fmtVal, fmtRatio } from './format.js'
export { detectFs, parseMountinfo, describeFs, type FsInfo } from './fstype.js'
export { result, ratioOf, median, quantile, spreadOf, timeJs, timeC, timePaired, interleave, QUICK_BUDGET, FULL_BUDGET, TINY_BUDGET } from './measure.js'
export { floorOf, floorAdd } from './floor.js'
export { pgmapEdgeOps } from './paths/refcount.js'
export { PUBLISHED } from './published.js'
export type * from './types.js'
