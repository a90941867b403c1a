/**
 * examples/race-demo.ts and examples/seed-thread.ts run for every model of MODEL_NAMES, with a pin and with
 * a plain get, and what it prints matches what happened (docs/dma.md, "The race
 * demo"; docs/models.md walks through its output).
 */
import t from 'tap'
import { MODEL_NAMES } from '../src/page/index.js'
import { raceDemo } from '../examples/race-demo.js'
import { seedThread } from '../examples/seed-thread.js'

t.test('race-demo: every model, a pin and a plain get', async t => {
  const lines: string[] = []
  const results = await raceDemo(MODEL_NAMES, l => lines.push(l))
  t.equal(results.length, 2 * MODEL_NAMES.length, 'two races per model')
  for (const m of MODEL_NAMES) {
    t.ok(lines.some(l => l.startsWith(`\n== ${m}, DMA with pin: 'pin'`)), `${m}: pin race printed`)
    t.ok(lines.some(l => l.startsWith(`\n== ${m}, DMA with pin: 'get'`)), `${m}: get race printed`)
  }
  for (const r of results) {
    const label = `${r.model} / ${r.pin}`
    if (r.pin === 'pin') {
      // every model holds truncate back while a FOLL_PIN is held
      t.ok(r.truncateWaited, `${label}: truncate waited for the pin`)
      t.same(r.violations, [], `${label}: checker clean`)
    } else if (!r.truncateWaited) {
      // a model that does not wait for plain gets frees a referenced page: never silently
      t.ok(r.hazards > 0, `${label}: the freed-while-referenced hazard is counted`)
      t.ok(r.violations.some(v => v.includes('freed while')), `${label}: and the checker reports it`)
    } else {
      t.same(r.violations, [], `${label}: truncate waited for the get, checker clean`)
      t.equal(r.hazards, 0, `${label}: no hazard`)
    }
  }
  t.ok(lines.every(l => !/NaN|undefined/.test(l)), 'no NaN or undefined in the output')
})

t.test('seed-thread: every model, the four walks print', async t => {
  const lines: string[] = []
  await seedThread(MODEL_NAMES, l => lines.push(l))
  for (const m of MODEL_NAMES) t.ok(lines.includes(`\n### ${m}\n`), `${m}: section printed`)
  t.equal(lines.filter(l => l.startsWith('| unpin |')).length, MODEL_NAMES.length, 'each model: the pin walk reaches the unpin')
  t.ok(lines.filter(l => l.startsWith('| unpin |')).every(l => l.endsWith('| completed |')), 'each model: truncate completes after the unpin')
  t.equal(lines.filter(l => l.startsWith('plain get:')).length, MODEL_NAMES.length, 'each model: the plain-get walk')
  // a plain get either holds truncate or the hazard is reported: never silent
  for (const l of lines.filter(l => l.startsWith('plain get:'))) {
    if (l.includes('without waiting')) t.notOk(l.endsWith('hazards 0'), `hazard counted: ${l}`)
    else t.ok(l.endsWith('hazards 0'), `no hazard when truncate waited: ${l}`)
  }
  t.ok(lines.every(l => !/NaN|undefined/.test(l)), 'no NaN or undefined in the output')
})
