/** What a device file holds, for commands that would destroy it (mkfs, bench --file): its own module so both can use it without an import cycle. */
import { statSync } from 'node:fs'
import { fsInfo } from '../fs/index.js'
import { openDevice, type Device } from '../region/index.js'
import { isPmemuError } from '../errors.js'
import { formatBytes } from '../util/size.js'
import { bytesWithUnit, plural } from './format.js'

/**
 * What a device file holds that a format would destroy, in one phrase, for
 * refusals ('a pmemu file system (3 inodes in use, 12 KiB of 16 MiB used)',
 * or data that is not a pmemu device); undefined when the file is absent,
 * empty or a device with no file system (as mkfs.xfs, which refuses only
 * over a file system it recognises).
 */
export async function whatItHolds(file: string): Promise<string | undefined> {
  let st
  try { st = statSync(file) } catch { return undefined }
  if (!st.isFile() || st.size === 0) return undefined
  let dev: Device
  try {
    dev = await openDevice(file, { readOnly: true, alongsideWriter: true })
  } catch (e) {
    if (isPmemuError(e) && e.code === 'EINVAL') return `${bytesWithUnit(st.size)} of data that is not a pmemu device`
    throw e
  }
  try {
    const fs = fsInfo(dev)
    if (!fs.present) return undefined
    const used = ((fs.blocks ?? 0) - (fs.freeBlocks ?? 0)) * (fs.blockSize ?? 0)
    return `a pmemu file system${fs.label ? ` labelled '${fs.label}'` : ''} (${plural(fs.usedInodes, 'inode')} in use, ${formatBytes(used)} of ${formatBytes(dev.size)} used)`
  } finally {
    await dev.close()
  }
}
