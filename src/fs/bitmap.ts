const POP = new Uint8Array(256)
for (let i = 1; i < 256; i++) POP[i] = (i & 1) + POP[i >> 1]!

/** In-memory copy of the block allocation bitmap (bit b of byte b>>3, LSB first; 1 = allocated). */
export class Bitmap {
  readonly bytes: Uint8Array
  free = 0

  constructor(readonly nbits: number, src?: Uint8Array) {
    this.bytes = new Uint8Array(Math.ceil(nbits / 8))
    if (src) this.bytes.set(src.subarray(0, this.bytes.length))
    this.recount()
  }

  recount(): void {
    let used = 0
    const full = this.nbits >> 3
    for (let i = 0; i < full; i++) used += POP[this.bytes[i]!]!
    for (let b = full * 8; b < this.nbits; b++) if (this.get(b)) used++
    this.free = this.nbits - used
  }

  get(b: number): boolean { return (this.bytes[b >> 3]! & (1 << (b & 7))) !== 0 }

  setRange(start: number, n: number): void {
    for (let b = start; b < start + n; b++) {
      const m = 1 << (b & 7)
      if ((this.bytes[b >> 3]! & m) === 0) { this.bytes[b >> 3]! |= m; this.free-- }
    }
  }

  clearRange(start: number, n: number): void {
    for (let b = start; b < start + n; b++) {
      const m = 1 << (b & 7)
      if ((this.bytes[b >> 3]! & m) !== 0) { this.bytes[b >> 3]! &= ~m; this.free++ }
    }
  }

  /** Length of the free run starting at `start`, at most `max`, not crossing `limit`. */
  freeRunAt(start: number, max: number, limit: number): number {
    let n = 0
    let b = start
    while (n < max && b < limit) {
      if ((b & 7) === 0 && n + 8 <= max && b + 8 <= limit && this.bytes[b >> 3] === 0) { n += 8; b += 8; continue }
      if (this.get(b)) break
      n++; b++
    }
    return n
  }

  /** First free block in [from, limit), or -1. */
  nextFree(from: number, limit: number): number {
    let b = from
    while (b < limit) {
      if ((b & 7) === 0 && this.bytes[b >> 3] === 0xff) { b += 8; continue }
      if (!this.get(b)) return b
      b++
    }
    return -1
  }
}
