// A closed or unbound device fails every page-table path with ENXIO — also
// through references taken before (dev.pages kept by a caller, another
// thread's table on the same memory) and on the non-generated paths — from
// the table's own bound state, read by the wasm counting paths themselves.
import t, { type Test } from 'tap'
import { openDevice } from '../src/index.js'
import { PageTable } from '../src/page/index.js'
import { _disableHotCodegen } from '../src/page/hot.js'

type Pages = Record<string, (...a: unknown[]) => unknown>
const PATHS: [string, unknown[]][] = [
  ['get', [1]], ['put', [1]], ['pin', [1]], ['unpin', [1]], ['getPut', [1]],
  ['pinRange', [1, 2]], ['unpinRange', [1, 2]], ['getRange', [1, 2]], ['putRange', [1, 2]], ['maybeDmaPinned', [1]],
  ['entryInsert', [1]], ['mapInsert', [1]], ['zap', [1]], ['entryDelete', [1]], ['entryInsert', [1, 2]],
  ['free', [1]], ['associate', [1, 5, 0]], ['disassociate', [1]], ['setFlag', [1, 'dirty']],
]

async function check(t: Test, end: 'close' | 'unbind', codegen: boolean): Promise<void> {
  _disableHotCodegen(!codegen)
  const dev = await openDevice(undefined, { size: '4MiB' })
  _disableHotCodegen(false)
  const pages = dev.pages as unknown as Pages
  const other = PageTable.attach(dev.table.transferable()) as unknown as Pages // as a DMA worker holds it
  pages.get!(1); pages.put!(1)
  if (end === 'close') await dev.close()
  else await dev.unbind()
  const why = end === 'close' ? /closed/ : /unbound/
  for (const [name, args] of PATHS) {
    for (const [who, p] of [['dev.pages', pages], ['another thread\'s table', other]] as const) {
      t.throws(() => p[name]!(...args), { code: 'ENXIO', message: why }, `${who}.${name} after ${end}`)
    }
  }
}

for (const codegen of [true, false]) {
  const how = codegen ? 'generated hot paths' : 'prototype paths'
  t.test(`close: every path ENXIO (${how})`, t => check(t, 'close', codegen))
  t.test(`unbind: every path ENXIO (${how})`, t => check(t, 'unbind', codegen))
}

t.test('the table methods are its own after close (nothing overwritten)', async t => {
  const dev = await openDevice(undefined, { size: '4MiB' })
  const get = (dev.pages as unknown as Pages).get
  await dev.close()
  t.equal((dev.pages as unknown as Pages).get, get)
})
