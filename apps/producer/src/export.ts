import { parseArgs } from 'node:util';
import { loadConfig } from '@brandq/config';
import { RunStore } from '@brandq/runs';
import { connectRedis } from './connect.js';
import { exportRun } from './export-run.js';
import { UsageError, runCli } from './run-cli.js';

const USAGE = `usage: pnpm export --run <id> --out <results.csv|results.jsonl>`;

runCli(USAGE, async () => {
  let values;
  try {
    ({ values } = parseArgs({ options: { run: { type: 'string' }, out: { type: 'string' } }, strict: true }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (!values.run || !values.out) throw new UsageError('--run and --out are required');
  const redis = await connectRedis(loadConfig());
  try {
    const runs = new RunStore(redis);
    if (!(await runs.getRun(values.run))) throw new UsageError(`run ${values.run} not found`);
    const count = await exportRun(runs, values.run, values.out);
    process.stdout.write(`wrote ${count} rows to ${values.out}\n`);
  } finally {
    redis.disconnect();
  }
});
