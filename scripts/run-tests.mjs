#!/usr/bin/env node
// `npm test`: run tap with the TAP reporter, show one line per test file,
// every failing assertion with its location, tap's coverage summary, and end
// with the line CI reads: "N passed, N failed[, N skipped]" counting every
// assertion in every subtest. Exit non-zero when anything failed (including a
// file that crashed or coverage under the thresholds in .taprc).
// Extra arguments go to tap (e.g. `npm test -- test/page.test.ts`). The
// coverage thresholds are whole-suite figures: a run of some files only still
// prints coverage, but does not fail on it.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Parser } from 'tap-parser'

const require = createRequire(import.meta.url)
const tapBin = join(dirname(require.resolve('tap/package.json')), 'dist/esm/run.mjs')
const args = process.argv.slice(2)
const someFiles = args.some(a => !a.startsWith('-'))
const child = spawn(process.execPath, [tapBin, '--reporter=tap', ...(someFiles ? ['--allow-incomplete-coverage'] : []), ...args], {
  stdio: ['ignore', 'pipe', 'inherit'],
})

let pass = 0, fail = 0, skip = 0
const failures = []
const parser = new Parser()
// Count leaf assertions only. A subtest shows up as a child parser and then
// as one summary assertion in its parent: skip that one, unless it failed
// with no failing assertion inside (a crash, a timeout, a missing plan).
function watch(p) {
  const children = []
  p.on('child', c => { const rec = { fails: 0 }; children.push(rec); watch(c).parentRec = rec })
  p.on('assert', a => {
    const child = children.shift()
    if (child) {
      if (!a.ok && !a.todo && !a.skip && child.fails === 0) record(p, a)
      return
    }
    if (a.skip || a.todo) skip++
    else if (a.ok) pass++
    else record(p, a)
  })
  return p
}
function record(p, a) {
  fail++
  for (let q = p; q; q = q.parent) if (q.parentRec) q.parentRec.fails++
  const d = a.diag || {}
  const at = d.at ? ` (${d.at.fileName}:${d.at.lineNumber})` : ''
  failures.push(`${a.fullname || a.name}${at}` + (d.found !== undefined ? `\n      found: ${JSON.stringify(d.found)}  wanted: ${JSON.stringify(d.wanted)}` : ''))
}
watch(parser)
let buf = ''
child.stdout.on('data', chunk => {
  parser.write(chunk)
  buf += chunk
  let i
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i)
    buf = buf.slice(i + 1)
    // top-level lines only: per-file results, coverage summary, tap comments
    if (/^(ok|not ok|#|[A-Z][a-z]+\s*:|=+)/.test(line)) console.log(line)
  }
})
child.on('close', code => {
  parser.end()
  if (failures.length) {
    console.log('\nfailed assertions:')
    for (const f of failures.slice(0, 100)) console.log('  - ' + f)
  }
  // A crashed file or incomplete coverage fails the run even when every assertion passed.
  const extra = code !== 0 && fail === 0 ? 1 : 0
  console.log(`${pass} passed, ${fail + extra} failed` + (skip ? `, ${skip} skipped` : ''))
  process.exit(code !== 0 || fail > 0 ? 1 : 0)
})
