// `import 'pmemu'` in a user's test suite loads no benchmark-, report- or
// CLI-only package (mitata, vega, vega-lite, cli-progress, commander): those
// load lazily inside `pmemu bench` and the CLI. Checked on the source entry
// (through tsx) and on the package entry by name (dist/, what users import),
// in a child process so this suite's own imports do not count.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { withoutCoverage } from './fixtures/env.js'

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const hooks = new URL('./consumer/trace-register.mjs', import.meta.url).href
const forbidden = ['mitata', 'vega', 'vega-lite', 'cli-progress', 'commander']

function loadedBy(entry: string, extra: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'pmemu-lean-'))
  try {
    const out = join(dir, 'trace.txt')
    const r = spawnSync(process.execPath, [...extra, '--import', hooks, '--input-type=module', '-e', `await import(${JSON.stringify(entry)})`], {
      // no coverage from these children: one loads src through tsx, whose source
      // maps do not line up with ts-node's and halved the merged function coverage
      cwd: root, encoding: 'utf8', env: { ...withoutCoverage(process.env), PMEMU_TRACE_OUT: out },
    })
    if (r.status !== 0) throw new Error(`import ${entry} exited ${r.status}: ${r.stderr}`)
    return [...new Set(readFileSync(out, 'utf8').split('\n').filter(Boolean))]
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] // nothing resolved into node_modules at all
    throw e
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('the source entry loads no bench/report/CLI package', async t => {
  const loaded = loadedBy(new URL('../src/index.ts', import.meta.url).href, ['--import', 'tsx'])
  t.same(loaded.filter(p => forbidden.includes(p)), [], `loaded: ${loaded.join(', ')}`)
})

t.test("import 'pmemu' by name (the built package entry) loads no bench/report/CLI package", async t => {
  const loaded = loadedBy('pmemu', [])
  t.same(loaded.filter(p => forbidden.includes(p)), [], `loaded: ${loaded.join(', ')}`)
  // The trace works: pino (the runtime logger dependency) is seen.
  t.ok(loaded.includes('pino'), 'the trace saw the runtime dependency pino')
})
