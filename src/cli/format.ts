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
    ['size', `${formatBytes(s.sizeBytes as number)} (${s.sizeBytes} bytes)`],
    ['usable', `${formatBytes(s.capacityBytes as number)} in ${s.pages} pages of ${s.pageSizeBytes} bytes`],
    ['model', String(s.model)],
    ['backend', String(s.backend)],
    ['map', `${s.map} (side table ${s.map === 'dev' ? 'reserved on the device' : 'in process memory'})`],
    ['persistence', String(s.persistence)],
    ['MAP_SYNC', s.mapSync ? 'yes (real DAX)' : `no (${s.mapSyncError ?? 'unsupported'}: not a DAX mount)`],
    ['flush', String(s.flush)],
    ['badblocks', `${s.badblocks} ranges, ${s.badBytes} bytes`],
  ]
  for (const [k, v] of rows) out(`${k.padEnd(12)} ${v}`)
}
