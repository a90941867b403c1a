/**
 * Which file system holds the bench region, and is it one whose figures mean
 * something for pmem: a DAX mount (real pmem) or tmpfs (memory). An ordinary
 * disk file goes through the page cache: every first touch is a page-cache
 * fault and writeback, nothing like pmem.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, realpathSync } from 'node:fs'
import { dirname, resolve, sep } from 'node:path'

export interface FsInfo {
  /** 'ext4', 'xfs', 'tmpfs', ... ('memory' for the anonymous backend, 'unknown' when it cannot be told). */
  fsType: string
  /** Mounted with DAX (ext4/xfs `dax`, `dax=always`). */
  dax: boolean
  mountPoint: string
  source: string
  /** True when the figures stand for pmem-like memory (DAX or tmpfs/ramfs). */
  suitable: boolean
  /** One line for people: what this fs means for the figures. */
  note: string
}

const MEMORY_FS = new Set(['tmpfs', 'ramfs', 'hugetlbfs', 'devdax'])

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
}

/** Classify a file system by its type and options. */
export function describeFs(fsType: string, options: string[], mountPoint: string, source: string): FsInfo {
  const dax = options.some(o => o === 'dax' || o === 'dax=always')
  const memory = MEMORY_FS.has(fsType)
  const suitable = dax || memory
  let note: string
  if (dax) note = `${fsType} mounted with DAX at ${mountPoint} (${source}): real pmem, loads and stores reach the media`
  else if (memory) note = `${fsType} at ${mountPoint}: memory, no page cache in between (the closest stand-in for pmem without pmem)`
  else note = `${fsType} at ${mountPoint} (${source}) is neither a DAX nor a tmpfs mount: the region goes through the page cache and writeback, so the figures say little about pmem`
  return { fsType, dax, mountPoint, source, suitable, note }
}

/**
 * Find the mount holding `path` in a /proc/self/mountinfo text: the entry
 * with the longest mount point that is a prefix of the path (the last such
 * entry wins, as later mounts hide earlier ones).
 */
export function parseMountinfo(text: string, path: string): FsInfo | undefined {
  let best: { mp: string; fsType: string; source: string; opts: string[] } | undefined
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    const [pre, post] = line.split(' - ')
    if (!pre || !post) continue
    const f = pre.split(' ')
    const mp = unescape(f[4] ?? '')
    const mountOpts = (f[5] ?? '').split(',')
    const g = post.split(' ')
    const fsType = g[0] ?? 'unknown'
    const source = unescape(g[1] ?? '')
    const superOpts = (g[2] ?? '').split(',')
    const inside = mp === '/' || path === mp || path.startsWith(mp.endsWith(sep) ? mp : mp + sep)
    if (!inside) continue
    if (!best || mp.length >= best.mp.length) best = { mp, fsType, source, opts: [...mountOpts, ...superOpts] }
  }
  return best && describeFs(best.fsType, best.opts, best.mp, best.source)
}

/** The directory that exists nearest to `path` (the file may not exist yet). */
function existingAncestor(path: string): string {
  let p = resolve(path)
  for (;;) {
    try {
      return realpathSync(p)
    } catch {
      const up = dirname(p)
      if (up === p) return p
      p = up
    }
  }
}

/** Detect the fs of `path` (a file that may not exist yet): /proc/self/mountinfo, else `stat -f`. */
export function detectFs(path: string | undefined): FsInfo {
  if (path === undefined) {
    return { fsType: 'memory', dax: false, mountPoint: '', source: 'anonymous shared memory', suitable: true,
      note: 'anonymous shared memory (memory backend): no file system' }
  }
  const where = existingAncestor(path)
  try {
    const found = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'), where)
    if (found) return found
  } catch { /* not Linux, or /proc not mounted */ }
  try {
    const t = execFileSync('stat', ['-f', '-c', '%T', where], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return describeFs(t === 'ramfs' || t === 'tmpfs' ? t : t, [], where, '?')
  } catch {
    return { fsType: 'unknown', dax: false, mountPoint: '', source: '', suitable: false,
      note: `cannot tell which file system holds ${where}` }
  }
}
