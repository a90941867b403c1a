const POP = new Uint8Array(256)
for (let i = 1; i < 256; i++) POP[i] = (i & 1) + POP[i >> 1]!

/** Set bits in a 32-bit word. */
function pop32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555)
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24
}

/** Mask of bits [lo, hi) of a byte (0 ≤ lo < hi ≤ 8). */
function byteMask(lo: number, hi: number): number {
  return ((0xff << lo) & (0xff >> (8 - hi))) & 0xff
}

/**
 * Set (`set`) or clear bits [start, start+n) of a bit array stored LSB first
 * in `bytes` (bit b in byte b>>3). Returns how many bits changed. Whole bytes
 * are done a byte at a time (a run of 2^18 bits is 2^15 byte stores), the
 * partial bytes at the two ends with a mask.
 */
export function fillBits(bytes: Uint8Array, start: number, n: number, set: boolean): number {
  if (n <= 0) return 0
  const end = start + n
  let changed = 0
  let i = start >> 3
  const lastByte = (end - 1) >> 3
  if (i === lastByte) {
    const m = byteMask(start & 7, end - (i << 3))
    const old = bytes[i]!
    const now = set ? old | m : old & ~m
    bytes[i] = now
    return POP[old ^ now]!
  }
  // head
  if ((start & 7) !== 0) {
    const m = byteMask(start & 7, 8)
    const old = bytes[i]!
    const now = set ? old | m : old & ~m
    bytes[i] = now
    changed += POP[old ^ now]!
    i++
  }
  // whole bytes [i, tailByte)
  const tailByte = end >> 3
  const fill = set ? 0xff : 0
  for (; i < tailByte; i++) {
    const old = bytes[i]!
    if (old !== fill) { changed += set ? 8 - POP[old]! : POP[old]!; bytes[i] = fill }
  }
  // tail
  if ((end & 7) !== 0) {
    const m = byteMask(0, end & 7)
    const old = bytes[i]!
    const now = set ? old | m : old & ~m
    bytes[i] = now
    changed += POP[old ^ now]!
  }
  return changed
}

/**
 * In-memory copy of the block allocation bitmap (bit b of byte b>>3, LSB
 * first; 1 = allocated). Runs are set, cleared and scanned a 32-bit word at a
 * time where they cover whole words, so freeing or finding an extent costs
 * its length / 32, not its length.
 */
export class Bitmap {
  readonly bytes: Uint8Array
  /** The same memory as 32-bit words (bytes is padded to a multiple of 4). Little-endian hosts only; undefined elsewhere. */
  private readonly words: Uint32Array | undefined
  free = 0

  constructor(readonly nbits: number, src?: Uint8Array) {
    const len = Math.ceil(nbits / 8)
    const buf = new ArrayBuffer((len + 3) & ~3)
    this.bytes = new Uint8Array(buf, 0, len)
    this.words = LITTLE_ENDIAN ? new Uint32Array(buf) : undefined
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
    this.free -= this.fill(start, n, true)
  }

  clearRange(start: number, n: number): void {
    this.free += this.fill(start, n, false)
  }

  /** Set or clear [start, start+n), clamped to the bitmap; returns the bits changed. */
  private fill(start: number, n: number, set: boolean): number {
    const end = Math.min(start + n, this.nbits)
    if (start < 0 || end <= start) return 0
    const w = this.words
    if (!w || end - start < 96) return fillBits(this.bytes, start, end - start, set)
    // head up to a word boundary, whole words, tail
    const w0 = (start + 31) >> 5
    const w1 = end >> 5
    let changed = fillBits(this.bytes, start, (w0 << 5) - start, set)
    const fill = set ? 0xffffffff : 0
    for (let i = w0; i < w1; i++) {
      const old = w[i]!
      if (old !== fill) { changed += set ? 32 - pop32(old) : pop32(old); w[i] = fill }
    }
    changed += fillBits(this.bytes, w1 << 5, end - (w1 << 5), set)
    return changed
  }

  /** Length of the free run starting at `start`, at most `max`, not crossing `limit`. */
  freeRunAt(start: number, max: number, limit: number): number {
    const w = this.words
    let n = 0
    let b = start
    while (n < max && b < limit) {
      if ((b & 31) === 0 && w && n + 32 <= max && b + 32 <= limit && w[b >> 5] === 0) { n += 32; b += 32; continue }
      if ((b & 7) === 0 && n + 8 <= max && b + 8 <= limit && this.bytes[b >> 3] === 0) { n += 8; b += 8; continue }
      if (this.get(b)) break
      n++; b++
    }
    return n
  }

  /** First free block in [from, limit), or -1. */
  nextFree(from: number, limit: number): number {
    const w = this.words
    let b = from
    while (b < limit) {
      if ((b & 31) === 0 && w && b + 32 <= limit && w[b >> 5] === 0xffffffff) { b += 32; continue }
      if ((b & 7) === 0 && this.bytes[b >> 3] === 0xff) { b += 8; continue }
      if (!this.get(b)) return b
      b++
    }
    return -1
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
