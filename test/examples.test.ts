/**
 * examples/race-demo.ts runs for every model of MODEL_NAMES, with a pin and with
 * a plain get, and what it prints matches what happened (docs/dma.md, "The race
 * demo"; docs/models.md walks through its output).
 */
import t from 'tap'
import { MODEL_NAMES } from '../src/page/index.js'
import { raceDemo } from '../examples/race-demo.js'

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
