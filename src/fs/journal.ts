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

/** Accumulates the records of one transaction. */
export class RecordBuilder {
  private chunks: Uint8Array[] = []
  bytes = 0
  count = 0

  write(target: number, data: Uint8Array): void {
    const h = new Uint8Array(JREC_HEADER + ((data.length + 7) & ~7))
    const v = dv(h)
    v.setUint16(0, JREC_WRITE, true)
    v.setUint32(4, data.length, true)
    v.setUint32(8, target % 0x100000000, true)
    v.setUint32(12, Math.floor(target / 0x100000000), true)
    h.set(data, JREC_HEADER)
    this.push(h)
  }

  bits(set: boolean, start: number, count: number): void {
    const h = new Uint8Array(JREC_HEADER)
    const v = dv(h)
    v.setUint16(0, set ? JREC_BITSET : JREC_BITCLEAR, true)
    v.setUint32(4, count, true)
    v.setUint32(8, start % 0x100000000, true)
    v.setUint32(12, Math.floor(start / 0x100000000), true)
    this.push(h)
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b)
    this.bytes += b.length
    this.count++
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.bytes)
    let off = 0
    for (const c of this.chunks) { out.set(c, off); off += c.length }
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
    const parsed = parseRecords(records, rb.count, this.g.blockCount * this.g.blockSize, this.g.blockCount)
    if (typeof parsed === 'string') throw new Error('pmemu internal: ' + parsed)
    const ranges = this.apply(parsed)
    this.point('apply-written', op)
    for (const [o, l] of ranges) this.dev.persist(o, l)
    this.point('apply-persisted', op)
    this.dev.zero(this.offset, JCOMMIT_SIZE)
    this.point('checkpoint-written', op)
    this.dev.persist(this.offset, JCOMMIT_SIZE)
    this.point('checkpoint-persisted', op)
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
      if (last && o <= last[0] + last[1]) last[1] = Math.max(last[1], o + l - last[0])
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
