// Error shape users and tooling rely on: `errno` holds real Linux errnos only
// (SIGBUS and AbortError carry 0 and say what they are in other fields), the
// code set is closed, and messages built from hostile details never throw.
import t from 'tap'
import { openDevice, mkfs, PmemuError, PmemuAbortError, pmemError, isErrorCode } from '../src/index.js'
import { wrapSystemError } from '../src/errors.js'

t.test('SIGBUS carries the signal, not a fake errno (7 would read as E2BIG)', async t => {
  const dev = await openDevice(undefined, { size: '16MiB' })
  const fs = await mkfs(dev)
  const f = await fs.open('/f', 'w+')
  f.write(new Uint8Array(100), 0)
  const map = f.mmap(0, 2 * 4096)
  let err: unknown
  try { map.view(4096, 16) } catch (e) { err = e }
  t.ok(err instanceof PmemuError)
  t.match(err, { code: 'SIGBUS', errno: 0, signal: 'SIGBUS', signo: 7 }, 'a fault past EOF')
  await dev.close()
})

t.test('AbortError has errno 0 (20 would read as ENOTDIR) and the reason as cause', async t => {
  const e = new PmemuAbortError('truncate', { cause: 'stop' })
  t.equal(e.name, 'AbortError')
  t.equal(e.code, 'ABORT_ERR')
  t.equal(e.errno, 0)
  t.equal(e.cause, 'stop')
})

t.test('real errnos for real codes', async t => {
  t.equal(pmemError('ENOENT', 'open', 'x').errno, 2)
  t.equal(pmemError('EHWPOISON', 'read', 'x').errno, 133)
  t.equal(pmemError('EFSCORRUPTED', 'mount', 'x').errno, 117)
  t.equal(pmemError('ENXIO', 'get', 'x').errno, 6)
})

t.test('the code set is closed: a host code pmemu does not name becomes EIO with hostCode', async t => {
  t.ok(isErrorCode('ENOENT'))
  t.ok(isErrorCode('SIGBUS'))
  t.notOk(isErrorCode('ERR_SOMETHING'))
  t.notOk(isErrorCode(Symbol('x')))
  const host = Object.assign(new Error('EWEIRD: odd'), { code: 'EWEIRD' })
  const w = wrapSystemError(host, 'open', { path: '/x' })
  t.match(w, { code: 'EIO', errno: 5, hostCode: 'EWEIRD', path: '/x' })
  t.equal(w.cause, host)
  const known = wrapSystemError(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }), 'open')
  t.match(known, { code: 'ENOENT', errno: 2 })
})

t.test('hostile details never make the error builder throw', async t => {
  const hostile: unknown[] = [Symbol('s'), 10n, { toString() { throw new Error('no') } }, Object.create(null), () => 1, NaN]
  for (const v of hostile) {
    for (const key of ['path', 'pfn', 'offset'] as const) {
      let e: PmemuError | undefined
      t.doesNotThrow(() => { e = pmemError('EINVAL', 'op', 'bad', { [key]: v }) }, `${key}: ${typeof v}`)
      t.equal(e?.code, 'EINVAL')
      t.type(e?.message, 'string')
    }
  }
  t.doesNotThrow(() => wrapSystemError({ toString() { throw new Error('no') } }, 'op'))
  t.doesNotThrow(() => wrapSystemError(Symbol('x'), 'op'))
})
