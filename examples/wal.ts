/**
 * A small write-ahead log written against the `node:fs/promises` interface,
 * so it runs on a real directory and, through `toNodeFs`, on pmemu.
 *
 * On-disk format: a sequence of records `[u32 length][u32 crc32c][payload]`
 * (little-endian; the crc covers the length field and the payload). Recovery
 * reads records from the start and stops at the first one that is short,
 * zero-length or fails its crc: that is the torn tail of an append the crash
 * interrupted, and it is cut off so later appends start on a clean boundary.
 *
 * The log grows by zero-filled, fsynced segments (as PostgreSQL's WAL
 * segments), so an append is an in-place overwrite of allocated blocks.
 *
 * The durability rule this file gets right (and wal-bad.ts gets wrong): an
 * append is acknowledged only after the record's bytes are written *and*
 * fsynced. On pmemu (as on a DAX file system) a store into an allocated
 * block is durable only once it is persisted (fsync), so an unsynced append
 * leaves zeros where the record should be after a crash.
 */
import { Buffer } from 'node:buffer'
import { crc32c, toNodeFs, type ForEachCrashOptions, type Keep, type Verify, type Workload } from '../src/index.js'

/** The part of `node:fs/promises` the log needs (real fs, or `toNodeFs(pmemFs)`). */
export interface WalFs {
  open(path: string, flags?: string): Promise<WalHandle>
}

/** The part of a FileHandle the log needs. */
export interface WalHandle {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>
  stat(): Promise<{ size: number }>
  truncate(len?: number): Promise<void>
  sync(): Promise<void>
  close(): Promise<void>
}

export const HEADER = 8
/** The log grows by zero-filled segments of this size: appends then overwrite preallocated blocks in place. */
export const SEGMENT = 16384

async function writeFully(fh: WalHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done)
    done += bytesWritten
  }
}

/** Encode one record. */
export function encodeRecord(payload: Uint8Array): Buffer {
  const rec = Buffer.alloc(HEADER + payload.length)
  rec.writeUInt32LE(payload.length, 0)
  rec.set(payload, HEADER)
  rec.writeUInt32LE(crc32c(rec, 0, 4, crc32c(rec, HEADER, rec.length)), 4)
  return rec
}

/** Decode the records of a log image; `end` is the byte offset where the valid prefix ends. */
export function decodeRecords(image: Uint8Array): { records: Buffer[]; end: number } {
  const buf = Buffer.from(image.buffer, image.byteOffset, image.byteLength)
  const records: Buffer[] = []
  let off = 0
  while (off + HEADER <= buf.length) {
    const len = buf.readUInt32LE(off)
    if (len === 0 || off + HEADER + len > buf.length) break
    const crc = buf.readUInt32LE(off + 4)
    if (crc32c(buf, off, off + 4, crc32c(buf, off + HEADER, off + HEADER + len)) !== crc) break
    records.push(Buffer.from(buf.subarray(off + HEADER, off + HEADER + len)))
    off += HEADER + len
  }
  return { records, end: off }
}

/** The log. `Wal.open` recovers it; `append` is durable when it resolves. */
export class Wal {
  /** Bytes preallocated (zero-filled and durable) so far. */
  protected capacity: number

  constructor(protected readonly fh: WalHandle, protected tail: number, readonly recovered: Buffer[], capacity?: number) {
    this.capacity = capacity ?? Math.ceil(Math.max(tail, 1) / SEGMENT) * SEGMENT
  }

  /**
   * Open (creating) the log at `path` and recover its records. The valid
   * prefix ends at the first torn record; everything after it is zeroed so a
   * stale record past a torn one can never be read back as part of the log.
   */
  static async open<T extends Wal>(this: new (fh: WalHandle, tail: number, recovered: Buffer[]) => T, fs: WalFs, path: string): Promise<T> {
    const fh = await fs.open(path, 'a+').then(async h => { await h.close(); return fs.open(path, 'r+') })
    const { size } = await fh.stat()
    const image = Buffer.alloc(size)
    let got = 0
    while (got < size) {
      const { bytesRead } = await fh.read(image, got, size - got, got)
      if (bytesRead === 0) break
      got += bytesRead
    }
    const { records, end } = decodeRecords(image.subarray(0, got))
    const wal = new this(fh, end, records)
    if (size === 0) {
      await wal.preallocate(0)
    } else if (image.subarray(end).some(b => b !== 0)) {
      await writeFully(fh, Buffer.alloc(size - end), end)
      await fh.sync()
    }
    return wal
  }

  /** Zero-fill a new segment at `at` and make it durable (as PostgreSQL fills its WAL segments). */
  protected async preallocate(at: number): Promise<void> {
    await writeFully(this.fh, Buffer.alloc(SEGMENT), at)
    await this.fh.sync()
    this.capacity = at + SEGMENT
  }

  /** Write a record without making it durable (the first half of an append). */
  async write(payload: Uint8Array): Promise<void> {
    const rec = encodeRecord(payload)
    while (this.tail + rec.length > this.capacity) await this.preallocate(this.capacity)
    await writeFully(this.fh, rec, this.tail)
    this.tail += rec.length
  }

  /** Make everything written so far durable. */
  async commit(): Promise<void> {
    await this.fh.sync()
  }

  /** Append a record; when this resolves the record is acknowledged: it must survive a crash. */
  async append(payload: Uint8Array): Promise<void> {
    await this.write(payload)
    await this.commit()
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

// ---------------------------------------------------------------- the crash scenario

/** The three `keep` modes: every example run crosses them with every crash moment. */
export const KEEP_MODES: Keep[] = ['none', 'all', 'random']

/** forEachCrash options the examples and their tests share: every keep mode, a small device. */
export const WAL_CRASH_OPTIONS: ForEachCrashOptions = { keep: KEEP_MODES, size: '4MiB' }

/**
 * What the workload was told before the power went out, kept in forEachCrash's
 * per-run `state`: the records whose `append` resolved, and the one being
 * appended when the crash hit (it may or may not be recovered).
 */
export interface WalState { acked: string[]; inFlight: string | null }

export type WalClass = (new (fh: WalHandle, tail: number, recovered: Buffer[]) => Wal) & { open: typeof Wal.open }

/** The records the workload appends: `count` payloads of 1..1200 bytes, fixed by `seed` (forEachCrash needs the same calls every run). */
export function walPayloads(count = WAL_RECORDS, seed = 1): string[] {
  let x = (seed * 2654435761) >>> 0 || 1
  const rand = (): number => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 0x1_0000_0000 }
  return Array.from({ length: count }, (_, i) =>
    `record ${i} `.padEnd(1 + Math.floor(rand() * 1200), String.fromCharCode(97 + (i % 26))))
}

/** Records per workload: enough (about 12 KiB) to fill most of the first segment. */
export const WAL_RECORDS = 20

/**
 * The workload both examples run under `forEachCrash`: open the log through
 * `toNodeFs`, append the payloads one by one and note each in `state.acked`
 * once `append` resolves (the caller was told it is durable). The crash
 * can hit anywhere inside; whatever the workload sees from then on (the power
 * loss, EIO) ends it and is expected.
 */
export function walWorkload(Log: WalClass, payloads: string[] = walPayloads()): Workload {
  return async ({ fs, state }) => {
    const s = state as unknown as WalState
    s.acked = []
    s.inFlight = null
    const wal = await Log.open(toNodeFs(fs), '/wal.log')
    for (const payload of payloads) {
      s.inFlight = payload
      await wal.append(Buffer.from(payload))
      s.acked.push(payload) // acknowledged: this record must survive any crash from now on
      s.inFlight = null
    }
    await wal.close()
  }
}

/**
 * After the crash (forEachCrash has remounted the fs): recover the log and
 * check that it holds every acknowledged record, in order, and at most the
 * one that was in flight after them. Throws with the problems found.
 */
export function walVerify(Log: WalClass): Verify {
  return async ({ fs, state }) => {
    const { acked = [], inFlight = null } = state as Partial<WalState>
    const wal = await Log.open(toNodeFs(fs), '/wal.log')
    const got = wal.recovered.map(b => b.toString())
    await wal.close()
    const problems: string[] = []
    const lost = acked.findIndex((rec, i) => got[i] !== rec)
    if (lost >= 0) {
      const missing = acked.filter((rec, i) => got[i] !== rec).length
      problems.push(`acknowledged record ${lost} of ${acked.length} lost (${missing} of ${acked.length} acknowledged records missing, ${got.length} records recovered)`)
    }
    const extra = got.slice(acked.length)
    if (lost < 0 && (extra.length > 1 || (extra.length === 1 && extra[0] !== inFlight))) {
      problems.push(`${extra.length} unexpected records after the ${acked.length} acknowledged ones`)
    }
    if (problems.length > 0) throw new Error(problems.join('; '))
  }
}
