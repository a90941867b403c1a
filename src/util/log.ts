import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * The root logger: the injected one, or a new one that is silent unless
 * PMEMU_LOG names a level (PMEMU_LOG=debug). Logs go to stderr so that
 * `--json` output on stdout stays clean.
 */
export function rootLogger(injected?: Logger): Logger {
  if (injected) return injected
  const level = process.env.PMEMU_LOG || 'silent'
  return pino({ name: 'pmemu', level }, pino.destination(2))
}

/** A child logger for one subsystem ('region', 'pages', 'fs', 'dax', 'dma', 'faults'). */
export function subsystemLogger(root: Logger, subsystem: string): Logger {
  return root.child({ subsystem })
}
