/**
 * Loads build/wasm/pages.wasm (built by `npm run build:wasm` from
 * assembly/pages.ts) and instantiates it on a shared memory.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pmemError } from '../errors.js'
import { packageRoot } from '../util/root.js'
import { VERIFIED } from './layout.js'

// tsconfig's lib (ES2023, no DOM) has no WebAssembly types and no
// Atomics.waitAsync: minimal local typings, without touching the globals.

/** A (shared) WasmMemory. */
export interface WasmMemory { readonly buffer: ArrayBuffer | SharedArrayBuffer }
/** A compiled WasmModule (opaque; structured-cloneable to workers). */
export interface WasmModule { readonly [Symbol.toStringTag]?: string }
interface WasmGlobal { readonly value: unknown }
interface WasmApi {
  Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory
  Module: new (bytes: Uint8Array) => WasmModule
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> }
  Global: new (d: { value: string; mutable?: boolean }, v: unknown) => WasmGlobal
  compile(bytes: Uint8Array): Promise<WasmModule>
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly

type WaitResult = 'ok' | 'not-equal' | 'timed-out'
/** Atomics.waitAsync (Node >= 16). */
export const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeout?: number):
    { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<WaitResult> }
}).waitAsync

/** The exports of assembly/pages.ts. pfns are u32, statuses i32 (0 = ok). */
export interface PagesExports {
  setSlot(slot: number, shared: number): void
  loadModel(): void
  bump(index: number, n: bigint): void
  head(pfn: number): number
  /** Fast lanes: 0, a violation kind (1..8), or a NEED_* code (>= 0x100) to pass to finish(). */
  get(pfn: number): number
  put(pfn: number): number
  pin(pfn: number): number
  unpin(pfn: number): number
  finish(ev: number, pfn: number, code: number): number
  apply(ev: number, pfn: number): number
  getPut(pfn: number): number
  range(ev: number, pfn: number, count: number): number
  rangeStop(): number
  maybeDmaPinned(pfn: number): number
  firstBusy(pfn: number, count: number, rule: number): number
  init(pageCount: number, idle: number, zeroed: number): void
  scan(from: number, to: number): number
  countReferenced(from: number, to: number): number
  countEntries(from: number, to: number): number
  free(pfn: number): number
  associate(pfn: number, inode: number, index: number): number
  makeFolio(head: number, order: number): number
  splitFolio(head: number): number
  pageCount(): number
}

export function wasmPath(): string {
  return join(packageRoot(), 'build/wasm/pages.wasm')
}

let compiled: Promise<WasmModule> | undefined

/** Compile pages.wasm once per thread. */
export function loadModule(): Promise<WasmModule> {
  if (!compiled) {
    const path = wasmPath()
    compiled = readFile(path)
      .then(bytes => WA.compile(bytes))
      .catch((e: unknown) => {
        compiled = undefined
        throw pmemError('ENOENT', 'loadModule',
          `cannot load the side-table module (run 'npm run build:wasm'): ${(e as Error)?.message ?? e}`,
          { path, cause: e })
      })
  }
  return compiled
}

/**
 * Instantiate on `memory` (synchronous: usable in attach()). Verifies the
 * layout mirror. The header (model) must already be written: the instance
 * copies the model constants into its globals here.
 */
export function instantiate(module: WasmModule, memory: WasmMemory): PagesExports {
  const instance = new WA.Instance(module, { env: { memory } })
  const ex = instance.exports as unknown as PagesExports & Record<string, WasmGlobal>
  for (const [name, value] of Object.entries(VERIFIED)) {
    const g = ex[name]
    if (!(g instanceof WA.Global) || g.value !== value) {
      throw pmemError('EINVAL', 'loadModule', `pages.wasm layout mismatch: ${name} is ${g instanceof WA.Global ? g.value : 'missing'}, expected ${value} (rebuild with 'npm run build:wasm')`)
    }
  }
  ex.loadModel()
  return ex
}
