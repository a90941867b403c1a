import { Option, type Command } from 'commander'
import { openDevice } from '../region/index.js'
import { deviceSummary, printSummary } from './format.js'

const out = (l: string) => process.stdout.write(l + '\n')

export function registerCommands(program: Command): void {
  program
    .command('info')
    .description('print a device file\'s geometry, model, backend, MAP_SYNC and flush capability, badblocks')
    .argument('<file>', 'device file (made by openDevice or pmemu mkfs)')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const dev = await openDevice(file, { readOnly: true })
      try {
        const s = deviceSummary(dev)
        if (o.json) out(JSON.stringify(s, null, 2))
        else printSummary(s, out)
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
