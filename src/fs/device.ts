/**
 * The narrow device interface the file system is written against. The real
 * region Device (src/region) implements it structurally; tests may pass an
 * in-memory stub. Offsets are byte offsets into the usable region (offset 0 =
 * first usable byte); block number == pfn == offset / pageSize.
 */
export interface FsDevice {
  /** fs block size == page size (a power of two, >= 512). */
  readonly pageSize: number
  /** Usable pages: blocks 0..pageCount-1. */
  readonly pageCount: number
  /** Writes are refused with EROFS when true. */
  readonly readOnly: boolean
  /** Copy `dst.length` bytes from `offset` into dst (may straddle internal windows). */
  read(offset: number, dst: Uint8Array): void
  /** Plain stores: they land "in the CPU cache" and are durable only after persist(). */
  write(offset: number, src: Uint8Array): void
  /** Store zeros over [offset, offset+length) (not yet durable). */
  zero(offset: number, length: number): void
  /** Flush + drain: [offset, offset+length) is durable when this returns. */
  persist(offset: number, length: number): void
  /**
   * Register a listener called when the device crashes (power loss emulation):
   * the mounted fs is dead from then on (every call fails with ENXIO).
   * Returns a function that unregisters the listener.
   */
  onCrash(listener: () => void): () => void
  /**
   * Optional: the device's bad ranges (byte offsets, 512-byte sectors), as
   * Linux badblocks. fsck reports those that hit metadata as problems.
   */
  badblocks?(): Array<{ offset: number; length: number }>
}
