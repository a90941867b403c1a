/**
 * The device info block: the first bytes of the backing file, like a
 * namespace's pfn info block. Little-endian:
 *
 *   0  u8[8]  magic 'PMEMUDEV'
 *   8  u32    version (1)
 *  12  u32    info block bytes (dataOffset excludes the side-table reservation)
 *  16  u64    device size (bytes, the whole file)
 *  24  u32    page size
 *  28  u8     default model (MODEL_BY_ID: 0 legacy, 1 dax-gup, 2 upstream, 3 dax-gup-v1)
 *  29  u8     map (0 mem, 1 dev)
 *  30  u8     persistence (0 adr, 1 eadr)
 *  31  u8     reserved (0)
 *  32  u8[16] uuid
 *  48  u64    dataOffset: first usable byte in the file
 *  56  u64    capacity: usable bytes (pageCount * pageSize)
 *  64  u32    badblocks count
 *  68  u32    crc32c of bytes 0..67 and the badblocks entries
 *  72  u8[56] reserved (0)
 * 128  { u64 offset, u64 length }[count]   badblocks, 512-byte sectors, sorted, merged
 */
import { crc32c } from '../util/crc32c.js'
import { pmemError } from '../errors.js'
import { MODEL_BY_ID } from '../util/model-ids.js'
import type { BadBlock, DeviceInfo, MapMode, Persistence } from './types.js'

export const MAGIC = 'PMEMUDEV'
export const VERSION = 1
/** Bytes reserved for the info block before any side-table reservation or data. */
export const INFO_MIN_BYTES = 64 * 1024
export const BADBLOCK_HEADER = 128
export const SIDE_TABLE_RECORD = 32

const MAPS: MapMode[] = ['mem', 'dev']
const PERSIST: Persistence[] = ['adr', 'eadr']

export function infoBytes(pageSize: number): number {
  return Math.max(INFO_MIN_BYTES, pageSize)
}

export function maxBadblocks(pageSize: number): number {
  return Math.floor((infoBytes(pageSize) - BADBLOCK_HEADER) / 16)
}

/** Where the usable region starts and how many pages it holds, for a device of `size` bytes. */
export function geometry(size: number, pageSize: number, map: MapMode): { dataOffset: number; pageCount: number; tableBytes: number } {
  const info = infoBytes(pageSize)
  const roundUp = (n: number) => Math.ceil(n / pageSize) * pageSize
  let pageCount = Math.floor((size - info) / pageSize)
  if (map === 'dev') {
    // ndctl --map=dev: the struct page array takes room from the namespace.
    pageCount = Math.floor((size - info) / (pageSize + SIDE_TABLE_RECORD))
    while (pageCount > 0 && info + roundUp(pageCount * SIDE_TABLE_RECORD) + pageCount * pageSize > size) pageCount--
  }
  const tableBytes = map === 'dev' ? roundUp(Math.max(0, pageCount) * SIDE_TABLE_RECORD) : 0
  return { dataOffset: info + tableBytes, pageCount: Math.max(0, pageCount), tableBytes }
}

export function randomUuid(): string {
  return crypto.randomUUID()
}

export function encodeInfo(info: DeviceInfo, out: Uint8Array): void {
  const hdr = infoBytes(info.pageSize)
  if (info.badblocks.length > maxBadblocks(info.pageSize)) {
    throw pmemError('ENOSPC', 'badblocks', `the info block holds at most ${maxBadblocks(info.pageSize)} bad ranges`)
  }
  const end = BADBLOCK_HEADER + info.badblocks.length * 16
  out.fill(0, 0, Math.max(end, BADBLOCK_HEADER))
  const dv = new DataView(out.buffer, out.byteOffset, hdr)
  for (let i = 0; i < 8; i++) out[i] = MAGIC.charCodeAt(i)
  dv.setUint32(8, VERSION, true)
  dv.setUint32(12, hdr, true)
  dv.setBigUint64(16, BigInt(info.size), true)
  dv.setUint32(24, info.pageSize, true)
  out[28] = MODEL_BY_ID.indexOf(info.model)
  out[29] = MAPS.indexOf(info.map)
  out[30] = PERSIST.indexOf(info.persistence)
  const hex = info.uuid.replace(/-/g, '')
  for (let i = 0; i < 16; i++) out[32 + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  dv.setBigUint64(48, BigInt(info.dataOffset), true)
  dv.setBigUint64(56, BigInt(info.capacity), true)
  dv.setUint32(64, info.badblocks.length, true)
  info.badblocks.forEach((b, i) => {
    dv.setBigUint64(BADBLOCK_HEADER + i * 16, BigInt(b.offset), true)
    dv.setBigUint64(BADBLOCK_HEADER + i * 16 + 8, BigInt(b.length), true)
  })
  dv.setUint32(68, infoCrc(out, info.badblocks.length), true)
}

function infoCrc(buf: Uint8Array, count: number): number {
  return crc32c(buf, BADBLOCK_HEADER, BADBLOCK_HEADER + count * 16, crc32c(buf, 0, 68))
}

/** True when the bytes start with the magic (a pmemu device, damaged or not). */
export function hasMagic(buf: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (buf[i] !== MAGIC.charCodeAt(i)) return false
  return true
}

/**
 * Decode and check an info block. Foreign bytes get EINVAL ("not a pmemu
 * device"); a pmemu block that fails a check gets EFSCORRUPTED naming it.
 */
export function decodeInfo(buf: Uint8Array, path: string, fileSize: number): DeviceInfo {
  if (buf.length < BADBLOCK_HEADER || !hasMagic(buf)) {
    throw pmemError('EINVAL', 'open', 'not a pmemu device (no info block magic); refusing to touch it', { path })
  }
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length)
  const bad = (what: string) => pmemError('EFSCORRUPTED', 'open', `damaged device info block: ${what}`, { path })
  const version = dv.getUint32(8, true)
  if (version !== VERSION) throw bad(`version ${version}, this pmemu reads version ${VERSION}`)
  const count = dv.getUint32(64, true)
  const pageSize = dv.getUint32(24, true)
  if (pageSize < 4096 || (pageSize & (pageSize - 1)) !== 0) throw bad(`page size ${pageSize}`)
  if (dv.getUint32(12, true) !== infoBytes(pageSize)) throw bad('info block size')
  if (count > maxBadblocks(pageSize) || BADBLOCK_HEADER + count * 16 > buf.length) throw bad(`badblocks count ${count}`)
  const crc = dv.getUint32(68, true)
  if (crc !== infoCrc(buf, count)) throw bad('checksum mismatch')
  const size = Number(dv.getBigUint64(16, true))
  const model = MODEL_BY_ID[buf[28]!]
  const map = MAPS[buf[29]!]
  const persistence = PERSIST[buf[30]!]
  if (!model) throw bad(`model id ${buf[28]!} (this pmemu knows ${MODEL_BY_ID.map((m, i) => `${i} ${m}`).join(', ')}: written by a newer version?)`)
  if (!map || !persistence) throw bad('map/persistence byte')
  if (size !== fileSize) throw bad(`recorded size ${size} but the file holds ${fileSize} bytes`)
  const g = geometry(size, pageSize, map)
  const dataOffset = Number(dv.getBigUint64(48, true))
  const capacity = Number(dv.getBigUint64(56, true))
  if (dataOffset !== g.dataOffset || capacity !== g.pageCount * pageSize) throw bad('geometry')
  let hex = ''
  for (let i = 0; i < 16; i++) hex += buf[32 + i]!.toString(16).padStart(2, '0')
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  const badblocks: BadBlock[] = []
  for (let i = 0; i < count; i++) {
    badblocks.push({
      offset: Number(dv.getBigUint64(BADBLOCK_HEADER + i * 16, true)),
      length: Number(dv.getBigUint64(BADBLOCK_HEADER + i * 16 + 8, true)),
    })
  }
  return { version, size, pageSize, model, map, persistence, uuid, dataOffset, capacity, badblocks }
}
