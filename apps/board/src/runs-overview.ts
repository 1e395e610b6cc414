import type { Redis } from 'ioredis';
import { RunShares } from '@brandq/fair-share';
import { CostLedger, microsToUsd } from '@brandq/ledger';
import { loadRunReport, type RunReport } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';

export interface RunOverview {
  id: string;
  status: string;
  statusReason?: string;
  source: string;
  total: number;
  succeeded: number;
  failed: number;
  skipped: number;
  progress: number;
  brandsPerSecond: number;
  costUsd: number;
  budgetUsd: number | null;
  createdAt: string;
  /** Its weight and ceiling, its share of the fleet's calls over the last minute and the ETA at that share. */
  fairShare: RunReport['fairShare'];
}

/** What the runs page shows, read from Redis: the same figures every process sees. */
export async function runsOverview(redis: Redis, limit = 50): Promise<RunOverview[]> {
  const runs = new RunStore(redis);
  const ledger = new CostLedger(redis);
  const [metas, fleet] = await Promise.all([runs.listRuns(limit), new RunShares(redis).measure()]);
  const reports = await Promise.all(metas.map((meta) => loadRunReport({ runs, ledger }, meta.id, fleet)));
  // A run deleted (pruned) between the list and its report is left out.
  return reports
    .filter((report): report is RunReport => report !== undefined)
    .map(({ run, ledger: money, fairShare }) => {
      const done = run.succeeded + run.failed;
      const elapsed = ((run.finishedAt ?? Date.now()) - run.createdAt) / 1000;
      return {
        id: run.id,
        status: run.status,
        ...(run.statusReason ? { statusReason: run.statusReason } : {}),
        source: run.sourceKey,
        total: run.total,
        succeeded: run.succeeded,
        failed: run.failed,
        skipped: run.skipped,
        progress: run.total === 0 ? 1 : done / run.total,
        brandsPerSecond: elapsed > 0 ? done / elapsed : 0,
        costUsd: microsToUsd(money.spentMicros),
        budgetUsd: money.budgetMicros > 0 ? microsToUsd(money.budgetMicros) : null,
        createdAt: new Date(run.createdAt).toISOString(),
        fairShare,
      };
    });
}
