import { CostLedger, llmLabelFor } from '@brandq/ledger';
import { loadRunReport, runCostSummary } from '@brandq/run-service';
import { RunStore } from '@brandq/runs';
import { EXIT, exitCodeForRun } from './exit-codes.js';
import { followRun, renderProgress, statusLine } from './follow.js';
import { UsageError } from './usage-error.js';
import { requireRun, withRedis } from './with-redis.js';

export interface StatusFlags {
  run?: string;
  follow?: boolean;
  json?: boolean;
}

/** `brandq status`: the latest runs, or one run with its cost summary; `--follow` exits with the run's outcome. */
export async function statusCommand(flags: StatusFlags): Promise<number> {
  if (flags.follow && flags.json) throw new UsageError('--follow and --json conflict: --json prints the state once');
  if (flags.follow && !flags.run) throw new UsageError('--follow needs --run <id>');
  return withRedis(async (config, redis) => {
    const runs = new RunStore(redis);
    const ledger = new CostLedger(redis);
    if (!flags.run) {
      const list = await runs.listRuns(20);
      if (flags.json) {
        const withMoney = await Promise.all(list.map(async (run) => ({ ...run, ledger: await ledger.snapshot(run.id) })));
        process.stdout.write(`${JSON.stringify({ runs: withMoney }, null, 2)}\n`);
        return EXIT.ok;
      }
      if (list.length === 0) process.stdout.write('no runs yet\n');
      for (const run of list) {
        process.stdout.write(`${run.id}  ${run.status.padEnd(16)} ${renderProgress(run, await ledger.snapshot(run.id), Date.now())}\n`);
      }
      return EXIT.ok;
    }
    await requireRun(runs, flags.run);
    if (flags.follow) {
      const followed = await followRun(redis, flags.run, config);
      return followed.detached ? EXIT.ok : exitCodeForRun(followed.run);
    }
    const report = await loadRunReport({ runs, ledger }, flags.run);
    if (!report) return EXIT.error;
    const { run, ledger: snapshot, recipe } = report;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ run, ledger: snapshot, recipe }, null, 2)}\n`);
      return EXIT.ok;
    }
    process.stdout.write(
      [
        `run ${run.id} (${run.status}${run.statusReason ? `: ${run.statusReason}` : ''})`,
        `  source: ${run.sourceKey}`,
        `  recipe: ${recipe.name} (${recipe.steps.map((step) => `${step.id}: ${step.type}`).join(', ')})`,
        `  created: ${new Date(run.createdAt).toISOString()}${run.finishedAt ? `, finished: ${new Date(run.finishedAt).toISOString()}` : ''}`,
        `  brands: ${run.total}, success: ${run.succeeded}, failed: ${run.failed}, skipped rows: ${run.skipped}`,
        renderProgress(run, snapshot, Date.now()),
        ...[statusLine(run, snapshot)].filter((l): l is string => l !== undefined),
        runCostSummary(report, llmLabelFor(config.OPENAI_BASE_URL)),
        '',
      ].join('\n'),
    );
    return EXIT.ok;
  });
}
