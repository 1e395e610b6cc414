import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { CostLedger, microsToUsd, usdToMicros } from '@brandq/ledger';
import { createBrandQueue } from '@brandq/queue';
import { RunStore, newRunId } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { formatEstimate } from '@brandq/preflight';
import { enqueueRun, loadSource, nothingToDo, preflightRun, requeueRun, skipAlreadyProcessed, sourceKeyFor } from '@brandq/enqueue';
import { followRun } from './follow.js';
import { UsageError, runCli } from './run-cli.js';

const USAGE = `usage: pnpm enqueue (--csv <file> | --sheet <spreadsheetId>) [options]

  --csv <file>            CSV with a header row and a brand column (brand, brand_name or name)
  --column <name>         CSV column holding the brand name
  --sheet <id>            Google Sheet id (read with values.get)
  --range <A1>            sheet range of brand names (default 'Brands!A2:A')
  --result-column <col>   first sheet column for results (default: right of the range)
  --limit <n>             only the first n valid brands
  --run <id>              run id (default: generated); enqueueing an existing run adds what is missing
                          (new brands join its total; a completed run runs again for them)
  --budget <usd>          hard budget for the run's paid calls (with --resume: replaces the old one)
  --resume                continue the latest run of this source (or --run): processed brands are
                          skipped, the cost so far is carried
  --force                 reprocess brands that already have results in an earlier run of this source
                          (without it, a list whose brands all have results creates no run: exit 0)
  --retry-failed          re-enqueue the failed brands of --run
  --no-cache              make every call even when a cached answer exists
  --dry-run               print the preflight estimate (brands, cache hits, tokens, cost, duration,
                          binding limit) and enqueue nothing
  --allow-partial         enqueue even when the estimate is above the budget (the budget still holds)
  --follow / --no-follow  show live progress until the run ends (default: on a TTY)`;

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

runCli(USAGE, async () => {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        csv: { type: 'string' },
        column: { type: 'string' },
        sheet: { type: 'string' },
        range: { type: 'string', default: 'Brands!A2:A' },
        'result-column': { type: 'string' },
        limit: { type: 'string' },
        run: { type: 'string' },
        budget: { type: 'string' },
        follow: { type: 'boolean' },
        resume: { type: 'boolean' },
        force: { type: 'boolean' },
        'retry-failed': { type: 'boolean' },
        'no-cache': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'allow-partial': { type: 'boolean' },
        'no-follow': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const args = parsed.values;
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.resume && args.force) throw new UsageError('--resume and --force conflict: --resume skips processed brands, --force reprocesses them');
  const retryFailed = args['retry-failed'] === true;
  if (retryFailed && !args.run) throw new UsageError('--retry-failed needs --run <id>');
  const continuing = args.resume === true || retryFailed;
  if (!continuing && Boolean(args.csv) === Boolean(args.sheet)) throw new UsageError('give exactly one of --csv or --sheet');
  if (args.resume && !args.run && !args.csv && !args.sheet) throw new UsageError('--resume needs the source (--csv or --sheet) or --run');

  const config = loadConfig();
  const budget = args.budget === undefined ? undefined : Number(args.budget);
  if (budget !== undefined && (!Number.isFinite(budget) || budget < 0)) throw new UsageError(`--budget must be a number of dollars, got "${args.budget}"`);
  const spec = { csv: args.csv, sheet: args.sheet, range: args.range ?? 'Brands!A2:A', column: args.column, resultColumn: args['result-column'], limit: positiveInt(args.limit, '--limit') };
  const retention = { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED };

  const redis = await connectRedis(config);
  const queue = createBrandQueue(redis);
  try {
    const runs = new RunStore(redis);
    const ledger = new CostLedger(redis);
    let runId: string;
    if (continuing) {
      const found = args.run ?? (await runs.latestRunForSource(sourceKeyFor(spec)));
      if (!found) throw new UsageError(`no earlier run of ${sourceKeyFor(spec)} to resume`);
      const previous = await runs.getRun(found);
      if (!previous) throw new UsageError(`run ${found} not found`);
      await runs.indexRun(previous);
      runId = found;
      const before = await ledger.snapshot(runId);
      const { requeued, reopened } = await requeueRun({ runs, queue, ledger }, runId, {
        retryFailed,
        attempts: config.JOB_ATTEMPTS,
        retention,
        budgetMicros: budget === undefined ? undefined : usdToMicros(budget),
      });
      process.stdout.write(
        `${retryFailed ? 'retrying failed brands of' : 'resuming'} run ${runId}: processed ${previous.succeeded + previous.failed}/${previous.total} ` +
          `(success ${previous.succeeded}, failed ${previous.failed}), cost so far $${microsToUsd(before.spentMicros).toFixed(2)}` +
          `${budget !== undefined ? `, new budget $${budget.toFixed(2)}` : ''}; ${requeued} brands queued${retryFailed ? ` (${reopened} reopened)` : ''}\n`,
      );
    } else {
      const loaded = await loadSource(spec, config);
      if (!args.force) await skipAlreadyProcessed(runs, loaded);
      for (const skip of loaded.skipped) process.stderr.write(`skipped: ${skip.message}\n`);
      // No run is created for a list with nothing left to do (exit 0: the source is done).
      const idle = nothingToDo(loaded);
      if (idle) {
        process.stdout.write(`${idle.message}\n`);
        return 0;
      }
      const budgetMicros = usdToMicros(budget ?? config.BUDGET_USD);
      const estimate = await preflightRun(
        { redis, config, queue },
        { loaded, budgetMicros, noCache: args['no-cache'] === true, allowPartial: args['dry-run'] === true || args['allow-partial'] === true, refuseDuringCooldown: false },
      );
      if (args['dry-run']) {
        process.stdout.write(`${formatEstimate(estimate, budgetMicros)}\n(dry run: nothing enqueued)\n`);
        return 0;
      }
      runId = args.run ?? newRunId();
      const outcome = await enqueueRun(
        { runs, ledger, queue },
        { runId, loaded, budgetMicros, attempts: config.JOB_ATTEMPTS, retention, noCache: args['no-cache'] === true },
      );
      if (outcome.kind === 'nothing_to_do') {
        process.stdout.write(`${outcome.message}\n`);
        return 0;
      }
      const grown = outcome.added < outcome.enqueued ? ` (${outcome.added} new to the run, total ${outcome.run.total})` : '';
      process.stdout.write(`run ${runId}: ${outcome.enqueued} brands enqueued${grown}, ${loaded.skipped.length} rows skipped\n`);
    }
    const follow = args['no-follow'] ? false : (args.follow ?? process.stdout.isTTY === true);
    if (follow) await followRun(redis, runId, config);
    else process.stdout.write(`start workers with: pnpm worker    watch with: pnpm status --run ${runId} --follow\n`);
  } finally {
    await queue.close();
    redis.disconnect();
  }
});
