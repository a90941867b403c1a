/**
 * The JS floor of the refcount paths: what the same number of JS→wasm calls
 * costs when each call does nothing but one atomic add on the same memory.
 * pmemu's paths cannot be cheaper than this from JavaScript (two bare JS
 * `Atomics.add` calls are dearer than two wasm calls: Atomics are not
 * inlined), so js / floor is the overhead of pmemu's own logic.
 *
 * For the range paths the floor is one JS→wasm call running a loop that
 * does only the atomics (`sweep`): what a range path costs with no logic.
 *
 * The module is written out here rather than built with the page table's
 * AssemblyScript so it stays exactly these instructions, over the side
 * table's imported shared memory.
 */
/** The side table's memory (dev.table.memory): a shared WebAssembly.Memory. */
type WasmMemory = { readonly buffer: ArrayBuffer | SharedArrayBuffer }

const BYTES = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  0x01, 0x0e, 0x02, // types: 2
  0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, //   0: (i32, i32) -> i32
  0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00, //   1: (i32, i32, i32, i32) -> ()
  0x02, 0x12, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, // import "env" "memory"
  0x02, 0x03, 0x01, 0x80, 0x80, 0x04, //   memory, shared, min 1, max 65536 pages
  0x03, 0x03, 0x02, 0x00, 0x01, // functions: add has type 0, sweep type 1
  0x07, 0x0f, 0x02, 0x03, 0x61, 0x64, 0x64, 0x00, 0x00, 0x05, 0x73, 0x77, 0x65, 0x65, 0x70, 0x00, 0x01, // exports "add", "sweep"
  0x0a, 0x33, 0x02, // code: 2 bodies
  0x0a, 0x00, // add: 10 bytes, no locals
  0x20, 0x00, 0x20, 0x01, 0xfe, 0x1e, 0x02, 0x00, 0x0b, //   local.get 0, local.get 1, i32.atomic.rmw.add, end
  0x26, 0x00, // sweep(addr, stride, count, delta): 38 bytes, no locals
  0x02, 0x40, 0x03, 0x40, //   block, loop
  0x20, 0x02, 0x45, 0x0d, 0x01, //     count == 0 -> break
  0x20, 0x00, 0x20, 0x03, 0xfe, 0x1e, 0x02, 0x00, 0x1a, //     atomic add delta at addr, drop the old value
  0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x00, //     addr += stride
  0x20, 0x02, 0x41, 0x01, 0x6b, 0x21, 0x02, //     count -= 1
  0x0c, 0x00, 0x0b, 0x0b, 0x0b, //     continue; end loop, end block, end
])

interface Wasm {
  Module: new (b: Uint8Array) => object
  Instance: new (m: object, i: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> }
}

export interface Floor {
  /** One atomic add of delta at a byte address; returns the old value. */
  add(addr: number, delta: number): number
  /** count atomic adds of delta, at addr, addr + stride, ... (bytes). */
  sweep(addr: number, stride: number, count: number, delta: number): void
}

/** The floor functions over the side table's memory (dev.table.memory). */
export function floorOf(memory: WasmMemory): Floor {
  const W = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly
  const inst = new W.Instance(new W.Module(BYTES), { env: { memory } })
  return inst.exports as unknown as Floor
}

/** add(byteAddress, delta) alone. */
export function floorAdd(memory: WasmMemory): (addr: number, delta: number) => number {
  return floorOf(memory).add
}
