/**
 * Feature checks for the layers that land later (src/fs, src/dax, src/dma):
 * a benchmark that needs one asks here and, when the layer is missing, the
 * runner lists its paths as skipped with the reason. The specifiers are
 * built at run time so the type checker does not require the modules to exist.
 */
export type Loaded = { ok: true; mod: Record<string, unknown> } | { ok: false; reason: string }

const cache = new Map<string, Promise<Loaded>>()

/** Import `rel` (relative to the repository root, e.g. 'src/fs/index.js') and check it exports `names`. */
export function loadLayer(rel: string, names: string[]): Promise<Loaded> {
  const key = rel + '|' + names.join(',')
  let p = cache.get(key)
  if (!p) {
    p = (async (): Promise<Loaded> => {
      const url = new URL('../' + rel, import.meta.url).href
      let mod: Record<string, unknown>
      try {
        mod = await import(url) as Record<string, unknown>
      } catch (e) {
        const code = (e as { code?: string }).code
        const why = code === 'ERR_MODULE_NOT_FOUND' ? `${rel.replace(/\.js$/, '.ts')} does not exist` : (e as Error).message.split('\n')[0]
        return { ok: false, reason: `not available yet: ${why}` }
      }
      const missing = names.filter(n => mod[n] === undefined)
      if (missing.length) return { ok: false, reason: `not available yet: ${rel.replace(/\.js$/, '.ts')} does not export ${missing.join(', ')}` }
      return { ok: true, mod }
    })()
    cache.set(key, p)
  }
  return p
}

/** available() for a benchmark needing every listed layer: null or the first reason. */
export async function needLayers(...layers: [rel: string, names: string[]][]): Promise<string | null> {
  for (const [rel, names] of layers) {
    const r = await loadLayer(rel, names)
    if (!r.ok) return r.reason
  }
  return null
}

export const FS_LAYER: [string, string[]] = ['src/fs/index.js', ['mkfs', 'mount', 'fsck']]
/** The public mkfs / mount (src/mount.ts): the fs with DAX (file.mmap) and fault injection attached. */
export const MOUNT_LAYER: [string, string[]] = ['src/mount.js', ['mkfs', 'mount']]
export const DAX_LAYER: [string, string[]] = ['src/dax/index.js', ['DaxMapping', 'attachDax']]
export const DMA_LAYER: [string, string[]] = ['src/dma/index.js', ['DmaEngine']]

/** The module of a layer already checked by available(). */
export async function layer(l: [string, string[]]): Promise<Record<string, unknown>> {
  const r = await loadLayer(l[0], l[1])
  if (!r.ok) throw new Error(r.reason)
  return r.mod
}
