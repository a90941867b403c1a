/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as ext4/btrfs/iSCSI use it. Slicing-by-8. */
const T = new Uint32Array(8 * 256)
for (let i = 0; i < 256; i++) {
  let c = i
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  T[i] = c >>> 0
}
for (let i = 0; i < 256; i++) {
  for (let s = 1; s < 8; s++) T[s * 256 + i] = (T[(s - 1) * 256 + i]! >>> 8) ^ T[T[(s - 1) * 256 + i]! & 0xff]!
}

/** crc32c of bytes [start, end) of `buf`, continuing from `seed` (a previous result; 0 to start). */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, seed = 0): number {
  let c = ~seed >>> 0
  let i = start
  for (; i + 8 <= end; i += 8) {
    const lo = (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)) ^ c
    const hi = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24)
    c = T[7 * 256 + (lo & 0xff)]! ^ T[6 * 256 + ((lo >>> 8) & 0xff)]! ^ T[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      T[4 * 256 + (lo >>> 24)]! ^ T[3 * 256 + (hi & 0xff)]! ^ T[2 * 256 + ((hi >>> 8) & 0xff)]! ^
      T[256 + ((hi >>> 16) & 0xff)]! ^ T[hi >>> 24]!
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

// ------------------------------------------------------------ zero extension

/** GF(2) 32×32 matrix (32 columns) times a 32-bit vector. */
function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i]!
  return sum >>> 0
}

function gf2Square(mat: Uint32Array): Uint32Array {
  const sq = new Uint32Array(32)
  for (let i = 0; i < 32; i++) sq[i] = gf2Times(mat, mat[i]!)
  return sq
}

/**
 * ZEROS[k]: the crc register after 2^k zero bytes, as a matrix (zlib's
 * crc32_combine), expanded into 8 tables of 16 (one per 4 bits of the
 * register): applying it is 8 lookups.
 */
const ZEROS: Uint32Array[] = (() => {
  const one = new Uint32Array(32) // one zero bit: shift right, xor the polynomial when the low bit was set
  one[0] = 0x82f63b78
  for (let i = 1; i < 32; i++) one[i] = (1 << (i - 1)) >>> 0
  let m = gf2Square(gf2Square(gf2Square(one))) // 8 zero bits = one zero byte
  const out: Uint32Array[] = []
  for (let k = 0; k < 32; k++) {
    const t = new Uint32Array(8 * 16)
    for (let nib = 0; nib < 8; nib++) for (let v = 0; v < 16; v++) t[nib * 16 + v] = gf2Times(m, (v << (4 * nib)) >>> 0)
    out.push(t)
    m = gf2Square(m)
  }
  return out
})()

/**
 * crc32c of (the bytes `crc` is the crc32c of) followed by `n` zero bytes,
 * in O(log n) instead of O(n): a directory block's crc covers its entries and
 * then up to a block of zeros.
 */
export function crc32cZeros(crc: number, n: number): number {
  let c = ~crc >>> 0
  for (let k = 0; n > 0; k++, n = Math.floor(n / 2)) {
    if (n % 2 === 0) continue
    const t = ZEROS[k]!
    c = (t[c & 15]! ^ t[16 + ((c >>> 4) & 15)]! ^ t[32 + ((c >>> 8) & 15)]! ^ t[48 + ((c >>> 12) & 15)]! ^
      t[64 + ((c >>> 16) & 15)]! ^ t[80 + ((c >>> 20) & 15)]! ^ t[96 + ((c >>> 24) & 15)]! ^ t[112 + (c >>> 28)]!) >>> 0
  }
  return ~c >>> 0
}
