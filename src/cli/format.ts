import type { FsSummary } from '../fs/index.js'
import { formatBytes } from '../util/size.js'
import type { Device } from '../region/index.js'

/** The device summary `pmemu info` prints (and returns for --json). Every number has its unit. */
export function deviceSummary(dev: Device): Record<string, unknown> {
  return {
    path: dev.path ?? null,
    sizeBytes: dev.size,
    capacityBytes: dev.capacity,
    pageSizeBytes: dev.pageSize,
    pages: dev.pageCount,
    model: dev.model,
    backend: dev.backend,
    map: dev.map,
    persistence: dev.persistence,
    uuid: dev.uuid,
    mapSync: dev.capabilities.mapSync,
    mapSyncError: dev.capabilities.mapSyncError ?? null,
    flush: dev.capabilities.flush,
    badblocks: dev.badblocks().length,
    badBytes: dev.badblocks().reduce((n, b) => n + b.length, 0),
  }
}

export function printSummary(s: Record<string, unknown>, out: (l: string) => void): void {
  const rows: [string, string][] = [
    ['file', String(s.path ?? '(memory)')],
    ['uuid', String(s.uuid)],
    ['size', `${formatBytes(s.sizeBytes as number)} (${s.sizeBytes} bytes)`],
    ['usable', `${formatBytes(s.capacityBytes as number)} in ${s.pages} pages of ${s.pageSizeBytes} bytes`],
    ['model', String(s.model)],
    ['backend', String(s.backend)],
    ['map', `${s.map} (side table ${s.map === 'dev' ? 'reserved on the device' : 'in process memory'})`],
    ['persistence', String(s.persistence)],
    ['MAP_SYNC', s.mapSync ? 'yes (real DAX)' : `no (${s.mapSyncError ?? 'unsupported'}: not a DAX mount)`],
    ['flush', String(s.flush)],
    ['badblocks', `${plural(s.badblocks as number, 'range')}, ${plural(s.badBytes as number, 'byte')}`],
  ]
  for (const [k, v] of rows) out(`${k.padEnd(12)} ${v}`)
}

export function printFsSummary(fs: FsSummary, out: (l: string) => void): void {
  if (!fs.present) {
    out(`${'fs'.padEnd(12)} none (${fs.error ?? 'no pmemu file system'})`)
    return
  }
  const bs = fs.blockSize
  out(`${'fs'.padEnd(12)} pmemu fs v${fs.version}, label '${fs.label ?? ''}', uuid ${fs.uuid}`)
  out(`${'fs blocks'.padEnd(12)} ${plural(fs.blocks, 'block')} of ${bs} bytes, ${fs.freeBlocks} free (${formatBytes((fs.freeBlocks ?? 0) * (bs ?? 0))})`)
  out(`${'fs inodes'.padEnd(12)} ${fs.usedInodes} used of ${plural(fs.inodes, 'inode')}`)
  out(`${'fs journal'.padEnd(12)} ${plural(fs.journalBlocks, 'block')}`)
  out(`${'fs state'.padEnd(12)} ${fs.state}`)
}

/** '1 sector', '2 sectors'. */
export function plural(n: number | undefined, unit: string): string {
  return `${n} ${n === 1 ? unit : unit + 's'}`
}

/** '1536 bytes (1.5 KiB)'; '4096 bytes' is not repeated as '(4 KiB)' below 1 KiB. */
export function bytesWithUnit(n: number): string {
  const b = plural(n, 'byte')
  if (n < 1024) return b
  return `${b} (${formatBytes(n).replace(/^(\d+\.\d*?)0+ /, '$1 ').replace(/\. /, ' ')})`
}
