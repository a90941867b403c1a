#!/usr/bin/env node
// Refresh the repo's copies of the design documents from a design directory
// the maintainer names (the repo itself never reads outside its own tree:
// these copies are what it builds and tests against):
//   docs/spec.md                    <- SPEC.md
//   docs/api-contract.md            <- API.md
// (the design's model-vectors.json is the superseded first version of the
// conformance vectors: the repo keeps its own, one file per model, in
// test/vectors/ — see docs/models-sources.md)
// Usage: node scripts/sync-design.mjs <design-dir> [--check]
//        (or PMEMU_DESIGN_DIR=<design-dir>)
// `--check` copies nothing: it lists copies that differ and exits 1 if any do.
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const COPIES = [
  ['SPEC.md', 'docs/spec.md'],
  ['API.md', 'docs/api-contract.md'],
]

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The design directory named on the command line or in PMEMU_DESIGN_DIR, or undefined. */
export function designDirArg(argv = process.argv.slice(2)) {
  const given = argv.find(a => !a.startsWith('--')) ?? process.env.PMEMU_DESIGN_DIR
  return given === undefined ? undefined : resolve(given)
}

/** Copies whose bytes differ from the design sources: [{ src, dest }]. */
export function stale(designDir) {
  return COPIES.filter(([src, dest]) => {
    const d = join(root, dest)
    return !existsSync(d) || !readFileSync(join(designDir, src)).equals(readFileSync(d))
  }).map(([src, dest]) => ({ src: join(designDir, src), dest }))
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check')
  const dir = designDirArg()
  if (!dir) {
    console.error('usage: node scripts/sync-design.mjs <design-dir> [--check]  (or PMEMU_DESIGN_DIR)')
    process.exit(2)
  }
  const missing = COPIES.filter(([src]) => !existsSync(join(dir, src))).map(([src]) => src)
  if (missing.length) {
    console.error(`sync-design: ${dir} lacks ${missing.join(', ')}`)
    process.exit(2)
  }
  const diff = stale(dir)
  if (check) {
    for (const { src, dest } of diff) console.log(`sync-design: ${dest} differs from ${src} (run: node scripts/sync-design.mjs ${dir})`)
    if (diff.length === 0) console.log(`sync-design: copies match ${dir}`)
    process.exit(diff.length ? 1 : 0)
  }
  for (const { src, dest } of diff) {
    copyFileSync(src, join(root, dest))
    console.log(`sync-design: ${dest} <- ${src}`)
  }
  if (diff.length === 0) console.log(`sync-design: copies already match ${dir}`)
}
