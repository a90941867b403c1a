/** stat(2)-shaped results of the file system. */
import { isDir, isLnk, isReg } from './layout.js'

export class PmemStats {
  dev = 0
  uid = 0
  gid = 0
  rdev = 0
  constructor(
    readonly ino: number, readonly mode: number, readonly nlink: number, readonly size: number,
    readonly blksize: number, readonly allocatedBlocks: number,
    readonly atimeMs: number, readonly mtimeMs: number, readonly ctimeMs: number, readonly birthtimeMs: number,
  ) {}
  /** 512-byte units, as stat(2) st_blocks. */
  get blocks(): number { return (this.allocatedBlocks * this.blksize) / 512 }
  get atime(): Date { return new Date(this.atimeMs) }
  get mtime(): Date { return new Date(this.mtimeMs) }
  get ctime(): Date { return new Date(this.ctimeMs) }
  get birthtime(): Date { return new Date(this.birthtimeMs) }
  isFile(): boolean { return isReg(this.mode) }
  isDirectory(): boolean { return isDir(this.mode) }
  isSymbolicLink(): boolean { return isLnk(this.mode) }
  isBlockDevice(): boolean { return false }
  isCharacterDevice(): boolean { return false }
  isFIFO(): boolean { return false }
  isSocket(): boolean { return false }
}
