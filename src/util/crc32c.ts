/** CRC-32C (Castagnoli), as ext4 and XFS checksum their metadata. */
const TABLE = (() => {
  const t = new Uint32Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    t[i] = c >>> 0
  }
  return t
})()

export function crc32c(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}
