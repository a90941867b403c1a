/**
 * Libraries users know, given toNodeFs where they take an injectable fs: the
 * results must come from the pmemu fs and nothing may reach the host (a host
 * directory with the same names is checked before and after, and a glob that
 * would match it on the host matches nothing here).
 */
import t from 'tap'
import { snapshot } from './fixtures/sentinel.js'
import { readdirSync, readFileSync, statSync, mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { glob, globSync, type Path } from 'glob'
import { openDevice } from '../src/region/index.js'
import { mkfs } from '../src/fs/index.js'
import { toNodeFs } from '../src/adapters/index.js'

// A host directory shaped like the pmemu project below: any fall-through would find or change it.
const sentinel = mkdtempSync(join(tmpdir(), 'pmemu-3p-sentinel-'))
mkdirSync(join(sentinel, 'src', 'lib'), { recursive: true })
writeFileSync(join(sentinel, 'src', 'host-only.ts'), 'host')
const before = snapshot(sentinel)
t.teardown(() => rmSync(sentinel, { recursive: true, force: true }))

async function project(): Promise<ReturnType<typeof toNodeFs>> {
  const dev = await openDevice(undefined, { size: '16MiB' })
  t.teardown(async () => { await dev.close() })
  const fs = toNodeFs(await mkfs(dev))
  await fs.mkdir('/proj/src/lib', { recursive: true })
  await fs.mkdir('/proj/node_modules/x', { recursive: true })
  await fs.writeFile('/proj/src/a.ts', 'a')
  await fs.writeFile('/proj/src/lib/b.ts', 'bb')
  await fs.writeFile('/proj/src/lib/.hidden.ts', 'h')
  await fs.writeFile('/proj/node_modules/x/c.ts', 'c')
  await fs.writeFile('/proj/README.md', 'r')
  return fs
}

t.test('glob (path-scurry) over toNodeFs: async API', async t => {
  const fs = await project()
  const opts = { fs: fs as never, posix: true }
  t.same((await glob('**/*.ts', { ...opts, cwd: '/proj', ignore: 'node_modules/**' })).sort(), ['src/a.ts', 'src/lib/b.ts'])
  t.same((await glob('**/*.ts', { ...opts, cwd: '/proj', dot: true, ignore: 'node_modules/**' })).sort(), ['src/a.ts', 'src/lib/.hidden.ts', 'src/lib/b.ts'])
  t.same((await glob('/proj/*', { ...opts, mark: true })).sort(), ['/proj/README.md', '/proj/node_modules/', '/proj/src/'])
  const withStats = await glob('src/**/*.ts', { ...opts, cwd: '/proj', stat: true, withFileTypes: true }) as unknown as Path[]
  t.same(withStats.map(p => [p.relativePosix(), p.size]).sort(), [['src/a.ts', 1], ['src/lib/b.ts', 2]], 'sizes from the pmemu files')
  t.same(await glob('**/host-only.ts', { ...opts, cwd: sentinel }), [], 'the host directory is not visible (it does not exist on pmemu)')
  t.same(await glob('**/*.ts', { ...opts, cwd: '/nope' }), [])
})

t.test('glob over toNodeFs: globSync through the *Sync forms', async t => {
  const fs = await project()
  const opts = { fs: fs as never, posix: true }
  t.same(globSync('**/*.ts', { ...opts, cwd: '/proj', ignore: 'node_modules/**' }).sort(), ['src/a.ts', 'src/lib/b.ts'])
  t.same(globSync('**/host-only.ts', { ...opts, cwd: sentinel }), [], 'nothing read from the host')
})

// proper-lockfile ships no types; its API as used here.
interface Lockfile {
  lock(file: string, o: object): Promise<() => Promise<void>>
  check(file: string, o: object): Promise<boolean>
  lockSync(file: string, o: object): () => void
  checkSync(file: string, o: object): boolean
}
const lockfile = createRequire(import.meta.url)('proper-lockfile') as Lockfile

t.test('proper-lockfile over toNodeFs: lock, contention, release, sync forms', async t => {
  const fs = await project()
  const o = { fs, realpath: true }
  const release = await lockfile.lock('/proj/src/a.ts', o)
  t.ok(await lockfile.check('/proj/src/a.ts', o), 'locked')
  t.ok((await fs.promises.stat('/proj/src/a.ts.lock')).isDirectory(), 'the lock directory is on pmemu')
  await t.rejects(lockfile.lock('/proj/src/a.ts', o), { code: 'ELOCKED' }, 'a second locker is refused')
  // The lock is refreshed with utimes; stale detection reads mtime back.
  const before = (await fs.promises.stat('/proj/src/a.ts.lock')).mtimeMs
  t.ok(before > 0)
  await release()
  t.notOk(await lockfile.check('/proj/src/a.ts', o), 'released')
  const releaseSync = lockfile.lockSync('/proj/src/a.ts', o)
  t.ok(lockfile.checkSync('/proj/src/a.ts', o))
  releaseSync()
  t.notOk(lockfile.checkSync('/proj/src/a.ts', o))
  await t.rejects(lockfile.lock('/proj/missing', o), { code: 'ENOENT' }, 'realpath of a missing file fails as on disk')
})

t.test('the host sentinel directory is untouched', async t => {
  t.equal(snapshot(sentinel), before)
})
