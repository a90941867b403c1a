/**
 * The one seam through which upper layers extend the fs: `fs.attach(ext)`.
 * Attached extensions are kept in attach order; on every attach/detach the
 * per-hook lists the operation files read (st.hooks) are rebuilt, so a hook
 * nobody provides costs an empty-array check on the I/O paths.
 */
import { pmemError } from '../errors.js'
import type { FsState } from './state.js'
import type { Detach, FsExtension } from './types.js'

type Fn<K extends keyof FsExtension> = NonNullable<FsExtension[K]>

/** The attached hooks, per kind, in attach order (each bound to its extension). */
export interface Hooks {
  mmap: { ext: FsExtension; fn: Fn<'mmap'> } | undefined
  breakLayout: Array<Fn<'breakLayout'>>
  onFree: Array<Fn<'onFree'>>
  checkDataRead: Array<Fn<'checkDataRead'>>
  checkDataWrite: Array<Fn<'checkDataWrite'>>
  afterDataWrite: Array<Fn<'afterDataWrite'>>
  checkMetaRead: Array<Fn<'checkMetaRead'>>
  beforeUnmount: Array<Fn<'beforeUnmount'>>
}

const HOOKS = ['mmap', 'breakLayout', 'onFree', 'checkDataRead', 'checkDataWrite', 'afterDataWrite', 'checkMetaRead', 'beforeUnmount'] as const

export function emptyHooks(): Hooks {
  return { mmap: undefined, breakLayout: [], onFree: [], checkDataRead: [], checkDataWrite: [], afterDataWrite: [], checkMetaRead: [], beforeUnmount: [] }
}

function rebuild(st: FsState): void {
  const h = emptyHooks()
  for (const ext of st.extensions) {
    if (ext.mmap) h.mmap = { ext, fn: ext.mmap.bind(ext) }
    if (ext.breakLayout) h.breakLayout.push(ext.breakLayout.bind(ext))
    if (ext.onFree) h.onFree.push(ext.onFree.bind(ext))
    if (ext.checkDataRead) h.checkDataRead.push(ext.checkDataRead.bind(ext))
    if (ext.checkDataWrite) h.checkDataWrite.push(ext.checkDataWrite.bind(ext))
    if (ext.afterDataWrite) h.afterDataWrite.push(ext.afterDataWrite.bind(ext))
    if (ext.checkMetaRead) h.checkMetaRead.push(ext.checkMetaRead.bind(ext))
    if (ext.beforeUnmount) h.beforeUnmount.push(ext.beforeUnmount.bind(ext))
  }
  st.hooks = h
}

export function attachExtension(st: FsState, ext: FsExtension): Detach {
  if (ext === null || typeof ext !== 'object') throw pmemError('EINVAL', 'attach', 'an extension must be an object')
  if (typeof ext.name !== 'string' || ext.name === '') throw pmemError('EINVAL', 'attach', 'an extension needs a non-empty string name')
  for (const k of HOOKS) {
    const v = ext[k]
    if (v !== undefined && typeof v !== 'function') throw pmemError('EINVAL', 'attach', `extension '${ext.name}': ${k} must be a function`)
  }
  st.live('attach')
  if (st.extensions.includes(ext)) throw pmemError('EEXIST', 'attach', `extension '${ext.name}' is already attached`)
  const other = st.hooks.mmap
  if (ext.mmap && other) throw pmemError('EBUSY', 'attach', `extension '${ext.name}' provides mmap, and '${other.ext.name}' already does`)
  st.extensions.push(ext)
  rebuild(st)
  let attached = true
  return () => {
    if (!attached) return
    attached = false
    const i = st.extensions.indexOf(ext)
    if (i >= 0) st.extensions.splice(i, 1)
    rebuild(st)
  }
}
