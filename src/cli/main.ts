#!/usr/bin/env node
/**
 * The `pmemu` command. Each subcommand is a thin wrapper over the library;
 * errors print as `pmemu: CODE: message` and exit non-zero (2 for usage,
 * 1 for operational errors; fsck exits with e2fsck's codes).
 */
import { Command, CommanderError } from 'commander'
import { isPmemuError } from '../errors.js'
import { registerCommands } from './commands.js'

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command()
  program
    .name('pmemu')
    .description('Persistent-memory device emulator: fsdax-like file layer, three Linux DAX refcount models, DMA, benchmarks')
    .version(await version(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeErr: s => process.stderr.write(s) })
    .showHelpAfterError()
  registerCommands(program)
  try {
    await program.parseAsync(argv)
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2
    if (isPmemuError(e)) {
      process.stderr.write(`pmemu: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`pmemu: ${(e as Error)?.stack ?? String(e)}\n`)
    return 1
  }
}

async function version(): Promise<string> {
  const { readFileSync } = await import('node:fs')
  const { join } = await import('node:path')
  const { packageRoot } = await import('../util/root.js')
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL((await import('node:fs')).realpathSync(process.argv[1])).href
if (invokedDirectly) {
  // `pmemu info x | head -1`: the reader went away; stop quietly, as a Unix tool does
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
      throw e
    })
  }
  main().then(code => { process.exitCode = code }, e => { process.stderr.write(String(e) + '\n'); process.exitCode = 1 })
}
