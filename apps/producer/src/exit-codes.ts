import type { RunMeta } from '@brandq/runs';

/** brandq's exit codes, documented in `brandq --help` and the README. */
export const EXIT = {
  /** Done: the command did what was asked (a followed run completed). */
  ok: 0,
  /** An error: bad input, configuration, Redis, a run not found. */
  error: 1,
  /** A usage mistake: unknown or missing flag, bad flag value. */
  usage: 2,
  /** A followed run ended held: out of budget or paused (its jobs wait in the queue). */
  held: 3,
  /** Interrupted by Ctrl+C (128 + SIGINT), as shells report it. */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    done (a followed run completed)
  1    error (bad input or configuration, Redis unreachable, run not found, run cancelled)
  2    usage mistake (unknown flag, missing or bad flag value)
  3    a followed run ended held: out of budget or paused; resume with brandq enqueue --resume
  130  brandq run interrupted by Ctrl+C (its workers were stopped)`;

/** The exit code a run's final state calls for, once it stopped running. */
export function exitCodeForRun(run: RunMeta): number {
  if (run.status === 'budget_exhausted' || run.status === 'paused') return EXIT.held;
  if (run.status === 'cancelled') return EXIT.error;
  return EXIT.ok;
}
