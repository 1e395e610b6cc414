import type { Express } from 'express';
import { CostLedger, type LedgerSnapshot } from '@brandq/ledger';
import { assertSafeId } from '@brandq/redis';
import { RunStore, RunTimeline, projectSpendMicros, type RunMeta, type RunTimelineData } from '@brandq/runs';
import type { BoardOptions } from './board-app.js';

/** A run's timeline as its charts draw it: with the budget line and the spend projected at the run's end. */
export interface ChartTimeline extends RunTimelineData {
  /** The run's budget (0 = none). */
  budgetMicros: number;
  /** Spent so far, plus the brands left at the recent spend per brand (see projectSpendMicros). */
  projectedSpendMicros: number;
}

/** `timeline` with the run's budget and projected spend. A cancelled run takes no more brands: nothing is left to spend on. */
export function chartTimeline(
  timeline: RunTimelineData,
  run: Pick<RunMeta, 'status' | 'total' | 'succeeded' | 'failed'>,
  money: Pick<LedgerSnapshot, 'budgetMicros' | 'spentMicros'>,
): ChartTimeline {
  const left = run.status === 'cancelled' ? 0 : Math.max(0, run.total - run.succeeded - run.failed);
  return { ...timeline, budgetMicros: money.budgetMicros, projectedSpendMicros: projectSpendMicros(timeline.points, money.spentMicros, left) };
}

/** `GET /api/runs/:id/timeline`: the run's timeline (packages/runs run-timeline.ts), at most 256 points. */
export function mountRunTimeline(app: Express, options: BoardOptions): void {
  const runs = new RunStore(options.redis);
  const ledger = new CostLedger(options.redis);
  const timelines = new RunTimeline(options.redis);
  app.get('/api/runs/:id/timeline', async (req, res, next) => {
    try {
      const runId = String(req.params.id);
      const run = isRunId(runId) ? await runs.getRun(runId) : undefined;
      if (!run) {
        res.status(404).json({ code: 'NOT_FOUND', error: 'no such run' });
        return;
      }
      res.json(chartTimeline(await timelines.read(runId), run, await ledger.snapshot(runId)));
    } catch (err) {
      next(err);
    }
  });
}

/** Whether `id` can name a run at all (the rule Redis keys apply); anything else is no run. */
function isRunId(id: string): boolean {
  try {
    assertSafeId(id);
    return true;
  } catch {
    return false;
  }
}
