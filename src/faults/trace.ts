/**
 * The ALICE-style trace recorder of the crash-state explorer: the workload
 * gets a recording view of its fs (a Proxy over the real PmemFs and every
 * PmemFile it opens). Each fs call is logged with its arguments, the
 * workload's call site, and its effects as persistence units: metadata
 * changes (create, remove, rename, link, resize) and data written, split
 * at block granularity. A mirror of the namespace and file contents follows
 * the calls so each unit knows what it changes (an append vs an overwrite,
 * which inode a rename moves, whether it replaces a file).
 */
import { fileURLToPath } from 'node:url'
import { pmemError } from '../errors.js'
import type { PmemFs, PmemFile } from '../fs/index.js'

// ------------------------------------------------------------------ the mirror

export interface MInode { dir: boolean; data: Uint8Array }
/** Abstract file-system state: path -> inode number, inode -> contents. */
export interface Mirror { entries: Map<string, number>; inodes: Map<number, MInode> }

export type MetaChange =
  | { m: 'create'; path: string; ino: number; dir: boolean }
  | { m: 'remove'; path: string }
  | { m: 'rename'; from: string; to: string; ino: number; replaces: boolean }
  | { m: 'link'; path: string; ino: number }
  | { m: 'resize'; ino: number; size: number }

export type Unit =
  | { u: number; op: number; kind: 'meta'; change: MetaChange; dirs: string[]; ino: number }
  | { u: number; op: number; kind: 'data'; ino: number; off: number; bytes: Uint8Array; append: boolean }

export type SyncEffect = { s: 'file'; ino: number } | { s: 'dir'; path: string } | { s: 'all' }

export interface TraceOp {
  index: number
  /** e.g. "rename('/db.tmp' → '/db')" */
  call: string
  /** The workload's frame that made the call, e.g. "store.js:41" ('' when unknown). */
  site: string
  units: Unit[]
  sync?: SyncEffect
  /** The workload's state object as the op was issued (what it had been told before this op). */
  state: Record<string, unknown>
}

export const cloneMirror = (m: Mirror): Mirror => ({
  entries: new Map(m.entries),
  inodes: new Map([...m.inodes].map(([k, v]) => [k, { dir: v.dir, data: v.data }])),
})

const dirname = (p: string): string => { const i = p.lastIndexOf('/'); return i <= 0 ? '/' : p.slice(0, i) }
const under = (p: string, d: string): boolean => p === d || p.startsWith(d === '/' ? '/' : d + '/')

/** Normalise an absolute path the way the fs resolves it ('/a//b/./c/' -> '/a/b/c'). */
export function normPath(p: unknown): string {
  if (typeof p !== 'string') return String(p)
  const out: string[] = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') out.pop()
    else out.push(part)
  }
  return '/' + out.join('/')
}

/** Apply one unit to a mirror (data arrays are replaced, never mutated: mirrors share them). */
export function applyUnit(m: Mirror, x: Unit): void {
  if (x.kind === 'data') {
    const node = m.inodes.get(x.ino)
    if (!node) return
    const end = x.off + x.bytes.length
    const data = new Uint8Array(Math.max(node.data.length, end))
    data.set(node.data)
    data.set(x.bytes, x.off)
    node.data = data
    return
  }
  const c = x.change
  switch (c.m) {
    case 'create':
      m.entries.set(c.path, c.ino)
      if (!m.inodes.has(c.ino)) m.inodes.set(c.ino, { dir: c.dir, data: new Uint8Array(0) })
      break
    case 'remove':
      for (const k of [...m.entries.keys()]) if (under(k, c.path)) m.entries.delete(k)
      break
    case 'rename': {
      const moved: Array<[string, number]> = []
      for (const [k, v] of m.entries) if (under(k, c.from)) moved.push([c.to + k.slice(c.from.length), v])
      for (const k of [...m.entries.keys()]) if (under(k, c.from) || under(k, c.to)) m.entries.delete(k)
      if (moved.length === 0) moved.push([c.to, c.ino])
      for (const [k, v] of moved) m.entries.set(k, v)
      break
    }
    case 'link': m.entries.set(c.path, c.ino); break
    case 'resize': {
      const node = m.inodes.get(c.ino)
      if (!node) break
      const data = new Uint8Array(c.size)
      data.set(node.data.subarray(0, Math.min(c.size, node.data.length)))
      node.data = data
      break
    }
  }
}

// ------------------------------------------------------------------ formatting

const show = (v: unknown): string => {
  try {
    if (typeof v === 'string') return `'${v}'`
    if (typeof v === 'bigint') return `${v}n`
    if (typeof v === 'symbol') return v.toString()
    if (v instanceof Uint8Array) return `${v.length} B`
    if (v === null || v === undefined || typeof v !== 'object') return String(v)
    return Object.prototype.toString.call(v)
  } catch { return '(unprintable)' }
}

const ownSrc = fileURLToPath(new URL('..', import.meta.url))

/** The first stack frame outside pmemu's own sources and node internals: "file.js:41". */
function callSite(): string {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 40
  const stack = new Error().stack ?? ''
  Error.stackTraceLimit = limit
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?\s*$/.exec(line)
    if (!m) continue
    let file = m[1]!
    if (file.startsWith('file://')) { try { file = fileURLToPath(file) } catch { /* keep */ } }
    if (file.startsWith('node:') || file.includes('/node_modules/') || file.startsWith(ownSrc) || file.includes('/dist/src/')) continue
    return `${file.slice(file.lastIndexOf('/') + 1)}:${m[2]}`
  }
  return ''
}

// ------------------------------------------------------------------ the recorder

const snapshot = (state: Record<string, unknown>): Record<string, unknown> => {
  try { return structuredClone(state) } catch { return { ...state } }
}

export interface Recording {
  ops: TraceOp[]
  mirror: Mirror
  /** Set when the workload used something the explorer cannot trace (then the trace is unusable). */
  untraceable?: string
}

/** A recording view of `fs`: calls go to the real fs, each mutation is logged in `rec`. */
export function recordingFs(fs: PmemFs, rec: Recording, state: Record<string, unknown>, blockSize: number): PmemFs {
  const m = rec.mirror
  let nextUnit = 0
  const begin = (call: string): TraceOp => ({ index: -1, call, site: callSite(), units: [], state: snapshot(state) })
  const push = (op: TraceOp): void => {
    op.index = rec.ops.length
    for (const x of op.units) applyUnit(m, x)
    rec.ops.push(op)
  }
  const meta = (op: TraceOp, change: MetaChange, dirs: string[], ino: number): void => {
    op.units.push({ u: nextUnit++, op: rec.ops.length, kind: 'meta', change, dirs, ino })
  }
  const resizeIfChanged = (op: TraceOp, ino: number, size: number): void => {
    const node = m.inodes.get(ino)
    if (node && node.data.length !== size) meta(op, { m: 'resize', ino, size }, [], ino)
  }

  const wrapFile = (file: PmemFile): PmemFile => new Proxy(file, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown
      if (typeof v !== 'function') return v
      const fn = v as (...a: unknown[]) => unknown
      switch (prop) {
        case 'write': return (buf: Uint8Array, position?: number | null): number => {
          const op = begin(`write(${show(target.path)}, ${show(buf)}${position === undefined || position === null ? '' : ` at ${show(position)}`})`)
          const n = fn.call(target, buf, position) as number
          const usePos = position === undefined || position === null || target.flags.append
          const pos = usePos ? target.position - n : (position as number)
          const ino = target.ino
          let size = m.inodes.get(ino)?.data.length ?? 0
          for (let off = pos; off < pos + n;) {
            const end = Math.min(pos + n, (Math.floor(off / blockSize) + 1) * blockSize)
            const bytes = buf.slice(off - pos, end - pos)
            op.units.push({ u: nextUnit++, op: rec.ops.length, kind: 'data', ino, off, bytes, append: end > size })
            size = Math.max(size, end)
            off = end
          }
          if (target.flags.sync) op.sync = { s: 'file', ino }
          push(op)
          return n
        }
        case 'fsync': case 'datasync': return async (): Promise<void> => {
          const op = begin(`${prop === 'fsync' ? 'fsync' : 'fdatasync'}(${show(target.path)})`)
          await fn.call(target)
          op.sync = target.node.isDirectory ? { s: 'dir', path: normPath(target.path) } : { s: 'file', ino: target.ino }
          push(op)
        }
        case 'truncate': case 'fallocate': case 'punchHole': return async (...a: unknown[]): Promise<void> => {
          const op = begin(`${String(prop)}(${[target.path, ...a].map(show).join(', ')})`)
          await fn.apply(target, a)
          if (prop === 'punchHole') {
            const [off, len] = a as [number, number]
            const size = m.inodes.get(target.ino)?.data.length ?? 0
            const end = Math.min(size, off + len)
            for (let o = off; o < end;) {
              const e = Math.min(end, (Math.floor(o / blockSize) + 1) * blockSize)
              op.units.push({ u: nextUnit++, op: rec.ops.length, kind: 'data', ino: target.ino, off: o, bytes: new Uint8Array(e - o), append: false })
              o = e
            }
          }
          resizeIfChanged(op, target.ino, target.size)
          push(op)
        }
        case 'mmap': return (): never => {
          rec.untraceable = 'mmap'
          throw pmemError('EOPNOTSUPP', 'mmap', 'stores through DAX mappings are not traced by the crash-state explorer: use durability \'strict\'', { path: target.path })
        }
        default: return (...a: unknown[]) => fn.apply(target, a)
      }
    },
  })

  return new Proxy(fs, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown
      if (typeof v !== 'function') return v
      const fn = v as (...a: unknown[]) => Promise<unknown>
      switch (prop) {
        case 'open': return async (path: string, flags?: string | number, mode?: number): Promise<PmemFile> => {
          const op = begin(`open(${show(path)}, ${show(flags ?? 'r')})`)
          const p = normPath(path)
          const existed = m.entries.has(p)
          const file = await fn.call(target, path, flags, mode) as PmemFile
          if (!existed) meta(op, { m: 'create', path: p, ino: file.ino, dir: false }, [dirname(p)], file.ino)
          if (!file.node.isDirectory) resizeIfChanged(op, file.ino, file.size) // O_TRUNC
          if (op.units.length > 0) push(op)
          return wrapFile(file)
        }
        case 'mkdir': return async (path: string, ...a: unknown[]): Promise<unknown> => {
          const op = begin(`mkdir(${show(path)})`)
          const r = await fn.call(target, path, ...a)
          const p = normPath(path)
          const ino = (await target.stat(p)).ino
          meta(op, { m: 'create', path: p, ino, dir: true }, [dirname(p)], ino)
          push(op)
          return r
        }
        case 'unlink': case 'rmdir': return async (path: string): Promise<unknown> => {
          const op = begin(`${prop}(${show(path)})`)
          const r = await fn.call(target, path)
          const p = normPath(path)
          meta(op, { m: 'remove', path: p }, [dirname(p)], m.entries.get(p) ?? 0)
          push(op)
          return r
        }
        case 'rename': return async (from: string, to: string): Promise<unknown> => {
          const op = begin(`rename(${show(from)} → ${show(to)})`)
          const a = normPath(from), b = normPath(to)
          const ino = m.entries.get(a) ?? 0
          const replaces = m.entries.has(b)
          const r = await fn.call(target, from, to)
          if (a !== b) meta(op, { m: 'rename', from: a, to: b, ino, replaces }, [...new Set([dirname(a), dirname(b)])], ino)
          push(op)
          return r
        }
        case 'link': return async (existing: string, path: string): Promise<unknown> => {
          const op = begin(`link(${show(existing)} → ${show(path)})`)
          const r = await fn.call(target, existing, path)
          const p = normPath(path)
          const ino = m.entries.get(normPath(existing)) ?? 0
          meta(op, { m: 'link', path: p, ino }, [dirname(p)], ino)
          push(op)
          return r
        }
        case 'sync': case 'syncfs': return async (...a: unknown[]): Promise<unknown> => {
          const op = begin(`${String(prop)}()`)
          const r = await fn.apply(target, a)
          op.sync = { s: 'all' }
          push(op)
          return r
        }
        default: return (...a: unknown[]) => fn.apply(target, a)
      }
    },
  })

}

/** The mirror of what a mounted fs holds (the start of every run). */
export async function scanFs(fs: PmemFs): Promise<Mirror> {
  const m: Mirror = { entries: new Map(), inodes: new Map() }
  const walk = async (p: string): Promise<void> => {
    const st = await fs.stat(p)
    m.entries.set(p, st.ino)
    if (st.isDirectory()) {
      if (!m.inodes.has(st.ino)) m.inodes.set(st.ino, { dir: true, data: new Uint8Array(0) })
      for (const name of await fs.readdir(p)) await walk(p === '/' ? `/${name}` : `${p}/${name}`)
    } else if (!m.inodes.has(st.ino)) {
      const f = await fs.open(p, 'r')
      const data = new Uint8Array(f.size)
      f.read(data, 0)
      await f.close()
      m.inodes.set(st.ino, { dir: false, data })
    }
  }
  await walk('/')
  return m
}

/** Make `fs` (holding the tree `base` describes) hold the tree `target` describes. */
export async function materialize(fs: PmemFs, base: Mirror, target: Mirror): Promise<void> {
  const same = (p: string): boolean => {
    const a = base.entries.get(p), b = target.entries.get(p)
    if (a === undefined || b === undefined) return false
    const x = base.inodes.get(a)!, y = target.inodes.get(b)
    return !!y && x.dir === y.dir && (x.dir || x.data === y.data)
  }
  // Remove what differs, deepest first.
  const gone = [...base.entries.keys()].filter(p => p !== '/' && !same(p)).sort((a, b) => b.length - a.length)
  for (const p of gone) {
    if (base.inodes.get(base.entries.get(p)!)!.dir) {
      if (target.entries.has(p) && target.inodes.get(target.entries.get(p)!)?.dir) continue
      await fs.rmdir(p)
    } else await fs.unlink(p)
  }
  const placed = new Map<number, string>()
  const paths = [...target.entries.keys()].filter(p => p !== '/').sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1))
  const present = new Set<string>(['/'])
  for (const p of paths) {
    const ino = target.entries.get(p)!
    const node = target.inodes.get(ino)
    if (!node || !present.has(dirname(p))) continue // its directory did not persist
    if (same(p) || (node.dir && base.entries.has(p) && base.inodes.get(base.entries.get(p)!)!.dir)) { present.add(p); placed.set(ino, p); continue }
    if (node.dir) { await fs.mkdir(p); present.add(p); continue }
    const prior = placed.get(ino)
    if (prior !== undefined) { await fs.link(prior, p); continue }
    const f = await fs.open(p, 'w')
    if (node.data.length > 0) f.write(node.data, 0)
    await f.close()
    placed.set(ino, p)
  }
}
