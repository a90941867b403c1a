/**
 * The crash-state explorer (docs/crash-testing.md, "Durability profiles"):
 * record the workload once as a trace (src/faults/trace.ts), then, at every
 * persistence point (between two traced operations, and at the end),
 * enumerate the crash states the durability profile allows — the units
 * forced durable by earlier fsyncs, plus any subset of the others that is
 * closed under the profile's ordering rules — build each on a fresh fs and
 * run verify. Exhaustive up to `maxStatesPerPoint` states per point, then
 * "drop one" states plus seeded samples. A state is named by its point
 * 'ops:<k>:<hex mask over the optional units>' and replays with replayCrash.
 */
import { crc32c } from '../util/crc32c.js'
import { prng } from '../region/index.js'
import type { DurabilityProfile } from '../fs/index.js'
import { applyUnit, cloneMirror, type Mirror, type TraceOp, type Unit } from './trace.js'

export interface StatePlan {
  /** Persistence point: ops 0..k-1 were issued. */
  k: number
  /** The optional units at k, in trace order. */
  optional: Unit[]
  forced: Set<number>
  /** deps[u]: units that must persist when u persists. */
  deps: Map<number, number[]>
}

/** Forced units and ordering constraints of a trace under a profile (one code path over the table). */
export function constraints(ops: TraceOp[], p: DurabilityProfile): { deps: Map<number, number[]>; forcedAt: Array<Set<number>> } {
  const deps = new Map<number, number[]>()
  const all: Unit[] = []
  let lastMeta: number | undefined
  const lastMetaInDir = new Map<string, number>()
  const createOf = new Map<string, number>()
  const lastAppend = new Map<number, number>()
  const forcedAt: Array<Set<number>> = [new Set()]
  let forced = new Set<number>()
  const force = (u: number): void => {
    if (forced.has(u)) return
    forced.add(u)
    for (const d of deps.get(u) ?? []) force(d)
  }
  for (const op of ops) {
    for (const x of op.units) {
      const d: number[] = []
      if (x.kind === 'meta') {
        if (p.metadataOrder === 'prefix' && lastMeta !== undefined) d.push(lastMeta)
        if (p.metadataOrder === 'per-directory') {
          for (const dir of x.dirs) {
            const prev = lastMetaInDir.get(dir)
            if (prev !== undefined) d.push(prev)
            const c = createOf.get(dir)
            if (c !== undefined) d.push(c)
          }
        }
        if (p.renameFlushesSource && x.change.m === 'rename' && x.change.replaces) {
          for (const y of all) if (y.ino === x.ino && (y.kind === 'data' || y.change.m === 'resize')) d.push(y.u)
        }
        lastMeta = x.u
        for (const dir of x.dirs) lastMetaInDir.set(dir, x.u)
        if (x.change.m === 'create' && x.change.dir) createOf.set(x.change.path, x.u)
      } else if (x.append && p.appends === 'prefix') {
        const prev = lastAppend.get(x.ino)
        if (prev !== undefined) d.push(prev)
        lastAppend.set(x.ino, x.u)
      }
      deps.set(x.u, d)
      all.push(x)
    }
    const s = op.sync
    if (s) {
      forced = new Set(forced)
      for (const y of all) {
        const hit = s.s === 'all'
          || (s.s === 'file' && (y.ino === s.ino && (y.kind === 'data' || y.change.m === 'resize' || p.fsyncPersistsOwnEntries)))
          || (s.s === 'dir' && y.kind === 'meta' && y.dirs.includes(s.path))
          || (p.fsyncCommitsAllMetadata && y.kind === 'meta')
        if (hit) force(y.u)
      }
    }
    forcedAt.push(forced)
  }
  return { deps, forcedAt }
}

export function planAt(ops: TraceOp[], k: number, c: ReturnType<typeof constraints>): StatePlan {
  const forced = c.forcedAt[k]!
  const optional: Unit[] = []
  for (let i = 0; i < k; i++) for (const x of ops[i]!.units) if (!forced.has(x.u)) optional.push(x)
  return { k, optional, forced, deps: c.deps }
}

/** Is the subset (a bit per optional unit) closed under the dependencies? */
export function closed(plan: StatePlan, mask: boolean[]): boolean {
  const idx = new Map(plan.optional.map((x, i) => [x.u, i]))
  for (let i = 0; i < plan.optional.length; i++) {
    if (!mask[i]) continue
    for (const d of plan.deps.get(plan.optional[i]!.u) ?? []) {
      const j = idx.get(d)
      if (j !== undefined && !mask[j]) return false
    }
  }
  return true
}

export const maskToHex = (mask: boolean[]): string => {
  let s = ''
  for (let i = 0; i < mask.length; i += 4) {
    let n = 0
    for (let b = 0; b < 4; b++) if (mask[i + b]) n |= 1 << b
    s += n.toString(16)
  }
  return s || '0'
}
export const hexToMask = (hex: string, n: number): boolean[] | undefined => {
  if (!/^[0-9a-f]+$/.test(hex)) return undefined
  const mask: boolean[] = []
  for (let i = 0; i < n; i++) mask.push(((parseInt(hex[i >> 2] ?? '0', 16) >> (i & 3)) & 1) === 1)
  for (let i = n; i < hex.length * 4; i++) if ((parseInt(hex[i >> 2]!, 16) >> (i & 3)) & 1) return undefined
  return mask
}

/** The subsets to explore at a point: all closed ones up to `max`, else every "drop one" state plus `samples` seeded ones. */
export function subsets(plan: StatePlan, max: number, samples: number, seed: number): boolean[][] {
  const n = plan.optional.length
  const idx = new Map(plan.optional.map((x, i) => [x.u, i]))
  const depIdx = plan.optional.map(x => (plan.deps.get(x.u) ?? []).map(d => idx.get(d)).filter((j): j is number => j !== undefined))
  const out: boolean[][] = []
  let overflow = false
  const cur: boolean[] = new Array<boolean>(n).fill(false)
  const dfs = (i: number): void => {
    if (overflow) return
    if (i === n) { if (out.length >= max) overflow = true; else out.push(cur.slice()); return }
    cur[i] = false
    dfs(i + 1)
    if (depIdx[i]!.every(j => cur[j])) { cur[i] = true; dfs(i + 1); cur[i] = false }
  }
  dfs(0)
  if (!overflow) return out
  const res: boolean[][] = [new Array<boolean>(n).fill(true)]
  // Drop one unit (and what depends on it): the most telling states.
  for (let i = 0; i < n; i++) {
    const m = new Array<boolean>(n).fill(true)
    m[i] = false
    for (let j = i + 1; j < n; j++) if (depIdx[j]!.some(d => !m[d])) m[j] = false
    res.push(m)
  }
  const rnd = prng(seed)
  for (let s = 0; s < samples; s++) {
    const m = new Array<boolean>(n).fill(false)
    for (let i = 0; i < n; i++) m[i] = depIdx[i]!.every(j => m[j]) && rnd() < 0.5
    res.push(m)
  }
  return res
}

/** The crash state a subset describes. */
export function stateOf(base: Mirror, ops: TraceOp[], plan: StatePlan, mask: boolean[]): Mirror {
  const keep = new Set(plan.forced)
  plan.optional.forEach((x, i) => { if (mask[i]) keep.add(x.u) })
  const m = cloneMirror(base)
  for (let i = 0; i < plan.k; i++) for (const x of ops[i]!.units) if (keep.has(x.u)) applyUnit(m, x)
  return m
}

/** A key telling two crash states apart (namespace + contents). */
export function stateKey(m: Mirror): string {
  const parts: string[] = []
  for (const [p, ino] of [...m.entries].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const n = m.inodes.get(ino)
    parts.push(`${p}=${ino}:${n?.dir ? 'd' : `${n?.data.length ?? 0}/${n ? crc32c(n.data) : 0}`}`)
  }
  return parts.join('|')
}

const ruleFor = (p: DurabilityProfile, x: Unit, partial: boolean): string => {
  if (x.kind === 'data') return partial ? (x.append ? 'append-blocks' : 'overwrite-blocks') : 'data-unsynced'
  return p.metadataOrder === 'prefix' ? 'journal-prefix' : 'dir-unsynced'
}

/**
 * The crash state in the application's terms: which optional operations
 * persisted (after one that did not: reordered), which did not, their call
 * sites, and the profile rules that allowed it.
 */
export function story(p: DurabilityProfile, ops: TraceOp[], plan: StatePlan, mask: boolean[]): { text: string; persisted: string[]; lost: string[]; rules: string[] } {
  const byOp = new Map<number, { kept: number; lost: number; first?: Unit }>()
  plan.optional.forEach((x, i) => {
    const e = byOp.get(x.op) ?? { kept: 0, lost: 0 }
    if (mask[i]) e.kept++
    else { e.lost++; e.first ??= x }
    byOp.set(x.op, e)
  })
  const name = (i: number): string => `${ops[i]!.call}${ops[i]!.site ? ` at ${ops[i]!.site}` : ''}`
  const persisted: string[] = [], lost: string[] = [], rules = new Set<string>()
  let sawLost = false
  const parts: string[] = []
  for (const [i, e] of [...byOp].sort((a, b) => a[0] - b[0])) {
    if (e.lost === 0) {
      persisted.push(name(i))
      if (sawLost) { parts.push(`${name(i)} persisted`); rules.add(p.metadataOrder === 'prefix' ? 'delalloc' : 'no-order') }
      continue
    }
    sawLost = true
    const partial = e.kept > 0
    lost.push(name(i))
    rules.add(ruleFor(p, e.first!, partial))
    parts.push(partial ? `${name(i)} persisted only in part (${e.kept} of ${e.kept + e.lost} blocks)` : `${name(i)} did not`)
  }
  const rs = [...rules].filter(r => p.rules[r]).map(r => `${r}: ${p.rules[r]!.text}`)
  const text = parts.length === 0 ? 'every operation persisted' : `${parts.join(', ')} (${p.name}: ${rs.join('; ')})`
  return { text, persisted, lost, rules: [...rules] }
}
