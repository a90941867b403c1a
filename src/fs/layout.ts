/**
 * On-region format of the pmemu file system (docs/format.md describes it byte
 * by byte). Everything is little-endian. All decoders are total: given any
 * bytes they return a value or a string saying what is wrong — never throw,
 * never loop unboundedly — so mount and fsck survive damaged images.
 */
import { crc32c } from '../util/crc32c.js'

export const SB_MAGIC = 'PMEMUFS1'
export const FS_VERSION = 1
/**
 * Feature flag: the superblock's block carries the inode high-water mark
 * record (below): every inode slot from the mark on is free and never read,
 * so mount and fsck read [0, mark) of the inode table, not all of it, and
 * mkfs does not zero the table. Images without the flag (older mkfs) are
 * read whole, as before.
 */
export const FEATURE_INODE_HIGH = 1
export const SB_SIZE = 512
export const SB_CRC_OFF = SB_SIZE - 4
export const INODE_SIZE = 256
export const INODE_CRC_OFF = INODE_SIZE - 4
export const EXTENT_SIZE = 16
export const INLINE_EXTENTS = 10
export const INLINE_EXT_OFF = 80
export const OVF_HEADER = 32
export const DIR_HEADER = 16
export const NAME_MAX = 255
export const QUARANTINE_INO = 1
export const ROOT_INO = 2
export const FIRST_FREE_INO = 3
export const HUGE_BYTES = 2 * 1024 * 1024
export const MAX_LOGICAL_BLOCKS = 0xffffffff // logical block numbers are u32

export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000

/** Longest symlink target in bytes (PATH_MAX - 1, as Linux). */
export const SYMLINK_MAX = 4095

export const STATE_CLEAN = 1
export const STATE_MOUNTED = 2

/**
 * Superblock feature flags. Every bit is incompatible: a pmemu that does not
 * know a bit refuses to mount the image (older ones refuse any non-zero
 * value). A bit is set only when the image starts using the feature, so an
 * image that never had one stays readable by older pmemu.
 */
export const FEAT_SYMLINKS = 2
/** Every feature flag this pmemu reads; any other bit: refuse to mount. */
export const KNOWN_FEATURES = FEATURE_INODE_HIGH | FEAT_SYMLINKS

/** Inode flags. */
export const IFLAG_QUARANTINE = 1

/** Directory entry types. */
export const DT_REG = 1
export const DT_DIR = 2
export const DT_LNK = 3

export const OVF_MAGIC = 0x58454d50 // 'PMEX'
export const DIR_MAGIC = 0x52444d50 // 'PMDR'
export const JC_MAGIC = 0x434a4d50 // 'PMJC'

const utf8 = new TextEncoder()
const utf8Strict = new TextDecoder('utf-8', { fatal: true })

export function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength)
}

export function isAllZero(b: Uint8Array, start = 0, end = b.length): boolean {
  for (let i = start; i < end; i++) if (b[i] !== 0) return false
  return true
}

export function encodeUtf8(s: string): Uint8Array { return utf8.encode(s) }
export function decodeUtf8(b: Uint8Array): string | undefined {
  try { return utf8Strict.decode(b) } catch { return undefined }
}

// ---------------------------------------------------------------- superblock

/** The superblock: the geometry (below) plus identity, state and counters. */
export interface Superblock extends Geometry {
  version: number
  features: number
  uuid: Uint8Array // 16 bytes
  label: string
  inodeSize: number
  rootIno: number
  quarantineIno: number
  state: number
  nameMax: number
  createdMs: number
  mountCount: number
}

export function encodeSuperblock(sb: Superblock): Uint8Array {
  const b = new Uint8Array(SB_SIZE)
  const v = dv(b)
  for (let i = 0; i < 8; i++) b[i] = SB_MAGIC.charCodeAt(i)
  v.setUint32(8, sb.version, true)
  v.setUint32(12, sb.features, true)
  v.setUint32(16, sb.blockSize, true)
  v.setUint32(20, sb.blockCount, true)
  b.set(sb.uuid.subarray(0, 16), 24)
  const lab = encodeUtf8(sb.label)
  b.set(lab.subarray(0, 63), 40)
  v.setUint32(104, sb.journalStart, true)
  v.setUint32(108, sb.journalBlocks, true)
  v.setUint32(112, sb.bitmapStart, true)
  v.setUint32(116, sb.bitmapBlocks, true)
  v.setUint32(120, sb.inodeTableStart, true)
  v.setUint32(124, sb.inodeTableBlocks, true)
  v.setUint32(128, sb.inodeCount, true)
  v.setUint32(132, sb.inodeSize, true)
  v.setUint32(136, sb.dataStart, true)
  v.setUint32(140, sb.backupBlock, true)
  v.setUint32(144, sb.rootIno, true)
  v.setUint32(148, sb.quarantineIno, true)
  v.setUint32(152, sb.state, true)
  v.setUint32(156, sb.nameMax, true)
  v.setFloat64(160, sb.createdMs, true)
  v.setUint32(168, sb.mountCount, true)
  v.setUint32(SB_CRC_OFF, crc32c(b, 0, SB_CRC_OFF), true)
  return b
}

export function hasSbMagic(b: Uint8Array): boolean {
  if (b.length < 8) return false
  for (let i = 0; i < 8; i++) if (b[i] !== SB_MAGIC.charCodeAt(i)) return false
  return true
}

/**
 * Decode and validate a superblock against the device geometry. Returns the
 * superblock or a string saying what is wrong.
 */
export function decodeSuperblock(b: Uint8Array, dev: { pageSize: number; pageCount: number }): Superblock | string {
  if (b.length < SB_SIZE) return 'superblock truncated'
  if (!hasSbMagic(b)) {
    return isAllZero(b) ? 'no file system (superblock is all zeros)' : 'bad magic (not a pmemu file system)'
  }
  const v = dv(b)
  const crc = v.getUint32(SB_CRC_OFF, true)
  if (crc32c(b, 0, SB_CRC_OFF) !== crc) return 'superblock checksum mismatch'
  let label = ''
  let end = 40
  while (end < 104 && b[end] !== 0) end++
  label = decodeUtf8(b.subarray(40, end)) ?? ''
  const sb: Superblock = {
    version: v.getUint32(8, true),
    features: v.getUint32(12, true),
    blockSize: v.getUint32(16, true),
    blockCount: v.getUint32(20, true),
    uuid: b.slice(24, 40),
    label,
    journalStart: v.getUint32(104, true),
    journalBlocks: v.getUint32(108, true),
    bitmapStart: v.getUint32(112, true),
    bitmapBlocks: v.getUint32(116, true),
    inodeTableStart: v.getUint32(120, true),
    inodeTableBlocks: v.getUint32(124, true),
    inodeCount: v.getUint32(128, true),
    inodeSize: v.getUint32(132, true),
    dataStart: v.getUint32(136, true),
    backupBlock: v.getUint32(140, true),
    rootIno: v.getUint32(144, true),
    quarantineIno: v.getUint32(148, true),
    state: v.getUint32(152, true),
    nameMax: v.getUint32(156, true),
    createdMs: v.getFloat64(160, true),
    mountCount: v.getUint32(168, true),
  }
  const why = checkGeometry(sb, dev)
  return why ?? sb
}

function checkGeometry(sb: Superblock, dev: { pageSize: number; pageCount: number }): string | undefined {
  if (sb.version !== FS_VERSION) return `unsupported version ${sb.version} (this pmemu reads version ${FS_VERSION})`
  if ((sb.features & ~KNOWN_FEATURES) !== 0) return `unknown feature flags 0x${(sb.features & ~KNOWN_FEATURES).toString(16)} (this pmemu knows 0x${KNOWN_FEATURES.toString(16)}: inode high-water mark, symlinks)`
  if (sb.blockSize !== dev.pageSize) return `block size ${sb.blockSize} does not match the device page size ${dev.pageSize}`
  if (sb.blockCount !== dev.pageCount) return `superblock says ${sb.blockCount} blocks, the device has ${dev.pageCount}`
  if (sb.inodeSize !== INODE_SIZE) return `inode size ${sb.inodeSize} (expected ${INODE_SIZE})`
  if (sb.rootIno !== ROOT_INO || sb.quarantineIno !== QUARANTINE_INO) return 'bad root or quarantine inode number'
  if (sb.nameMax !== NAME_MAX) return `name max ${sb.nameMax} (expected ${NAME_MAX})`
  if (sb.state !== STATE_CLEAN && sb.state !== STATE_MOUNTED) return `bad state ${sb.state}`
  const bs = sb.blockSize
  const N = sb.blockCount
  if (sb.journalStart !== 1) return `journal starts at block ${sb.journalStart} (expected 1)`
  if (sb.journalBlocks < 4 || sb.journalBlocks > N) return `bad journal size ${sb.journalBlocks} blocks`
  if (sb.bitmapStart !== sb.journalStart + sb.journalBlocks) return 'bitmap does not follow the journal'
  if (sb.bitmapBlocks !== Math.ceil(N / (bs * 8))) return `bitmap is ${sb.bitmapBlocks} blocks, ${Math.ceil(N / (bs * 8))} expected for ${N} blocks`
  if (sb.inodeTableStart !== sb.bitmapStart + sb.bitmapBlocks) return 'inode table does not follow the bitmap'
  const perBlock = bs / INODE_SIZE
  if (sb.inodeCount < FIRST_FREE_INO + 1 || sb.inodeCount % perBlock !== 0) return `bad inode count ${sb.inodeCount}`
  if (sb.inodeTableBlocks !== sb.inodeCount / perBlock) return 'inode table size does not match the inode count'
  if (sb.dataStart !== sb.inodeTableStart + sb.inodeTableBlocks) return 'data area does not follow the inode table'
  if (sb.backupBlock !== N - 1) return `backup superblock at ${sb.backupBlock} (expected ${N - 1})`
  if (sb.dataStart >= sb.backupBlock) return 'no room for data blocks'
  return undefined
}

// ------------------------------------------------- inode high-water mark record

/**
 * The inode high-water mark record: 12 bytes at byte 512 of block 0 and of
 * the backup block (right after each superblock, inside one 64-byte cache
 * line, so a crash keeps all of it or none): magic 'PMHW', the mark, crc32c of
 * the first 8 bytes. Raised (never lowered) with a store of its own, after the
 * slots it newly covers are zeroed and before the transaction that uses them
 * commits; not part of the superblock's crc, so it is not journaled.
 */
export const HWM_OFF = 512
export const HWM_SIZE = 12
export const HWM_MAGIC = 0x57484d50 // 'PMHW'

export function encodeInodeHigh(high: number): Uint8Array {
  const b = new Uint8Array(HWM_SIZE)
  const v = dv(b)
  v.setUint32(0, HWM_MAGIC, true)
  v.setUint32(4, high, true)
  v.setUint32(8, crc32c(b, 0, 8), true)
  return b
}

/** The mark, or what is wrong with the record. */
export function decodeInodeHigh(b: Uint8Array, inodeCount: number): number | string {
  if (b.length < HWM_SIZE) return 'inode high-water mark record truncated'
  const v = dv(b)
  if (v.getUint32(0, true) !== HWM_MAGIC) return 'inode high-water mark record: bad magic'
  if (crc32c(b, 0, 8) !== v.getUint32(8, true)) return 'inode high-water mark record: checksum mismatch'
  const high = v.getUint32(4, true)
  if (high < FIRST_FREE_INO || high > inodeCount) return `inode high-water mark ${high} is outside ${FIRST_FREE_INO}..${inodeCount}`
  return high
}

// --------------------------------------------------------------------- geometry

export interface Geometry {
  blockSize: number
  blockCount: number
  journalStart: number
  journalBlocks: number
  bitmapStart: number
  bitmapBlocks: number
  inodeTableStart: number
  inodeTableBlocks: number
  inodeCount: number
  dataStart: number
  backupBlock: number
}

/** Default layout for a device; undefined when it is too small. */
export function computeGeometry(bs: number, N: number, opts: { inodes?: number; journalBlocks?: number } = {}): Geometry | string {
  if (N < 64) return `device too small: ${N} blocks (need at least 64)`
  if (N > 0xffffffff) return `device too large: ${N} blocks (at most 2^32-1)`
  const journalBlocks = opts.journalBlocks ?? Math.min(8192, Math.max(16, Math.floor(N / 32)))
  if (!Number.isSafeInteger(journalBlocks) || journalBlocks < 4) return `bad journal size ${journalBlocks}`
  const bitmapBlocks = Math.ceil(N / (bs * 8))
  const perBlock = bs / INODE_SIZE
  let inodes = opts.inodes ?? Math.max(64, Math.floor((N * bs) / 16384))
  if (!Number.isSafeInteger(inodes) || inodes < 1) return `bad inode count ${inodes}`
  inodes = Math.min(Math.ceil((inodes + FIRST_FREE_INO) / perBlock) * perBlock, Math.floor(0xffffffff / perBlock) * perBlock)
  const inodeTableBlocks = inodes / perBlock
  const journalStart = 1
  const bitmapStart = journalStart + journalBlocks
  const inodeTableStart = bitmapStart + bitmapBlocks
  const dataStart = inodeTableStart + inodeTableBlocks
  const backupBlock = N - 1
  if (dataStart + 8 > backupBlock) return `device too small: metadata needs ${dataStart + 1} of ${N} blocks`
  return { blockSize: bs, blockCount: N, journalStart, journalBlocks, bitmapStart, bitmapBlocks, inodeTableStart, inodeTableBlocks, inodeCount: inodes, dataStart, backupBlock }
}

// ------------------------------------------------------------------------ inodes

export interface Extent {
  /** First logical (file) block. */
  l: number
  /** First physical block (pfn). */
  p: number
  /** Length in blocks (>= 1). */
  n: number
}

export interface Inode {
  ino: number
  mode: number
  nlink: number
  size: number
  atime: number
  mtime: number
  ctime: number
  birthtime: number
  parent: number
  flags: number
  generation: number
  extents: Extent[]
  /** Overflow extent block chain (block numbers, in chain order). */
  overflow: number[]
}

export function isDir(mode: number): boolean { return (mode & S_IFMT) === S_IFDIR }
export function isReg(mode: number): boolean { return (mode & S_IFMT) === S_IFREG }
export function isLnk(mode: number): boolean { return (mode & S_IFMT) === S_IFLNK }
/** The directory-entry type of an inode mode. */
export function dtOf(mode: number): number { return isDir(mode) ? DT_DIR : isLnk(mode) ? DT_LNK : DT_REG }

export function extentsPerOverflow(bs: number): number { return Math.floor((bs - OVF_HEADER - 4) / EXTENT_SIZE) }
export function overflowBlocksFor(count: number, bs: number): number {
  return count <= INLINE_EXTENTS ? 0 : Math.ceil((count - INLINE_EXTENTS) / extentsPerOverflow(bs))
}

/** The 256-byte record of an inode, into `out` at `at` (a new array by default). */
export function encodeInode(ino: Inode, out: Uint8Array = new Uint8Array(INODE_SIZE), at = 0): Uint8Array {
  const b = at === 0 && out.length === INODE_SIZE ? out : out.subarray(at, at + INODE_SIZE)
  const v = dv(b)
  v.setUint32(0, ino.mode, true)
  v.setUint32(4, ino.nlink, true)
  v.setUint32(8, ino.size % 0x100000000, true)
  v.setUint32(12, Math.floor(ino.size / 0x100000000), true)
  v.setFloat64(16, ino.atime, true)
  v.setFloat64(24, ino.mtime, true)
  v.setFloat64(32, ino.ctime, true)
  v.setFloat64(40, ino.birthtime, true)
  v.setUint32(48, ino.parent, true)
  v.setUint32(52, ino.flags, true)
  v.setUint32(56, ino.extents.length, true)
  v.setUint32(60, ino.overflow[0] ?? 0, true)
  v.setUint32(64, ino.generation, true)
  for (let i = 0; i < Math.min(INLINE_EXTENTS, ino.extents.length); i++) writeExtent(v, INLINE_EXT_OFF + i * EXTENT_SIZE, ino.extents[i]!)
  v.setUint32(INODE_CRC_OFF, crc32c(b, 0, INODE_CRC_OFF), true)
  return b
}

function writeExtent(v: DataView, off: number, e: Extent): void {
  v.setUint32(off, e.l, true)
  v.setUint32(off + 4, e.p, true)
  v.setUint32(off + 8, e.n, true)
  v.setUint32(off + 12, 0, true)
}
function readExtent(v: DataView, off: number): Extent {
  return { l: v.getUint32(off, true), p: v.getUint32(off + 4, true), n: v.getUint32(off + 8, true) }
}

/** The fixed part of an inode; `extentCount` and `firstOverflow` say where the rest lives. */
export interface RawInode {
  inode: Inode // extents holds only the inline ones here
  extentCount: number
  firstOverflow: number
}

/** Decode an inode record. Returns null for a free slot (all zeros), a string when damaged. */
export function decodeInode(b: Uint8Array, inoNum: number): RawInode | null | string {
  if (isAllZero(b, 0, INODE_SIZE)) return null
  const v = dv(b)
  if (crc32c(b, 0, INODE_CRC_OFF) !== v.getUint32(INODE_CRC_OFF, true)) return 'inode checksum mismatch'
  const mode = v.getUint32(0, true)
  if (!isDir(mode) && !isReg(mode) && !isLnk(mode)) return `bad mode 0o${mode.toString(8)}`
  if ((mode & ~(S_IFMT | 0o7777)) !== 0) return `bad mode 0o${mode.toString(8)}`
  const sizeHi = v.getUint32(12, true)
  const size = v.getUint32(8, true) + sizeHi * 0x100000000
  if (sizeHi >= 0x200000) return `size ${size} out of range`
  const extentCount = v.getUint32(56, true)
  const inode: Inode = {
    ino: inoNum,
    mode,
    nlink: v.getUint32(4, true),
    size,
    atime: v.getFloat64(16, true),
    mtime: v.getFloat64(24, true),
    ctime: v.getFloat64(32, true),
    birthtime: v.getFloat64(40, true),
    parent: v.getUint32(48, true),
    flags: v.getUint32(52, true),
    generation: v.getUint32(64, true),
    extents: [],
    overflow: [],
  }
  for (let i = 0; i < Math.min(INLINE_EXTENTS, extentCount); i++) inode.extents.push(readExtent(v, INLINE_EXT_OFF + i * EXTENT_SIZE))
  return { inode, extentCount, firstOverflow: v.getUint32(60, true) }
}

export function encodeOverflow(bs: number, owner: number, index: number, next: number, extents: Extent[]): Uint8Array {
  const b = new Uint8Array(bs)
  const v = dv(b)
  v.setUint32(0, OVF_MAGIC, true)
  v.setUint32(4, owner, true)
  v.setUint32(8, next, true)
  v.setUint32(12, extents.length, true)
  v.setUint32(16, index, true)
  for (let i = 0; i < extents.length; i++) writeExtent(v, OVF_HEADER + i * EXTENT_SIZE, extents[i]!)
  v.setUint32(bs - 4, crc32c(b, 0, bs - 4), true)
  return b
}

export function decodeOverflow(b: Uint8Array, owner: number, index: number): { next: number; extents: Extent[] } | string {
  const bs = b.length
  const v = dv(b)
  if (v.getUint32(0, true) !== OVF_MAGIC) return 'overflow extent block: bad magic'
  if (crc32c(b, 0, bs - 4) !== v.getUint32(bs - 4, true)) return 'overflow extent block: checksum mismatch'
  if (v.getUint32(4, true) !== owner) return `overflow extent block belongs to inode ${v.getUint32(4, true)}`
  if (v.getUint32(16, true) !== index) return 'overflow extent block out of order'
  const count = v.getUint32(12, true)
  if (count > extentsPerOverflow(bs)) return `overflow extent block holds ${count} extents (max ${extentsPerOverflow(bs)})`
  const extents: Extent[] = []
  for (let i = 0; i < count; i++) extents.push(readExtent(v, OVF_HEADER + i * EXTENT_SIZE))
  return { next: v.getUint32(8, true), extents }
}

/**
 * Check an inode's extent list: sorted by logical block, non-overlapping,
 * every extent non-empty and inside [dataStart, dataEnd). Returns what is wrong.
 */
export function checkExtents(extents: Extent[], dataStart: number, dataEnd: number): string | undefined {
  let prevEnd = 0
  for (let i = 0; i < extents.length; i++) {
    const e = extents[i]!
    if (e.n === 0) return `extent ${i} is empty`
    if (e.l + e.n > MAX_LOGICAL_BLOCKS) return `extent ${i} runs past the largest file block`
    if (e.p < dataStart || e.p + e.n > dataEnd) return `extent ${i} (blocks ${e.p}..${e.p + e.n - 1}) is outside the data area ${dataStart}..${dataEnd - 1}`
    if (i > 0 && e.l < prevEnd) return `extent ${i} overlaps or is out of order`
    prevEnd = e.l + e.n
  }
  return undefined
}

// ------------------------------------------------------------------- directories

export interface DirEntry { ino: number; type: number }

export function entrySize(nameBytes: number): number { return (6 + nameBytes + 3) & ~3 }
export function dirCapacity(bs: number): number { return bs - DIR_HEADER - 4 }

export function encodeDirBlock(bs: number, owner: number, entries: Iterable<[string, DirEntry]>): Uint8Array {
  const b = new Uint8Array(bs)
  const v = dv(b)
  let off = DIR_HEADER
  let count = 0
  for (const [name, e] of entries) {
    const nb = encodeUtf8(name)
    v.setUint32(off, e.ino, true)
    b[off + 4] = e.type
    b[off + 5] = nb.length
    b.set(nb, off + 6)
    off += entrySize(nb.length)
    count++
  }
  v.setUint32(0, DIR_MAGIC, true)
  v.setUint32(4, owner, true)
  v.setUint32(8, count, true)
  v.setUint32(12, off - DIR_HEADER, true)
  v.setUint32(bs - 4, crc32c(b, 0, bs - 4), true)
  return b
}

/** Validate one name as stored in a directory; returns what is wrong. */
export function badName(name: string | undefined, bytes: number): string | undefined {
  if (name === undefined) return 'name is not valid UTF-8'
  if (bytes === 0) return 'empty name'
  if (name === '.' || name === '..') return `reserved name '${name}'`
  if (name.includes('/') || name.includes('\0')) return 'name contains / or NUL'
  return undefined
}

export interface DecodedDirBlock {
  entries: Array<{ name: string; ino: number; type: number }>
  used: number
}

export function decodeDirBlock(b: Uint8Array, owner: number): DecodedDirBlock | string {
  const bs = b.length
  const v = dv(b)
  if (v.getUint32(0, true) !== DIR_MAGIC) return 'directory block: bad magic'
  if (crc32c(b, 0, bs - 4) !== v.getUint32(bs - 4, true)) return 'directory block: checksum mismatch'
  if (v.getUint32(4, true) !== owner) return `directory block belongs to inode ${v.getUint32(4, true)}`
  const count = v.getUint32(8, true)
  const used = v.getUint32(12, true)
  if (used > dirCapacity(bs)) return `directory block: used ${used} bytes > capacity`
  const entries: DecodedDirBlock['entries'] = []
  let off = DIR_HEADER
  const end = DIR_HEADER + used
  for (let i = 0; i < count; i++) {
    if (off + 6 > end) return 'directory block: entries run past the used size'
    const ino = v.getUint32(off, true)
    const type = b[off + 4]!
    const len = b[off + 5]!
    if (off + 6 + len > end) return 'directory block: name runs past the used size'
    const name = decodeUtf8(b.subarray(off + 6, off + 6 + len))
    const bad = badName(name, len)
    if (bad) return `directory block: entry ${i}: ${bad}`
    if (type !== DT_REG && type !== DT_DIR && type !== DT_LNK) return `directory block: entry '${name}' has bad type ${type}`
    entries.push({ name: name!, ino, type })
    off += entrySize(len)
  }
  if (off !== end) return 'directory block: used size does not match the entries'
  return { entries, used }
}

// ----------------------------------------------------------------------- journal

export const JREC_WRITE = 1
export const JREC_BITSET = 2
export const JREC_BITCLEAR = 3
export const JREC_HEADER = 16
export const JCOMMIT_SIZE = 64
/** Journal records start one cache line after the journal start. */
export const JRECORDS_OFF = 64

export interface JournalCommit { seq: number; recordsLen: number; recordCount: number; recordsCrc: number }

export function encodeCommit(c: JournalCommit): Uint8Array {
  const b = new Uint8Array(JCOMMIT_SIZE)
  const v = dv(b)
  v.setUint32(0, JC_MAGIC, true)
  v.setUint32(4, 1, true)
  v.setUint32(8, c.seq % 0x100000000, true)
  v.setUint32(12, Math.floor(c.seq / 0x100000000), true)
  v.setUint32(16, c.recordsLen, true)
  v.setUint32(20, c.recordCount, true)
  v.setUint32(24, c.recordsCrc, true)
  v.setUint32(60, crc32c(b, 0, 60), true)
  return b
}

/** null = no transaction (all zeros); string = damaged commit record. */
export function decodeCommit(b: Uint8Array, capacity: number): JournalCommit | null | string {
  if (isAllZero(b, 0, JCOMMIT_SIZE)) return null
  const v = dv(b)
  if (v.getUint32(0, true) !== JC_MAGIC) return 'journal commit record: bad magic'
  if (crc32c(b, 0, 60) !== v.getUint32(60, true)) return 'journal commit record: checksum mismatch'
  if (v.getUint32(4, true) !== 1) return 'journal commit record: bad state'
  const recordsLen = v.getUint32(16, true)
  if (recordsLen > capacity || recordsLen % 8 !== 0) return `journal commit record: bad length ${recordsLen}`
  return { seq: v.getUint32(8, true) + v.getUint32(12, true) * 0x100000000, recordsLen, recordCount: v.getUint32(20, true), recordsCrc: v.getUint32(24, true) }
}

export interface JournalRecord { type: number; target: number; length: number; data?: Uint8Array }

/** Parse `count` records from `buf`; validate targets against `limit` (bytes / blocks). */
export function parseRecords(buf: Uint8Array, count: number, bytesLimit: number, blockLimit: number): JournalRecord[] | string {
  const v = dv(buf)
  const out: JournalRecord[] = []
  let off = 0
  for (let i = 0; i < count; i++) {
    if (off + JREC_HEADER > buf.length) return `journal record ${i} runs past the transaction`
    const type = v.getUint16(off, true)
    const length = v.getUint32(off + 4, true)
    const target = v.getUint32(off + 8, true) + v.getUint32(off + 12, true) * 0x100000000
    off += JREC_HEADER
    if (type === JREC_WRITE) {
      if (length === 0 || target + length > bytesLimit) return `journal record ${i}: write of ${length} bytes at ${target} is out of range`
      const padded = (length + 7) & ~7
      if (off + padded > buf.length) return `journal record ${i}: data runs past the transaction`
      out.push({ type, target, length, data: buf.subarray(off, off + length) })
      off += padded
    } else if (type === JREC_BITSET || type === JREC_BITCLEAR) {
      if (length === 0 || target + length > blockLimit) return `journal record ${i}: bitmap range ${target}+${length} is out of range`
      out.push({ type, target, length })
    } else {
      return `journal record ${i}: unknown type ${type}`
    }
  }
  if (off !== buf.length) return 'journal records do not fill the transaction'
  return out
}
