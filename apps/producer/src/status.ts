import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { CostLedger, formatCostSummary, llmLabelFor } from '@brandq/ledger';
import { RunStore } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { followRun, renderProgress, statusLine } from './follow.js';
import { UsageError, runCli } from './run-cli.js';

const USAGE = `usage: pnpm status [--run <id>] [--follow]   (no --run: the latest runs)`;

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({ options: { run: { type: 'string' }, follow: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const config = loadConfig();
  const redis = await connectRedis(config);
  try {
    const runs = new RunStore(redis);
    const ledger = new CostLedger(redis);
    if (!values.run) {
      const list = await runs.listRuns(20);
      if (list.length === 0) process.stdout.write('no runs yet\n');
      for (const run of list) {
        process.stdout.write(`${run.id}  ${run.status.padEnd(16)} ${renderProgress(run, await ledger.snapshot(run.id), Date.now())}\n`);
      }
      return 0;
    }
    const run = await runs.getRun(values.run);
    if (!run) throw new UsageError(`run ${values.run} not found`);
    if (values.follow) {
      await followRun(redis, run.id, config);
      return 0;
    }
    const snapshot = await ledger.snapshot(run.id);
    process.stdout.write(
      [
        `run ${run.id} (${run.status}${run.statusReason ? `: ${run.statusReason}` : ''})`,
        `  source: ${run.sourceKey}`,
        `  created: ${new Date(run.createdAt).toISOString()}${run.finishedAt ? `, finished: ${new Date(run.finishedAt).toISOString()}` : ''}`,
        `  brands: ${run.total}, success: ${run.succeeded}, failed: ${run.failed}, skipped rows: ${run.skipped}`,
        renderProgress(run, snapshot, Date.now()),
        ...[statusLine(run, snapshot)].filter((l): l is string => l !== undefined),
        formatCostSummary(snapshot, llmLabelFor(config.OPENAI_BASE_URL)),
        '',
      ].join('\n'),
    );
    return 0;
  } finally {
    redis.disconnect();
  }
});
