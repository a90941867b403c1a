// Rebuild mmap-io for Node 20. Its own install script forces -std=c++11, which
// Node 20's headers reject, so package.json turns that script off
// ("allowScripts": { "mmap-io": false }) and we build it here with gnu++17.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { existsSync } from 'node:fs'

const require = createRequire(import.meta.url)
let dir
try {
  dir = dirname(require.resolve('mmap-io/package.json'))
} catch {
  console.log('pmemu: mmap-io is not installed; the mmap-io backend will be unavailable')
  process.exit(0)
}
if (existsSync(join(dir, 'build/Release/mmap-io.node')) && !process.env.PMEMU_REBUILD_MMAP_IO) {
  process.exit(0)
}
const gyp = join(dirname(require.resolve('node-gyp/package.json')), 'bin/node-gyp.js')
// Under npm, npm_config_nodedir points at the headers; run by hand, use the
// headers installed beside this node binary (no download: the network is closed).
const args = [gyp, 'rebuild']
const prefix = dirname(dirname(process.execPath))
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node.h'))) args.push('--nodedir=' + prefix)
const r = spawnSync(process.execPath, args, {
  cwd: dir,
  stdio: 'inherit',
  env: { ...process.env, CXXFLAGS: '-std=gnu++17' },
})
if (r.status !== 0) {
  console.error('pmemu: building mmap-io failed (exit ' + r.status + '); the mmap-io backend will be unavailable')
  process.exit(0) // never fail the install: the other backends work without it
}
