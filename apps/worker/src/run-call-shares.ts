import type { Redis } from 'ioredis';
import { RunCeiling, RunShares } from '@brandq/fair-share';
import type { Logger } from '@brandq/logger';
import type { BrandqMetrics } from '@brandq/metrics';
import type { RunCallShares } from '@brandq/pipeline';

/**
 * The worker's side of fair shares between runs: each run's own ceiling in Redis, and each
 * admitted call counted for the run (in Redis for `status` and the board, in the metrics).
 * Counting never holds a call up: it runs beside it, and a lost count only blurs a share.
 */
export function runCallShares(redis: Redis, metrics: BrandqMetrics, logger: Logger): RunCallShares & { shares: RunShares } {
  const ceiling = new RunCeiling(redis);
  const shares = new RunShares(redis);
  return {
    shares,
    admitUnderCeiling: (runId, provider, maxRpm) => ceiling.admit(runId, provider, maxRpm),
    admitted(runId, provider) {
      metrics.runAdmittedCalls.inc({ provider, run: runId });
      shares.admitted(runId).catch((err: unknown) => logger.debug({ runId, err: String(err) }, 'admitted call not counted'));
    },
  };
}
