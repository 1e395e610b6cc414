import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { CostLedger, usdToMicros } from '@brandq/ledger';
import { createBrandQueue } from '@brandq/queue';
import { RunStore, newRunId } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { enqueueRun } from './enqueue-run.js';
import { loadSource } from './load-source.js';
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
  --budget <usd>          hard budget for the run's paid calls
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
  if (Boolean(args.csv) === Boolean(args.sheet)) throw new UsageError('give exactly one of --csv or --sheet');
  const config = loadConfig();
  const budget = args.budget === undefined ? config.BUDGET_USD : Number(args.budget);
  if (!Number.isFinite(budget) || budget < 0) throw new UsageError(`--budget must be a number of dollars, got "${args.budget}"`);
  const loaded = await loadSource(
    { csv: args.csv, sheet: args.sheet, range: args.range ?? 'Brands!A2:A', column: args.column, resultColumn: args['result-column'], limit: positiveInt(args.limit, '--limit') },
    config,
  );
  for (const skip of loaded.skipped) process.stderr.write(`skipped row ${skip.rowNumber}: ${skip.message}\n`);

  const redis = await connectRedis(config);
  const queue = createBrandQueue(redis);
  try {
    const runs = new RunStore(redis);
    const runId = args.run ?? newRunId();
    const { run, enqueued } = await enqueueRun(
      { runs, ledger: new CostLedger(redis), queue },
      { runId, loaded, budgetMicros: usdToMicros(budget), attempts: config.JOB_ATTEMPTS, retention: { keepCompleted: config.JOB_KEEP_COMPLETED, keepFailed: config.JOB_KEEP_FAILED } },
    );
    process.stdout.write(`run ${run.id}: ${enqueued} brands enqueued, ${loaded.skipped.length} rows skipped\n`);
    const follow = args['no-follow'] ? false : (args.follow ?? process.stdout.isTTY === true);
    if (follow) await followRun(redis, run.id, config);
    else process.stdout.write(`start workers with: pnpm worker    watch with: pnpm status --run ${run.id} --follow\n`);
  } finally {
    await queue.close();
    redis.disconnect();
  }
});
