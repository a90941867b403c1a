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
import { crc32c } from '../src/fs/index.js'
import { toNodeFs } from '../src/adapters/index.js'
import type { VerifyContext, WorkloadContext } from './crash-loop.js'
import { rng } from './crash-loop.js'

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

/** What the workload acknowledged before the power cut. */
export interface WalState { acked: string[]; inFlight: string | null }

export type WalClass = (new (fh: WalHandle, tail: number, recovered: Buffer[]) => Wal) & { open: typeof Wal.open }

/**
 * The workload both examples run: append a seeded number of records of seeded
 * sizes through `toNodeFs`, acknowledging each when `append` resolves, then
 * start one more append that the crash interrupts (written, not committed).
 */
export function walWorkload(Log: WalClass): (ctx: WorkloadContext) => Promise<WalState> {
  return async ({ fs, seed }) => {
    const nodeFs = toNodeFs(fs)
    const wal = await Log.open(nodeFs, '/wal.log')
    const rand = rng(seed)
    const count = 3 + Math.floor(rand() * 12)
    const acked: string[] = []
    for (let i = 0; i < count; i++) {
      const payload = `seed ${seed} record ${i} `.padEnd(1 + Math.floor(rand() * 300), String.fromCharCode(97 + (i % 26)))
      await wal.append(Buffer.from(payload))
      acked.push(payload) // acknowledged: the caller was told this record is durable
    }
    const inFlight = rand() < 0.7 ? `seed ${seed} in-flight`.padEnd(1 + Math.floor(rand() * 300), '!') : null
    if (inFlight !== null) await wal.write(Buffer.from(inFlight))
    return { acked, inFlight } // the power goes out here: no close, no unmount
  }
}

/** After the crash: recover the log and check every acknowledged record is there, in order, and nothing else but the in-flight one. */
export function walVerify(Log: WalClass): (ctx: VerifyContext<WalState>) => Promise<string[]> {
  return async ({ fs, state, fsckClean, fsckProblems }) => {
    const problems: string[] = []
    if (!fsckClean) problems.push(`fsck not clean: ${fsckProblems.join('; ')}`)
    const wal = await Log.open(toNodeFs(fs), '/wal.log')
    const got = wal.recovered.map(b => b.toString())
    await wal.close()
    state.acked.forEach((rec, i) => {
      if (got[i] !== rec) problems.push(`acknowledged record ${i} of ${state.acked.length} lost (recovered ${got.length} records)`)
    })
    const extra = got.slice(state.acked.length)
    if (extra.length > 1 || (extra.length === 1 && extra[0] !== state.inFlight)) problems.push(`unexpected records after the acknowledged ones: ${extra.length}`)
    return problems
  }
}
