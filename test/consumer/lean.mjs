// `import 'pmemu'` in a user's test suite must load no benchmark- or
// CLI-only package. Run as: PMEMU_TRACE_OUT=f node --import ./trace-register.mjs lean.mjs
import { readFileSync } from 'node:fs'
await import('pmemu')
const loaded = new Set(readFileSync(process.env.PMEMU_TRACE_OUT, 'utf8').split('\n').filter(Boolean))
const forbidden = ['vega', 'vega-lite', 'mitata', 'cli-progress', 'commander']
const bad = forbidden.filter(p => loaded.has(p))
if (bad.length) {
  console.error(`lean: import 'pmemu' loaded ${bad.join(', ')} (only pmemu bench / the CLI may)`)
  process.exit(1)
}
console.log(`lean: ok (import 'pmemu' loaded ${[...loaded].sort().join(', ') || 'no other package'})`)
