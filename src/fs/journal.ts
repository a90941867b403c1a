/**
 * The redo journal (docs/format.md §Journal). One transaction at a time:
 *
 *   intent:  records written to the journal body        -> persist
 *   commit:  64-byte commit record (one cache line)      -> persist
 *   apply:   records copied to their home locations      -> persist
 *   checkpoint: commit record cleared (zeroed)           -> persist
 *
 * A crash-point hook runs after every step ("…-written" before the persist,
 * "…-persisted" after), so tests can simulate power loss mid-commit. Replay
 * is idempotent: WRITE records are physical redo, BITSET/BITCLEAR set or
 * clear bitmap bits.
 */
import { pmemError } from '../errors.js'
import { crc32c } from '../util/crc32c.js'
import { fillBits } from './bitmap.js'
import type { FsDevice } from './device.js'
import {
  decodeCommit, dv, encodeCommit, JCOMMIT_SIZE, JREC_BITCLEAR, JREC_BITSET, JREC_HEADER, JREC_WRITE, JRECORDS_OFF,
  parseRecords, type JournalRecord,
} from './layout.js'

/** Bytes between two applied ranges below which one persist covers both. */
const PERSIST_GAP = 256

/** Every crash point, in the order a transaction passes them. */
export const CRASH_POINTS = [
  'intent-written', 'intent-persisted',
  'commit-written', 'commit-persisted',
  'apply-written', 'apply-persisted',
  'checkpoint-written', 'checkpoint-persisted',
] as const
export type CrashPoint = (typeof CRASH_POINTS)[number]

export interface CrashPointInfo {
  /** Transaction sequence number. */
  seq: number
  /** The fs operation the transaction belongs to, e.g. 'write', 'rename'. */
  op: string
}
/** Called synchronously at each crash point; throwing simulates power loss there (the fs shuts down). */
export type CrashPointHook = (point: CrashPoint, info: CrashPointInfo) => void

/**
 * Accumulates the records of one transaction, in place in one growing
 * buffer: the journal body is written from it as is, and the records are
 * applied from it without parsing it back.
 */
/** Buffers of committed builders, for the next ones (a builder that is dropped unused just leaves its buffer to the GC). */
const spareBuffers: Uint8Array[] = []

export class RecordBuilder {
  private buf = spareBuffers.pop() ?? new Uint8Array(1024)
  private view = dv(this.buf)
  /** [type, target, length, data offset] per record. */
  private recs: number[] = []
  bytes = 0
  count = 0

  /** Room for `n` more bytes. */
  private reserve(n: number): void {
    if (this.bytes + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.bytes + n) size *= 2
    const grown = new Uint8Array(size)
    grown.set(this.buf.subarray(0, this.bytes))
    this.buf = grown
    this.view = dv(grown)
  }

  private header(type: number, length: number, target: number): void {
    const v = this.view
    const at = this.bytes
    v.setUint16(at, type, true)
    v.setUint16(at + 2, 0, true)
    v.setUint32(at + 4, length, true)
    v.setUint32(at + 8, target % 0x100000000, true)
    v.setUint32(at + 12, Math.floor(target / 0x100000000), true)
  }

  /**
   * A WRITE record of `length` bytes at device offset `target`; returns the
   * buffer and offset to fill its data at (zeros until filled).
   */
  writeSpace(target: number, length: number): { buf: Uint8Array; at: number } {
    const padded = (length + 7) & ~7
    this.reserve(JREC_HEADER + padded)
    this.header(JREC_WRITE, length, target)
    const at = this.bytes + JREC_HEADER
    this.buf.fill(0, at, at + padded) // a reused buffer: the record reads as zeros until filled
    this.recs.push(JREC_WRITE, target, length, at)
    this.bytes += JREC_HEADER + padded
    this.count++
    return { buf: this.buf, at }
  }

  write(target: number, data: Uint8Array): void {
    const { buf, at } = this.writeSpace(target, data.length)
    buf.set(data, at)
  }

  bits(set: boolean, start: number, count: number): void {
    this.reserve(JREC_HEADER)
    const type = set ? JREC_BITSET : JREC_BITCLEAR
    this.header(type, count, start)
    this.recs.push(type, start, count, 0)
    this.bytes += JREC_HEADER
    this.count++
  }

  /** The builder's transaction is committed: its buffer goes to the next builder. */
  release(): void {
    if (this.buf.length <= 1 << 16 && spareBuffers.length < 4) spareBuffers.push(this.buf)
    this.recs = []
    this.bytes = this.count = 0
  }

  /** The journal body: every record, as written. */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.bytes)
  }

  /** The records, as parseRecords would return them from finish(). */
  records(): JournalRecord[] {
    const out: JournalRecord[] = []
    const r = this.recs
    for (let i = 0; i < r.length; i += 4) {
      const type = r[i]!
      out.push(type === JREC_WRITE ? { type, target: r[i + 1]!, length: r[i + 2]!, data: this.buf.subarray(r[i + 3]!, r[i + 3]! + r[i + 2]!) } : { type, target: r[i + 1]!, length: r[i + 2]! })
    }
    return out
  }
}

export interface JournalGeometry {
  blockSize: number
  blockCount: number
  journalStart: number
  journalBlocks: number
  bitmapStart: number
}

export class Journal {
  readonly offset: number
  readonly capacity: number
  seq = 0
  hook: CrashPointHook | undefined

  constructor(private readonly dev: FsDevice, private readonly g: JournalGeometry) {
    this.offset = g.journalStart * g.blockSize
    this.capacity = g.journalBlocks * g.blockSize - JRECORDS_OFF
  }

  private point(p: CrashPoint, op: string): void {
    if (this.hook) this.hook(p, { seq: this.seq, op })
  }

  /** Run one transaction through the four steps. Throws ENOSPC (nothing written) if it does not fit. */
  commit(rb: RecordBuilder, op: string): void {
    if (rb.count === 0) return
    if (rb.bytes > this.capacity) {
      throw pmemError('ENOSPC', op, `transaction of ${rb.bytes} bytes does not fit the ${this.capacity}-byte journal`)
    }
    const records = rb.finish()
    this.seq++
    const body = this.offset + JRECORDS_OFF
    this.dev.write(body, records)
    this.point('intent-written', op)
    this.dev.persist(body, records.length)
    this.point('intent-persisted', op)
    const commit = encodeCommit({ seq: this.seq, recordsLen: records.length, recordCount: rb.count, recordsCrc: crc32c(records) })
    this.dev.write(this.offset, commit)
    this.point('commit-written', op)
    this.dev.persist(this.offset, JCOMMIT_SIZE)
    this.point('commit-persisted', op)
    const ranges = this.apply(rb.records())
    this.point('apply-written', op)
    for (const [o, l] of ranges) this.dev.persist(o, l)
    this.point('apply-persisted', op)
    this.dev.zero(this.offset, JCOMMIT_SIZE)
    this.point('checkpoint-written', op)
    this.dev.persist(this.offset, JCOMMIT_SIZE)
    this.point('checkpoint-persisted', op)
    rb.release()
  }

  /** Store records at their home locations; returns the byte ranges to persist (merged). */
  apply(records: JournalRecord[]): Array<[number, number]> {
    const ranges: Array<[number, number]> = []
    const bs = this.g.blockSize
    const bitmapOff = this.g.bitmapStart * bs
    for (const r of records) {
      if (r.type === JREC_WRITE) {
        this.dev.write(r.target, r.data!)
        ranges.push([r.target, r.length])
      } else {
        const set = r.type === JREC_BITSET
        const first = Math.floor(r.target / 8)
        const last = Math.floor((r.target + r.length - 1) / 8)
        const bytes = new Uint8Array(last - first + 1)
        this.dev.read(bitmapOff + first, bytes)
        fillBits(bytes, r.target - first * 8, r.length, set)
        this.dev.write(bitmapOff + first, bytes)
        ranges.push([bitmapOff + first, bytes.length])
      }
    }
    ranges.sort((a, b) => a[0] - b[0])
    const merged: Array<[number, number]> = []
    for (const [o, l] of ranges) {
      const last = merged[merged.length - 1]
      // Ranges a few cache lines apart share one persist call (flushing a clean line costs less than a call).
      if (last && o <= last[0] + last[1] + PERSIST_GAP) last[1] = Math.max(last[1], o + l - last[0])
      else merged.push([o, l])
    }
    return merged
  }

  /**
   * Inspect the journal: 'empty', a committed transaction ready to replay, or
   * what is wrong with it.
   */
  inspect(): { state: 'empty' } | { state: 'committed'; seq: number; records: JournalRecord[] } | { state: 'damaged'; why: string; torn: boolean } {
    const line = new Uint8Array(JCOMMIT_SIZE)
    this.dev.read(this.offset, line)
    const c = decodeCommit(line, this.capacity)
    if (c === null) return { state: 'empty' }
    if (typeof c === 'string') return { state: 'damaged', why: c, torn: true }
    const body = new Uint8Array(c.recordsLen)
    this.dev.read(this.offset + JRECORDS_OFF, body)
    if (crc32c(body) !== c.recordsCrc) return { state: 'damaged', why: `journal transaction ${c.seq}: records checksum mismatch`, torn: false }
    const recs = parseRecords(body, c.recordCount, this.g.blockCount * this.g.blockSize, this.g.blockCount)
    if (typeof recs === 'string') return { state: 'damaged', why: `journal transaction ${c.seq}: ${recs}`, torn: false }
    // Records must not target the journal itself.
    const jEnd = this.offset + this.g.journalBlocks * this.g.blockSize
    for (const r of recs) {
      if (r.type === JREC_WRITE && r.target < jEnd && r.target + r.length > this.offset) {
        return { state: 'damaged', why: `journal transaction ${c.seq}: record writes into the journal`, torn: false }
      }
    }
    return { state: 'committed', seq: c.seq, records: recs }
  }

  /** Replay a committed transaction (idempotent) and clear the commit record. */
  replay(records: JournalRecord[]): void {
    const ranges = this.apply(records)
    for (const [o, l] of ranges) this.dev.persist(o, l)
    this.clear()
  }

  clear(): void {
    this.dev.zero(this.offset, JCOMMIT_SIZE)
    this.dev.persist(this.offset, JCOMMIT_SIZE)
  }
}
