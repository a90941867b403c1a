import { Option, type Command } from 'commander'
import { mkfs, fsck, fsInfo } from '../fs/index.js'
import { openDevice } from '../region/index.js'
import { parseSize, formatBytes } from '../util/size.js'
import { deviceSummary, printSummary, printFsSummary } from './format.js'
import { terminalProgress } from './progress.js'

const out = (l: string) => process.stdout.write(l + '\n')

function intOption(v: string, what: string): number {
  const n = parseSize(v, what)
  return n
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
    .option('--size <size>', 'device size, e.g. 1GiB (required when the file does not exist)')
    .option('--page-size <bytes>', 'page size (power of two ≥ 4096)', '4096')
    .addOption(new Option('--map <where>', 'side-table placement').choices(['mem', 'dev']).default('mem'))
    .addOption(new Option('--model <model>', 'default refcount model recorded on the device').choices(['legacy', 'dax-gup', 'upstream']))
    .option('--label <label>', 'volume label (≤ 63 bytes)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: { size?: string; pageSize: string; map: 'mem' | 'dev'; model?: 'legacy' | 'dax-gup' | 'upstream'; label?: string; json?: boolean }) => {
      const pageSize = intOption(o.pageSize, 'page size')
      const dev = await openDevice(file, {
        create: true, pageSize, map: o.map,
        ...(o.size !== undefined ? { size: o.size } : {}), ...(o.model ? { model: o.model } : {}),
      })
      const bar = terminalProgress()
      try {
        const fs = await mkfs(dev, { ...(o.label !== undefined ? { label: o.label } : {}), progress: bar.update })
        bar.stop()
        const st = fs.statfs()
        await fs.unmount()
        if (o.json) out(JSON.stringify({ file: dev.path, sizeBytes: dev.size, blockSizeBytes: st.bsize, blocks: st.blocks, freeBlocks: st.free, inodes: st.files }, null, 2))
        else out(`pmemu: made a file system on ${dev.path}: ${formatBytes(dev.size)}, ${st.blocks} blocks of ${st.bsize} bytes (${st.free} free), ${st.files} inodes`)
      } finally {
        bar.stop()
        await dev.close()
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
            out(`${s.files} files, ${s.directories} directories, ${s.blocks - s.freeBlocks}/${s.blocks} blocks used, ${s.usedInodes}/${s.inodes} inodes used, ${s.quarantinedBlocks} blocks quarantined`)
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
    .requiredOption('--offset <bytes>', 'first byte (of the usable region)')
    .requiredOption('--length <bytes>', 'bytes to poison')
    .action(async (file: string, o: { offset: string; length: string }) => {
      const dev = await openDevice(file)
      try {
        const r = dev.poison(parseSize(o.offset, 'offset'), parseSize(o.length, 'length'))
        out(`poisoned bytes ${r.offset}..${r.offset + r.length} (${r.length / 512} sectors of 512 bytes)`)
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
    .option('--size <size>', 'region size', '256MiB')
    .addOption(new Option('--model <model>', 'refcount model').choices(['legacy', 'dax-gup', 'upstream', 'all']).default('all'))
    .option('--workers <n>', 'DMA workers', '2')
    .option('--quick', 'short run (under 30 s)')
    .option('--json <out>', 'write results as JSON')
    .option('--html <out>', 'write a self-contained HTML report')
    .option('--compare <old.json>', 'print the per-path change against an earlier --json run')
    .action(async (o: Record<string, unknown>) => {
      const { runBenchCommand } = await import('./bench.js')
      await runBenchCommand(o)
    })
}

