import t from 'tap'
import { parseSize, formatBytes } from '../src/util/size.js'
import { PmemuError, errnoOf, wrapSystemError } from '../src/errors.js'

t.test('sizes', async t => {
  t.equal(parseSize('64MiB'), 64 * 1024 * 1024)
  t.equal(parseSize(4096), 4096)
  t.equal(formatBytes(64 * 1024 * 1024), '64 MiB')
  t.throws(() => parseSize('lots'), { code: 'EINVAL' })
  t.throws(() => parseSize(-1), { code: 'EINVAL' })
})

t.test('errors carry code, errno, syscall', async t => {
  const e = new PmemuError('EHWPOISON', 'read', 'poisoned', { path: '/f', offset: 512 })
  t.equal(e.errno, 133)
  t.equal(e.code, 'EHWPOISON')
  t.equal(e.path, '/f')
  t.equal(errnoOf('EFSCORRUPTED'), 117)
  const w = wrapSystemError(Object.assign(new Error('Resource temporarily unavailable'), { errno: 11, syscall: 'Flock' }), 'open', { path: '/x' })
  t.equal(w.code, 'EAGAIN')
  t.equal(w.path, '/x')
})
