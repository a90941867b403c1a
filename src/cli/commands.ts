import { existsSync, rmSync, statSync } from 'node:fs'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { mkfs, mount, fsck, fsInfo } from '../fs/index.js'
import { openDevice, type Device } from '../region/index.js'
import { MAX_PAGES, MODEL_NAMES, type ModelName } from '../page/index.js'
import { isPmemuError, pmemError } from '../errors.js'
import { parseSize, formatBytes } from '../util/size.js'
import { deviceSummary, printSummary, printFsSummary, bytesWithUnit, plural } from './format.js'
import { terminalProgress } from './progress.js'
import { whatItHolds } from './holds.js'

const out = (l: string) => process.stdout.write(l + '\n')

/** The smallest page size a device can have; every device size is a multiple of it. */
export const MIN_PAGE_SIZE = 4096

/** The largest device of `pageSize`-byte pages: the wasm32 side table holds MAX_PAGES records. */
export function maxDeviceBytes(pageSize: number = MIN_PAGE_SIZE): number {
  return MAX_PAGES * pageSize
}

/** Units past any device pmemu can make: refused by name instead of as "not a size". */
const HUGE_UNIT = /^\s*\d+(\.\d+)?\s*(PiB|EiB|ZiB|YiB|PB|EB|ZB|YB)\s*$/i

/**
 * Commander argParsers: a bad option VALUE is a usage error (exit 2, the
 * option named by commander), like an unknown option. `op` is the command,
 * used as the syscall of the underlying parse error.
 */
function bytesArg(flag: string, op: string, check?: (n: number) => string | undefined): (v: string) => number {
  return (v: string) => {
    let n: number
    const huge = HUGE_UNIT.exec(v)
    if (huge && check) {
      throw new InvalidArgumentError(`${flag} ${v.trim()}: sizes in ${huge[2]} are past the largest device pmemu can make (${formatBytes(maxDeviceBytes())} of ${MIN_PAGE_SIZE}-byte pages; the wasm32 side table holds ${MAX_PAGES} pages)`)
    }
    try {
      n = parseSize(v, flag, op)
    } catch {
      throw new InvalidArgumentError(`${flag} must be a whole number of bytes, optionally with a unit (e.g. 4096, 64KiB, 1GiB), got '${v}'`)
    }
    const why = check?.(n)
    if (why !== undefined) throw new InvalidArgumentError(why)
    return n
  }
}

/** A device size: at least one page and a multiple of the smallest page size. */
export function deviceSizeArg(flag: string, op: string): (v: string) => number {
  return bytesArg(flag, op, n =>
    n % MIN_PAGE_SIZE !== 0 ? `${flag} must be a multiple of the ${MIN_PAGE_SIZE}-byte page size, got ${bytesWithUnit(n)}`
    : n < MIN_PAGE_SIZE ? `${flag} must be at least ${MIN_PAGE_SIZE} bytes, got ${bytesWithUnit(n)}`
    // the bound for the largest page size; the command checks its own page size
    : n > maxDeviceBytes(2 ** 30) ? `${flag} ${bytesWithUnit(n)} is past the largest device pmemu can make (${formatBytes(maxDeviceBytes())} of ${MIN_PAGE_SIZE}-byte pages)`
    : undefined)
}

/**
 * Open a device to read it (info, badblocks, fsck without repair) even while
 * another process holds it for writing, as dumpe2fs does; say so on stderr.
 */
async function openForReading(file: string): Promise<Device> {
  const dev = await openDevice(file, { readOnly: true, alongsideWriter: true })
  if (dev.writerElsewhere) {
    process.stderr.write(`pmemu: warning: ${file} is open for writing in another process: what follows is read without its lock and may be mid-update\n`)
  }
  return dev
}

/** Human text of a file-system state (info, fsck). */
export function stateText(state: string | undefined, writerElsewhere: boolean): string {
  if (state === 'clean') return 'clean'
  if (state === 'needs-recovery') return 'not cleanly unmounted: the journal holds a committed transaction (a mount or `pmemu fsck --repair` replays it)'
  if (state === 'mounted') {
    return writerElsewhere ? 'mounted (by another process)'
      : 'not cleanly unmounted (the last mount ended without unmount: a crash or kill -9; a mount or `pmemu fsck --repair` clears it)'
  }
  return String(state)
}

const pageSizeArg = bytesArg('--page-size', 'mkfs', n =>
  n < MIN_PAGE_SIZE || (n & (n - 1)) !== 0 || n > 2 ** 30
    ? `--page-size must be a power of two from ${MIN_PAGE_SIZE} bytes to 1 GiB, got ${bytesWithUnit(n)}`
    : undefined)

/** Whole numbers in [min, max] (no units, no fractions). */
export function intArg(flag: string, min: number, max: number): (v: string) => number {
  return (v: string) => {
    const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}, got '${v}'`)
    }
    return n
  }
}

const MAX_LABEL_BYTES = 63
function labelArg(v: string): string {
  const n = Buffer.byteLength(v, 'utf8')
  if (n > MAX_LABEL_BYTES) throw new InvalidArgumentError(`--label must be at most ${MAX_LABEL_BYTES} UTF-8 bytes, got ${n} bytes`)
  if (v.includes('\0')) throw new InvalidArgumentError('--label must not contain NUL')
  return v
}

export function registerCommands(program: Command): void {
  program
    .command('info')
    .description('print a device file\'s geometry, model, backend, MAP_SYNC and flush capability, badblocks and file-system summary')
    .argument('<file>', 'device file (made by openDevice or pmemu mkfs)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const dev = await openForReading(file)
      try {
        const fsi = fsInfo(dev)
        const s = {
          ...deviceSummary(dev), writerElsewhere: dev.writerElsewhere,
          fs: { ...fsi, ...(fsi.present ? { cleanlyUnmounted: fsi.state === 'clean' || (fsi.state === 'mounted' && dev.writerElsewhere) } : {}) },
        }
        if (o.json) out(JSON.stringify(s, null, 2))
        else {
          printSummary(s, out)
          printFsSummary({ ...s.fs, ...(s.fs.present ? { state: stateText(s.fs.state, dev.writerElsewhere) as typeof fsi.state } : {}) }, out)
        }
      } finally {
        await dev.close()
      }
    })

  program
    .command('mkfs')
    .description('create (or reformat) a device file and put a pmemu file system on it')
    .argument('<file>', 'device file')
    .option('--size <size>', 'device size, e.g. 1GiB (required when the file does not exist)', deviceSizeArg('--size', 'mkfs'))
    .option('--page-size <bytes>', 'page size in bytes (power of two ≥ 4096)', pageSizeArg, MIN_PAGE_SIZE)
    .addOption(new Option('--map <where>', 'side-table placement').choices(['mem', 'dev']).default('mem'))
    .addOption(new Option('--model <model>', 'default refcount model recorded on the device').choices(MODEL_NAMES))
    .option('--label <label>', 'volume label (≤ 63 UTF-8 bytes)', labelArg)
    .option('--json', 'print the result as JSON')
    .option('-f, --force', 'overwrite a device that holds a file system (or a file that holds other data)')
    .action(async function (this: Command, file: string, o: { size?: number; pageSize: number; map: 'mem' | 'dev'; model?: ModelName; label?: string; json?: boolean; force?: boolean }) {
      const pageSize = o.pageSize
      if (o.size !== undefined && o.size % pageSize !== 0) {
        this.error(`error: option '--size <size>' argument is invalid. --size must be a multiple of the ${pageSize}-byte page size, got ${bytesWithUnit(o.size)}`, { exitCode: 2, code: 'pmemu.invalidSize' })
      }
      if (o.size !== undefined && o.size > maxDeviceBytes(pageSize)) {
        this.error(`error: option '--size <size>' argument is invalid. --size ${bytesWithUnit(o.size)} is past the largest device of ${pageSize}-byte pages pmemu can make (${formatBytes(maxDeviceBytes(pageSize))})`, { exitCode: 2, code: 'pmemu.invalidSize' })
      }
      let holds: string | undefined
      try {
        holds = await whatItHolds(file)
      } catch (e) {
        if (!isPmemuError(e) || e.code !== 'EBUSY') throw e
        throw pmemError('EBUSY', 'mkfs', `${file} is open for writing in another process; close it there first`, { path: file })
      }
      if (holds === undefined && o.size === undefined && !existsSync(file)) {
        this.error(`error: --size is required to make a new device (e.g. pmemu mkfs ${file} --size 1GiB)`, { exitCode: 2, code: 'pmemu.missingSize' })
      }
      if (holds !== undefined && !o.force) {
        throw pmemError('EEXIST', 'mkfs', `${file} holds ${holds}; mkfs would destroy it. Use --force (-f) to overwrite it`, { path: file })
      }
      if (holds !== undefined && /not a pmemu device/.test(holds)) {
        // --force on a file that is not a device: start it afresh (the size must be given, as for a new file)
        if (o.size === undefined) this.error('error: --size is required to overwrite a file that is not a pmemu device', { exitCode: 2, code: 'pmemu.missingSize' })
        rmSync(file, { force: true })
      }
      // A file this command creates is removed again if mkfs fails; an existing one is left as it was.
      const created = !existsSync(file)
      let dev: Device | undefined
      const bar = terminalProgress()
      let ok = false
      try {
        dev = await openDevice(file, {
          create: true, pageSize, map: o.map,
          ...(o.size !== undefined ? { size: o.size } : {}), ...(o.model ? { model: o.model } : {}),
        })
        const fs = await mkfs(dev, { ...(o.label !== undefined ? { label: o.label } : {}), progress: bar.update })
        bar.stop()
        const st = fs.statfs()
        await fs.unmount()
        ok = true
        if (o.json) out(JSON.stringify({ file: dev.path, sizeBytes: dev.size, blockSizeBytes: st.bsize, blocks: st.blocks, freeBlocks: st.free, inodes: st.files }, null, 2))
        else out(`pmemu: made a file system on ${dev.path}: ${formatBytes(dev.size)}, ${plural(st.blocks, 'block')} of ${st.bsize} bytes (${plural(st.free, 'block')} free), ${plural(st.files, 'inode')}`)
      } finally {
        bar.stop()
        if (dev) await dev.close().catch(() => {})
        if (!ok && created) rmSync(file, { force: true })
      }
    })

  program
    .command('fsck')
    .description('check (and with --repair fix) the file system; exit codes as e2fsck: 0 clean, 1 fixed, 4 left uncorrected, 8 operational error')
    .argument('<file>', 'device file')
    .option('--repair', 'fix what can be fixed')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, o: { repair?: boolean; json?: boolean }) => {
      let dev
      try {
        dev = o.repair ? await openDevice(file) : await openForReading(file)
      } catch (e) {
        process.stderr.write(`pmemu: ${(e as Error).message}\n`)
        process.exitCode = 8
        return
      }
      const bar = terminalProgress()
      try {
        const before = fsInfo(dev)
        const unclean = before.present && (before.state === 'needs-recovery' || (before.state === 'mounted' && !dev.writerElsewhere))
        const r = await fsck(dev, { repair: o.repair === true, progress: bar.update })
        bar.stop()
        if (unclean && o.repair && r.exitCode !== 8 && r.exitCode !== 4) {
          // a mount replays the journal; its unmount records the clean state (as e2fsck does)
          try { await (await mount(dev)).unmount() } catch { /* fsck already said what is wrong */ }
        }
        // poison fsck cannot clear: a repair cannot help, only clearing the poison can
        const poisoned = (r.badblocks ?? []).length
        if (o.json) out(JSON.stringify({ ...r, notCleanlyUnmounted: unclean && !(o.repair && r.exitCode !== 8) }, null, 2))
        else {
          if (unclean) out(`${dev.path}: ${stateText(before.state, false)}${o.repair ? '; cleared' : ''}`)
          for (const p of r.recovered) out(`recovered: ${p}`)
          for (const p of r.problems) out(`problem: ${p}`)
          const clearHint = `pmemu badblocks --clear ${dev.path}`
          // poison in file data or free space is not a problem fsck fixes, but
          // reads there fail with EHWPOISON: list it, with what clears it
          const lost = (r.badblocks ?? []).filter(b => !b.metadata)
          for (const b of lost) out(`poisoned: bytes ${b.offset}..${b.offset + b.length - 1} (${plural(b.length, 'byte')}) in block ${b.pfn} (${b.owner}); reads there fail with EHWPOISON`)
          if (lost.length) out(`a repair cannot clear poison; \`${clearHint}\` does (as ndctl clear-errors; the bytes there read back as they were left)`)
          out(r.clean ? `${dev.path}: clean`
            : r.exitCode === 1 ? `${dev.path}: problems fixed`
            : o.repair
              ? `${dev.path}: problems left uncorrected${poisoned ? `: ${plural(poisoned, 'poisoned block')} a repair cannot clear (the bytes there are lost); clear the poison with \`${clearHint}\`, then run \`pmemu fsck --repair ${dev.path}\` again` : ''}`
              : `${dev.path}: problems left uncorrected (run \`pmemu fsck --repair ${dev.path}\`${poisoned ? `; ${plural(poisoned, 'poisoned block')} need \`${clearHint}\` first` : ''})`)
          if (r.summary) {
            const s = r.summary
            out(`${plural(s.files, 'file')}, ${plural(s.directories, 'directory').replace(/directorys$/, 'directories')}, ${s.blocks - s.freeBlocks}/${plural(s.blocks, 'block')} used, ${s.usedInodes}/${plural(s.inodes, 'inode')} used, ${plural(s.quarantinedBlocks, 'block')} quarantined`)
          }
        }
        process.exitCode = r.exitCode
      } finally {
        bar.stop()
        await dev.close()
      }
    })

  program
    .command('poison')
    .description('mark a byte range of the device bad (512-byte sectors, as Linux badblocks); survives reopen')
    .argument('<file>', 'device file')
    .requiredOption('--offset <bytes>', 'first byte (of the usable region), e.g. 1MiB', bytesArg('--offset', 'poison'))
    .requiredOption('--length <bytes>', 'bytes to poison (≥ 1)', bytesArg('--length', 'poison', n => n < 1 ? `--length must be at least 1 byte, got ${n} bytes` : undefined))
    .option('--json', 'print the poisoned range as JSON')
    .action(async (file: string, o: { offset: number; length: number; json?: boolean }) => {
      const dev = await openDevice(file)
      try {
        const r = dev.poison(o.offset, o.length)
        if (o.json) out(JSON.stringify({ offset: r.offset, length: r.length, sectors: r.length / 512, badblocks: dev.badblocks() }))
        else out(`poisoned bytes ${r.offset}..${r.offset + r.length} (${plural(r.length / 512, 'sector')} of 512 bytes)`)
      } finally {
        await dev.close()
      }
    })

  program
    .command('badblocks')
    .description('list the poisoned ranges of a device')
    .argument('<file>', 'device file')
    .option('--json', 'print JSON')
    .option('--clear', 'clear the poison (all of it, or --offset/--length), as ndctl clear-errors; the bytes read back as they were left')
    .option('--offset <bytes>', 'with --clear: first byte to clear', bytesArg('--offset', 'badblocks'))
    .option('--length <bytes>', 'with --clear: bytes to clear', bytesArg('--length', 'badblocks', n => n < 1 ? `--length must be at least 1 byte, got ${n} bytes` : undefined))
    .action(async function (this: Command, file: string, o: { json?: boolean; clear?: boolean; offset?: number; length?: number }) {
      if (!o.clear && (o.offset !== undefined || o.length !== undefined)) {
        this.error('error: --offset and --length go with --clear', { exitCode: 2, code: 'pmemu.usage' })
      }
      if (o.clear) {
        const dev = await openDevice(file)
        try {
          const before = dev.badblocks().reduce((n, b) => n + b.length, 0)
          const off = o.offset ?? 0
          dev.clearPoison(off, o.length ?? dev.capacity - off)
          const after = dev.badblocks().reduce((n, b) => n + b.length, 0)
          if (o.json) out(JSON.stringify({ clearedBytes: before - after, badblocks: dev.badblocks() }))
          else out(`cleared ${plural(before - after, 'poisoned byte')}; ${plural(after, 'byte')} still poisoned`)
        } finally {
          await dev.close()
        }
        return
      }
      const dev = await openForReading(file)
      try {
        const bb = dev.badblocks()
        if (o.json) out(JSON.stringify(bb))
        else if (bb.length === 0) out('no bad blocks')
        else for (const b of bb) out(`offset ${b.offset} bytes, length ${b.length} bytes (sectors ${b.offset / 512}..${(b.offset + b.length) / 512 - 1})`)
      } finally {
        await dev.close()
      }
    })

  program
    .command('bench')
    .description('benchmark the refcount paths against the native C baseline')
    .option('--file <file>', 'region file (default: a temp file in /dev/shm, else the OS temp dir; removed afterwards)')
    .addOption(new Option('--size <size>', 'region size, e.g. 256MiB').argParser(deviceSizeArg('--size', 'bench')).default('256MiB'))
    .addOption(new Option('--model <model>', 'refcount model').choices([...MODEL_NAMES, 'all']).default('all'))
    .option('--workers <n>', 'DMA workers (1 to 64)', intArg('--workers', 1, 64), 2)
    .option('--quick', 'short run (about 30 s for all four models)')
    .option('--json <out>', 'write results as JSON (its directory must exist)')
    .option('--html <out>', 'write a self-contained HTML report (its directory must exist)')
    .option('--compare <old.json>', 'print the per-path change against an earlier --json run')
    .option('-f, --force', 'with --file: run on (and so reformat) a file that holds a device or other data')
    .action(async (o: Record<string, unknown>) => {
      const { runBenchCommand } = await import('./bench.js')
      await runBenchCommand(o)
    })
}

