import { RunShares } from '@brandq/fair-share';
import { CostLedger, llmLabelFor } from '@brandq/ledger';
import { loadRunReport, runCostSummary, type RunReport } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import { EXIT, exitCodeForRun } from './exit-codes.js';
import { followRun, renderFairShare, renderProgress, statusLine } from './follow.js';
import { UsageError } from './usage-error.js';
import { requireRun, withRedis } from './with-redis.js';

export interface StatusFlags {
  run?: string;
  follow?: boolean;
  json?: boolean;
}

/**
 * `brandq status`: the latest runs, or one run with its cost summary; `--follow` exits with the
 * run's outcome. A run that still has brands to do shows its weight, its ceiling, its share of
 * the fleet's calls over the last minute and its ETA at that share.
 */
export async function statusCommand(flags: StatusFlags): Promise<number> {
  if (flags.follow && flags.json) throw new UsageError('--follow and --json conflict: --json prints the state once');
  if (flags.follow && !flags.run) throw new UsageError('--follow needs --run <id>');
  return withRedis(async (config, redis) => {
    const runs = new RunStore(redis);
    const ledger = new CostLedger(redis);
    const shares = new RunShares(redis);
    if (!flags.run) {
      const [list, fleet] = await Promise.all([runs.listRuns(20), shares.measure()]);
      // A run deleted (pruned) between the list and its report is left out.
      const reports = (await Promise.all(list.map((run) => loadRunReport({ runs, ledger }, run.id, fleet)))).filter((r): r is RunReport => r !== undefined);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ runs: reports.map(({ run, ledger: money, fairShare }) => ({ ...run, ledger: money, fairShare })) }, null, 2)}\n`);
        return EXIT.ok;
      }
      if (reports.length === 0) process.stdout.write('no runs yet\n');
      for (const { run, ledger: money, fairShare } of reports) {
        const share = renderFairShare(run, fairShare);
        process.stdout.write(`${run.id}  ${run.status.padEnd(16)} ${renderProgress(run, money, Date.now())}${share ? `\n  share: ${share}` : ''}\n`);
      }
      return EXIT.ok;
    }
    await requireRun(runs, flags.run);
    if (flags.follow) {
      const followed = await followRun(redis, flags.run, config);
      return followed.detached ? EXIT.ok : exitCodeForRun(followed.run);
    }
    const report = await loadRunReport({ runs, ledger }, flags.run, await shares.measure());
    if (!report) return EXIT.error;
    const { run, ledger: snapshot, recipe, fairShare } = report;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ run, ledger: snapshot, recipe, fairShare }, null, 2)}\n`);
      return EXIT.ok;
    }
    const share = renderFairShare(run, fairShare);
    process.stdout.write(
      [
        `run ${run.id} (${run.status}${run.statusReason ? `: ${run.statusReason}` : ''})`,
        `  source: ${run.sourceKey}`,
        `  recipe: ${recipe.name} (${recipe.steps.map((step) => `${step.id}: ${step.type}`).join(', ')})`,
        `  created: ${new Date(run.createdAt).toISOString()}${run.finishedAt ? `, finished: ${new Date(run.finishedAt).toISOString()}` : ''}`,
        `  brands: ${run.total}, success: ${run.succeeded}, failed: ${run.failed}, skipped rows: ${run.skipped}`,
        ...(share ? [`  share: ${share}`] : []),
        renderProgress(run, snapshot, Date.now()),
        ...[statusLine(run, snapshot)].filter((l): l is string => l !== undefined),
        runCostSummary(report, llmLabelFor(config.OPENAI_BASE_URL), { table: config.LLM_PRICING, defaultModel: config.OPENAI_MODEL }),
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  });
}
