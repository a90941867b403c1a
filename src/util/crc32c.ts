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
