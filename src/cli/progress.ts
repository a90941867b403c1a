import cliProgress from 'cli-progress'

export interface ProgressReport { phase: string; done: number; total: number }

/** What a phase counts, for the bar's label (every number a user sees has its unit). */
const UNITS: Record<string, string> = { zero: 'blocks', bitmap: 'blocks', inodes: 'inodes', directories: 'directories' }

/**
 * A progress callback for long operations (mkfs, fsck of large regions):
 * one cli-progress bar per phase on stderr when it is a terminal, nothing
 * otherwise (so pipes and CI logs stay clean). A phase that finishes is
 * shown complete; single-step phases and the final 'done' draw no bar.
 * Call `stop()` when done.
 */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): { update: (p: ProgressReport) => void; stop: () => void } {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} }
  let bar: cliProgress.SingleBar | undefined
  let phase = ''
  let total = 0
  const finish = () => {
    if (!bar) return
    bar.update(total)
    bar.stop()
    bar = undefined
  }
  return {
    update(p) {
      if (p.phase !== phase) {
        finish()
        phase = p.phase
        if (p.phase === 'done' || p.total <= 1) return
        total = p.total
        const unit = UNITS[p.phase] ?? 'steps'
        bar = new cliProgress.SingleBar({
          stream, hideCursor: true, clearOnComplete: false, etaBuffer: 20,
          format: `${p.phase.padEnd(12)} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted} left`,
        }, cliProgress.Presets.shades_classic)
        bar.start(total, 0)
      }
      if (bar) {
        if (p.total !== total) { total = p.total; bar.setTotal(total) }
        bar.update(p.done)
      }
    },
    stop: finish,
  }
}
