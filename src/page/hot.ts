/**
 * The hot low-level paths of one PageTable (`dev.pages.get/put/pin/unpin/
 * pinRange/unpinRange`, `getPut`, ...), compiled per instance.
 *
 * Why: every PageTable has its own wasm instance, so its exports are
 * different functions per table. Written as ordinary methods, the call
 * `this.#get(pfn)` inside `PageTable.prototype.get` is ONE call site for
 * every table in the process: as soon as a second table is used it sees a
 * second wasm target, V8 stops inlining the JS→wasm wrapper there and every
 * call goes through the generic wrapper (+5–10 ns per call, i.e. 2× on
 * get+put). Closures made by one factory do not help either: they share a
 * SharedFunctionInfo and their feedback.
 *
 * So each table gets its own copy of the code: `new Function` on a source
 * made unique per instance (a serial number in a comment: V8 caches eval'd
 * code, and a cache hit would hand back the same SharedFunctionInfo and
 * feedback cell), closing over that instance's wasm exports. Each wrapper has
 * its own feedback, its wasm call stays monomorphic, and Turbofan inlines the
 * JS→wasm wrapper whatever else the process does. The cost is one small
 * compile per table at open/attach (a few KiB of bytecode and feedback).
 *
 * The code is written once, as the ordinary function hotFactory below:
 * each table compiles its source text; where code generation from strings
 * is disabled (`--disallow-code-generation-from-strings`) the table calls
 * hotFactory itself (correct, but polymorphic again with several tables).
 */
import type { PmemuError } from '../errors.js'
import type { PagesExports } from './wasm.js'

/** The per-instance hot paths, installed as own (non-enumerable, writable) properties of the PageTable. */
export interface HotPaths {
  get(pfn: number): void
  put(pfn: number): void
  pin(pfn: number, opts?: { longterm?: boolean }): void
  unpin(pfn: number): void
  getPut(pfn: number): void
  pinRange(pfn: number, count: number, opts?: { longterm?: boolean }): void
  unpinRange(pfn: number, count: number): void
  getRange(pfn: number, count: number): void
  putRange(pfn: number, count: number): void
  maybeDmaPinned(pfn: number): boolean
}

/** What the generated code needs of its table (the cold paths stay in table.ts). */
export interface HotEnv {
  x: PagesExports
  pageCount: number
  ev: { get: number; put: number; pin: number; unpin: number }
  /** EINVAL for a bad pfn (`op`, `pfn`), as PageTable#badPfn. */
  badPfn(op: string, pfn: unknown): PmemuError
  /** Full range check (throws what PageTable#checkRange throws). */
  checkRange(op: string, pfn: number, count: number): void
  /** A fast lane returned non-zero: wasm finish(), then strict-mode throw. */
  finishHot(code: number, ev: number, op: string, pfn: number): void
  /** A wasm status != 0: ENXIO when unbound/closed, else strict mode throws the violation. */
  violated(status: number, op: string, pfn: number): void
  /** EOPNOTSUPP for FOLL_LONGTERM. */
  longterm(pfn: number): PmemuError
}

/**
 * The hot paths, written once. `n` (pageCount) and the exports are constants
 * of the enclosing call; the checks are inline, `op` strings are literals
 * (nothing is built per call). Self-contained on purpose: its source text
 * (Function.prototype.toString) is what each table compiles as its own copy,
 * so it may use its parameters and nothing else from this module.
 */
function hotFactory(
  x: PagesExports, n: number, ev: HotEnv['ev'], badPfn: HotEnv['badPfn'], checkRange: HotEnv['checkRange'],
  finishHot: HotEnv['finishHot'], violated: HotEnv['violated'], longterm: HotEnv['longterm'],
): HotPaths {
  const fGet = x.get, fPut = x.put, fPin = x.pin, fUnpin = x.unpin, fGetPut = x.getPut
  const fRange = x.range, fRangeStop = x.rangeStop, fDma = x.maybeDmaPinned
  const EV_GET = ev.get, EV_PUT = ev.put, EV_PIN = ev.pin, EV_UNPIN = ev.unpin
  function range(e: number, op: string, rangeOp: string, pfn: number, count: number): void {
    if (!(typeof pfn === 'number' && typeof count === 'number' && pfn >>> 0 === pfn && pfn < n && count >>> 0 === count && pfn + count <= n)) checkRange(rangeOp, pfn, count)
    const st = fRange(e, pfn, count)
    if (st !== 0) violated(st, op, fRangeStop())
  }
  return {
    get: function get(pfn) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('get', pfn)
      const st = fGet(pfn)
      if (st !== 0) finishHot(st, EV_GET, 'get', pfn)
    },
    put: function put(pfn) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('put', pfn)
      const st = fPut(pfn)
      if (st !== 0) finishHot(st, EV_PUT, 'put', pfn)
    },
    pin: function pin(pfn, opts) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('pin', pfn)
      if (opts?.longterm) throw longterm(pfn)
      const st = fPin(pfn)
      if (st !== 0) finishHot(st, EV_PIN, 'pin', pfn)
    },
    unpin: function unpin(pfn) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('unpin', pfn)
      const st = fUnpin(pfn)
      if (st !== 0) finishHot(st, EV_UNPIN, 'unpin', pfn)
    },
    getPut: function getPut(pfn) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('getPut', pfn)
      const st = fGetPut(pfn)
      if (st !== 0) violated(st, 'put', pfn)
    },
    pinRange: function pinRange(pfn, count, opts) {
      if (opts?.longterm) { checkRange('pinRange', pfn, count); throw longterm(pfn) }
      range(EV_PIN, 'pin', 'pinRange', pfn, count)
    },
    unpinRange: function unpinRange(pfn, count) { range(EV_UNPIN, 'unpin', 'unpinRange', pfn, count) },
    getRange: function getRange(pfn, count) { range(EV_GET, 'get', 'getRange', pfn, count) },
    putRange: function putRange(pfn, count) { range(EV_PUT, 'put', 'putRange', pfn, count) },
    maybeDmaPinned: function maybeDmaPinned(pfn) {
      if (!(typeof pfn === 'number' && pfn >>> 0 === pfn && pfn < n)) throw badPfn('maybeDmaPinned', pfn)
      const r = fDma(pfn)
      if (r > 1) violated(r, 'maybeDmaPinned', pfn)
      return r !== 0
    },
  }
}

/** The methods hotPaths() returns, in the fixed order a table installs them (one hidden class for every table). */
export const HOT_NAMES = ['get', 'put', 'pin', 'unpin', 'getPut', 'pinRange', 'unpinRange', 'getRange', 'putRange', 'maybeDmaPinned'] as const

type Factory = typeof hotFactory
const PARAMS = ['x', 'n', 'ev', 'badPfn', 'checkRange', 'finishHot', 'violated', 'longterm'] as const
// esbuild's keepNames (tsx, when pmemu runs from source) wraps the inner
// functions in calls to a module helper `__name`: the copy gets its own.
const SOURCE = `var __name = function (f) { return f }\nreturn (${hotFactory.toString()})(${PARAMS.join(', ')})`

let serial = 0
/** false once `new Function` was refused: later tables share the one compiled factory. */
let codegen = true

/**
 * This table's hot paths: its own compiled copy of hotFactory (see the file
 * comment), or, where code generation from strings is disabled, hotFactory's
 * closures themselves (the same code, correct but shared, so polymorphic
 * again with several tables).
 */
export function hotPaths(e: HotEnv): HotPaths {
  let f: Factory = hotFactory
  if (codegen) {
    try {
      // The serial makes the source unique: no eval-cache hit, so new SharedFunctionInfos and feedback.
      f = new Function(...PARAMS, `// pmemu page table hot paths #${++serial}\n'use strict'\n${SOURCE}`) as Factory
    } catch (err) {
      if (!(err instanceof EvalError)) throw err
      codegen = false
    }
  }
  return f(e.x, e.pageCount, e.ev, e.badPfn, e.checkRange, e.finishHot, e.violated, e.longterm)
}

/** Test hook: build the next tables without per-instance code (the shared factory), or with it again. */
export function _disableHotCodegen(off: boolean): void {
  codegen = !off
}
