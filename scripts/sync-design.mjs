#!/usr/bin/env node
// Refresh the repo's copies of the design documents from the design sources
// (../shared/design beside the main checkout), when those are present:
//   docs/spec.md                    <- SPEC.md
//   docs/api-contract.md            <- API.md
//   test/vectors/model-vectors.json <- model-vectors.json
// `--check` copies nothing: it lists copies that differ and exits 1 if any do.
// Without a design directory it says so and exits 0: the copies in the repo
// are then the reference (a clone from a public host has no ../shared).
// PMEMU_DESIGN_DIR names the design directory explicitly.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const COPIES = [
  ['SPEC.md', 'docs/spec.md'],
  ['API.md', 'docs/api-contract.md'],
  ['model-vectors.json', 'test/vectors/model-vectors.json'],
]

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The design directory, or undefined when none is present. */
export function findDesignDir() {
  const candidates = []
  if (process.env.PMEMU_DESIGN_DIR) candidates.push(resolve(process.env.PMEMU_DESIGN_DIR))
  candidates.push(join(root, '..', 'shared', 'design'))
  // In a git worktree, ../shared is beside the main checkout, not beside this one.
  try {
    const common = execFileSync('git', ['rev-parse', '--path-format=absolute', '--git-common-dir'], {
      cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
    candidates.push(join(dirname(common), '..', 'shared', 'design'))
  } catch { /* not a git checkout (an installed package): no worktree to look beside */ }
  return candidates.find(d => COPIES.every(([src]) => existsSync(join(d, src))))
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
  const dir = findDesignDir()
  if (!dir) {
    console.log('sync-design: no design directory (../shared/design) here; the copies in the repo are the reference')
    process.exit(0)
  }
  const diff = stale(dir)
  if (check) {
    for (const { src, dest } of diff) console.log(`sync-design: ${dest} differs from ${src} (run: node scripts/sync-design.mjs)`)
    if (diff.length === 0) console.log(`sync-design: copies match ${dir}`)
    process.exit(diff.length ? 1 : 0)
  }
  for (const { src, dest } of diff) {
    copyFileSync(src, join(root, dest))
    console.log(`sync-design: ${dest} <- ${src}`)
  }
  if (diff.length === 0) console.log(`sync-design: copies already match ${dir}`)
}
