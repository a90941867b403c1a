import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let cached: string | undefined

/**
 * The package root (the folder whose package.json is pmemu's), found from this
 * file whether it runs as TypeScript source (src/util) or compiled (dist/src/util).
 * Build products that are not JavaScript live there: build/wasm/*.wasm and
 * native-shims/build/Release/*.node.
 */
export function packageRoot(): string {
  if (cached) return cached
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pj = join(dir, 'package.json')
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'pmemu') return (cached = dir)
      } catch { /* not ours */ }
    }
    const up = dirname(dir)
    if (up === dir) throw new Error('pmemu: cannot find the package root from ' + import.meta.url)
    dir = up
  }
}
