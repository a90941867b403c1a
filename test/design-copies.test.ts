/**
 * The repo's copies of the design documents (docs/spec.md,
 * docs/api-contract.md, test/vectors/model-vectors.json) match the design
 * sources byte for byte, when those are present (../shared/design beside the
 * main checkout). A clone without them skips: its copies are the reference.
 * `node scripts/sync-design.mjs` refreshes the copies.
 */
import t from 'tap'
// @ts-expect-error plain ESM script without types
import { COPIES, findDesignDir, stale } from '../scripts/sync-design.mjs'

const dir = findDesignDir() as string | undefined

t.test('design copies match ../shared/design', { skip: dir ? false : 'no ../shared/design here: the repo copies are the reference' }, async t => {
  t.equal(COPIES.length, 3, 'three copies tracked')
  const diff = stale(dir) as { src: string; dest: string }[]
  t.same(diff.map(d => d.dest), [], 'no copy differs (run node scripts/sync-design.mjs)')
})
