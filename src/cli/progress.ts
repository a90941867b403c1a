import cliProgress from 'cli-progress'

export interface ProgressReport { phase: string; done: number; total: number }

/**
 * A progress callback for long operations (mkfs, fsck of large regions):
 * a cli-progress bar on stderr when it is a terminal, nothing otherwise (so
 * pipes and CI logs stay clean). Call `stop()` when done.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): { update: (p: ProgressReport) => void; stop: () => void } {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} }
  let bar: cliProgress.SingleBar | undefined
  let phase = ''
  return {
    update(p) {
      if (!bar || p.phase !== phase) {
        bar?.stop()
        phase = p.phase
        bar = new cliProgress.SingleBar({
          stream, format: `${p.phase.padEnd(16)} [{bar}] {percentage}% | {value}/{total} blocks | {eta_formatted} left`,
          hideCursor: true, clearOnComplete: false,
        }, cliProgress.Presets.shades_classic)
        bar.start(Math.max(1, p.total), 0)
      }
      bar.setTotal(Math.max(1, p.total))
      bar.update(p.done)
    },
    stop() { bar?.stop() },
  }
}
