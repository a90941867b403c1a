/**
 * Test-double adapters (docs/api-contract.md "Test-double adapters"): a `node:fs/promises`
 * view of a pmemu file system, and a random-access-storage instance on it.
 */
export {
  toNodeFs, toFsPath, PmemFileHandle, PmemDir, PmemDirent, PmemNodeStats, PmemNodeBigIntStats,
  type PmemNodeFs, type PmemNodeFsPromises, type PathLike, type OpenMode, type Encoding, type WriteData, type ReadFileOptions,
  type WriteFileOptions, type StatOptions, type MkdirOptions, type RmOptions, type ReaddirOptions,
  type ReadResult, type WriteResult, type ReadOptions, type NodeSystemError,
} from './node-fs.js'
export {
  RandomAccessPmem, RandomAccessPmemPool, pmemStorage,
  type RandomAccessPmemOptions, type RandomAccessPool, type RandomAccessStorageLike, type RasRequest, type RasCallback,
} from './random-access.js'
