/**
 * The architecture, checked (`npx depcruise src`, run by .ci/run).
 * Layers, lowest first (docs/architecture.md):
 *   util, errors  <  region  <  page  <  fs  <  dax, faults  <  dma  <  adapters  <  mount.ts / index.ts / cli
 * Only value imports count (a type-only import leaves nothing in the emitted
 * JavaScript): tsPreCompilationDeps is off.
 */
const above = (...layers) => `^src/(${layers.join('|')})(/|\\.ts$)`

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles: each concern can be read, tested and replaced on its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'region-knows-nothing-above',
      severity: 'error',
      comment: 'src/region is the bottom layer: it imports nothing above it.',
      // Exception: Device (region/device.ts) still builds the page table; it goes
      // when one composition root above region and page owns Device.
      from: { path: '^src/region/', pathNot: '^src/region/device\\.ts$' },
      to: { path: above('page', 'fs', 'dax', 'faults', 'dma', 'adapters', 'cli', 'mount', 'index') },
    },
    {
      name: 'page-knows-no-fs-dax',
      severity: 'error',
      comment: 'The page table (refcount models) knows no file system, DAX layer or anything above.',
      from: { path: '^src/page/' },
      to: { path: above('fs', 'dax', 'faults', 'dma', 'adapters', 'cli', 'mount', 'index') },
    },
    {
      name: 'fs-knows-no-dax-dma-cli',
      severity: 'error',
      comment: 'The fs is extended through fs.attach (FsExtension); it imports none of the layers that extend it.',
      from: { path: '^src/fs/' },
      to: { path: above('dax', 'faults', 'dma', 'adapters', 'cli', 'mount', 'index') },
    },
    {
      name: 'cross-folder-only-via-index',
      severity: 'error',
      comment: "A folder's surface is its index.ts: no reaching into another folder's files.",
      // Exception: the DMA worker core reads the side table's record layout and
      // the native shim directly; it goes when DMA asks the page table instead.
      from: { path: '^src/([^/]+)/', pathNot: '^src/dma/core\\.ts$' },
      to: {
        path: '^src/[^/]+/.+',
        // src/util is the shared helper folder (logger, sizes, checks): no index by design.
        pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$', '^src/util/'],
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|build)/' },
    tsPreCompilationDeps: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'] },
  },
}
