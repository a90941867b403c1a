import { existsSync, rmSync } from 'node:fs'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { mkfs, fsck, fsInfo } from '../fs/index.js'
import { openDevice, type Device } from '../region/index.js'
import { parseSize, formatBytes } from '../util/size.js'
import { deviceSummary, printSummary, printFsSummary, bytesWithUnit, plural } from './format.js'
import { terminalProgress } from './progress.js'

const out = (l: string) => process.stdout.write(l + '\n')

/** The smallest page size a device can have; every device size is a multiple of it. */
export const MIN_PAGE_SIZE = 4096

/**
 * Commander argParsers: a bad option VALUE is a usage error (exit 2, the
 * option named by commander), like an unknown option. `op` is the command,
 * used as the syscall of the underlying parse error.
 */
function bytesArg(flag: string, op: string, check?: (n: number) => string | undefined): (v: string) => number {
  return (v: string) => {
    let n: number
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
    : undefined)
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
      const dev = await openDevice(file, { readOnly: true })
      try {
        const s = { ...deviceSummary(dev), fs: fsInfo(dev) }
        if (o.json) out(JSON.stringify(s, null, 2))
        else {
          printSummary(s, out)
          printFsSummary(s.fs, out)
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
    .addOption(new Option('--model <model>', 'default refcount model recorded on the device').choices(['legacy', 'dax-gup', 'upstream']))
    .option('--label <label>', 'volume label (≤ 63 UTF-8 bytes)', labelArg)
    .option('--json', 'print the result as JSON')
    .action(async function (this: Command, file: string, o: { size?: number; pageSize: number; map: 'mem' | 'dev'; model?: 'legacy' | 'dax-gup' | 'upstream'; label?: string; json?: boolean }) {
      const pageSize = o.pageSize
      if (o.size !== undefined && o.size % pageSize !== 0) {
        this.error(`error: option '--size <size>' argument is invalid. --size must be a multiple of the ${pageSize}-byte page size, got ${bytesWithUnit(o.size)}`, { exitCode: 2, code: 'pmemu.invalidSize' })
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
        dev = await openDevice(file, { readOnly: !o.repair })
      } catch (e) {
        process.stderr.write(`pmemu: ${(e as Error).message}\n`)
        process.exitCode = 8
        return
      }
      const bar = terminalProgress()
      try {
        const r = await fsck(dev, { repair: o.repair === true, progress: bar.update })
        bar.stop()
        if (o.json) out(JSON.stringify(r, null, 2))
        else {
          for (const p of r.recovered) out(`recovered: ${p}`)
          for (const p of r.problems) out(`problem: ${p}`)
          out(r.clean ? `${dev.path}: clean` : r.exitCode === 1 ? `${dev.path}: problems fixed` : `${dev.path}: problems left uncorrected (run with --repair)`)
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
    .action(async (file: string, o: { offset: number; length: number }) => {
      const dev = await openDevice(file)
      try {
        const r = dev.poison(o.offset, o.length)
        out(`poisoned bytes ${r.offset}..${r.offset + r.length} (${plural(r.length / 512, 'sector')} of 512 bytes)`)
      } finally {
        await dev.close()
      }
    })

  program
    .command('badblocks')
    .description('list the poisoned ranges of a device')
    .argument('<file>', 'device file')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const dev = await openDevice(file, { readOnly: true })
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
    .addOption(new Option('--model <model>', 'refcount model').choices(['legacy', 'dax-gup', 'upstream', 'all']).default('all'))
    .option('--workers <n>', 'DMA workers (1 to 64)', intArg('--workers', 1, 64), 2)
    .option('--quick', 'short run (under 30 s)')
    .option('--json <out>', 'write results as JSON (its directory must exist)')
    .option('--html <out>', 'write a self-contained HTML report (its directory must exist)')
    .option('--compare <old.json>', 'print the per-path change against an earlier --json run')
    .action(async (o: Record<string, unknown>) => {
      const { runBenchCommand } = await import('./bench.js')
      await runBenchCommand(o)
    })
}

